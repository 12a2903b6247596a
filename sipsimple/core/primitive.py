"""What the SIP primitives share: the Engine's core, a handle, notifications."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

from sipsimple.core.errors import SIPCoreEngineError, SIPCoreInvalidStateError
from sipsimple.notification import NotificationCenter, NotificationData

__all__ = ["Primitive", "route_header", "now", "checked_content_type", "checked_event", "checked_duration",
           "check_credentials_and_route"]


def now() -> datetime:
    return datetime.now(UTC)


def checked_content_type(content_type: str, forbidden: str = "\r\n\0 ") -> str:
    """``content_type`` if it is a type/subtype that cannot break the header it goes in."""
    if not isinstance(content_type, str) or "/" not in content_type or any(ch in content_type for ch in forbidden):
        raise ValueError(f"invalid content type {content_type!r}")
    return content_type


def checked_event(event: str) -> str:
    """``event`` if it is a bare event package name (RFC 6665), parameters excluded."""
    if not isinstance(event, str) or not event or any(ch in event for ch in "\r\n\0;, "):
        raise ValueError(f"invalid event package {event!r}")
    return event


def checked_duration(duration: int) -> int:
    if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
        raise ValueError(f"duration must be a positive number of seconds, not {duration!r}")
    return duration


def check_credentials_and_route(credentials: Any, route: Any) -> None:
    from sipsimple.core.uri import Credentials, Route

    if credentials is not None and not isinstance(credentials, Credentials):
        raise TypeError("credentials must be a Credentials object")
    if route is not None and not isinstance(route, Route):
        raise TypeError("route must be a Route object")


def route_header(route) -> str | None:
    """The initial Route set for a request sent through an outbound proxy."""
    return None if route is None else f"<{route.uri}>"


class Primitive:
    """Base of Registration, Message and Invitation.

    Events from the stack arrive in ``_handle_event`` on the Engine thread;
    methods may be called from any thread, so state lives under ``_lock``.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._handle = None

    @staticmethod
    def _core():
        from sipsimple.core.engine import Engine

        core = Engine()._core
        if core is None or not core.running:
            raise SIPCoreEngineError("the Engine is not running: call Engine().start() first")
        return core

    def _post(self, name: str, **data: Any) -> None:
        data.setdefault("timestamp", now())
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))

    def _check_state(self, allowed: tuple[str, ...], action: str) -> None:
        state = self.state  # type: ignore[attr-defined]
        if state not in allowed:
            raise SIPCoreInvalidStateError(
                f"cannot {action} {type(self).__name__} in state {state!r} (allowed: {', '.join(allowed)})"
            )

    def _release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            from sipsimple.core.engine import Engine

            core = Engine()._core
            if core is not None:
                core.release(handle)

    def _handle_event(self, event) -> None:  # pragma: no cover - every primitive overrides it
        raise NotImplementedError
