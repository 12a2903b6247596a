"""Watcher information (RFC 3857 event package, RFC 3858 document format).

``application/watcherinfo+xml``. Servers send a ``full`` document first and
then ``partial`` ones carrying only the watchers that changed;
:func:`apply_watcherinfo` and :class:`WatcherInfoTracker` fold those into the
current full state.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from .errors import PayloadError
from .xmlbinding import (
    URI,
    XML_LANG,
    XMLID,
    Attribute,
    Children,
    Enum,
    Extensions,
    Integer,
    String,
    Text,
    Token,
    XMLElement,
    register_prefix,
)

__all__ = [
    "WATCHERINFO_NS",
    "CONTENT_TYPE",
    "WATCHER_STATUSES",
    "WATCHER_EVENTS",
    "Watcher",
    "WatcherList",
    "WatcherInfo",
    "WatcherInfoSequenceError",
    "apply_watcherinfo",
    "WatcherInfoTracker",
]

WATCHERINFO_NS = "urn:ietf:params:xml:ns:watcherinfo"
CONTENT_TYPE = "application/watcherinfo+xml"
register_prefix(WATCHERINFO_NS, "wi")

WATCHER_STATUSES = ("pending", "active", "waiting", "terminated")
WATCHER_EVENTS = (
    "subscribe", "approved", "deactivated", "probation", "rejected", "timeout", "giveup", "noresource",
)  # fmt: skip


class Watcher(XMLElement, tag=(WATCHERINFO_NS, "watcher")):
    """One subscriber to the watched resource; the text is the watcher's URI."""

    id = Attribute("id", XMLID(), required=True)
    status = Attribute("status", Enum(*WATCHER_STATUSES), required=True)
    event = Attribute("event", Enum(*WATCHER_EVENTS), required=True)
    display_name = Attribute("display-name", String())
    expiration = Attribute("expiration", Integer(0))
    duration_subscribed = Attribute("duration-subscribed", Integer(0))
    lang = Attribute(XML_LANG, Token())
    uri = Text(URI(), required=True)

    def __init__(self, uri: str | None = None, **kwargs: Any) -> None:
        super().__init__(uri=uri, **kwargs)


class WatcherList(XMLElement, tag=(WATCHERINFO_NS, "watcher-list")):
    """Watchers of one resource for one event package."""

    resource = Attribute("resource", URI(), required=True)
    package = Attribute("package", Token(), required=True)
    watchers = Children(Watcher)
    extensions = Extensions()

    def watcher(self, watcher_id: str) -> Watcher | None:
        """The watcher with *watcher_id*, if listed."""
        return next((w for w in self.watchers if w.id == watcher_id), None)


class WatcherInfo(XMLElement, tag=(WATCHERINFO_NS, "watcherinfo")):
    """The ``<watcherinfo>`` document root."""

    version = Attribute("version", Integer(0), required=True)
    state = Attribute("state", Enum("full", "partial"), required=True)
    watcher_lists = Children(WatcherList)
    extensions = Extensions()

    def watcher_list(self, resource: str, package: str) -> WatcherList | None:
        """The list for *resource* and *package*, if present."""
        return next(
            (wl for wl in self.watcher_lists if wl.resource == resource and wl.package == package), None
        )

    def watchers(self, status: str | None = None) -> Iterator[tuple[WatcherList, Watcher]]:
        """All ``(list, watcher)`` pairs, optionally only those with *status*."""
        for wl in self.watcher_lists:
            for w in wl.watchers:
                if status is None or w.status == status:
                    yield wl, w


class WatcherInfoSequenceError(PayloadError):
    """A partial document cannot be applied; the subscriber should refresh to get full state."""


def apply_watcherinfo(current: WatcherInfo | None, update: WatcherInfo) -> WatcherInfo:
    """Return the full state after applying *update* to *current* (neither is modified).

    A ``full`` update simply replaces the state. A ``partial`` one must carry the
    next version (RFC 3858 section 4.4); its watchers replace those with the same
    id in the matching watcher-list, and unknown watchers and lists are added.
    """
    if update.state == "full":
        result = copy.deepcopy(update)
        return result
    if current is None:
        raise WatcherInfoSequenceError("partial watcherinfo received before any full state")
    if update.version != current.version + 1:
        raise WatcherInfoSequenceError(
            f"watcherinfo version {update.version} does not follow {current.version}; a document was lost"
        )
    result = copy.deepcopy(current)
    result.version = update.version
    for new_list in update.watcher_lists:
        existing = result.watcher_list(new_list.resource, new_list.package)
        if existing is None:
            result.watcher_lists.append(copy.deepcopy(new_list))
            continue
        for watcher in new_list.watchers:
            for index, old in enumerate(existing.watchers):
                if old.id == watcher.id:
                    existing.watchers[index] = copy.deepcopy(watcher)
                    break
            else:
                existing.watchers.append(copy.deepcopy(watcher))
    return result


class WatcherInfoTracker:
    """Keeps the current full watcherinfo state of one subscription."""

    def __init__(self) -> None:
        self.state: WatcherInfo | None = None

    def update(self, document: WatcherInfo | bytes) -> bool:
        """Apply a received document; return False if it was stale and ignored.

        Raises :class:`WatcherInfoSequenceError` when a partial document cannot be
        applied (nothing known yet, or a version gap): re-subscribe to get full state.
        """
        if not isinstance(document, WatcherInfo):
            document = WatcherInfo.parse(document)
        if document.state == "partial" and self.state is not None and document.version <= self.state.version:
            return False  # retransmitted or reordered NOTIFY
        self.state = apply_watcherinfo(self.state, document)
        return True

    def reset(self) -> None:
        """Forget the state, e.g. when the subscription ends."""
        self.state = None

    @property
    def pending(self) -> list[Watcher]:
        """Watchers awaiting an authorization decision."""
        return [w for _, w in self.state.watchers("pending")] if self.state else []

    @property
    def active(self) -> list[Watcher]:
        """Watchers currently subscribed."""
        return [w for _, w in self.state.watchers("active")] if self.state else []
