"""IncomingSubscription: the notifier side of a subscription (RFC 6665), for peer-to-peer presence.

Install the handler once: ``Engine().incoming_subscription_handler =
IncomingSubscription.handle_incoming``. For a SUBSCRIBE that starts a new dialog
it makes an IncomingSubscription and posts ``SCIncomingSubscriptionGotSubscribe``
(sender: the new object); the application answers with ``accept(content_type,
body)`` (200 and the first NOTIFY, state ``active``), ``accept_pending()`` (202
and a ``pending`` NOTIFY; ``accept`` later activates it) or ``reject(code)``.
Then ``push_content(body)`` sends a NOTIFY with new content and ``end(reason)``
a ``terminated`` NOTIFY. Sofia-SIP answers the watcher's refreshes, and an
unSUBSCRIBE with 200 and a terminated NOTIFY (``reason=timeout``) of its own.

Requirements on the core: the stack must allow the event package
(``Engine.start(allow_events=("presence",))`` -> ``NUTAG_ALLOW_EVENTS``, else
Sofia-SIP answers 489 Bad Event), and ``nua_respond`` to a SUBSCRIBE needs the
request saved in the nua callback (``nua_save_event`` + ``NUTAG_WITH_SAVED``),
else Sofia-SIP refuses with "Responding to a Non-Existing Request" and the
watcher hears nothing until its transaction times out.

States: ``incoming`` -> ``pending`` / ``active`` -> ``terminated``.

Notifications (sender: the IncomingSubscription):

- ``SCIncomingSubscriptionGotSubscribe``: a new subscription asks to be
  accepted; data: ``from_header``, ``to_header``, ``event``, ``accept`` (list of
  content types the watcher takes), ``expires`` (seconds asked for), ``message``
  (the SIPMessage).
- ``SCIncomingSubscriptionDidEnd``: it is over; data: ``originator``
  (``"local"`` after ``reject``/``end`` or when the engine stopped; ``"remote"``
  when the watcher unsubscribed, let it expire, or a NOTIFY failed), ``code``
  (the response we sent for ``reject``, the failed NOTIFY's status, else 0),
  ``reason``.
"""

from __future__ import annotations

import time

from sipsimple.core.headers import FromHeader, ToHeader
from sipsimple.core.primitive import Primitive, checked_content_type
from sipsimple.core.subscription import headers_text

__all__ = ["IncomingSubscription"]

_DEFAULT_EXPIRES = 600


class IncomingSubscription(Primitive):
    """A SUBSCRIBE we received; made by :meth:`handle_incoming`."""

    #: the longest subscription granted, in seconds
    max_expires: int = 3600

    def __init__(self) -> None:
        super().__init__()
        self.state = "incoming"
        self.from_header: FromHeader | None = None
        self.to_header: ToHeader | None = None
        self.event: str | None = None
        self.accept_types: list[str] = []
        self.expires: int = _DEFAULT_EXPIRES
        self.content_type: str | None = None
        self.body: bytes | None = None
        self._expires_at = 0.0
        self._timer: int | None = None
        self._closing: tuple[str, int, str] | None = None   # DidEnd data once the last NOTIFY is answered

    # ------------------------------------------------------- construction

    @classmethod
    def handle_incoming(cls, event) -> IncomingSubscription | None:
        """The Engine's ``incoming_subscription_handler``: adopt the new dialog and post GotSubscribe."""
        message = event.message
        if message is None:
            return None
        sub = cls()
        sub._core().adopt(event.handle, sub)
        sub._handle = event.handle
        sub.from_header = message.from_header
        sub.to_header = message.to_header
        sub.event = (message.header("event") or "").split(";", 1)[0].strip() or None
        sub.accept_types = [v.split(";", 1)[0].strip().lower() for v in message.headers.get("accept", [])]
        asked = message.expires
        sub.expires = min(asked if asked is not None else _DEFAULT_EXPIRES, cls.max_expires)
        sub._post("SCIncomingSubscriptionGotSubscribe", from_header=sub.from_header, to_header=sub.to_header,
                  event=sub.event, accept=sub.accept_types, expires=asked, message=message)
        return sub

    # ------------------------------------------------------------ public

    def accept(self, content_type: str | None = None, body: str | bytes | None = None,
               extra_headers: dict[str, str] | None = None) -> None:
        """Accept (200) or activate a pending subscription, sending a NOTIFY with ``body``."""
        with self._lock:
            self._check_state(("incoming", "pending"), "accept")
            if self.state == "incoming":
                self._respond(200, extra_headers)
            self.state = "active"
            self._store(content_type, body)
            self._notify("active")

    def accept_pending(self, extra_headers: dict[str, str] | None = None) -> None:
        """Accept as pending (202, and a NOTIFY ``Subscription-State: pending`` without body)."""
        with self._lock:
            self._check_state(("incoming",), "accept_pending")
            self._respond(202, extra_headers)
            self.state = "pending"
            self._notify("pending", with_body=False)

    def reject(self, code: int = 403, reason: str | None = None) -> None:
        """Refuse the SUBSCRIBE with a 3xx-6xx response."""
        with self._lock:
            self._check_state(("incoming",), "reject")
            if not 300 <= code < 700:
                raise ValueError(f"a rejection must be 300-699, not {code}")
            self._core().command(self._handle, "respond", None, status=code, phrase=reason)
            self._finish("local", code, reason or "Rejected")

    def push_content(self, body: str | bytes, content_type: str | None = None) -> None:
        """Send a NOTIFY with new content (kept for later NOTIFYs)."""
        with self._lock:
            self._check_state(("active",), "push content to")
            self._store(content_type, body)
            self._notify("active")

    def end(self, reason: str = "noresource") -> None:
        """Send a terminated NOTIFY (``reason`` as RFC 6665 4.1.3 lists) and forget the subscription."""
        if any(ch in reason for ch in "\r\n\0;, "):
            raise ValueError(f"invalid reason {reason!r}")
        with self._lock:
            if self.state == "terminated" or self._closing is not None:
                return
            if self.state == "incoming":
                self.reject(480, "Temporarily Unavailable")
                return
            self._closing = ("local", 0, reason)
            self._notify(f"terminated;reason={reason}", with_body=self.state == "active")

    # ----------------------------------------------------------- helpers

    def _store(self, content_type: str | None, body: str | bytes | None) -> None:
        if content_type is not None:
            self.content_type = checked_content_type(content_type)
        if body is not None:
            if not isinstance(body, (str, bytes)):
                raise TypeError("the body must be str or bytes")
            self.body = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if self.body is not None and self.content_type is None:
            raise ValueError("a body needs a content type")

    def _respond(self, code: int, extra_headers: dict[str, str] | None) -> None:
        core = self._core()
        core.command(self._handle, "respond", [("expires", str(self.expires)),
                                               ("header", headers_text(extra_headers))], status=code)
        self._set_expiry(self.expires)

    def _notify(self, substate: str, with_body: bool = True) -> None:
        tags: list = [("subscription_state", substate)]
        if with_body and self.body is not None:
            tags += [("content_type", self.content_type), ("payload", self.body)]
        self._core().command(self._handle, "notify", tags)

    def _set_expiry(self, seconds: int) -> None:
        self._expires_at = time.monotonic() + seconds
        self._cancel_timer()
        try:
            # Sofia-SIP sends the terminated NOTIFY itself when the watcher does not refresh
            self._timer = self._core().call_later(seconds + 1.0, self._expired)
        except Exception:
            self._timer = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            try:
                self._core().cancel_timer(self._timer)
            except Exception:
                pass
            self._timer = None

    def _expired(self) -> None:
        with self._lock:
            self._timer = None
            if self.state != "terminated" and time.monotonic() >= self._expires_at:
                self._finish("remote", 0, "timeout")

    def _finish(self, originator: str, code: int, reason: str) -> None:
        if self.state == "terminated":
            return
        self.state = "terminated"
        self._cancel_timer()
        self._release()
        self._post("SCIncomingSubscriptionDidEnd", originator=originator, code=code, reason=reason)

    def _engine_stopped(self) -> None:
        with self._lock:
            self._timer = None
            self._handle = None
            self._finish("local", 0, "Engine stopped")

    # ------------------------------------------------------ engine thread

    def _handle_event(self, event) -> None:
        with self._lock:
            if self.state == "terminated":
                return
            if event.name == "nua_i_subscribe":
                # a refresh or an unSUBSCRIBE, already answered by the stack
                message = event.message
                expires = message.expires if message is not None else None
                if expires == 0:
                    if self._closing is None:
                        self._closing = ("remote", 0, "Unsubscribed")
                elif expires is not None:
                    self._set_expiry(min(expires, self.max_expires))
            elif event.name == "nua_r_notify" and event.status >= 200 and not event.auth_retry:
                if event.status >= 300:
                    self._finish("remote", event.status, event.reason or "")
                elif self._closing is not None:
                    self._finish(*self._closing)
