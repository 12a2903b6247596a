"""What the presence helpers share: back-off, their retry timer, keeping them alive while they finish."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sipsimple.configuration.datatypes import SIPAddress
from sipsimple.core import SIPURI, Engine
from sipsimple.notification import NotificationCenter, NotificationData

__all__ = ["address_of", "RetryTimer", "backoff", "keep_alive", "notify", "uri_of", "finishing", "finishing_changed"]


def address_of(uri: str | SIPURI) -> str:
    """``'sip:Bob@Example.com'``, ``'bob@example.com'`` or a SIPURI -> ``'Bob@example.com'``."""
    if isinstance(uri, SIPURI):
        if not uri.user:
            raise ValueError(f"{uri} has no user part")
        uri = f"{uri.user}@{uri.host}"
    return SIPAddress().validate(uri)


def uri_of(address: str) -> SIPURI:
    user, _, domain = address.rpartition("@")
    return SIPURI(domain, user=user)


def backoff(failures: int, interval: float, maximum: float) -> float:
    return min(interval * 2 ** max(failures - 1, 0), max(maximum, interval))


class RetryTimer:
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
finishing: set[Any] = set()
finishing_changed = threading.Condition(threading.Lock())


def keep_alive(helper: Any, keep: bool) -> None:
    with finishing_changed:
        if keep:
            finishing.add(helper)
        else:
            finishing.discard(helper)
        finishing_changed.notify_all()


def notify(name: str, sender: Any, **data: Any) -> None:
    NotificationCenter().post_notification(name, sender=sender, data=NotificationData(**data))
