"""Invitation: one INVITE dialog, outgoing or incoming, driven by the Session.

The SDP is ours (Sofia's offer/answer engine is off): an Invitation carries the
SDPSession the application gives and hands back the one the other party sent.

States: ``null`` -> ``calling`` (INVITE sent) or ``incoming`` (INVITE received) ->
``early`` (1xx) -> ``connecting`` (2xx sent or received, before ACK) ->
``connected`` -> ``disconnecting`` -> ``disconnected``. While connected,
``sub_state`` tells a re-INVITE apart: ``normal``, ``sending_proposal``,
``received_proposal``.

Notification (sender: the Invitation), on every change of state or sub-state:

- ``SCInvitationChangedState``: data: ``prev_state``, ``state``, ``prev_sub_state``,
  ``sub_state``, ``originator`` ("local"/"remote"), ``code``, ``reason``, ``sdp``
  (the SDPSession the other party sent with this change, or None), ``message``
  (the SIPMessage that caused it, or None).

Incoming invitations are made by the Engine; it posts their first
``SCInvitationChangedState`` (state ``incoming``) with the sender being the new
Invitation, so observe that name from any sender to receive calls.
"""

from __future__ import annotations

import logging

from sipsimple.core.errors import SIPCoreInvalidStateError
from sipsimple.core.headers import ContactHeader, FromHeader, ToHeader
from sipsimple.core.primitive import Primitive, route_header
from sipsimple.core.sdp import SDPSession
from sipsimple.core.uri import SIPURI, Credentials, Route

__all__ = ["Invitation"]

log = logging.getLogger("sipsimple.invitation")

_LIVE = ("calling", "incoming", "early", "connecting", "connected", "disconnecting")


def _sdp_of(message) -> SDPSession | None:
    if message is None or message.content_type != "application/sdp" or not message.body:
        return None
    try:
        return SDPSession.parse(message.body)
    except ValueError as exc:
        log.warning("ignoring unparsable SDP from the other party: %s", exc)
        return None


def _headers_text(extra_headers: dict[str, str] | None) -> str | None:
    if not extra_headers:
        return None
    for name, value in extra_headers.items():
        if any(ch in name + value for ch in "\r\n\0") or ":" in name:
            raise ValueError(f"invalid extra header {name!r}")
    return "".join(f"{k}: {v}\r\n" for k, v in extra_headers.items())


class Invitation(Primitive):
    """An INVITE dialog. Create one to call; incoming ones come from the Engine."""

    def __init__(
        self,
        from_header: FromHeader | SIPURI,
        to_header: ToHeader | SIPURI,
        route: Route | None = None,
        credentials: Credentials | None = None,
        contact_user: str | None = None,
    ) -> None:
        super().__init__()
        self.from_header = from_header if isinstance(from_header, FromHeader) else FromHeader(from_header)
        self.to_header = to_header if isinstance(to_header, ToHeader) else ToHeader(to_header)
        if route is not None and not isinstance(route, Route):
            raise TypeError("route must be a Route object")
        self.route = route
        self.credentials = credentials
        self.contact_user = contact_user or self.from_header.uri.user
        self.direction = "outgoing"
        self.state = "null"
        self.sub_state = "normal"
        self.local_sdp: SDPSession | None = None
        self.remote_sdp: SDPSession | None = None
        self.remote_user_agent: str | None = None
        self.remote_contact_header: ContactHeader | None = None
        self.call_id: str | None = None
        self._end_reason: tuple[str, int, str] | None = None
        self._end_timer: int | None = None

    @classmethod
    def _incoming(cls, event) -> Invitation:
        """Adopt a new incoming INVITE (Engine thread)."""
        message = event.message
        self = cls.__new__(cls)
        Primitive.__init__(self)
        self.from_header = message.from_header
        self.to_header = message.to_header
        self.route = None
        self.credentials = None
        self.contact_user = self.to_header.uri.user if self.to_header else None
        self.direction = "incoming"
        self.state = "null"
        self.sub_state = "normal"
        self.local_sdp = None
        self.remote_sdp = _sdp_of(message)
        self.remote_user_agent = message.user_agent
        contacts = message.contact_headers
        self.remote_contact_header = contacts[0] if contacts else None
        self.call_id = message.call_id
        self._end_reason = None
        self._end_timer = None
        self._handle = event.handle
        self._core().adopt(event.handle, self)
        with self._lock:
            self._change("incoming", originator="remote", sdp=self.remote_sdp, message=message)
        return self

    # ----------------------------------------------------------------- API

    @property
    def is_active(self) -> bool:
        return self.state in _LIVE

    def send_invite(self, sdp: SDPSession | None = None, extra_headers: dict[str, str] | None = None,
                    timeout: float | None = None) -> None:
        """Send the INVITE (with ``sdp`` as the offer); ``timeout`` cancels it if unanswered."""
        with self._lock:
            self._check_state(("null",), "send an INVITE on")
            core = self._core()
            creds = self.credentials
            self._handle = core.create_handle(
                self, creds.username if creds else None, creds.password if creds else None,
                [("to", str(self.to_header)), ("from", str(self.from_header)),
                 ("initial_route", route_header(self.route)), ("m_username", self.contact_user)],
            )
            self.local_sdp = sdp
            core.command(self._handle, "invite", self._body_tags(sdp) + [("header", _headers_text(extra_headers))])
            self._change("calling", originator="local")
            if timeout is not None:
                self._end_timer = core.call_later(timeout, self._invite_timed_out)

    def send_response(self, code: int, reason: str | None = None, sdp: SDPSession | None = None,
                      extra_headers: dict[str, str] | None = None) -> None:
        """Answer an incoming INVITE or re-INVITE (1xx, 2xx with the SDP answer, or a failure)."""
        if not isinstance(code, int) or not 100 <= code < 700:
            raise ValueError(f"invalid SIP response code {code!r}")
        with self._lock:
            received_proposal = self.state == "connected" and self.sub_state == "received_proposal"
            if not received_proposal:
                self._check_state(("incoming", "early"), "respond to")
                if self.direction != "incoming":
                    raise SIPCoreInvalidStateError("only an incoming invitation can be answered")
            if 200 <= code < 300 and sdp is None and (received_proposal or self.remote_sdp is not None):
                raise ValueError("a 2xx answer to an offer needs an SDP answer")
            tags = self._body_tags(sdp) + [("header", _headers_text(extra_headers))]
            self._core().command(self._handle, "respond", tags, status=code, phrase=reason)
            if sdp is not None:
                self.local_sdp = sdp
            if received_proposal:
                if code >= 200:
                    self._change("connected", sub_state="normal", originator="local", code=code, reason=reason)
            elif code < 200:
                if self.state == "incoming" and code in (180, 183):
                    self._change("early", originator="local", code=code, reason=reason)
            elif code < 300:
                self._change("connecting", originator="local", code=code, reason=reason)
            else:
                self._end_reason = ("local", code, reason or "")
                self._change("disconnecting", originator="local", code=code, reason=reason)

    def send_reinvite(self, sdp: SDPSession, extra_headers: dict[str, str] | None = None) -> None:
        """Propose a new SDP (hold, streams added or removed) in the established dialog."""
        with self._lock:
            self._check_state(("connected",), "send a re-INVITE on")
            if self.sub_state != "normal":
                raise SIPCoreInvalidStateError(f"a re-INVITE is already in progress ({self.sub_state})")
            self.local_sdp = sdp
            self._core().command(self._handle, "invite", self._body_tags(sdp) + [
                ("header", _headers_text(extra_headers))])
            self._change("connected", sub_state="sending_proposal", originator="local")

    def end(self, timeout: float | None = 5.0) -> None:
        """Hang up: CANCEL while calling, decline while incoming, BYE once connected."""
        with self._lock:
            if self.state in ("null", "disconnecting", "disconnected"):
                return
            core = self._core()
            if self.state in ("incoming",) or (self.state == "early" and self.direction == "incoming"):
                core.command(self._handle, "respond", None, status=603, phrase="Decline")
                self._end_reason = ("local", 603, "Decline")
            elif self.state in ("calling", "early"):
                core.command(self._handle, "cancel", None)
                self._end_reason = ("local", 487, "Request Terminated")
            else:
                core.command(self._handle, "bye", None)
                self._end_reason = ("local", 200, "BYE sent")
            self._change("disconnecting", originator="local")
            if timeout is not None:
                self._end_timer = core.call_later(timeout, self._end_timed_out)

    # ----------------------------------------------------------- internals

    @staticmethod
    def _body_tags(sdp: SDPSession | None) -> list:
        if sdp is None:
            return []
        return [("content_type", "application/sdp"), ("payload", str(sdp))]

    def _change(self, state: str, *, sub_state: str | None = None, originator: str, code: int = 0,
                reason: str | None = None, sdp: SDPSession | None = None, message=None) -> None:
        prev_state, prev_sub_state = self.state, self.sub_state
        self.state = state
        if sub_state is not None:
            self.sub_state = sub_state
        elif state != "connected":
            self.sub_state = "normal"
        self._post("SCInvitationChangedState", prev_state=prev_state, state=state, prev_sub_state=prev_sub_state,
                   sub_state=self.sub_state, originator=originator, code=code, reason=reason or "",
                   sdp=sdp, message=message)

    def _invite_timed_out(self) -> None:
        with self._lock:
            self._end_timer = None
            if self.state in ("calling", "early") and self.direction == "outgoing":
                self._core().command(self._handle, "cancel", None)
                self._end_reason = ("local", 408, "Request Timeout")
                self._change("disconnecting", originator="local", code=408, reason="Request Timeout")

    def _end_timed_out(self) -> None:
        with self._lock:
            self._end_timer = None
            if self.state == "disconnecting":
                self._disconnected(None, forced=True)

    def _disconnected(self, message, forced: bool = False) -> None:
        if self.state == "disconnected":
            return
        originator, code, reason = self._end_reason or ("remote", 0, "")
        if forced:
            reason = reason or "No response to the end of the dialog"
        if self._end_timer is not None:
            try:
                self._core().cancel_timer(self._end_timer)
            except Exception:
                pass
            self._end_timer = None
        self._change("disconnected", originator=originator, code=code, reason=reason, message=message)
        self._release()

    def _engine_stopped(self) -> None:
        with self._lock:
            if self.state not in ("null", "disconnected"):
                self._end_reason = self._end_reason or ("local", 0, "Engine stopped")
                self._disconnected(None)

    def _handle_event(self, event) -> None:
        with self._lock:
            handler = getattr(self, "_EH_" + event.name, None)
            if handler is not None:
                handler(event)

    # One method per Sofia event; the name says which.

    def _EH_nua_r_invite(self, event) -> None:
        if event.auth_retry or event.status < 100:
            return
        message = event.message
        if message is not None:
            self.remote_user_agent = message.server or message.user_agent or self.remote_user_agent
            self.call_id = message.call_id or self.call_id
        sdp = _sdp_of(message)
        if sdp is not None:
            self.remote_sdp = sdp
        if self.state == "connected":
            if event.status >= 200:
                self._change("connected", sub_state="normal", originator="remote", code=event.status,
                             reason=event.reason, sdp=sdp, message=message)
            return
        if self.state not in ("calling", "early", "disconnecting"):
            return
        if event.status < 200:
            if self.state == "calling" and event.status > 100:
                self._change("early", originator="remote", code=event.status, reason=event.reason, sdp=sdp,
                             message=message)
            elif self.state == "early" and sdp is not None:
                self._change("early", originator="remote", code=event.status, reason=event.reason, sdp=sdp,
                             message=message)
        elif event.status < 300:
            if message is not None:
                contacts = message.contact_headers
                self.remote_contact_header = contacts[0] if contacts else None
            if self.state == "disconnecting":
                return  # our CANCEL crossed the 200: Sofia sends the BYE
            self._change("connecting", originator="remote", code=event.status, reason=event.reason, sdp=sdp,
                         message=message)
        else:
            if self._end_reason is None or self._end_reason[1] in (487, 408):
                originator = "remote" if self._end_reason is None else self._end_reason[0]
                code = event.status if self._end_reason is None or event.status != 487 else self._end_reason[1]
                reason = event.reason if self._end_reason is None or event.status != 487 else self._end_reason[2]
                self._end_reason = (originator, code, reason or "")
            self._disconnected(message)

    def _EH_nua_i_invite(self, event) -> None:
        # a re-INVITE in our dialog (the first INVITE goes through _incoming)
        message = event.message
        sdp = _sdp_of(message)
        if self.state != "connected":
            return
        if self.sub_state == "sending_proposal":
            # glare (RFC 3261 14.2). Sofia answers 491 itself when our re-INVITE went out first;
            # when theirs reached the stack first and ours was sent before we saw it, it is
            # still open and ours to refuse -- left alone it would never be answered
            if event.status < 200:
                self._core().command(self._handle, "respond", [], status=491, phrase="Request Pending")
            return
        if sdp is not None:
            self.remote_sdp = sdp
        self._change("connected", sub_state="received_proposal", originator="remote", sdp=sdp, message=message)

    def _EH_nua_i_ack(self, event) -> None:
        message = event.message
        sdp = _sdp_of(message)
        if sdp is not None:
            self.remote_sdp = sdp

    def _EH_nua_i_state(self, event) -> None:
        callstate = event.callstate
        if callstate == "ready" and self.state == "connecting":
            self._change("connected", originator=self.direction == "outgoing" and "local" or "remote")
        elif callstate == "terminated":
            self._disconnected(event.message)

    def _EH_nua_i_bye(self, event) -> None:
        if self._end_reason is None:
            self._end_reason = ("remote", 200, "BYE received")

    def _EH_nua_i_cancel(self, event) -> None:
        if self._end_reason is None:
            self._end_reason = ("remote", 487, "Cancelled")

    def _EH_nua_r_bye(self, event) -> None:
        if event.status >= 200 and not event.auth_retry and self.state == "disconnecting":
            self._end_reason = ("local", event.status, event.reason or "")
