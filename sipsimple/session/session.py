"""Session: a SIP session with its media streams, as the seed's ``sipsimple.session.Session``.

States: NULL, CALLING, INCOMING, ACCEPTING, ESTABLISHED, PROPOSING, PROPOSED,
TERMINATING, TERMINATED. Methods check the state (a wrong one raises
``SessionStateError`` and changes nothing), act at once and report through
notifications, all posted on the middleware loop's thread, in order.

Notifications (sender: the Session; every one has ``timestamp``):

- ``SCSessionChangedState``: prev_state, state.
- ``SCSessionNewOutgoing`` / ``SCSessionNewIncoming``: streams (list of "audio", "chat").
- ``SCSessionGotRingIndication``.
- ``SCSessionWillStart`` (final response, before ACK) / ``SCSessionDidStart`` (after ACK).
- ``SCSessionDidFail``: originator ("local"/"remote"), code (0 = internal error), reason.
- ``SCSessionWillEnd`` / ``SCSessionDidEnd``: originator.
- ``SCSessionGotHoldRequest`` / ``SCSessionGotUnholdRequest``: originator.
- ``SCSessionWillStartRecordingAudio``, ``SCSessionDidStartRecordingAudio``,
  ``SCSessionWillStopRecordingAudio``, ``SCSessionDidStopRecordingAudio``: file_name.
- ``SCSessionGotNoAudio``; ``SCSessionGotDTMF``: digit.
- ``SCSessionGotStreamProposal``: proposer, streams; ``SCSessionAcceptedStreamProposal``:
  proposer; ``SCSessionRejectedStreamProposal``: proposer, reason.
- ``SCSessionGotStreamUpdate``: streams (the active ones from now on).
- Chat (``SCSessionGotMessage``, ``SCSessionDidDeliverMessage``,
  ``SCSessionDidNotDeliverMessage``) comes with the MSRP chat stream.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sipsimple.core import SIPURI, Engine, FromHeader, Invitation, Route, ToHeader
from sipsimple.core.errors import SIPCoreError
from sipsimple.middleware import MiddlewareLoop
from sipsimple.notification import NotificationCenter, NotificationData
from sipsimple.session import sdp_negotiation as neg
from sipsimple.streams.audio import AudioStream

__all__ = ["Session", "SessionError", "SessionStateError", "STATES"]

log = logging.getLogger("sipsimple.session")

STATES = ("NULL", "CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED", "TERMINATING",
          "TERMINATED")
_ACTIVE = ("CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED")


class SessionError(Exception):
    """A session failed (what an awaited connect()/accept() raises); has code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code, self.reason = code, reason


class SessionStateError(SIPCoreError):
    """A Session method was called in a state that does not allow it."""


class _Outcome:
    """What connect()/accept() return: ignore it (the seed's way), ``wait()`` or ``await`` it."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._error: SessionError | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._lock = threading.Lock()

    def _resolve(self, error: SessionError | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._error = error
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_settle, future, error)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the session started (returns) or failed (raises SessionError)."""
        if not self._done.wait(timeout):
            raise TimeoutError("the session did not start or fail in time")
        if self._error is not None:
            raise self._error

    def __await__(self):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._lock:
            if self._done.is_set():
                _settle(future, self._error)
            else:
                self._waiters.append((loop, future))
        return future.__await__()


def _settle(future: asyncio.Future, error: SessionError | None) -> None:
    if not future.done():
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _now() -> datetime:
    return datetime.now(UTC)


class Session:
    """A SIP session (audio now, chat with the MSRP stream) between two parties."""

    def __init__(self, account: Any) -> None:
        self.account = account
        self.state = "NULL"
        self.direction: str | None = None
        self.start_time: datetime | None = None
        self.stop_time: datetime | None = None
        self.on_hold_by_local = False
        self.on_hold_by_remote = False
        self.remote_user_agent: str | None = None
        self.local_uri: SIPURI | None = None
        self.remote_uri: SIPURI | None = None
        self.route: Route | None = None
        self._lock = threading.RLock()
        self._invitation: Invitation | None = None
        self._audio: AudioStream | None = None
        self._audio_index: int | None = None
        self._local_sdp = None
        self._sdp_id = random.randint(1, 2**31)
        self._sdp_version = 0
        self._routes: list[Route] = []
        self._proposal: list[str] | None = None
        self._pending_offer = None
        self._outcome = _Outcome()
        self._end_originator = "local"
        self._failed = False
        self._ringing_sent = False
        self._glare_handle = None
        self._events: list[asyncio.Queue] = []

    # ------------------------------------------------------------ attributes

    @property
    def on_hold(self) -> bool:
        return self.on_hold_by_local or self.on_hold_by_remote

    @property
    def caller_uri(self) -> SIPURI | None:
        return self.local_uri if self.direction == "outgoing" else self.remote_uri

    @property
    def callee_uri(self) -> SIPURI | None:
        return self.remote_uri if self.direction == "outgoing" else self.local_uri

    @property
    def audio_transport(self):
        return self._audio.transport if self._audio is not None else None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None and self._audio.transport.is_started

    @property
    def has_chat(self) -> bool:
        return False

    @property
    def chat_transport(self):
        return None

    def _audio_attr(self, name: str) -> Any:
        transport = self.audio_transport
        if transport is None or not transport.is_started:
            return None
        return getattr(transport, name)

    @property
    def audio_codec(self) -> str | None:
        codec = self._audio_attr("codec")
        return codec.name if codec is not None else None

    @property
    def audio_sample_rate(self) -> int | None:
        return self._audio_attr("sample_rate")

    @property
    def audio_srtp_active(self) -> bool | None:
        return self._audio_attr("srtp_active")

    @property
    def audio_local_rtp_address(self) -> str | None:
        return self.audio_transport.local_ip if self.audio_transport is not None else None

    @property
    def audio_local_rtp_port(self) -> int | None:
        return self.audio_transport.local_port if self.audio_transport is not None else None

    @property
    def audio_remote_rtp_address_sdp(self) -> str | None:
        address = self._audio_attr("remote_address_sdp")
        return address[0] if address else None

    @property
    def audio_remote_rtp_port_sdp(self) -> int | None:
        address = self._audio_attr("remote_address_sdp")
        return address[1] if address else None

    @property
    def audio_remote_rtp_address_received(self) -> str | None:
        address = self._audio_attr("remote_address_received")
        return address[0] if address else None

    @property
    def audio_remote_rtp_port_received(self) -> int | None:
        address = self._audio_attr("remote_address_received")
        return address[1] if address else None

    @property
    def audio_was_received(self) -> bool:
        stats = self._audio_attr("statistics")
        return bool(stats and stats.get("rx_packets"))

    @property
    def audio_recording_file_name(self) -> str | None:
        recorder = self._audio.recorder if self._audio is not None else None
        return recorder.path if recorder is not None else None

    @property
    def audio_statistics(self) -> dict[str, Any] | None:
        return self._audio_attr("statistics")

    # --------------------------------------------------------------- methods

    def connect(self, callee_uri: SIPURI, routes: Iterable[Route] | None, audio: bool = False,
                chat: bool = False) -> _Outcome:
        """Call ``callee_uri`` (through the first of ``routes``, then the next on failure)."""
        if not isinstance(callee_uri, SIPURI):
            raise TypeError("callee_uri must be a SIPURI")
        routes = list(routes or [])
        if any(not isinstance(r, Route) for r in routes):
            raise TypeError("routes must be Route objects")
        if chat:
            raise NotImplementedError("chat streams come with the MSRP chat stream (not available yet)")
        if not audio:
            raise ValueError("a session needs at least one stream (audio=True)")
        with self._lock:
            self._check_state("NULL", "connect")
            self.direction = "outgoing"
            self.local_uri = self.account.uri
            self.remote_uri = callee_uri
            self._routes = routes
            self.route = routes[0] if routes else self._account_route()
            self._audio = self._new_audio_stream()
            self._audio_index = 0
            self._observe_audio()
            self._post("SCSessionNewOutgoing", streams=["audio"])
            self._change_state("CALLING")
            self._send_invite()
        return self._outcome

    def accept(self, audio: bool = False, chat: bool = False) -> _Outcome:
        """Accept the incoming session with the streams chosen (each must have been offered)."""
        with self._lock:
            self._check_state("INCOMING", "accept")
            offered = neg.proposed_streams(self._invitation.remote_sdp)
            if chat and "chat" not in offered:
                raise ValueError("chat was not proposed by the other party")
            if audio and "audio" not in offered:
                raise ValueError("audio was not proposed by the other party")
            if chat:
                raise NotImplementedError("chat streams come with the MSRP chat stream (not available yet)")
            if not audio:
                raise ValueError("accept needs at least one stream; use reject() to refuse")
            self._change_state("ACCEPTING")
            remote = self._invitation.remote_sdp
            try:
                local_media = self._answer_media(remote, accept_audio=True)
            except Exception as exc:
                log.warning("cannot answer the offer: %s", exc)
                self._invitation.send_response(488, "Not Acceptable Here")
                self._fail("local", 488, f"no common media: {exc}")
                return self._outcome
            self._local_sdp = self._make_sdp(local_media)
            self._post("SCSessionWillStart")
            self._start_audio(remote)
            self._invitation.send_response(200, sdp=self._local_sdp)
        return self._outcome

    def reject(self) -> None:
        """Refuse the incoming session (603 Decline)."""
        with self._lock:
            self._check_state("INCOMING", "reject")
            self._change_state("TERMINATING")
            self._post("SCSessionWillEnd")
            self._end_originator = "local"
            self._invitation.send_response(603, "Decline")

    def hold(self) -> None:
        """Put the other party on hold (re-INVITE with sendonly/inactive)."""
        with self._lock:
            self._check_state("ESTABLISHED", "hold")
            if self.on_hold_by_local:
                return
            self._check_no_reinvite()
            self.on_hold_by_local = True
            self._post("SCSessionGotHoldRequest", originator="local")
            self._send_reinvite()

    def unhold(self) -> None:
        """Take the other party off hold."""
        with self._lock:
            self._check_state("ESTABLISHED", "unhold")
            if not self.on_hold_by_local:
                return
            self._check_no_reinvite()
            self.on_hold_by_local = False
            self._post("SCSessionGotUnholdRequest", originator="local")
            self._send_reinvite()

    def start_recording_audio(self, file_name: str | None = None) -> None:
        """Record both directions of the audio to a WAV file (a name is made when None)."""
        with self._lock:
            self._check_state("ESTABLISHED", "start recording")
            if not self.has_audio:
                raise SessionStateError("the session has no audio stream to record")
            if self._audio.recorder is not None:
                raise SessionStateError(f"already recording to {self._audio.recorder.path}")
            path = os.path.abspath(file_name or self._default_recording_name())
            self._post("SCSessionWillStartRecordingAudio", file_name=path)
            self._audio.start_recording(path)
            self._post("SCSessionDidStartRecordingAudio", file_name=path)

    def stop_recording_audio(self) -> None:
        with self._lock:
            self._check_state("ESTABLISHED", "stop recording")
            path = self.audio_recording_file_name
            if path is None:
                raise SessionStateError("the session is not recording")
            self._post("SCSessionWillStopRecordingAudio", file_name=path)
            self._audio.stop_recording()
            self._post("SCSessionDidStopRecordingAudio", file_name=path)

    def send_dtmf(self, digit: str) -> None:
        """Send one DTMF digit (RFC 4733) on the audio stream."""
        with self._lock:
            self._check_state("ESTABLISHED", "send DTMF")
            if not self.has_audio:
                raise SessionStateError("the session has no audio stream")
            self._audio.send_dtmf(digit)

    def send_message(self, content: str | bytes, content_type: str = "text/plain", to_uri: SIPURI | None = None,
                     dt: datetime | None = None) -> str:
        with self._lock:
            self._check_state("ESTABLISHED", "send a message")
            raise SessionStateError("the session has no chat stream")

    def add_audio(self) -> None:
        """Propose an audio stream to the other party (PROPOSING until answered)."""
        with self._lock:
            self._check_state("ESTABLISHED", "add audio")
            if self._audio is not None:
                raise SessionStateError("the session has an audio stream already")
            self._check_no_reinvite()
            self._audio = self._new_audio_stream()
            self._audio_index = len(self._local_sdp.media)
            self._observe_audio()
            self._proposal = ["audio"]
            self._change_state("PROPOSING")
            self._post("SCSessionGotStreamProposal", proposer="local", streams=["audio"])
            self._send_reinvite()

    def remove_audio(self) -> None:
        """Stop the audio stream and tell the other party (its m-line goes to port 0)."""
        with self._lock:
            self._check_state("ESTABLISHED", "remove audio")
            if self._audio is None:
                raise SessionStateError("the session has no audio stream")
            self._check_no_reinvite()
            self._stop_audio()
            self._send_reinvite()
            self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

    def add_chat(self) -> None:
        with self._lock:
            self._check_state("ESTABLISHED", "add chat")
            raise NotImplementedError("chat streams come with the MSRP chat stream (not available yet)")

    def remove_chat(self) -> None:
        with self._lock:
            self._check_state("ESTABLISHED", "remove chat")
            raise SessionStateError("the session has no chat stream")

    def accept_proposal(self, audio: bool = False, chat: bool = False) -> None:
        """Accept the streams the other party proposed."""
        with self._lock:
            self._check_state("PROPOSED", "accept a proposal")
            proposed = self._proposal or []
            if audio and "audio" not in proposed:
                raise ValueError("audio was not proposed")
            if chat and "chat" not in proposed:
                raise ValueError("chat was not proposed")
            if chat:
                raise NotImplementedError("chat streams come with the MSRP chat stream (not available yet)")
            if not audio:
                raise ValueError("accept_proposal needs a stream; use reject_proposal() to refuse")
            remote = self._invitation.remote_sdp
            try:
                media = self._answer_media(remote, accept_audio=True)
            except Exception as exc:
                self._reject_remote_proposal(f"cannot use the stream: {exc}")
                return
            self._local_sdp = self._make_sdp(media)
            self._start_audio(remote)
            self._invitation.send_response(200, sdp=self._local_sdp)
            self._proposal = None
            self._change_state("ESTABLISHED")
            self._post("SCSessionAcceptedStreamProposal", proposer="remote")
            self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

    def reject_proposal(self) -> None:
        """Refuse the streams the other party proposed."""
        with self._lock:
            self._check_state("PROPOSED", "reject a proposal")
            self._reject_remote_proposal("rejected by the local party")

    def end(self) -> None:
        """End the session from any active state; WillEnd now, DidEnd once it is over."""
        with self._lock:
            if self.state in ("NULL", "TERMINATING", "TERMINATED"):
                return
            self._end_originator = "local"
            self._change_state("TERMINATING")
            self._post("SCSessionWillEnd")
            if self._invitation is not None and self._invitation.state not in ("null", "disconnected"):
                self._invitation.end()
            else:
                self._terminated()

    async def notifications(self):
        """Async iterator over this session's notifications, until SCSessionDidEnd."""
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        entry = (loop, queue)
        with self._lock:
            self._events.append(entry)  # type: ignore[arg-type]
        try:
            while True:
                notification = await queue.get()
                yield notification
                if notification.name == "SCSessionDidEnd":
                    return
        finally:
            with self._lock:
                self._events.remove(entry)  # type: ignore[arg-type]

    # ---------------------------------------------------------- internals

    def _check_state(self, allowed: str | tuple[str, ...], action: str) -> None:
        allowed = (allowed,) if isinstance(allowed, str) else allowed
        if self.state not in allowed:
            raise SessionStateError(f"cannot {action} in state {self.state} (allowed: {', '.join(allowed)})")

    def _check_no_reinvite(self) -> None:
        if self._invitation is None or self._invitation.sub_state != "normal" or self._glare_handle is not None:
            raise SessionStateError("a re-INVITE is in progress; try again when it is answered")

    def _post(self, name: str, **data: Any) -> None:
        data.setdefault("timestamp", _now())
        notification_data = NotificationData(**data)
        MiddlewareLoop().call_soon(self._post_now, name, notification_data)

    def _post_now(self, name: str, data: NotificationData) -> None:
        NotificationCenter().post_notification(name, sender=self, data=data)
        if self._events:
            from sipsimple.notification import Notification

            notification = Notification(name, self, data)
            for loop, queue in list(self._events):
                loop.call_soon_threadsafe(queue.put_nowait, notification)

    def _change_state(self, state: str) -> None:
        prev, self.state = self.state, state
        self._post("SCSessionChangedState", prev_state=prev, state=state)

    def _account_route(self) -> Route | None:
        return getattr(self.account, "outbound_proxy", None)

    def _new_audio_stream(self) -> AudioStream:
        engine = Engine()
        srtp = getattr(self.account, "srtp_mode", None) or "optional"
        codecs = getattr(self.account, "audio_codecs", None)
        return AudioStream(engine.local_ip or "127.0.0.1", srtp_mode=srtp, codecs=codecs)

    def _observe_audio(self) -> None:
        NotificationCenter().add_observer(self, sender=self._audio.transport)

    def _make_sdp(self, media: list) -> Any:
        self._sdp_version += 1
        return neg.new_local_sdp(Engine().local_ip or "127.0.0.1", self._sdp_id, self._sdp_version, media)

    def _offer_media(self) -> list:
        """Our m-lines for a new offer: the current ones with the hold direction, plus a new audio line."""
        direction = neg.hold_direction(self.on_hold_by_local, self.on_hold_by_remote)
        media = list(self._local_sdp.media) if self._local_sdp is not None else []
        if self._audio is not None and self._audio_index is not None:
            line = self._audio.offer(direction)
            if self._audio_index < len(media):
                media[self._audio_index] = line
            else:
                media.append(line)
        return media

    def _answer_media(self, remote, accept_audio: bool) -> list:
        media = []
        for index, line in enumerate(remote.media):
            kind = neg.stream_type(line)
            if kind == "audio" and line.port != 0 and accept_audio and (self._audio_index in (None, index)):
                if self._audio is None:
                    self._audio = self._new_audio_stream()
                    self._observe_audio()
                self._audio_index = index
                direction = neg.answer_direction(neg_direction(remote, line), self.on_hold_by_local)
                media.append(self._audio.answer(remote, line, direction))
            else:
                media.append(neg.rejected_line(line))
        return media

    def _start_audio(self, remote) -> None:
        if self._audio is None or self._audio_index is None or self._audio_index >= len(remote.media):
            return
        line = remote.media[self._audio_index]
        if line.port == 0:
            self._stop_audio()
            return
        local_line = self._local_sdp.media[self._audio_index]
        self._audio.start(remote, line, local_line.direction)

    def _stop_audio(self) -> None:
        audio, self._audio = self._audio, None
        if audio is None:
            return
        NotificationCenter().discard_observer(self, sender=audio.transport)
        audio.stop()
        if self._local_sdp is not None and self._audio_index is not None \
                and self._audio_index < len(self._local_sdp.media):
            media = list(self._local_sdp.media)
            media[self._audio_index] = neg.rejected_line(media[self._audio_index])
            self._local_sdp.media = media
        self._audio_index = None

    def _active_streams(self) -> list[str]:
        return ["audio"] if self._audio is not None else []

    def _send_invite(self) -> None:
        account = self.account
        from_header = FromHeader(account.uri, getattr(account, "display_name", None))
        self._invitation = Invitation(from_header, ToHeader(self.remote_uri), route=self.route,
                                      credentials=getattr(account, "credentials", None))
        NotificationCenter().add_observer(self, sender=self._invitation)
        self._local_sdp = self._make_sdp(self._offer_media())
        self._invitation.send_invite(self._local_sdp)

    def _send_reinvite(self) -> None:
        self._local_sdp = self._make_sdp(self._offer_media())
        self._pending_offer = self._local_sdp
        self._invitation.send_reinvite(self._local_sdp)

    def _reject_remote_proposal(self, reason: str) -> None:
        self._invitation.send_response(488, "Not Acceptable Here")
        self._proposal = None
        self._change_state("ESTABLISHED")
        self._post("SCSessionRejectedStreamProposal", proposer="remote", reason=reason)

    def _default_recording_name(self) -> str:
        directory = getattr(self.account, "recording_directory", None) or os.getcwd()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        local = self.local_uri.user if self.local_uri and self.local_uri.user else "local"
        remote = self.remote_uri.user if self.remote_uri and self.remote_uri.user else "remote"
        return os.path.join(directory, f"{stamp}-{local}-{remote}.wav")

    def _fail(self, originator: str, code: int, reason: str) -> None:
        if self._failed:
            return
        self._failed = True
        self._post("SCSessionDidFail", originator=originator, code=code, reason=reason)
        self._outcome._resolve(SessionError(code, reason))
        self._end_originator = originator
        if self._invitation is not None and self._invitation.is_active:
            self._change_state("TERMINATING")
            self._invitation.end()
        else:
            self._terminated()

    def _terminated(self) -> None:
        if self.state == "TERMINATED":
            return
        self._stop_audio()
        if self._glare_handle is not None:
            self._glare_handle.cancel()
            self._glare_handle = None
        if self._invitation is not None:
            NotificationCenter().discard_observer(self, sender=self._invitation)
        self.stop_time = _now()
        self._change_state("TERMINATED")
        self._post("SCSessionDidEnd", originator=self._end_originator)
        self._outcome._resolve(SessionError(0, "the session ended before it started")
                               if self.start_time is None else None)

    # ------------------------------------------------- incoming construction

    @classmethod
    def _incoming(cls, account: Any, invitation: Invitation) -> Session:
        """A Session for an incoming INVITE (made by the SessionManager on the Engine thread)."""
        self = cls(account)
        self.direction = "incoming"
        self._invitation = invitation
        self.local_uri = invitation.to_header.uri if invitation.to_header else None
        self.remote_uri = invitation.from_header.uri if invitation.from_header else None
        self.remote_user_agent = invitation.remote_user_agent
        NotificationCenter().add_observer(self, sender=invitation)
        MiddlewareLoop().call_soon(self._announce_incoming)
        return self

    def _announce_incoming(self) -> None:
        with self._lock:
            if self.state != "NULL":
                return
            streams = neg.proposed_streams(self._invitation.remote_sdp)
            if self._invitation.remote_sdp is None or not streams:
                self._invitation.send_response(488, "Not Acceptable Here")
                self.state = "TERMINATING"
                self._end_originator = "local"
                return
            self._change_state("INCOMING")
            self._post("SCSessionNewIncoming", streams=streams)
            if not self._ringing_sent and self._invitation.state == "incoming":
                self._ringing_sent = True
                self._invitation.send_response(180)

    # ------------------------------------------------ notification handling

    def handle_notification(self, notification) -> None:
        # events come from the Engine and media threads: handle them on the middleware loop
        MiddlewareLoop().call_soon(self._dispatch, notification)

    def _dispatch(self, notification) -> None:
        handler = getattr(self, "_NH_" + notification.name, None)
        if handler is not None:
            with self._lock:
                handler(notification)

    def _NH_SCInvitationChangedState(self, notification) -> None:
        data = notification.data
        invitation = notification.sender
        if invitation is not self._invitation:
            return
        if invitation.remote_user_agent:
            self.remote_user_agent = invitation.remote_user_agent
        state = data.state
        if state == "early":
            if data.originator == "remote" and self.state == "CALLING":
                if data.code in (180, 183):
                    self._post("SCSessionGotRingIndication")
                if data.sdp is not None and self._audio is not None and not self._audio.transport.is_started:
                    self._start_early_media(data.sdp)
        elif state == "connecting":
            if self.state == "CALLING":
                self._outgoing_answered(data.sdp or invitation.remote_sdp)
        elif state == "connected":
            if data.sub_state == "received_proposal":
                self._got_remote_offer(data.sdp)
            elif data.prev_sub_state == "sending_proposal" and data.sub_state == "normal":
                self._got_reinvite_answer(data)
            elif data.prev_state == "connecting" and self.state in ("CALLING", "ACCEPTING"):
                self._started()
        elif state == "disconnected":
            self._dialog_ended(data)

    def _start_early_media(self, remote) -> None:
        try:
            self._start_audio(remote)
        except Exception as exc:
            log.warning("early media could not start: %s", exc)

    def _outgoing_answered(self, remote) -> None:
        self._post("SCSessionWillStart")
        if remote is None:
            self._fail("remote", 0, "the answer has no SDP")
            return
        try:
            self._start_audio(remote)
        except Exception as exc:
            self._fail("local", 0, f"cannot use the answer: {exc}")
            return
        if self._audio is None:
            self._fail("remote", 0, "the other party rejected every stream")

    def _started(self) -> None:
        self.start_time = _now()
        self._change_state("ESTABLISHED")
        self._post("SCSessionDidStart")
        self._post("SCSessionGotStreamUpdate", streams=self._active_streams())
        self._outcome._resolve(None)

    def _got_remote_offer(self, remote) -> None:
        if remote is None:
            # an offerless re-INVITE: offer what we have in the 200, the answer comes in the ACK
            self._local_sdp = self._make_sdp(self._offer_media())
            self._invitation.send_response(200, sdp=self._local_sdp)
            return
        if self.state not in ("ESTABLISHED",):
            self._invitation.send_response(491, "Request Pending")
            return
        known = len(self._local_sdp.media) if self._local_sdp else 0
        added = neg.proposed_streams(remote, known)
        revived = [neg.stream_type(m) for i, m in enumerate(remote.media[:known])
                   if m.port != 0 and self._local_sdp.media[i].port == 0 and neg.stream_type(m) == "audio"
                   and self._audio is None]
        proposal = [s for s in added + revived if s in ("audio", "chat")]
        if proposal:
            self._proposal = proposal
            self._change_state("PROPOSED")
            self._post("SCSessionGotStreamProposal", proposer="remote", streams=proposal)
            return
        self._answer_update(remote)

    def _answer_update(self, remote) -> None:
        """A re-INVITE that adds nothing: hold, unhold, removal or a refresh."""
        had_audio = self._audio is not None
        was_held = self.on_hold_by_remote
        if self._audio is not None and self._audio_index is not None:
            line = remote.media[self._audio_index] if self._audio_index < len(remote.media) else None
            if line is None or line.port == 0:
                self._stop_audio()
            else:
                self.on_hold_by_remote = neg_direction(remote, line) in ("sendonly", "inactive")
        try:
            media = self._answer_media(remote, accept_audio=self._audio is not None)
        except Exception as exc:
            self._invitation.send_response(488, "Not Acceptable Here")
            log.warning("cannot answer the re-INVITE: %s", exc)
            return
        self._local_sdp = self._make_sdp(media)
        self._invitation.send_response(200, sdp=self._local_sdp)
        if self._audio is not None:
            try:
                self._start_audio(remote)
            except Exception as exc:
                log.warning("audio update failed: %s", exc)
        if self.on_hold_by_remote and not was_held:
            self._post("SCSessionGotHoldRequest", originator="remote")
        elif was_held and not self.on_hold_by_remote:
            self._post("SCSessionGotUnholdRequest", originator="remote")
        if had_audio and self._audio is None:
            self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

    def _got_reinvite_answer(self, data) -> None:
        code = data.code
        proposing = self.state == "PROPOSING"
        if code == 491:
            delay = neg.glare_delay(self.direction == "outgoing")
            self._glare_handle = MiddlewareLoop().call_later(delay, self._retry_after_glare)
            return
        if 200 <= code < 300 and data.sdp is not None:
            try:
                self._start_audio(data.sdp)
            except Exception as exc:
                log.warning("cannot use the re-INVITE answer: %s", exc)
                self._stop_audio()
            if proposing:
                self._proposal = None
                self._change_state("ESTABLISHED")
                if self._audio is not None:
                    self._post("SCSessionAcceptedStreamProposal", proposer="local")
                    self._post("SCSessionGotStreamUpdate", streams=self._active_streams())
                else:
                    self._post("SCSessionRejectedStreamProposal", proposer="local",
                               reason="the other party refused the stream")
            return
        if proposing:
            self._stop_audio()
            self._proposal = None
            self._change_state("ESTABLISHED")
            self._post("SCSessionRejectedStreamProposal", proposer="local", reason=f"{code} {data.reason}".strip())
        elif code >= 300:
            log.info("re-INVITE refused: %s %s", code, data.reason)

    def _retry_after_glare(self) -> None:
        with self._lock:
            self._glare_handle = None
            if self.state in ("ESTABLISHED", "PROPOSING") and self._invitation.sub_state == "normal":
                self._send_reinvite()

    def _dialog_ended(self, data) -> None:
        if self.state == "TERMINATED":
            return
        if self.state in ("CALLING", "INCOMING", "ACCEPTING") and not self._failed:
            if self.state == "CALLING" and data.originator == "local" and data.code in (408, 503) \
                    and len(self._routes) > 1:
                self._routes.pop(0)
                self.route = self._routes[0]
                self._send_invite()
                return
            if self.state == "INCOMING" and data.originator == "remote":
                self._end_originator = "remote"
            else:
                self._failed = True
                self._end_originator = data.originator
                self._post("SCSessionDidFail", originator=data.originator, code=data.code,
                           reason=data.reason or "")
                self._outcome._resolve(SessionError(data.code, data.reason or ""))
        elif self.state != "TERMINATING":
            self._end_originator = data.originator
            if self.state in ("ESTABLISHED", "PROPOSING", "PROPOSED"):
                self._post("SCSessionWillEnd")
        self._terminated()

    def _NH_AudioStreamGotDTMF(self, notification) -> None:
        self._post("SCSessionGotDTMF", digit=notification.data.digit)

    def _NH_AudioStreamGotNoAudio(self, notification) -> None:
        self._post("SCSessionGotNoAudio")


def neg_direction(remote, line) -> str:
    from sipsimple.streams.audio import sdp_to_media

    try:
        return sdp_to_media(remote, line)["direction"]
    except ValueError:
        return line.direction
