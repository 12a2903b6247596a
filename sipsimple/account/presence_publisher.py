"""PresencePublisher: keeps one PresenceState published for an address (PUBLISH, RFC 3903).

Part of an account's presence (:mod:`sipsimple.account.presence` tells the whole
story and the notifications); usable alone, as ``sipsimple presence publish`` does.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from sipsimple.account.presence_lifecycle import (
    RetryTimer,
    backoff,
    keep_alive,
    notify,
)
from sipsimple.core import SIPURI, Credentials, Route, SIPCoreError
from sipsimple.core.publication import Publication
from sipsimple.notification import IObserver, NotificationCenter, implementer
from sipsimple.payloads import PresenceState

if TYPE_CHECKING:
    pass

__all__ = ["PresencePublisher"]

log = logging.getLogger("sipsimple.account.presence")


# ------------------------------------------------------------------ publisher


@implementer(IObserver)
class PresencePublisher:
    """Keeps one PresenceState published for ``uri`` (PUBLISH, RFC 3903).

    ``publish(state)`` publishes or modifies it, ``publish(None)`` removes it,
    ``stop()`` removes it for good. A failed PUBLISH is retried after
    ``retry_interval`` seconds, doubling up to ``max_retry_interval``
    (``retry_interval=None``: never). Notifications: ``SIPAccountPresenceDidPublish``,
    ``SIPAccountPresenceDidFail``, ``SIPAccountPresenceDidUnpublish`` (sender:
    ``sender``, else the publisher).
    """

    def __init__(
        self,
        uri: SIPURI,
        credentials: Credentials | None = None,
        route: Route | None = None,
        *,
        duration: int = 600,
        retry_interval: float | None = 5.0,
        max_retry_interval: float = 300.0,
        sender: Any = None,
    ) -> None:
        self.uri = uri
        self.credentials = credentials
        self.route = route
        self.duration = duration
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.sender = sender if sender is not None else self
        self._lock = threading.RLock()
        self._state: PresenceState | None = None
        self._publication: Publication | None = None
        self._ending: list[Publication] = []
        self._published = False
        self._failures = 0
        self._stopped = False
        self._timer = RetryTimer()

    @property
    def state(self) -> PresenceState | None:
        """The state to be published (None: nothing)."""
        with self._lock:
            return self._state

    @property
    def published(self) -> bool:
        """True while the compositor holds our current state."""
        with self._lock:
            return self._published

    def publish(self, state: PresenceState | None) -> None:
        """Publish ``state`` (None removes the publication); results come as notifications."""
        if state is not None and not isinstance(state, PresenceState):
            raise TypeError("state must be a PresenceState or None")
        with self._lock:
            if self._stopped:
                raise RuntimeError("the publisher is stopped")
            self._state = state
            self._failures = 0
            self._timer.cancel()
            if state is None:
                to_end, self._publication = self._publication, None
                self._published = False
                to_publish = None
            else:
                to_end = None
                to_publish = self._current()
        if to_end is not None:
            self._end(to_end)
        if to_publish is not None:
            self._send(to_publish, state)

    def stop(self) -> None:
        """Remove the publication and stop retrying (``SIPAccountPresenceDidUnpublish`` follows if one was up)."""
        with self._lock:
            self._stopped = True
            self._timer.cancel()
            to_end, self._publication = self._publication, None
            self._published = False
        if to_end is not None:
            self._end(to_end)

    # ----------------------------------------------------------- internals

    def _current(self) -> Publication:
        # with the lock held
        if self._publication is None:
            self._publication = Publication(self.uri, credentials=self.credentials, route=self.route,
                                            duration=self.duration)
            NotificationCenter().add_observer(self, sender=self._publication)
        return self._publication

    def _send(self, publication: Publication, state: PresenceState | None) -> None:
        if state is None:
            return
        try:
            publication.publish(state.toxml(str(self.uri)))
        except SIPCoreError as exc:  # the Engine is not running
            log.warning("cannot publish presence of %s: %s", self.uri, exc)
            with self._lock:
                if publication is self._publication:
                    self._publication = None
            NotificationCenter().discard_observer(self, sender=publication)
            notify("SIPAccountPresenceDidFail", self.sender, state=state, code=0, reason=str(exc),
                  will_retry_in=None)

    def _end(self, publication: Publication) -> None:
        with self._lock:
            self._ending.append(publication)
        keep_alive(self, True)
        publication.end()
        if publication.state == "idle":  # nothing was up (or it ended at once): no DidEnd is coming
            self._ended(publication)

    def _ended(self, publication: Publication) -> bool:
        with self._lock:
            if publication not in self._ending:
                return False
            self._ending.remove(publication)
            done = not self._ending
        NotificationCenter().discard_observer(self, sender=publication)
        if done:
            keep_alive(self, False)
        return True

    def _retry(self) -> None:
        with self._lock:
            if self._stopped or self._state is None:
                return
            publication, state = self._current(), self._state
        self._send(publication, state)

    def handle_notification(self, notification: Any) -> None:
        name, publication, data = notification.name, notification.sender, notification.data
        if name == "SCPublicationDidEnd":
            if self._ended(publication):
                notify("SIPAccountPresenceDidUnpublish", self.sender, code=data.code, reason=data.reason)
            return
        with self._lock:
            if publication is not self._publication:
                return
            state = self._state
            if name == "SCPublicationDidSucceed":
                self._failures = 0
                self._published = True
                post = ("SIPAccountPresenceDidPublish", dict(
                    state=state, code=data.code, reason=data.reason, expires=data.expires, etag=data.etag,
                    refreshed=data.refreshed))
            elif name == "SCPublicationDidFail":
                self._published = False
                delay: float | None = None
                if not self._stopped and state is not None and self.retry_interval is not None and data.code:
                    self._failures += 1
                    delay = backoff(self._failures, self.retry_interval, self.max_retry_interval)
                    if not self._timer.start(delay, self._retry):
                        delay = None
                post = ("SIPAccountPresenceDidFail", dict(
                    state=state, code=data.code, reason=data.reason, will_retry_in=delay))
            else:
                return
        notify(post[0], self.sender, **post[1])
