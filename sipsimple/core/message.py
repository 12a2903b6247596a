"""Message: an out-of-dialog MESSAGE request (RFC 3428, "pager mode").

Notifications (sender: the Message):

- ``SCMessageDidSucceed``: a 2xx came back; data: ``code``, ``reason``.
- ``SCMessageDidFail``: a failure response, a timeout (408) or the engine
  stopping (0); data: ``code``, ``reason``.

Incoming MESSAGE requests are answered 200 by the stack and posted by the
Engine as ``SCEngineGotMessage``.
"""

from __future__ import annotations

from sipsimple.core.headers import FromHeader, ToHeader
from sipsimple.core.primitive import (
    Primitive,
    check_credentials_and_route,
    checked_content_type,
    route_header,
)
from sipsimple.core.uri import SIPURI, Credentials, Route

__all__ = ["Message"]


class Message(Primitive):
    """One MESSAGE from ``from_header`` to ``to_header`` (SIPURIs are accepted too)."""

    def __init__(
        self,
        from_header: FromHeader | SIPURI,
        to_header: ToHeader | SIPURI,
        body: str | bytes,
        content_type: str = "text/plain",
        credentials: Credentials | None = None,
        route: Route | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.from_header = from_header if isinstance(from_header, FromHeader) else FromHeader(from_header)
        self.to_header = to_header if isinstance(to_header, ToHeader) else ToHeader(to_header)
        if not isinstance(body, (str, bytes)):
            raise TypeError("the body of a MESSAGE must be str or bytes")
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type = checked_content_type(content_type)
        check_credentials_and_route(credentials, route)
        self.credentials = credentials
        self.route = route
        self.extra_headers = dict(extra_headers or {})
        for name, value in self.extra_headers.items():
            if any(ch in name + value for ch in "\r\n\0") or ":" in name:
                raise ValueError(f"invalid extra header {name!r}")
        self.state = "new"
        self._timer: int | None = None

    def send(self, timeout: float | None = None) -> None:
        """Send it; ``timeout`` (seconds) gives up earlier than the stack's 32 s."""
        with self._lock:
            self._check_state(("new",), "send")
            core = self._core()
            creds = self.credentials
            self._handle = core.create_handle(
                self, creds.username if creds else None, creds.password if creds else None,
                [("to", str(self.to_header)), ("from", str(self.from_header)),
                 ("initial_route", route_header(self.route))],
            )
            headers = "".join(f"{k}: {v}\r\n" for k, v in self.extra_headers.items()) or None
            core.command(self._handle, "message", [
                ("content_type", self.content_type), ("payload", self.body), ("header", headers),
            ])
            self.state = "sending"
            if timeout is not None:
                self._timer = core.call_later(timeout, self._timed_out)

    def _timed_out(self) -> None:
        with self._lock:
            self._timer = None
            if self.state == "sending":
                self._finish(408, "Request Timeout")

    def _finish(self, code: int, reason: str) -> None:
        self.state = "sent" if 200 <= code < 300 else "failed"
        if self._timer is not None:
            try:
                self._core().cancel_timer(self._timer)
            except Exception:
                pass
            self._timer = None
        self._release()
        name = "SCMessageDidSucceed" if self.state == "sent" else "SCMessageDidFail"
        self._post(name, code=code, reason=reason)

    def _engine_stopped(self) -> None:
        with self._lock:
            self._timer = None
            self._handle = None
            if self.state == "sending":
                self._finish(0, "Engine stopped")

    def _handle_event(self, event) -> None:
        with self._lock:
            if event.name == "nua_r_message" and event.status >= 200 and not event.auth_retry \
                    and self.state == "sending":
                self._finish(event.status, event.reason or "")
