"""Subscription: SUBSCRIBE to an event package and receive its NOTIFYs (RFC 6665).

Sofia-SIP refreshes an active subscription before it expires (measured: an
``Expires: 20`` subscription is re-SUBSCRIBEd within the 20 s) and answers each
NOTIFY 200; a challenged SUBSCRIBE is retried once with the credentials.

States: ``null`` -> ``pending`` (SUBSCRIBE sent) -> ``active`` (2xx received) ->
``terminating`` (``end()`` called) -> ``terminated``. A subscription is not
re-established by itself: once it ended or failed, re-subscribing (a new
Subscription) is the caller's or the account's choice.

Notifications (sender: the Subscription):

- ``SCSubscriptionDidSucceed``: a 2xx to SUBSCRIBE; data: ``code``, ``reason``,
  ``expires`` (seconds granted), ``refreshed`` (False for the first, True for a
  refresh Sofia-SIP sent).
- ``SCSubscriptionDidFail``: the first SUBSCRIBE failed (a failure response,
  wrong credentials -> 401/407, 408 when nobody answered, 0 when the engine
  stopped); data: ``code``, ``reason``. Nothing follows it.
- ``SCSubscriptionWillEnd``: ``end()`` is unsubscribing.
- ``SCSubscriptionDidEnd``: an established subscription is over; data: ``code``,
  ``reason``, ``originator``. ``originator`` is ``"local"`` after ``end()``
  (``code`` of the unSUBSCRIBE response, ``reason`` the final NOTIFY's reason
  when one came) or when the engine stopped (code 0); ``"remote"`` when the
  notifier ended it: a NOTIFY with ``Subscription-State: terminated`` (code 200,
  ``reason`` its reason parameter, e.g. ``noresource``, ``deactivated``,
  ``timeout``, ``rejected``), a refresh answered with a failure such as 481
  (``code`` that status), no response to a refresh (408), or no NOTIFY within
  ``notify_timeout`` seconds of the 2xx (408, "No NOTIFY received").
- ``SCSubscriptionGotNotify``: a NOTIFY arrived; data: ``content_type`` (lower
  case, without parameters; None for a NOTIFY without body), ``body`` (bytes),
  ``subscription_state`` (``active``, ``pending`` or ``terminated``),
  ``reason`` (the Subscription-State reason or None), ``expires`` (its expires
  parameter or None), ``event`` (the Event header), ``message`` (the SIPMessage).
"""

from __future__ import annotations

from collections.abc import Iterable

from sipsimple.core.headers import FromHeader, ToHeader
from sipsimple.core.primitive import (
    Primitive,
    check_credentials_and_route,
    checked_content_type,
    checked_duration,
    checked_event,
    route_header,
)
from sipsimple.core.uri import SIPURI, Credentials, Route

__all__ = ["Subscription", "parse_subscription_state", "headers_text"]


def parse_subscription_state(value: str | None) -> tuple[str | None, str | None, int | None]:
    """``"terminated;reason=noresource"`` -> ``("terminated", "noresource", None)``."""
    if not value:
        return None, None, None
    state, *params = (part.strip() for part in value.split(";"))
    reason: str | None = None
    expires: int | None = None
    for param in params:
        name, _, val = param.partition("=")
        name = name.strip().lower()
        val = val.strip().strip('"')
        if name == "reason" and val:
            reason = val.lower()
        elif name == "expires" and val.isdigit():
            expires = int(val)
    return state.lower() or None, reason, expires


def headers_text(extra_headers: dict[str, str] | None) -> str | None:
    """Extra headers as the text of SIPTAG_HEADER_STR, checked for injection."""
    if not extra_headers:
        return None
    for name, value in extra_headers.items():
        if any(ch in name + value for ch in "\r\n\0") or ":" in name or not name.strip():
            raise ValueError(f"invalid extra header {name!r}")
    return "".join(f"{name}: {value}\r\n" for name, value in extra_headers.items())


class Subscription(Primitive):
    """A subscription of ``from_header`` to ``event`` of ``to_header`` (SIPURIs are accepted too)."""

    #: seconds to wait for the first NOTIFY after a 2xx (RFC 6665 4.1.2.4: 64*T1)
    notify_timeout: float = 32.0
    #: seconds to wait for the final NOTIFY after the unSUBSCRIBE was answered
    final_notify_timeout: float = 4.0

    def __init__(
        self,
        from_header: FromHeader | SIPURI,
        to_header: ToHeader | SIPURI,
        event: str = "presence",
        accept: Iterable[str] = ("application/pidf+xml",),
        credentials: Credentials | None = None,
        route: Route | None = None,
        duration: int = 600,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.from_header = from_header if isinstance(from_header, FromHeader) else FromHeader(from_header)
        self.to_header = to_header if isinstance(to_header, ToHeader) else ToHeader(to_header)
        checked_event(event)
        self.accept = tuple(accept)
        for content_type in self.accept:
            checked_content_type(content_type, forbidden="\r\n\0,")
        checked_duration(duration)
        check_credentials_and_route(credentials, route)
        self.event = event
        self.credentials = credentials
        self.route = route
        self.duration = duration
        self.extra_headers = dict(extra_headers or {})
        self._headers = headers_text(self.extra_headers)
        self.state = "null"
        self.expires: int | None = None
        self.subscription_state: str | None = None  # as the last NOTIFY said
        self._established = False   # a 2xx came
        self._notified = False      # a NOTIFY came
        self._end_requested = False
        self._final_reason: str | None = None
        self._unsubscribe_code: int | None = None
        self._timer: int | None = None

    # ------------------------------------------------------------ public

    def subscribe(self) -> None:
        """Send SUBSCRIBE; the result comes as notifications."""
        with self._lock:
            self._check_state(("null",), "subscribe")
            core = self._core()
            creds = self.credentials
            self._handle = core.create_handle(
                self, creds.username if creds else None, creds.password if creds else None,
                [("to", str(self.to_header)), ("from", str(self.from_header)),
                 ("initial_route", route_header(self.route)),
                 # NOTIFYs come to our Contact: give it the subscriber's user, as a dialog's target should have
                 ("m_username", self.from_header.uri.user)],
            )
            core.command(self._handle, "subscribe", [
                ("event", self.event), ("accept", ", ".join(self.accept) or None),
                ("expires", str(self.duration)), ("header", self._headers),
            ])
            self.state = "pending"

    def end(self) -> None:
        """Unsubscribe (SUBSCRIBE with Expires: 0); ``SCSubscriptionDidEnd`` follows."""
        with self._lock:
            if self.state in ("null", "terminating", "terminated"):
                return
            self._post("SCSubscriptionWillEnd")
            self.state = "terminating"
            self._end_requested = True
            self._cancel_timer()
            if not self._established:
                return  # unsubscribe once the first SUBSCRIBE is answered
            self._send_unsubscribe()

    # ----------------------------------------------------------- helpers

    def _send_unsubscribe(self) -> None:
        try:
            self._core().command(self._handle, "unsubscribe", [("header", self._headers)])
        except Exception as exc:
            self._finish("SCSubscriptionDidEnd", 0, str(exc), originator="local")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            try:
                self._core().cancel_timer(self._timer)
            except Exception:
                pass
            self._timer = None

    def _start_timer(self, delay: float, callback) -> None:
        self._cancel_timer()
        try:
            self._timer = self._core().call_later(delay, callback)
        except Exception:
            self._timer = None

    def _finish(self, name: str, code: int, reason: str, **data) -> None:
        if self.state == "terminated":
            return
        self.state = "terminated"
        self.expires = None
        self._cancel_timer()
        # releasing the handle also stops whatever Sofia-SIP would retry on it
        self._release()
        self._post(name, code=code, reason=reason, **data)

    def _no_notify(self) -> None:
        with self._lock:
            self._timer = None
            if self.state == "active" and not self._notified:
                self._finish("SCSubscriptionDidEnd", 408, "No NOTIFY received", originator="remote")

    def _no_final_notify(self) -> None:
        with self._lock:
            self._timer = None
            if self.state == "terminating":
                self._finish("SCSubscriptionDidEnd", self._unsubscribe_code or 0,
                             self._final_reason or "Unsubscribed", originator="local")

    def _engine_stopped(self) -> None:
        with self._lock:
            self._timer = None
            self._handle = None
            if self.state == "pending":
                self._finish("SCSubscriptionDidFail", 0, "Engine stopped")
            elif self.state in ("active", "terminating"):
                self._finish("SCSubscriptionDidEnd", 0, "Engine stopped", originator="local")

    # ------------------------------------------------------ engine thread

    def _handle_event(self, event) -> None:
        with self._lock:
            if self.state == "terminated":
                return
            if event.name == "nua_r_subscribe":
                self._got_subscribe_response(event)
            elif event.name == "nua_r_unsubscribe":
                self._got_unsubscribe_response(event)
            elif event.name == "nua_i_notify":
                self._got_notify(event)

    def _got_subscribe_response(self, event) -> None:
        if event.status < 200 or event.auth_retry:
            return
        reason = event.reason or ""
        if 200 <= event.status < 300:
            message = event.message
            expires = message.expires if message is not None and message.expires is not None else self.duration
            refreshed = self._established
            self._established = True
            self.expires = expires
            if self._end_requested:
                self._send_unsubscribe()
                return
            if expires == 0:  # a fetch: the notifier ends it with its NOTIFY
                self.state = "active"
            elif self.state == "pending":
                self.state = "active"
            self._post("SCSubscriptionDidSucceed", code=event.status, reason=reason, expires=expires,
                       refreshed=refreshed)
            if not refreshed and not self._notified:
                self._start_timer(self.notify_timeout, self._no_notify)
            return
        if not self._established and not self._end_requested:
            self._finish("SCSubscriptionDidFail", event.status, reason)
        elif self.state == "terminating":
            self._finish("SCSubscriptionDidEnd", event.status, reason, originator="local")
        else:  # a refresh failed: 481 (the notifier forgot us), 408, ...
            self._finish("SCSubscriptionDidEnd", event.status, reason, originator="remote")

    def _got_unsubscribe_response(self, event) -> None:
        if event.status < 200 or event.auth_retry or self.state != "terminating":
            return
        self._unsubscribe_code = event.status
        if event.status >= 300 or self.subscription_state == "terminated":
            self._finish("SCSubscriptionDidEnd", event.status, self._final_reason or event.reason or "",
                         originator="local")
        else:
            self._start_timer(self.final_notify_timeout, self._no_final_notify)

    def _got_notify(self, event) -> None:
        message = event.message
        if message is None:
            # generated by the stack itself: the subscription could not be kept up
            if self.state == "terminating":
                self._finish("SCSubscriptionDidEnd", self._unsubscribe_code or event.status,
                             event.reason or "", originator="local")
            elif self._established:
                self._finish("SCSubscriptionDidEnd", event.status, event.reason or "", originator="remote")
            else:
                self._finish("SCSubscriptionDidFail", event.status, event.reason or "")
            return
        state, reason, expires = parse_subscription_state(message.header("subscription-state"))
        self._notified = True
        if self.state == "active" and self._timer is not None and state != "terminated":
            self._cancel_timer()
        self.subscription_state = state
        self._post("SCSubscriptionGotNotify", content_type=message.content_type if message.body else None,
                   body=message.body, subscription_state=state, reason=reason, expires=expires,
                   event=message.header("event"), message=message)
        if state != "terminated":
            return
        if self.state == "terminating":
            self._final_reason = reason
            if self._unsubscribe_code is not None:
                self._finish("SCSubscriptionDidEnd", self._unsubscribe_code, reason or "Unsubscribed",
                             originator="local")
        elif not self._established and self.state == "pending":
            # terminated before any 2xx (e.g. rejected by policy): it never started
            self._finish("SCSubscriptionDidFail", 200, reason or "Subscription terminated")
        else:
            self._finish("SCSubscriptionDidEnd", 200, reason or "Subscription terminated", originator="remote")
