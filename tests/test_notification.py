"""Tests for sipsimple.notification: the python-application style notification center."""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sipsimple.notification import (
    IObserver,
    Notification,
    NotificationCenter,
    NotificationData,
    implementer,
)

_counter = itertools.count()


@pytest.fixture
def name() -> str:
    """A notification name no other test uses, so the shared center cannot mix tests up."""
    return f"TestNotification{next(_counter)}"


Observe = Callable[..., None]


@pytest.fixture
def observe() -> Iterator[Observe]:
    """add_observer that undoes itself after the test (the center is a process-wide singleton)."""
    center = NotificationCenter()
    added: list[tuple[Any, Any, Any]] = []

    def add(observer: Any, name: str | None = None, sender: Any = None) -> None:
        center.add_observer(observer, name=name, sender=sender)
        added.append((observer, name, sender))

    yield add
    for observer, name, sender in added:
        center.discard_observer(observer, name=name, sender=sender)


class Recorder:
    """Callable observer that keeps what it received, optionally only names with a prefix."""

    def __init__(self, prefix: str = "", log: list[tuple[str, Notification]] | None = None, tag: str = "") -> None:
        self.prefix = prefix
        self.received: list[Notification] = []
        self.log = log
        self.tag = tag

    def __call__(self, notification: Notification) -> None:
        if not notification.name.startswith(self.prefix):
            return
        self.received.append(notification)
        if self.log is not None:
            self.log.append((self.tag, notification))

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.received]


@implementer(IObserver)
class InterfaceObserver:
    def __init__(self) -> None:
        self.received: list[Notification] = []

    def handle_notification(self, notification: Notification) -> None:
        self.received.append(notification)


class Sender:
    """A sender that compares equal to every other Sender and cannot be hashed."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sender)

    __hash__ = None  # type: ignore[assignment]


def post(name: str, sender: Any = None, data: Any = None) -> None:
    NotificationCenter().post_notification(name, sender=sender, data=data)


# data objects


def test_center_is_a_singleton() -> None:
    assert NotificationCenter() is NotificationCenter()


def test_notification_data_repr_equality_and_lookup() -> None:
    data = NotificationData(code=200, reason="OK")
    assert repr(data) == "NotificationData(code=200, reason='OK')"
    assert data.code == 200 and data.reason == "OK"
    assert data == NotificationData(code=200, reason="OK")
    assert data != NotificationData(code=486, reason="Busy Here")
    assert "code" in data and "headers" not in data
    assert data.get("reason") == "OK" and data.get("headers", {}) == {}
    assert repr(NotificationData()) == "NotificationData()"


def test_notification_repr_shows_name_sender_and_data() -> None:
    n = Notification("SIPSessionDidFail", sender="session-1", data=NotificationData(code=486))
    assert n.name == "SIPSessionDidFail" and n.sender == "session-1" and n.data == NotificationData(code=486)
    assert repr(n) == "Notification('SIPSessionDidFail', sender='session-1', data=NotificationData(code=486))"


# kinds of observers


def test_interface_observer_gets_name_sender_and_data(observe: Observe, name: str) -> None:
    observer = InterfaceObserver()
    sender = object()
    observe(observer, name=name)
    data = NotificationData(code=200)
    post(name, sender, data)
    assert len(observer.received) == 1
    received = observer.received[0]
    assert received.name == name and received.sender is sender and received.data is data


def test_plain_callable_and_bound_method_observers(observe: Observe, name: str) -> None:
    calls: list[str] = []

    def function(notification: Notification) -> None:
        calls.append("function")

    class Holder:
        def on(self, notification: Notification) -> None:
            calls.append("method")

    holder = Holder()
    observe(function, name=name)
    observe(holder.on, name=name)
    post(name)
    assert calls == ["function", "method"]


def test_object_with_undeclared_handle_notification_is_accepted(observe: Observe, name: str) -> None:
    class Ported:
        def __init__(self) -> None:
            self.names: list[str] = []

        def handle_notification(self, notification: Notification) -> None:
            self.names.append(notification.name)

    observer = Ported()
    observe(observer, name=name)
    post(name)
    assert observer.names == [name]


def test_observer_that_is_neither_callable_nor_observer_is_refused() -> None:
    with pytest.raises(TypeError):
        NotificationCenter().add_observer(object(), name="Whatever")


def test_builtin_method_observer_is_held_and_removable(name: str) -> None:
    center = NotificationCenter()
    received: list[Notification] = []
    center.add_observer(received.append, name=name)
    gc.collect()
    post(name)
    # a fresh `received.append` object names the same registration
    center.remove_observer(received.append, name=name)
    post(name)
    assert [n.name for n in received] == [name]


def test_weakrefable_builtin_method_observer_dies_with_its_object(name: str) -> None:
    center = NotificationCenter()
    received: deque[Notification] = deque()
    center.add_observer(received.append, name=name)
    post(name)
    assert [n.name for n in received] == [name]
    probe = weakref.ref(received)
    del received
    gc.collect()
    assert probe() is None
    post(name)
    assert name not in center._observers


def test_post_without_a_name_is_an_error() -> None:
    with pytest.raises(ValueError):
        NotificationCenter().post_notification(None)  # type: ignore[arg-type]


def test_posting_with_no_observers_does_nothing(name: str) -> None:
    post(name, sender=object(), data=NotificationData(x=1))


# filters


def test_name_filter(observe: Observe, name: str) -> None:
    recorder = Recorder()
    observe(recorder, name=name)
    post(name + "Other")
    post(name)
    assert recorder.names == [name]


def test_sender_filter_matches_by_identity_not_equality(observe: Observe, name: str) -> None:
    mine, other = Sender(), Sender()
    assert mine == other
    recorder = Recorder()
    observe(recorder, sender=mine)
    post(name, sender=other)
    post(name, sender=mine)
    post(name)
    assert [(n.name, n.sender) for n in recorder.received] == [(name, mine)]


def test_name_and_sender_filter_together(observe: Observe, name: str) -> None:
    a, b = object(), object()
    recorder = Recorder()
    observe(recorder, name=name, sender=a)
    post(name, sender=b)
    post(name + "X", sender=a)
    post(name, sender=a)
    assert [(n.name, n.sender) for n in recorder.received] == [(name, a)]


def test_any_name_any_sender_sees_everything(observe: Observe, name: str) -> None:
    recorder = Recorder(prefix=name)
    observe(recorder)
    sender = object()
    post(name + "A")
    post(name + "B", sender=sender)
    assert recorder.names == [name + "A", name + "B"]
    assert recorder.received[1].sender is sender


@pytest.mark.parametrize("sender", [7, "session-7", (1, 2), 3.5], ids=repr)
def test_senders_that_cannot_be_weakly_referenced(observe: Observe, name: str, sender: Any) -> None:
    with pytest.raises(TypeError):
        weakref.ref(sender)
    recorder = Recorder()
    observe(recorder, name=name, sender=sender)
    post(name, sender=sender)
    post(name, sender=object())
    assert [n.sender for n in recorder.received] == [sender]


# weak references


def test_center_does_not_keep_observers_alive(name: str) -> None:
    center = NotificationCenter()
    observer = InterfaceObserver()
    probe = weakref.ref(observer)
    center.add_observer(observer, name=name)
    del observer
    gc.collect()
    assert probe() is None
    post(name)  # must not fail on the dead registration
    assert name not in center._observers


def test_dead_bound_method_observer_is_dropped(name: str) -> None:
    received: list[str] = []

    class Holder:
        def on(self, notification: Notification) -> None:
            received.append(notification.name)

    holder = Holder()
    center = NotificationCenter()
    center.add_observer(holder.on, name=name)
    post(name)
    del holder
    gc.collect()
    post(name)
    assert received == [name]


def test_temporary_callable_is_dropped_at_once(name: str) -> None:
    received: list[Notification] = []
    NotificationCenter().add_observer(lambda n: received.append(n), name=name)
    gc.collect()
    post(name)
    assert received == []


def test_registrations_for_a_dead_sender_go_with_it(name: str) -> None:
    center = NotificationCenter()
    recorder = Recorder()

    class Thing:
        pass

    sender = Thing()
    probe = weakref.ref(sender)
    center.add_observer(recorder, name=name, sender=sender)
    old_id = id(sender)
    del sender
    gc.collect()
    assert probe() is None
    # try to get a new object at the dead sender's address: it must not inherit the registration
    keep = []
    for _ in range(10000):
        candidate = Thing()
        if id(candidate) == old_id:
            post(name, sender=candidate)
            break
        keep.append(candidate)
    post(name, sender=Thing())
    assert recorder.received == []
    assert name not in center._observers
    center.discard_observer(recorder, name=name)


# idempotence and removal


def test_adding_twice_delivers_once(observe: Observe, name: str) -> None:
    recorder = Recorder()
    observe(recorder, name=name)
    observe(recorder, name=name)
    post(name)
    assert recorder.names == [name]


def test_same_bound_method_added_twice_delivers_once(observe: Observe, name: str) -> None:
    received: list[str] = []

    class Holder:
        def on(self, notification: Notification) -> None:
            received.append(notification.name)

    holder = Holder()
    observe(holder.on, name=name)
    observe(holder.on, name=name)  # a new bound-method object, same registration
    post(name)
    assert received == [name]


def test_same_observer_under_two_filters_gets_both(observe: Observe, name: str) -> None:
    recorder = Recorder(prefix=name)
    sender = object()
    observe(recorder, name=name)
    observe(recorder, name=name, sender=sender)
    post(name, sender=sender)
    assert recorder.names == [name, name]


def test_remove_observer(name: str) -> None:
    center = NotificationCenter()
    recorder = Recorder()
    center.add_observer(recorder, name=name)
    post(name)
    center.remove_observer(recorder, name=name)
    post(name)
    assert recorder.names == [name]
    assert name not in center._observers


def test_remove_needs_the_same_name_and_sender(name: str) -> None:
    center = NotificationCenter()
    recorder = Recorder()
    sender = object()
    center.add_observer(recorder, name=name, sender=sender)
    with pytest.raises(KeyError):
        center.remove_observer(recorder, name=name)
    with pytest.raises(KeyError):
        center.remove_observer(recorder, name=name, sender=object())
    post(name, sender=sender)
    center.remove_observer(recorder, name=name, sender=sender)
    with pytest.raises(KeyError):
        center.remove_observer(recorder, name=name, sender=sender)
    assert recorder.names == [name]


def test_discard_observer_ignores_unknown(name: str) -> None:
    center = NotificationCenter()
    recorder = Recorder()
    center.discard_observer(recorder, name=name)
    center.add_observer(recorder, name=name)
    center.discard_observer(recorder, name=name)
    center.discard_observer(recorder, name=name)
    post(name)
    assert recorder.received == []


def test_remove_bound_method_with_a_fresh_bound_method(name: str) -> None:
    received: list[str] = []

    class Holder:
        def on(self, notification: Notification) -> None:
            received.append(notification.name)

    holder = Holder()
    center = NotificationCenter()
    center.add_observer(holder.on, name=name)
    center.remove_observer(holder.on, name=name)
    post(name)
    assert received == []


# delivery order


def test_delivery_order_groups_then_registration_order(observe: Observe, name: str) -> None:
    log: list[tuple[str, Notification]] = []
    sender = object()

    def rec(tag: str) -> Recorder:
        return Recorder(prefix=name, log=log, tag=tag)

    # registered deliberately out of group order, two per group
    observers = [
        (rec("any-any-1"), None, None),
        (rec("any-sender-1"), None, sender),
        (rec("name-any-1"), name, None),
        (rec("name-sender-1"), name, sender),
        (rec("any-any-2"), None, None),
        (rec("name-sender-2"), name, sender),
        (rec("name-any-2"), name, None),
        (rec("any-sender-2"), None, sender),
    ]
    for observer, obs_name, obs_sender in observers:
        observe(observer, name=obs_name, sender=obs_sender)
    post(name, sender=sender)
    assert [tag for tag, _ in log] == [
        "name-sender-1", "name-sender-2",
        "name-any-1", "name-any-2",
        "any-sender-1", "any-sender-2",
        "any-any-1", "any-any-2",
    ]
    # all of them saw the very same notification object
    assert len({id(n) for _, n in log}) == 1


def test_readding_keeps_the_original_position(observe: Observe, name: str) -> None:
    log: list[tuple[str, Notification]] = []
    first, second = Recorder(log=log, tag="first"), Recorder(log=log, tag="second")
    observe(first, name=name)
    observe(second, name=name)
    observe(first, name=name)
    post(name)
    assert [tag for tag, _ in log] == ["first", "second"]


def test_observers_run_synchronously_in_the_posting_thread(observe: Observe, name: str) -> None:
    threads: list[int | None] = []

    def where(notification: Notification) -> None:
        threads.append(threading.get_ident())

    observe(where, name=name)
    result: list[int] = []

    def poster() -> None:
        post(name)
        # delivery finished before post_notification returned
        result.append(len(threads))

    thread = threading.Thread(target=poster)
    thread.start()
    thread.join()
    assert threads == [thread.ident] and result == [1]


# failures and re-entrancy


def test_failing_observer_is_logged_and_others_still_run(
    observe: Observe, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(notification: Notification) -> None:
        raise RuntimeError("observer bug")

    after = Recorder()
    observe(broken, name=name)
    observe(after, name=name)
    with caplog.at_level(logging.ERROR, logger="sipsimple.notification"):
        post(name)
    assert after.names == [name]
    records = [r for r in caplog.records if r.name == "sipsimple.notification"]
    assert len(records) == 1
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], RuntimeError)
    assert name in records[0].getMessage()


def test_observer_removed_during_delivery_is_not_called(observe: Observe, name: str) -> None:
    center = NotificationCenter()
    victim = Recorder()

    def remover(notification: Notification) -> None:
        center.remove_observer(victim, name=name)

    observe(remover, name=name)
    observe(victim, name=name)
    post(name)
    post(name)
    assert victim.received == []


def test_observer_removing_itself_gets_that_notification_only(name: str) -> None:
    center = NotificationCenter()
    calls: list[str] = []

    def once(notification: Notification) -> None:
        calls.append(notification.name)
        center.remove_observer(once, name=name)

    center.add_observer(once, name=name)
    post(name)
    post(name)
    assert calls == [name]


def test_observer_added_during_delivery_hears_the_next_one(observe: Observe, name: str) -> None:
    late = Recorder()

    def adder(notification: Notification) -> None:
        observe(late, name=name)

    observe(adder, name=name)
    post(name, data=1)
    assert late.received == []
    post(name, data=2)
    assert [n.data for n in late.received] == [2]


def test_nested_post_is_delivered_before_the_outer_one_continues(observe: Observe, name: str) -> None:
    log: list[tuple[str, Notification]] = []
    inner_name = name + "Inner"

    def first(notification: Notification) -> None:
        log.append(("first", notification))
        if notification.name == name:
            post(inner_name)

    second = Recorder(prefix=name, log=log, tag="second")
    observe(first)
    observe(second)
    post(name)
    assert [(tag, n.name) for tag, n in log if n.name.startswith(name)] == [
        ("first", name),
        ("first", inner_name),
        ("second", inner_name),
        ("second", name),
    ]


# threads


def test_concurrent_posting_delivers_everything(observe: Observe, name: str) -> None:
    lock = threading.Lock()
    seen: list[tuple[int, int]] = []

    def count(notification: Notification) -> None:
        with lock:
            seen.append(notification.data)

    observe(count, name=name)
    threads_n, posts_n = 4, 2000
    start = threading.Barrier(threads_n)

    def poster(index: int) -> None:
        start.wait()
        for i in range(posts_n):
            post(name, data=(index, i))

    threads = [threading.Thread(target=poster, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [(t, i) for t in range(threads_n) for i in range(posts_n)]


def test_add_and_remove_while_another_thread_posts(name: str) -> None:
    center = NotificationCenter()
    steady = Recorder()
    center.add_observer(steady, name=name)
    stop = threading.Event()
    errors: list[BaseException] = []
    posted = 0

    def poster() -> None:
        nonlocal posted
        try:
            while not stop.is_set():
                post(name)
                posted += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=poster)
    thread.start()
    try:
        churn = [Recorder() for _ in range(20)]
        for _ in range(200):
            for observer in churn:
                center.add_observer(observer, name=name)
            for observer in churn:
                center.remove_observer(observer, name=name)
            # short-lived observers die without being removed
            for _ in range(5):
                center.add_observer(Recorder(), name=name)
    finally:
        stop.set()
        thread.join()
    center.remove_observer(steady, name=name)
    assert errors == []
    assert posted > 0 and len(steady.received) == posted
    gc.collect()
    post(name)  # gives the center the chance to clear away the dead ones
    assert name not in center._observers


def test_many_dead_observers_do_not_accumulate(name: str) -> None:
    center = NotificationCenter()
    for _ in range(1000):
        center.add_observer(InterfaceObserver(), name=name)
    gc.collect()
    post(name)
    assert name not in center._observers
