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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sipsimple.configuration.base import Setting, SettingsGroup
from sipsimple.configuration.datatypes import DataType, Duration, SIPAddress
from sipsimple.core import SIPURI, Credentials, Engine, Route, SIPCoreError
from sipsimple.core.publication import Publication
from sipsimple.core.subscription import Subscription
from sipsimple.notification import IObserver, NotificationCenter, NotificationData, implementer
from sipsimple.payloads import PayloadError, PresenceState, WatcherInfoTracker
from sipsimple.payloads.watcherinfo import CONTENT_TYPE as WATCHERINFO_TYPE
from sipsimple.payloads.watcherinfo import WatcherInfoSequenceError

if TYPE_CHECKING:
    from sipsimple.account.account import Account

__all__ = [
    "PresenceSettings", "SIPAddressList", "PresenceMixin", "AccountPresence",
    "PresencePublisher", "PresenceSubscriber", "PresenceWatcher", "WatcherInfoWatcher", "WatcherEntry",
    "state_from_notify", "address_of",
]

log = logging.getLogger("sipsimple.account.presence")

PIDF_TYPE = "application/pidf+xml"

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


# ------------------------------------------------------------------ helpers


def address_of(uri: str | SIPURI) -> str:
    """``'sip:Bob@Example.com'``, ``'bob@example.com'`` or a SIPURI -> ``'Bob@example.com'``."""
    if isinstance(uri, SIPURI):
        if not uri.user:
            raise ValueError(f"{uri} has no user part")
        uri = f"{uri.user}@{uri.host}"
    return SIPAddress().validate(uri)


def _uri_of(address: str) -> SIPURI:
    user, _, domain = address.rpartition("@")
    return SIPURI(domain, user=user)


def state_from_notify(content_type: str | None, body: bytes | None) -> PresenceState | None:
    """The PresenceState a presence NOTIFY carries; None when it has no (readable) PIDF body."""
    if not body or (content_type or "").split(";")[0].strip().lower() != PIDF_TYPE:
        return None
    try:
        return PresenceState.from_pidf(body)
    except PayloadError as exc:
        log.warning("unreadable PIDF in a presence NOTIFY: %s", exc)
        return None


def _backoff(failures: int, interval: float, maximum: float) -> float:
    return min(interval * 2 ** max(failures - 1, 0), max(maximum, interval))


class _Timer:
    """At most one pending call on the Engine thread (the Engine's timers go when it stops)."""

    def __init__(self) -> None:
        self._id: int | None = None

    def start(self, delay: float, callback: Callable[[], None]) -> bool:
        self.cancel()
        core = Engine()._core
        if core is None or not core.running:
            return False
        try:
            self._id = core.call_later(delay, callback)
        except Exception:  # the Engine is stopping
            return False
        return True

    def cancel(self) -> None:
        timer, self._id = self._id, None
        core = Engine()._core
        if timer is not None and core is not None:
            try:
                core.cancel_timer(timer)
            except Exception:
                pass


# helpers dropped by their owner while a removing PUBLISH or an unSUBSCRIBE is under way: the
# NotificationCenter holds observers weakly, so they are kept here until that is answered
_finishing: set[Any] = set()
_finishing_changed = threading.Condition(threading.Lock())


def _keep_alive(helper: Any, keep: bool) -> None:
    with _finishing_changed:
        if keep:
            _finishing.add(helper)
        else:
            _finishing.discard(helper)
        _finishing_changed.notify_all()


def _post(name: str, sender: Any, **data: Any) -> None:
    NotificationCenter().post_notification(name, sender=sender, data=NotificationData(**data))


@dataclass(frozen=True)
class WatcherEntry:
    """One watcher of our presence, as the watcher-info document lists it."""

    uri: str
    status: str            # pending, active, waiting, terminated
    event: str             # subscribe, approved, deactivated, timeout, rejected, ...
    display_name: str | None = None
    id: str | None = None


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
        self._timer = _Timer()

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
            _post("SIPAccountPresenceDidFail", self.sender, state=state, code=0, reason=str(exc),
                  will_retry_in=None)

    def _end(self, publication: Publication) -> None:
        with self._lock:
            self._ending.append(publication)
        _keep_alive(self, True)
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
            _keep_alive(self, False)
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
                _post("SIPAccountPresenceDidUnpublish", self.sender, code=data.code, reason=data.reason)
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
                    delay = _backoff(self._failures, self.retry_interval, self.max_retry_interval)
                    if not self._timer.start(delay, self._retry):
                        delay = None
                post = ("SIPAccountPresenceDidFail", dict(
                    state=state, code=data.code, reason=data.reason, will_retry_in=delay))
            else:
                return
        _post(post[0], self.sender, **post[1])


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
        self._timer = _Timer()

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
        _keep_alive(self, True)
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
            _post("SIPAccountPresenceSubscriptionDidFail", self.sender, uri=self.name, event=self.event,
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
            _keep_alive(self, False)
        _post("SIPAccountPresenceSubscriptionDidEnd", self.sender, uri=self.name, event=self.event,
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
                        delay = _backoff(self._failures, self.retry_interval, self.max_retry_interval)
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
            _post(post[0], self.sender, **post[1])


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
                self.from_uri, _uri_of(address), self.credentials, self.route, duration=self.duration,
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
        _post("SIPAccountGotPresenceState", self.sender, uri=subscriber.name, state=state, previous=previous)


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
            _post("SIPAccountGotWatcherInfo", self.sender, watchers=watchers,
                  pending=tuple(w for w in watchers if w.status == "pending"))


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
            return not any(helper.sender is self.account for helper in _finishing)

        with _finishing_changed:
            return _finishing_changed.wait_for(done, max(0.0, deadline - time.monotonic()))

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
