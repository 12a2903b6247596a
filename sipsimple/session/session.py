"""Session: a SIP session with its media streams, as the seed's ``sipsimple.session.Session``.

States: NULL, CALLING, INCOMING, ACCEPTING, ESTABLISHED, PROPOSING, PROPOSED,
TERMINATING, TERMINATED. Methods check the state (a wrong one raises
``SessionStateError`` and changes nothing), act at once and report through
notifications, all posted on the middleware loop's thread, in order.

Notifications (sender: the Session; every one has ``timestamp``):

- ``SCSessionChangedState``: prev_state, state.
- ``SCSessionNewOutgoing`` / ``SCSessionNewIncoming``: streams (list of "audio", "chat",
  "file-transfer", in m-line order).
- ``SCSessionGotRingIndication``.
- ``SCSessionWillStart`` (final response, before ACK) / ``SCSessionDidStart`` (after ACK).
- ``SCSessionDidFail``: originator ("local"/"remote"), code (0 = internal error), reason.
- ``SCSessionWillEnd`` / ``SCSessionDidEnd``: originator.
- ``SCSessionGotHoldRequest`` / ``SCSessionGotUnholdRequest``: originator (posted when hold()
  or unhold() sends its re-INVITE, or when the other party's arrives).
- ``SCSessionDidChangeHoldState`` (an addition): originator, on_hold -- the hold or unhold took
  effect: the other party accepted ours, or we answered theirs. When it refuses ours, the
  ``on_hold_by_local`` flag goes back and nothing is posted.
- ``SCSessionWillStartRecordingAudio``, ``SCSessionDidStartRecordingAudio``,
  ``SCSessionWillStopRecordingAudio``, ``SCSessionDidStopRecordingAudio``: file_name.
- ``SCSessionGotNoAudio``; ``SCSessionGotDTMF``: digit.
- ``SCSessionGotStreamProposal``: proposer, streams; ``SCSessionAcceptedStreamProposal``:
  proposer; ``SCSessionRejectedStreamProposal``: proposer, reason.
- ``SCSessionGotStreamUpdate``: streams (the active ones from now on).
- ``SCSessionGotMessage``: content (str for text/*, else bytes), content_type, cpim_headers
  (dict), message (the raw MSRPData frame).
- ``SCSessionDidDeliverMessage`` / ``SCSessionDidNotDeliverMessage``: message_id (what
  send_message returned), code (MSRP code; 0 for a local failure), reason, message (frame or None).
- ``SCSessionGotComposingIndication`` (an addition): state, refresh, last_active, content_type.
- File transfer (additions): ``SCSessionFileTransferProgress``: direction, transferred_bytes,
  total_bytes; ``SCSessionGotFile``: file_name, size, hash, content_type (receiver);
  ``SCSessionDidDeliverFile``: file_name, size, hash, code, reason and
  ``SCSessionDidNotDeliverFile``: file_name, code, reason, transferred_bytes (sender).

Streams: a Session holds a list of streams indexed by m-line (``None`` where a line was
refused or removed): AudioStream (RTP), MSRPChat and MSRPFileTransfer (MSRP). The MSRP ones
need a network step before an offer or answer can be written (a listening socket, or AUTH
at the account's ``msrp_relay``): connect()/accept()/add_chat()/accept_proposal() then
send their INVITE/200/re-INVITE from the middleware loop once that step is done; audio
alone stays synchronous.

File transfer: ``connect(uri, routes, file=PATH)`` offers PATH (RFC 5547 push); the other
side sees SCSessionNewIncoming with streams ["file-transfer"], reads ``proposed_file``
(a FileSelector: name, type, size, hash) and calls ``accept(file_transfer=True,
directory=DIR)``. The sender ends the session once the file is delivered (or not); the
receiver ends it when the file fails. A receiver that already holds part of the same file
(name and hash) from an interrupted attempt asks for the rest only.
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

from sipsimple.core import SIPURI, FromHeader, Invitation, Route, ToHeader
from sipsimple.core.errors import SIPCoreInvalidStateError
from sipsimple.middleware import MiddlewareLoop
from sipsimple.notification import NotificationCenter, NotificationData
from sipsimple.session import sdp_negotiation as neg
from sipsimple.session.dialog_events import DialogEvents
from sipsimple.session.outcome import SessionError, SessionOutcome, SessionStateError
from sipsimple.session.stream_events import FILE_FAILURE_GRACE, StreamEvents
from sipsimple.session.stream_set import SessionStreams
from sipsimple.streams.audio import AudioStream
from sipsimple.streams.msrp_chat import MSRPChat
from sipsimple.streams.msrp_filetransfer import MSRPFileTransfer, file_selector_of

__all__ = ["Session", "SessionError", "SessionOutcome", "SessionStateError", "STATES", "FILE_FAILURE_GRACE"]

log = logging.getLogger("sipsimple.session")

STATES = ("NULL", "CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED", "TERMINATING",
          "TERMINATED")
_ACTIVE = ("CALLING", "INCOMING", "ACCEPTING", "ESTABLISHED", "PROPOSING", "PROPOSED")


def _now() -> datetime:
    return datetime.now(UTC)


class Session(DialogEvents, StreamEvents, SessionStreams):
    """A SIP session (audio, MSRP chat, MSRP file transfer) between two parties."""

    def __init__(self, account: Any) -> None:
        self.account = account
        self.state = "NULL"
        self.direction: str | None = None
        self.start_time: datetime | None = None
        self.stop_time: datetime | None = None
        self.on_hold_by_local = False
        self._local_hold_in_effect = False  # what the other party last accepted
        self.on_hold_by_remote = False
        self.remote_user_agent: str | None = None
        self.local_uri: SIPURI | None = None
        self.remote_uri: SIPURI | None = None
        self.route: Route | None = None
        self._lock = threading.RLock()
        self._invitation: Invitation | None = None
        self._streams: list[Any] = []  # by m-line index; None for a refused/removed line
        self._leaving: list[Any] = []  # removed by our pending offer, stopped once it is answered
        self._offer_seq = 0  # re-INVITEs sent
        self._answer_seq = 0  # answers to them handled
        self._proposal_seq = 0  # the re-INVITE that carries our pending proposal
        self._sdp_before_proposal = None
        self._answering_proposal = False
        self._local_sdp = None
        self._sdp_id = random.randint(1, 2**31)
        self._sdp_version = 0
        self._routes: list[Route] = []
        self._proposal: list[str] | None = None
        self._pending_offer = None
        self._outcome = SessionOutcome()
        self._last_audio_statistics: dict[str, Any] | None = None
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
    def streams(self) -> list[Any]:
        """The current streams (AudioStream, MSRPChat, MSRPFileTransfer) in m-line order."""
        return [stream for stream in self._streams if stream is not None]

    @property
    def _audio(self) -> AudioStream | None:
        return self._find("audio")[1]

    @property
    def _audio_index(self) -> int | None:
        return self._find("audio")[0]

    @property
    def audio_transport(self):
        return self._audio.transport if self._audio is not None else None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None and self._audio.transport.is_started

    @property
    def has_chat(self) -> bool:
        chat = self._find("chat")[1]
        return chat is not None and chat.state not in ("ending", "ended", "failed")

    @property
    def chat_transport(self) -> MSRPChat | None:
        """The MSRPChat stream of the session, if it has one."""
        return self._find("chat")[1]

    @property
    def has_file_transfer(self) -> bool:
        return self._find("file-transfer")[1] is not None

    @property
    def file_transfer(self) -> MSRPFileTransfer | None:
        """The MSRPFileTransfer stream of the session, if it has one."""
        return self._find("file-transfer")[1]

    @property
    def proposed_file(self):
        """The file the other party offers (a FileSelector: name, type, size, hash), or None."""
        remote = self._invitation.remote_sdp if self._invitation is not None else None
        for line in remote.media if remote is not None else []:
            if line.port != 0 and neg.stream_type(line) == "file-transfer":
                return file_selector_of(line)
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
        """RTP statistics of the audio stream; once it stopped, its last reading."""
        return self._audio_attr("statistics") or self._last_audio_statistics

    # --------------------------------------------------------------- methods

    def connect(self, callee_uri: SIPURI, routes: Iterable[Route] | None, audio: bool = False,
                chat: bool = False, file: str | os.PathLike | None = None) -> SessionOutcome:
        """Call ``callee_uri`` (through the first of ``routes``, then the next on failure).

        ``file``: offer this file (an MSRP file transfer, RFC 5547) in the session.
        """
        if not isinstance(callee_uri, SIPURI):
            raise TypeError("callee_uri must be a SIPURI")
        routes = list(routes or [])
        if any(not isinstance(r, Route) for r in routes):
            raise TypeError("routes must be Route objects")
        if not (audio or chat or file is not None):
            raise ValueError("a session needs at least one stream (audio=True, chat=True or file=PATH)")
        if file is not None and not os.path.isfile(file):
            raise FileNotFoundError(f"no such file: {file}")
        with self._lock:
            self._check_state("NULL", "connect")
            self.direction = "outgoing"
            self.local_uri = self.account.uri
            self.remote_uri = callee_uri
            self._routes = routes
            self.route = routes[0] if routes else self._account_route()
            streams: list[Any] = []
            if audio:
                streams.append(self._new_audio_stream())
            if chat:
                streams.append(self._new_chat_stream())
            if file is not None:
                streams.append(self._new_file_stream(path=file))
            self._streams = streams
            for stream in streams:
                self._observe_stream(stream)
            self._post("SCSessionNewOutgoing", streams=[stream.type for stream in streams])
            self._change_state("CALLING")
            self._when_prepared(streams, "CALLING", self._send_invite,
                                lambda exc: self._fail("local", 0, f"cannot set up the streams: {exc}"))
        return self._outcome

    def accept(self, audio: bool = False, chat: bool = False, file_transfer: bool = False,
               directory: str | os.PathLike | None = None) -> SessionOutcome:
        """Accept the incoming session with the streams chosen (each must have been offered).

        ``directory``: where an accepted file goes (default: the account's
        ``file_transfer_directory``, else the current directory).
        """
        with self._lock:
            self._check_state("INCOMING", "accept")
            remote = self._invitation.remote_sdp
            wanted = self._wanted(neg.proposed_streams(remote), audio, chat, file_transfer)
            if not wanted:
                raise ValueError("accept needs at least one stream; use reject() to refuse")
            self._change_state("ACCEPTING")
            try:
                created = self._create_answer_streams(remote, wanted, directory)
            except Exception as exc:
                log.warning("cannot set up the streams: %s", exc)
                self._invitation.send_response(488, "Not Acceptable Here")
                self._fail("local", 488, f"cannot set up the streams: {exc}")
                return self._outcome

            def answer() -> None:
                try:
                    local_media = self._answer_media(remote)
                except Exception as exc:
                    log.warning("cannot answer the offer: %s", exc)
                    self._invitation.send_response(488, "Not Acceptable Here")
                    self._fail("local", 488, f"no common media: {exc}")
                    return
                self._local_sdp = self._make_sdp(local_media)
                self._post("SCSessionWillStart")
                self._start_streams(remote)
                self._invitation.send_response(200, sdp=self._local_sdp)

            def failed(exc: BaseException) -> None:
                self._invitation.send_response(488, "Not Acceptable Here")
                self._fail("local", 488, f"cannot set up the streams: {exc}")

            self._when_prepared(created, "ACCEPTING", answer, failed)
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
            try:
                self._send_reinvite()
            except SessionStateError:
                self.on_hold_by_local = False
                raise
            self._post("SCSessionGotHoldRequest", originator="local")

    def unhold(self) -> None:
        """Take the other party off hold."""
        with self._lock:
            self._check_state("ESTABLISHED", "unhold")
            if not self.on_hold_by_local:
                return
            self._check_no_reinvite()
            self.on_hold_by_local = False
            try:
                self._send_reinvite()
            except SessionStateError:
                self.on_hold_by_local = True
                raise
            self._post("SCSessionGotUnholdRequest", originator="local")

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
        """Send a chat message; returns its id (the message_id of the Did(Not)DeliverMessage to come).

        Allowed while the session is active and has a chat stream; a message sent before the
        stream is connected waits for it.
        """
        with self._lock:
            self._check_state(_ACTIVE, "send a message")
            chat = self._find("chat")[1]
            if chat is None or not self.has_chat:
                raise SessionStateError("the session has no chat stream")
            return chat.send_message(content, content_type, to_uri=to_uri, dt=dt)

    def send_composing_indication(self, state: str, refresh: int | None = None) -> str:
        """Tell the other party we are typing ("active") or stopped ("idle") (RFC 3994)."""
        with self._lock:
            self._check_state(_ACTIVE, "send a composing indication")
            chat = self._find("chat")[1]
            if chat is None or not self.has_chat:
                raise SessionStateError("the session has no chat stream")
            return chat.send_composing_indication(state, refresh=refresh, last_active=_now())

    def add_audio(self) -> None:
        """Propose an audio stream to the other party (PROPOSING until answered)."""
        with self._lock:
            self._check_state("ESTABLISHED", "add audio")
            if self._audio is not None:
                raise SessionStateError("the session has an audio stream already")
            self._check_no_reinvite()
            self._propose(self._new_audio_stream())

    def remove_audio(self) -> None:
        """Stop the audio stream and tell the other party (its m-line goes to port 0)."""
        with self._lock:
            self._check_state("ESTABLISHED", "remove audio")
            if self._audio is None:
                raise SessionStateError("the session has no audio stream")
            self._check_no_reinvite()
            self._remove(self._audio_index)

    def add_chat(self) -> None:
        """Propose a chat stream to the other party (PROPOSING until answered)."""
        with self._lock:
            self._check_state("ESTABLISHED", "add chat")
            if self._find("chat")[1] is not None:
                raise SessionStateError("the session has a chat stream already")
            self._check_no_reinvite()
            self._propose(self._new_chat_stream())

    def remove_chat(self) -> None:
        """Stop the chat stream and tell the other party (its m-line goes to port 0)."""
        with self._lock:
            self._check_state("ESTABLISHED", "remove chat")
            index = self._find("chat")[0]
            if index is None:
                raise SessionStateError("the session has no chat stream")
            self._check_no_reinvite()
            self._remove(index)

    def _propose(self, stream: Any) -> None:
        index = len(self._local_sdp.media)
        self._streams = self._streams[:index] + [None] * (index - len(self._streams)) + [stream]
        self._observe_stream(stream)
        self._proposal = [stream.type]
        self._proposal_seq = -1  # set when its re-INVITE goes out
        self._sdp_before_proposal = self._local_sdp
        self._change_state("PROPOSING")
        self._post("SCSessionGotStreamProposal", proposer="local", streams=[stream.type])

        def send() -> None:
            self._send_reinvite()
            self._proposal_seq = self._offer_seq

        self._when_prepared([stream], "PROPOSING", send, lambda exc: self._proposal_failed(f"{exc}"))

    def _proposal_failed(self, reason: str) -> None:
        """Our proposal cannot go out (or was refused): back to the description before it."""
        self._drop_proposed_streams()
        self._proposal = None
        self._change_state("ESTABLISHED")
        self._post("SCSessionRejectedStreamProposal", proposer="local", reason=reason)

    def _drop_proposed_streams(self) -> None:
        if self._sdp_before_proposal is not None:
            keep = len(self._sdp_before_proposal.media)
            for index in range(keep, len(self._streams)):
                self._discard_stream(index)
            self._streams = self._streams[:keep]
            self._local_sdp = self._sdp_before_proposal
            self._sdp_before_proposal = None

    def _remove(self, index: int) -> None:
        self._set_aside(index)  # stopped when the other party has answered (dialog_events)
        try:
            self._send_reinvite()
        except SessionStateError:
            self._retire_leaving()
            self._refuse_line(index)
            raise
        self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

    def accept_proposal(self, audio: bool = False, chat: bool = False) -> None:
        """Accept the streams the other party proposed."""
        with self._lock:
            self._check_state("PROPOSED", "accept a proposal")
            if self._answering_proposal:
                raise SessionStateError("the proposal is being answered")
            proposed = self._proposal or []
            if audio and "audio" not in proposed:
                raise ValueError("audio was not proposed")
            if chat and "chat" not in proposed:
                raise ValueError("chat was not proposed")
            wanted = [kind for kind, yes in (("audio", audio), ("chat", chat)) if yes]
            if not wanted:
                raise ValueError("accept_proposal needs a stream; use reject_proposal() to refuse")
            remote = self._invitation.remote_sdp
            try:
                created = self._create_answer_streams(remote, wanted, None)
            except Exception as exc:
                self._reject_remote_proposal(f"cannot use the stream: {exc}")
                return
            proposal = self._proposal
            self._answering_proposal = True

            def answer() -> None:
                self._answering_proposal = False
                if self._proposal is not proposal:
                    self._forget_new_streams(created)
                    return
                try:
                    media = self._answer_media(remote)
                except Exception as exc:
                    self._forget_new_streams(created)
                    self._reject_remote_proposal(f"cannot use the stream: {exc}")
                    return
                self._local_sdp = self._make_sdp(media)
                self._start_streams(remote)
                self._invitation.send_response(200, sdp=self._local_sdp)
                self._proposal = None
                self._change_state("ESTABLISHED")
                self._post("SCSessionAcceptedStreamProposal", proposer="remote")
                self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

            def failed(exc: BaseException) -> None:
                self._answering_proposal = False
                self._forget_new_streams(created)
                if self.state == "PROPOSED":
                    self._reject_remote_proposal(f"cannot use the stream: {exc}")

            self._when_prepared(created, "PROPOSED", answer, failed)

    def reject_proposal(self) -> None:
        """Refuse the streams the other party proposed."""
        with self._lock:
            self._check_state("PROPOSED", "reject a proposal")
            if self._answering_proposal:
                raise SessionStateError("the proposal is being answered")
            self._reject_remote_proposal("rejected by the local party")

    def end(self) -> None:
        """End the session from any active state; WillEnd now, DidEnd once it is over."""
        with self._lock:
            if self.state in ("NULL", "TERMINATING", "TERMINATED"):
                return
            self._end_originator = "local"
            self._change_state("TERMINATING")
            self._post("SCSessionWillEnd")
            for stream in self.streams:
                if stream.type != "audio":
                    stream.will_end()
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
        # sipsimple.account.Account calls it route; minimal account objects may say outbound_proxy
        return getattr(self.account, "route", None) or getattr(self.account, "outbound_proxy", None)

    def _send_invite(self) -> None:
        account = self.account
        from_header = FromHeader(account.uri, getattr(account, "display_name", None))
        self._invitation = Invitation(from_header, ToHeader(self.remote_uri), route=self.route,
                                      credentials=getattr(account, "credentials", None))
        NotificationCenter().add_observer(self, sender=self._invitation)
        self._local_sdp = self._make_sdp(self._offer_media())
        self._invitation.send_invite(self._local_sdp)

    def _send_reinvite(self) -> None:
        """Offer our current streams; SessionStateError (and nothing changed) when the dialog is busy."""
        saved = (self._local_sdp, self._pending_offer, self._offer_seq)
        self._local_sdp = self._make_sdp(self._offer_media())
        self._pending_offer = self._local_sdp
        self._offer_seq += 1
        try:
            self._invitation.send_reinvite(self._local_sdp)
        except SIPCoreInvalidStateError as exc:
            # the other party's re-INVITE got in first (it is handled on the Engine thread)
            self._local_sdp, self._pending_offer, self._offer_seq = saved
            raise SessionStateError(f"a re-INVITE is in progress; try again when it is answered ({exc})") from None

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
        for index, stream in enumerate(self._streams):
            if stream is not None and stream.type == "file-transfer" and stream.direction == "outgoing" \
                    and stream.outcome is None:
                stream.outcome = "failed"  # told here, so that it comes before SCSessionDidEnd
                self._post("SCSessionDidNotDeliverFile", file_name=stream.file_name, code=0,
                           reason="the session ended before the file was delivered",
                           transferred_bytes=stream.transferred_bytes)
            self._discard_stream(index)
        self._retire_leaving()
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
        # events come from the Engine and media threads: handle them on the middleware loop.
        # MSRP streams post theirs on the loop already: handled at once, so that they keep
        # their order relative to the stream's state (a transfer's outcome before its end)
        if notification.name.startswith("MSRP") and MiddlewareLoop().in_loop():
            self._dispatch(notification)
        else:
            MiddlewareLoop().call_soon(self._dispatch, notification)

    def _dispatch(self, notification) -> None:
        handler = getattr(self, "_NH_" + notification.name, None)
        if handler is not None:
            with self._lock:
                handler(notification)
