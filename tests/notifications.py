"""Recording notifications in tests and waiting for them without sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sipsimple.notification import Notification, NotificationCenter


class NotificationRecorder:
    """Records every notification (optionally only some names); ``wait`` blocks until one matches."""

    def __init__(self, *names: str, sender: Any = None) -> None:
        self.names = set(names)
        self.notifications: list[Notification] = []
        self._cond = threading.Condition()
        self._sender = sender
        NotificationCenter().add_observer(self, sender=sender)

    def __call__(self, notification: Notification) -> None:
        if self.names and notification.name not in self.names:
            return
        with self._cond:
            self.notifications.append(notification)
            self._cond.notify_all()

    def close(self) -> None:
        NotificationCenter().discard_observer(self, sender=self._sender)

    def __enter__(self) -> NotificationRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def of(self, name: str, sender: Any = None) -> list[Notification]:
        with self._cond:
            return [n for n in self.notifications if n.name == name and (sender is None or n.sender is sender)]

    def wait(self, name: str, sender: Any = None, predicate: Callable[[Notification], bool] | None = None,
             timeout: float = 10.0, count: int = 1) -> Notification:
        """The ``count``-th notification ``name`` (from ``sender``, matching ``predicate``)."""
        def matching() -> list[Notification]:
            return [n for n in self.notifications if n.name == name and (sender is None or n.sender is sender)
                    and (predicate is None or predicate(n))]

        with self._cond:
            if not self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                seen = [n.name for n in self.notifications][-20:]
                # what went wrong, if something said so: the data of the last failures
                failures = [f"{n.name}: {n.data}" for n in self.notifications
                            if "Fail" in n.name or "NotDeliver" in n.name][-3:]
                raise AssertionError(f"no {name} within {timeout} s (last seen: {seen}; failures: {failures})")
            return matching()[count - 1]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` holds, re-checked at each notification.

        Also re-checked every 50 ms: state that other threads set after their last
        notification (a Session handling an answer) would otherwise go unseen.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"condition not met within {timeout} s")
                self._cond.wait(min(remaining, 0.05))


def reinvite_answered(recorder, session, count):
    """Wait until the session has handled the answer to its ``count``-th re-INVITE.

    The answer is posted on the Engine thread and handled on the middleware loop:
    once it is recorded, draining the loop makes sure the session has seen it.
    """
    from sipsimple.middleware import MiddlewareLoop

    recorder.wait("SCInvitationChangedState", sender=session._invitation,
                  predicate=lambda n: n.data.prev_sub_state == "sending_proposal", count=count)
    MiddlewareLoop().run_sync(lambda: None)
