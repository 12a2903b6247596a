"""Presence of an account: publish its own state, watch its buddies and its watchers.

::

    account = Account('alice@example.com')
    account.presence.enabled = True
    account.presence.buddies = ['bob@example.com']
    account.save()                                   # with the AccountManager started
    account.presence_state = PresenceState('open', note='at my desk', activity='busy')   # PUBLISH
    account.buddy_states['bob@example.com']          # PresenceState, once bob's first NOTIFY came
    account.watchers                                 # who watches us (presence.winfo)
    account.presence_watcher.watch('carol@example.com')   # for this run only (not saved)

While the AccountManager runs and the Engine is up, an account that is
enabled, stored and has ``presence.enabled`` on:

- publishes ``presence_state`` (nothing until it is set; setting None removes
  the publication). The Publication refreshes itself; when a PUBLISH fails
  (including a refresh) it is sent afresh after ``presence.retry_interval``
  seconds, doubling up to ``presence.max_retry_interval``;
- subscribes to the presence of each buddy (``presence.buddies``, saved, plus
  the addresses given to ``presence_watcher.watch()``) and, with
  ``presence.subscribe_winfo``, to its own ``presence.winfo`` (who watches it).
  A subscription that failed or ended is made again with the same back-off
  (at once when the notifier ended it with ``deactivated`` or ``timeout``).

Saving other credentials, proxy or presence intervals starts it all afresh;
changing ``presence.buddies`` only subscribes/unsubscribes the difference.
Disabling the account or presence, deleting the account or stopping the
AccountManager removes the publication and unsubscribes (``AccountManager.stop()``
waits for the answers as it does for the unregistration).

Addresses are ``user@domain`` strings (a ``sip:`` URI or SIPURI is accepted
and reduced to that).

Notifications (sender: the account; a :class:`PresencePublisher` or
:class:`PresenceSubscriber` used alone posts them itself):

- ``SIPAccountPresenceDidPublish``: a 2xx to PUBLISH; data ``state``
  (PresenceState), ``code``, ``reason``, ``expires``, ``etag``, ``refreshed``
  (True for a refresh the stack sent by itself).
- ``SIPAccountPresenceDidFail``: a PUBLISH failed; data ``state``, ``code``,
  ``reason``, ``will_retry_in`` (seconds, or None when it will not retry).
- ``SIPAccountPresenceDidUnpublish``: the publication is removed; data
  ``code``, ``reason`` (of the removing PUBLISH; 0 when nothing had to be sent).
- ``SIPAccountPresenceSubscriptionDidSucceed``: a SUBSCRIBE (the first of a
  subscription, not a refresh) was accepted; data ``uri``, ``event``
  (``presence`` or ``presence.winfo``), ``code``, ``reason``, ``expires``.
- ``SIPAccountPresenceSubscriptionDidFail``: a subscription failed or ended;
  data ``uri``, ``event``, ``code``, ``reason``, ``will_retry_in``.
- ``SIPAccountPresenceSubscriptionDidEnd``: we unsubscribed (the subscription
  was stopped); data ``uri``, ``event``, ``code``, ``reason`` (0 and "" when
  nothing had to be sent).
- ``SIPAccountGotPresenceState``: a buddy's state is first known or changed;
  data ``uri`` (``user@domain``), ``state`` (PresenceState), ``previous``
  (PresenceState or None). A NOTIFY without a body (the buddy published
  nothing yet) tells nothing and is not reported.
- ``SIPAccountGotWatcherInfo``: the watcher list changed; data ``watchers``
  (tuple of :class:`WatcherEntry`), ``pending`` (those awaiting authorization).

Threading: SIP events arrive on the Engine thread, application calls on
theirs; each helper keeps its state under its own lock and calls the SIP
primitives and posts notifications without holding it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sipsimple.account.presence_lifecycle import (
    address_of,
    finishing,
    finishing_changed,
)
from sipsimple.account.presence_publisher import PresencePublisher
from sipsimple.account.presence_watchers import (
    PresenceSubscriber,
    PresenceWatcher,
    WatcherEntry,
    WatcherInfoWatcher,
    state_from_notify,
)
from sipsimple.configuration.base import Setting, SettingsGroup
from sipsimple.configuration.datatypes import DataType, Duration, SIPAddress
from sipsimple.core import SIPURI
from sipsimple.payloads import PresenceState

if TYPE_CHECKING:
    from sipsimple.account.account import Account

# the helpers are re-exported: this module is where an application finds presence
__all__ = [
    "PresenceSettings", "SIPAddressList", "PresenceMixin", "AccountPresence",
    "PresencePublisher", "PresenceSubscriber", "PresenceWatcher", "WatcherInfoWatcher", "WatcherEntry",
    "state_from_notify", "address_of",
]

log = logging.getLogger("sipsimple.account.presence")


# saved settings whose change needs everything started afresh
_RESTART_KEYS = frozenset({
    "auth.username", "auth.password", "sip.outbound_proxy", "presence.publish_interval",
    "presence.subscribe_interval", "presence.retry_interval", "presence.max_retry_interval",
    "presence.subscribe_winfo",
})


# ------------------------------------------------------------------ settings


class SIPAddressList(DataType):
    """A tuple of distinct ``user@domain`` addresses (``sip:`` URIs are accepted), in the order given."""

    name = "list of SIP addresses"

    def validate(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, tuple | list):
            raise TypeError(f"expected a list of 'user@domain' addresses, not {value!r}")
        result: list[str] = []
        for item in value:
            address = SIPAddress().validate(item)
            if address not in result:
                result.append(address)
        return tuple(result)

    def dump(self, value: tuple[str, ...]) -> list[str]:
        return list(value)


class PresenceSettings(SettingsGroup):
    """``account.presence``: whether and how the account publishes and watches presence."""

    enabled = Setting(type=bool, default=False)
    buddies = Setting(type=SIPAddressList, default=())
    subscribe_winfo = Setting(type=bool, default=True)
    publish_interval = Setting(type=Duration(minimum=10, maximum=86400, integer=True), default=600)
    subscribe_interval = Setting(type=Duration(minimum=10, maximum=86400, integer=True), default=600)
    retry_interval = Setting(type=Duration(minimum=0.1, maximum=3600), default=5.0)
    max_retry_interval = Setting(type=Duration(minimum=1, maximum=86400), default=300.0)


# ------------------------------------------------------------- the account


class AccountPresence:
    """Publication, buddy and watcher-info subscriptions of one account, run as its settings say."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self._lock = threading.RLock()
        self._state: PresenceState | None = None
        self._extra: list[str] = []   # watched through watch(), not saved
        self._publisher: PresencePublisher | None = None
        self._watcher: PresenceWatcher | None = None
        self._winfo: WatcherInfoWatcher | None = None

    # ------------------------------------------------------------ public

    @property
    def running(self) -> bool:
        with self._lock:
            return self._publisher is not None

    @property
    def state(self) -> PresenceState | None:
        with self._lock:
            return self._state

    @state.setter
    def state(self, state: PresenceState | None) -> None:
        if state is not None and not isinstance(state, PresenceState):
            raise TypeError("presence_state must be a PresenceState or None")
        with self._lock:
            self._state = state
            publisher = self._publisher
        if publisher is not None:
            try:
                publisher.publish(state)
            except RuntimeError:  # stopped meanwhile
                pass

    @property
    def buddies(self) -> tuple[str, ...]:
        """Everyone watched: ``presence.buddies`` and what ``watch()`` added."""
        with self._lock:
            extra = list(self._extra)
        return tuple(dict.fromkeys([*self.account.presence.buddies, *extra]))

    @property
    def buddy_states(self) -> dict[str, PresenceState]:
        with self._lock:
            watcher = self._watcher
        return watcher.states if watcher is not None else {}

    @property
    def watchers(self) -> tuple[WatcherEntry, ...]:
        with self._lock:
            winfo = self._winfo
        return winfo.watchers if winfo is not None else ()

    def watch(self, uri: str | SIPURI) -> str:
        """Watch ``uri`` too (for this run; add it to ``presence.buddies`` to keep it). Its address."""
        address = address_of(uri)
        with self._lock:
            if address not in self._extra:
                self._extra.append(address)
            watcher = self._watcher
        if watcher is not None:
            watcher.watch(address)
        return address

    def unwatch(self, uri: str | SIPURI) -> None:
        """Stop watching ``uri`` (unless it is in ``presence.buddies``)."""
        address = address_of(uri)
        with self._lock:
            if address in self._extra:
                self._extra.remove(address)
            watcher = self._watcher
        if watcher is not None and address not in self.account.presence.buddies:
            watcher.unwatch(address)

    # ------------------------------------------------ driven by the account

    def _wanted(self) -> bool:
        account = self.account
        return bool(account._active and account._engine_running and account._stored and account.enabled
                    and account.presence.enabled)

    def update(self, modified: Iterable[str] = ()) -> None:
        """Start, stop, restart or adjust to match the account (after a save: the changed keys)."""
        keys = set(modified)
        if keys & _RESTART_KEYS:
            self._stop()
        if self._wanted():
            if not self.running:
                self._start()
            elif "presence.buddies" in keys:
                self._sync_buddies()
        else:
            self._stop()

    def wait_ended(self, deadline: float) -> bool:
        """Wait (until the monotonic ``deadline``) for the removal of what was stopped to be answered."""
        def done() -> bool:
            return not any(helper.sender is self.account for helper in finishing)

        with finishing_changed:
            return finishing_changed.wait_for(done, max(0.0, deadline - time.monotonic()))

    def engine_gone(self) -> None:
        """The Engine stopped: whatever was up is over, without a word to the server."""
        self._stop()

    # ----------------------------------------------------------- internals

    def _start(self) -> None:
        account = self.account
        settings = account.presence
        common: dict[str, Any] = dict(retry_interval=settings.retry_interval,
                                      max_retry_interval=settings.max_retry_interval, sender=account)
        publisher = PresencePublisher(account.uri, account.credentials, account.route,
                                      duration=settings.publish_interval, **common)
        watcher = PresenceWatcher(account.uri, account.credentials, account.route,
                                  duration=settings.subscribe_interval, **common)
        winfo = WatcherInfoWatcher(account.uri, account.credentials, account.route,
                                   duration=settings.subscribe_interval, **common) \
            if settings.subscribe_winfo else None
        with self._lock:
            if self._publisher is not None:
                return
            self._publisher, self._watcher, self._winfo = publisher, watcher, winfo
            state = self._state
        if state is not None:
            publisher.publish(state)
        for address in self.buddies:
            watcher.watch(address)
        if winfo is not None:
            winfo.start()

    def _stop(self) -> None:
        with self._lock:
            publisher, watcher, winfo = self._publisher, self._watcher, self._winfo
            self._publisher = self._watcher = self._winfo = None
        for part in (publisher, watcher, winfo):
            if part is not None:
                part.stop()

    def _sync_buddies(self) -> None:
        with self._lock:
            watcher = self._watcher
        if watcher is None:
            return
        wanted = set(self.buddies)
        for address in watcher.buddies:
            if address not in wanted:
                watcher.unwatch(address)
        for address in self.buddies:
            watcher.watch(address)


class PresenceMixin:
    """What an Account gains: ``presence_state``, ``buddy_states``, ``watchers``, ``presence_watcher``."""

    _presence_lock = threading.Lock()

    @property
    def presence_watcher(self) -> AccountPresence:
        """The account's presence machinery (``watch()``/``unwatch()`` buddies for this run)."""
        agent = self.__dict__.get("_presence_agent")
        if agent is None:
            with PresenceMixin._presence_lock:
                agent = self.__dict__.get("_presence_agent")
                if agent is None:
                    agent = AccountPresence(self)  # type: ignore[arg-type]
                    object.__setattr__(self, "_presence_agent", agent)
        return agent

    @property
    def presence_state(self) -> PresenceState | None:
        """Our presence as published (None: nothing is published). Setting it publishes it."""
        return self.presence_watcher.state

    @presence_state.setter
    def presence_state(self, state: PresenceState | None) -> None:
        self.presence_watcher.state = state

    @property
    def buddy_states(self) -> dict[str, PresenceState]:
        """The presence of the buddies whose state is known, by ``user@domain`` (a copy)."""
        return self.presence_watcher.buddy_states

    @property
    def watchers(self) -> tuple[WatcherEntry, ...]:
        """Who watches our presence, from ``presence.winfo`` (empty until it is known)."""
        return self.presence_watcher.watchers

    def _presence_update(self, modified: Iterable[str] = ()) -> None:
        self.presence_watcher.update(modified)

    def _presence_engine_gone(self) -> None:
        self.presence_watcher.engine_gone()
