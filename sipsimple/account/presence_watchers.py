"""Watching presence: PresenceSubscriber (one SUBSCRIBE kept alive), PresenceWatcher (buddies),
WatcherInfoWatcher (who watches us, presence.winfo).

Part of an account's presence (:mod:`sipsimple.account.presence` tells the whole
story and the notifications); usable alone, as ``sipsimple presence watch`` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sipsimple.account.presence_lifecycle import (
    RetryTimer,
    address_of,
    backoff,
    keep_alive,
    notify,
    uri_of,
)
from sipsimple.core import SIPURI, Credentials, Route, SIPCoreError
from sipsimple.core.subscription import Subscription
from sipsimple.notification import IObserver, NotificationCenter, implementer
from sipsimple.payloads import PayloadError, PresenceState, WatcherInfoTracker
from sipsimple.payloads.watcherinfo import CONTENT_TYPE as WATCHERINFO_TYPE
from sipsimple.payloads.watcherinfo import WatcherInfoSequenceError

if TYPE_CHECKING:
    pass

__all__ = ["PresenceSubscriber", "PresenceWatcher", "WatcherInfoWatcher", "WatcherEntry", "state_from_notify",
           "PIDF_TYPE"]

log = logging.getLogger("sipsimple.account.presence")

PIDF_TYPE = "application/pidf+xml"


def state_from_notify(content_type: str | None, body: bytes | None) -> PresenceState | None:
    """The PresenceState a presence NOTIFY carries; None when it has no (readable) PIDF body."""
    if not body or (content_type or "").split(";")[0].strip().lower() != PIDF_TYPE:
        return None
    try:
        return PresenceState.from_pidf(body)
    except PayloadError as exc:
        log.warning("unreadable PIDF in a presence NOTIFY: %s", exc)
        return None


@dataclass(frozen=True)
class WatcherEntry:
    """One watcher of our presence, as the watcher-info document lists it."""

    uri: str
    status: str            # pending, active, waiting, terminated
    event: str             # subscribe, approved, deactivated, timeout, rejected, ...
    display_name: str | None = None
    id: str | None = None


# ---------------------------------------------------------------- subscriber


@implementer(IObserver)
class PresenceSubscriber:
    """Keeps a subscription of ``from_uri`` to ``event`` of ``target`` up.

    After the subscription failed or ended it subscribes again after
    ``retry_interval`` seconds, doubling up to ``max_retry_interval``, the
    count starting afresh with each NOTIFY of an active subscription
    (``retry_interval=None``: never again). ``on_notify(subscriber, data)``
    gets the data of every SCSubscriptionGotNotify (on the Engine thread).
    Notifications: ``SIPAccountPresenceSubscriptionDidSucceed``,
    ``SIPAccountPresenceSubscriptionDidFail``, ``SIPAccountPresenceSubscriptionDidEnd``
    (sender: ``sender``, else the subscriber).
    """

    def __init__(
        self,
        from_uri: SIPURI,
        target: SIPURI,
        credentials: Credentials | None = None,
        route: Route | None = None,
        *,
        event: str = "presence",
        accept: Iterable[str] = (PIDF_TYPE,),
        duration: int = 600,
        retry_interval: float | None = 5.0,
        max_retry_interval: float = 300.0,
        on_notify: Callable[[PresenceSubscriber, Any], None] | None = None,
        sender: Any = None,
        name: str | None = None,
    ) -> None:
        self.from_uri = from_uri
        self.target = target
        self.credentials = credentials
        self.route = route
        self.event = event
        self.accept = tuple(accept)
        self.duration = duration
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.on_notify = on_notify
        self.sender = sender if sender is not None else self
        #: how notifications name the target (``uri`` in their data)
        self.name = name if name is not None else str(target)
        self._lock = threading.RLock()
        self._subscription: Subscription | None = None
        self._ending: list[Subscription] = []
        self._failures = 0
        self._running = False
        self._timer = RetryTimer()

    @property
    def active(self) -> bool:
        """True while a subscription is accepted."""
        with self._lock:
            return self._subscription is not None and self._subscription.state == "active"

    def start(self) -> None:
        """Subscribe (and keep subscribing)."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self._failures = 0
            subscription = self._new()
        self._subscribe(subscription)

    def stop(self) -> bool:
        """Unsubscribe and stop retrying.

        True when a subscription was up or on its way: ``SIPAccountPresenceSubscriptionDidEnd``
        follows (or was posted already); False when there was none (e.g. waiting to retry).
        """
        with self._lock:
            self._running = False
            self._timer.cancel()
            subscription, self._subscription = self._subscription, None
            if subscription is not None:
                self._ending.append(subscription)
        if subscription is None:
            return False
        keep_alive(self, True)
        subscription.end()
        if subscription.state in ("null", "terminated"):  # nothing to unsubscribe: no DidEnd is coming
            self._ended(subscription, None)
        return True

    def restart(self) -> None:
        """Unsubscribe and subscribe afresh (e.g. to get a full state again)."""
        self.stop()
        self.start()

    # ----------------------------------------------------------- internals

    def _new(self) -> Subscription:
        # with the lock held
        subscription = Subscription(self.from_uri, self.target, event=self.event, accept=self.accept,
                                    credentials=self.credentials, route=self.route, duration=self.duration)
        self._subscription = subscription
        NotificationCenter().add_observer(self, sender=subscription)
        return subscription

    def _subscribe(self, subscription: Subscription) -> None:
        try:
            subscription.subscribe()
        except SIPCoreError as exc:  # the Engine is not running
            with self._lock:
                if subscription is self._subscription:
                    self._subscription = None
            NotificationCenter().discard_observer(self, sender=subscription)
            notify("SIPAccountPresenceSubscriptionDidFail", self.sender, uri=self.name, event=self.event,
                  code=0, reason=str(exc), will_retry_in=None)

    def _retry(self) -> None:
        with self._lock:
            if not self._running or self._subscription is not None:
                return
            subscription = self._new()
        self._subscribe(subscription)

    def _ended(self, subscription: Subscription, data: Any) -> None:
        with self._lock:
            if subscription not in self._ending:
                return
            self._ending.remove(subscription)
            done = not self._ending
        NotificationCenter().discard_observer(self, sender=subscription)
        if done:
            keep_alive(self, False)
        notify("SIPAccountPresenceSubscriptionDidEnd", self.sender, uri=self.name, event=self.event,
              code=data.code if data is not None else 0, reason=data.reason if data is not None else "")

    def handle_notification(self, notification: Any) -> None:
        name, subscription, data = notification.name, notification.sender, notification.data
        post: tuple[str, dict[str, Any]] | None = None
        if name in ("SCSubscriptionDidFail", "SCSubscriptionDidEnd") and subscription in self._ending:
            self._ended(subscription, data)
            return
        with self._lock:
            if subscription is not self._subscription:
                return
            if name == "SCSubscriptionDidSucceed":
                if not data.refreshed:
                    post = ("SIPAccountPresenceSubscriptionDidSucceed", dict(
                        uri=self.name, event=self.event, code=data.code, reason=data.reason,
                        expires=data.expires))
            elif name == "SCSubscriptionGotNotify":
                if data.subscription_state in ("active", "pending"):
                    self._failures = 0
            elif name in ("SCSubscriptionDidFail", "SCSubscriptionDidEnd"):
                self._subscription = None
                NotificationCenter().discard_observer(self, sender=subscription)
                delay: float | None = None
                if self._running and self.retry_interval is not None and data.code:
                    self._failures += 1
                    if (name == "SCSubscriptionDidEnd" and self._failures == 1
                            and data.reason in ("deactivated", "timeout")):
                        delay = 0.0  # RFC 6665 4.1.3: subscribe again at once
                    else:
                        delay = backoff(self._failures, self.retry_interval, self.max_retry_interval)
                    if not self._timer.start(delay, self._retry):
                        delay = None
                post = ("SIPAccountPresenceSubscriptionDidFail", dict(
                    uri=self.name, event=self.event, code=data.code, reason=data.reason, will_retry_in=delay))
            else:
                return
        if name == "SCSubscriptionGotNotify" and self.on_notify is not None:
            try:
                self.on_notify(self, data)
            except Exception:
                log.exception("presence NOTIFY handler failed")
        if post is not None:
            notify(post[0], self.sender, **post[1])


# ------------------------------------------------------------------ watchers


class PresenceWatcher:
    """Watches the presence of a set of addresses; ``states`` holds what is known.

    Posts ``SIPAccountGotPresenceState`` (and the subscription notifications)
    with ``sender`` (else itself) as sender.
    """

    def __init__(
        self,
        from_uri: SIPURI,
        credentials: Credentials | None = None,
        route: Route | None = None,
        *,
        duration: int = 600,
        retry_interval: float | None = 5.0,
        max_retry_interval: float = 300.0,
        sender: Any = None,
    ) -> None:
        self.from_uri = from_uri
        self.credentials = credentials
        self.route = route
        self.duration = duration
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.sender = sender if sender is not None else self
        self._lock = threading.RLock()
        self._subscribers: dict[str, PresenceSubscriber] = {}
        self._states: dict[str, PresenceState] = {}

    @property
    def buddies(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._subscribers)

    @property
    def states(self) -> dict[str, PresenceState]:
        """A copy of the known states by ``user@domain``."""
        with self._lock:
            return dict(self._states)

    def watch(self, uri: str | SIPURI) -> str:
        """Subscribe to the presence of ``uri``; returns its ``user@domain`` form."""
        address = address_of(uri)
        with self._lock:
            if address in self._subscribers:
                return address
            subscriber = PresenceSubscriber(
                self.from_uri, uri_of(address), self.credentials, self.route, duration=self.duration,
                retry_interval=self.retry_interval, max_retry_interval=self.max_retry_interval,
                on_notify=self._got_notify, sender=self.sender, name=address)
            self._subscribers[address] = subscriber
        subscriber.start()
        return address

    def unwatch(self, uri: str | SIPURI) -> None:
        """Unsubscribe from ``uri`` and forget its state."""
        address = address_of(uri)
        with self._lock:
            subscriber = self._subscribers.pop(address, None)
            self._states.pop(address, None)
        if subscriber is not None:
            subscriber.stop()

    def stop(self) -> None:
        """Unsubscribe from everyone and forget every state."""
        with self._lock:
            subscribers = list(self._subscribers.values())
            self._subscribers.clear()
            self._states.clear()
        for subscriber in subscribers:
            subscriber.stop()

    def _got_notify(self, subscriber: PresenceSubscriber, data: Any) -> None:
        state = state_from_notify(data.content_type, data.body)
        if state is None:
            return
        with self._lock:
            if self._subscribers.get(subscriber.name) is not subscriber:
                return
            previous = self._states.get(subscriber.name)
            if previous == state:
                return
            self._states[subscriber.name] = state
        notify("SIPAccountGotPresenceState", self.sender, uri=subscriber.name, state=state, previous=previous)


class WatcherInfoWatcher:
    """Subscribes to ``presence.winfo`` of ``uri`` and keeps the list of its watchers.

    Posts ``SIPAccountGotWatcherInfo`` (and the subscription notifications).
    """

    def __init__(self, uri: SIPURI, credentials: Credentials | None = None, route: Route | None = None, *,
                 duration: int = 600, retry_interval: float | None = 5.0, max_retry_interval: float = 300.0,
                 sender: Any = None) -> None:
        self.sender = sender if sender is not None else self
        self._lock = threading.RLock()
        self._tracker = WatcherInfoTracker()
        self._watchers: tuple[WatcherEntry, ...] = ()
        self._subscriber = PresenceSubscriber(
            uri, uri, credentials, route, event="presence.winfo", accept=(WATCHERINFO_TYPE,), duration=duration,
            retry_interval=retry_interval, max_retry_interval=max_retry_interval, on_notify=self._got_notify,
            sender=self.sender, name=address_of(uri))

    @property
    def watchers(self) -> tuple[WatcherEntry, ...]:
        with self._lock:
            return self._watchers

    def start(self) -> None:
        self._subscriber.start()

    def stop(self) -> None:
        self._subscriber.stop()
        with self._lock:
            self._tracker.reset()
            self._watchers = ()

    def _got_notify(self, subscriber: PresenceSubscriber, data: Any) -> None:
        content_type = (data.content_type or "").split(";")[0].strip().lower()
        if not data.body or content_type != WATCHERINFO_TYPE:
            return
        with self._lock:
            try:
                if not self._tracker.update(data.body):
                    return
            except WatcherInfoSequenceError as exc:
                log.info("watcher info out of sequence (%s): subscribing afresh", exc)
                self._tracker.reset()
                resync = True
            except PayloadError as exc:
                log.warning("unreadable watcher info: %s", exc)
                return
            else:
                resync = False
            if not resync:
                state = self._tracker.state
                watchers = tuple(
                    WatcherEntry(uri=str(w.uri), status=w.status, event=w.event, display_name=w.display_name,
                                 id=w.id)
                    for _, w in (state.watchers() if state is not None else ()))
                changed = watchers != self._watchers
                self._watchers = watchers
        if resync:
            threading.Thread(target=subscriber.restart, daemon=True).start()  # not from inside its handler
            return
        if changed:
            notify("SIPAccountGotWatcherInfo", self.sender, watchers=watchers,
                  pending=tuple(w for w in watchers if w.status == "pending"))
