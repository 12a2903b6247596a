"""Notifications: a small publish/subscribe hub with python-application's API.

Code written for ``application.notification`` reads the same here::

    from sipsimple.notification import IObserver, NotificationCenter, NotificationData, implementer

    @implementer(IObserver)
    class Watcher:
        def handle_notification(self, notification):
            print(notification.name, notification.data)

    watcher = Watcher()
    NotificationCenter().add_observer(watcher, name='SIPSessionDidStart')
    NotificationCenter().post_notification('SIPSessionDidStart', sender=session,
                                           data=NotificationData(streams=[...]))

Observers
    An observer either provides :class:`IObserver` (its ``handle_notification``
    is called) or is a plain callable taking the notification. An object that
    has a ``handle_notification`` method but does not declare the interface is
    accepted too, for code being ported. The center holds observers by weak
    reference (bound methods through :class:`weakref.WeakMethod`), so
    registering does not keep an observer alive and dead observers are dropped
    silently. A lambda or other temporary callable therefore disappears at
    once: keep a reference to it. Callables that cannot be weakly referenced
    (such as ``append`` of a list, as lists cannot be weakly referenced) are
    held strongly and stay until removed.

Filters
    ``name=None`` and ``sender=None`` in :meth:`NotificationCenter.add_observer`
    mean "any". Senders are matched by identity, never by equality, so they
    need not be hashable. A sender that can be weakly referenced is not kept
    alive by registrations made for it; when it dies those registrations go
    with it. Other senders (ints, strings, tuples...) are held strongly while
    registrations for them exist. Adding the same observer twice for the same
    (name, sender) is a no-op.

Delivery
    :meth:`NotificationCenter.post_notification` runs observers synchronously,
    in the posting thread, before it returns. The order is: observers
    registered for exactly (name, sender), then for (name, any sender), then
    (any name, sender), then (any name, any sender); within each group in the
    order they were registered. An observer that raises is logged on the
    ``sipsimple.notification`` logger and delivery continues with the next.

Threads and re-entrancy
    Any thread may post, add or remove at any time, including an observer
    while it is handling a notification. An observer removed during a
    delivery gets nothing more, not even the rest of the delivery in
    progress; an observer added during a delivery first hears the next
    notification posted. Posting from inside an observer delivers the nested
    notification completely before the outer delivery resumes.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from types import BuiltinMethodType, MethodType, ModuleType
from typing import Any

from zope.interface import Interface, implementer

__all__ = [
    "IObserver",
    "Notification",
    "NotificationCenter",
    "NotificationData",
    "implementer",
]

log = logging.getLogger("sipsimple.notification")


class IObserver(Interface):
    """Something that wants to hear about notifications."""

    def handle_notification(notification):  # noqa: N805 - zope interfaces omit self
        """Called with a :class:`Notification` each time one it observes is posted."""


class NotificationData:
    """A plain bag of attributes carried by a notification.

    >>> NotificationData(code=200, reason='OK')
    NotificationData(code=200, reason='OK')
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        items = ", ".join(f"{key}={value!r}" for key, value in self.__dict__.items())
        return f"{type(self).__name__}({items})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NotificationData):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __contains__(self, name: str) -> bool:
        return hasattr(self, name)

    def get(self, name: str, default: Any = None) -> Any:
        """The attribute *name*, or *default* when the data has none."""
        # getattr, not __dict__: subclasses may compute attributes when asked (properties)
        return getattr(self, name, default)


class Notification:
    """One posted notification: what happened (*name*), who says so (*sender*), details (*data*)."""

    __slots__ = ("name", "sender", "data")

    def __init__(self, name: str, sender: Any = None, data: Any = None) -> None:
        self.name = name
        self.sender = sender
        self.data = data

    def __repr__(self) -> str:
        return f"Notification({self.name!r}, sender={self.sender!r}, data={self.data!r})"


class _StrongRef:
    """Looks like a weak reference but holds its object; for things weakref cannot point at."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __call__(self) -> Any:
        return self.obj


class _WeakBuiltinMethod:
    """Weak reference to a C method bound to an object (``some_deque.append``), which is a new object each access."""

    __slots__ = ("obj", "name")

    def __init__(self, method: BuiltinMethodType, callback: Callable[[Any], None]) -> None:
        self.obj = weakref.ref(method.__self__, callback)
        self.name = method.__name__

    def __call__(self) -> Any:
        obj = self.obj()
        return None if obj is None else getattr(obj, self.name)


class _Entry:
    """One registration of an observer under one (name, sender) key."""

    __slots__ = ("ref", "via_method", "active", "name_key", "sender_key", "__weakref__")

    def __init__(self, observer: Any, name_key: str | None, sender_key: int | None,
                 graveyard: deque[Any]) -> None:
        if IObserver.providedBy(observer):
            self.via_method = True
        elif callable(observer):
            self.via_method = False
        elif callable(getattr(observer, "handle_notification", None)):
            self.via_method = True
        else:
            raise TypeError(f"observer must provide IObserver or be callable, not {observer!r}")
        self.name_key = name_key
        self.sender_key = sender_key
        self.active = True
        # the callback only queues: it may fire in any thread, even while the lock is held
        self_ref = weakref.ref(self)

        def died(_ref: Any, self_ref: Any = self_ref, graveyard: deque[Any] = graveyard) -> None:
            entry = self_ref()
            if entry is not None:
                graveyard.append(entry)

        self.ref: Callable[[], Any]
        try:
            if isinstance(observer, MethodType):
                self.ref = weakref.WeakMethod(observer, died)
            elif isinstance(observer, BuiltinMethodType) and not isinstance(
                observer.__self__, (ModuleType, type(None))
            ):
                self.ref = _WeakBuiltinMethod(observer, died)
            else:
                self.ref = weakref.ref(observer, died)
        except TypeError:
            self.ref = _StrongRef(observer)

    def refers_to(self, observer: Any) -> bool:
        target = self.ref()
        if target is observer:
            return True
        # bound methods are new objects on each attribute access; equal means same self and function
        return isinstance(observer, (MethodType, BuiltinMethodType)) and target == observer


class _Bucket:
    """The observers of one (name, sender) key; *entries* is replaced, never mutated, so readers need no lock."""

    __slots__ = ("sender", "entries", "__weakref__")

    def __init__(self, sender: Any, name_key: str | None, graveyard: deque[Any]) -> None:
        self.entries: tuple[_Entry, ...] = ()
        self.sender: Callable[[], Any] | None
        if sender is None:
            self.sender = None
            return
        self_ref = weakref.ref(self)

        def died(_ref: Any, self_ref: Any = self_ref, graveyard: deque[Any] = graveyard,
                 key: tuple[str | None, int] = (name_key, id(sender))) -> None:
            bucket = self_ref()
            if bucket is not None:
                graveyard.append((key, bucket))

        try:
            self.sender = weakref.ref(sender, died)
        except TypeError:
            self.sender = _StrongRef(sender)


class NotificationCenter:
    """The process-wide notification hub; ``NotificationCenter()`` always returns the same object."""

    _instance: NotificationCenter | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> NotificationCenter:
        instance = cls._instance
        if instance is None:
            with cls._instance_lock:
                instance = cls._instance
                if instance is None:
                    instance = super().__new__(cls)
                    instance._setup()
                    cls._instance = instance
        return instance

    def _setup(self) -> None:
        # name (None = any) -> sender key (id(sender), None = any) -> bucket.
        # Posting only reads these dicts; writers hold the lock.
        self._observers: dict[str | None, dict[int | None, _Bucket]] = {}
        self._lock = threading.RLock()
        # dead observers' entries and dead senders' buckets, cleared away under the lock
        self._graveyard: deque[Any] = deque()

    # registration

    def add_observer(self, observer: Any, name: str | None = None, sender: Any = None) -> None:
        """Deliver notifications called *name* (None: any) from *sender* (None: any) to *observer*."""
        sender_key = None if sender is None else id(sender)
        with self._lock:
            self._bury_dead()
            by_sender = self._observers.get(name)
            if by_sender is None:
                by_sender = self._observers[name] = {}
            bucket = by_sender.get(sender_key)
            if bucket is None or (bucket.sender is not None and bucket.sender() is not sender):
                bucket = by_sender[sender_key] = _Bucket(sender, name, self._graveyard)
            if any(entry.refers_to(observer) for entry in bucket.entries):
                return
            entry = _Entry(observer, name, sender_key, self._graveyard)
            bucket.entries = (*bucket.entries, entry)

    def remove_observer(self, observer: Any, name: str | None = None, sender: Any = None) -> None:
        """Undo :meth:`add_observer` with the same arguments; KeyError if there is no such registration."""
        if not self._remove(observer, name, sender):
            raise KeyError(f"{observer!r} does not observe name={name!r} sender={sender!r}")

    def discard_observer(self, observer: Any, name: str | None = None, sender: Any = None) -> None:
        """Like :meth:`remove_observer`, but say nothing when there is no such registration."""
        self._remove(observer, name, sender)

    def _remove(self, observer: Any, name: str | None, sender: Any) -> bool:
        sender_key = None if sender is None else id(sender)
        with self._lock:
            self._bury_dead()
            bucket = self._observers.get(name, {}).get(sender_key)
            if bucket is None or (bucket.sender is not None and bucket.sender() is not sender):
                return False
            for entry in bucket.entries:
                if entry.refers_to(observer):
                    self._drop_entry(entry)
                    return True
            return False

    def _drop_entry(self, entry: _Entry) -> None:
        """Unregister *entry* (lock held)."""
        entry.active = False
        by_sender = self._observers.get(entry.name_key)
        bucket = None if by_sender is None else by_sender.get(entry.sender_key)
        if bucket is None or entry not in bucket.entries:
            return
        bucket.entries = tuple(e for e in bucket.entries if e is not entry)
        if not bucket.entries:
            self._drop_bucket(entry.name_key, entry.sender_key, bucket)

    def _drop_bucket(self, name_key: str | None, sender_key: int | None, bucket: _Bucket) -> None:
        """Forget *bucket* if it is still the one registered under its key (lock held)."""
        for entry in bucket.entries:
            entry.active = False
        by_sender = self._observers.get(name_key)
        if by_sender is not None and by_sender.get(sender_key) is bucket:
            del by_sender[sender_key]
            if not by_sender:
                del self._observers[name_key]

    def _bury_dead(self) -> None:
        """Clear away registrations whose observer or sender died (lock held)."""
        graveyard = self._graveyard
        while graveyard:
            try:
                item = graveyard.popleft()
            except IndexError:  # another thread emptied it first
                break
            if isinstance(item, _Entry):
                self._drop_entry(item)
            else:
                (name_key, sender_key), bucket = item
                self._drop_bucket(name_key, sender_key, bucket)

    # delivery

    def post_notification(self, name: str, sender: Any = None, data: Any = None) -> None:
        """Deliver a notification to its observers now, in this thread (see the module docstring for the order)."""
        if name is None:
            raise ValueError("a notification needs a name")
        if self._graveyard and self._lock.acquire(blocking=False):
            try:
                self._bury_dead()
            finally:
                self._lock.release()
        observers = self._observers
        named = observers.get(name)
        anyname = observers.get(None)
        if named is None and anyname is None:
            return
        # Collected in the documented order: (name, sender), (name, any), (any, sender), (any, any).
        # Each group is a snapshot: registrations made while delivering wait for the next post.
        groups: list[tuple[_Entry, ...]] = []
        for by_sender in (named, anyname):
            if by_sender is None:
                continue
            if sender is not None:
                bucket = by_sender.get(id(sender))
                # a dead sender's id may already belong to a new object before its bucket is cleared away
                if bucket is not None and bucket.sender() is sender:  # type: ignore[misc]
                    groups.append(bucket.entries)
            bucket = by_sender.get(None)
            if bucket is not None:
                groups.append(bucket.entries)
        if not groups:
            return
        notification = Notification(name, sender, data)
        for entries in groups:
            for entry in entries:
                if not entry.active:
                    continue
                target = entry.ref()
                if target is None:
                    continue
                try:
                    if entry.via_method:
                        target.handle_notification(notification)
                    else:
                        target(notification)
                except Exception:
                    log.exception("observer %r failed to handle %r", target, notification)
