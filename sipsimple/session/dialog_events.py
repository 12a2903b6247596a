"""What a Session does with its INVITE dialog's events (mixed into Session).

The Invitation reports each change of the dialog as ``SCInvitationChangedState``;
this turns them into the session's transitions: ringing and early media, the
answer to our INVITE, the other party's re-INVITEs (hold, unhold, proposals,
removals), the answers to ours (with RFC 3261's 491 retry), and the end.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sipsimple.middleware import MiddlewareLoop
from sipsimple.session import sdp_negotiation as neg
from sipsimple.session.outcome import SessionError, SessionStateError
from sipsimple.session.stream_set import neg_direction

__all__ = ["DialogEvents"]

log = logging.getLogger("sipsimple.session")


class DialogEvents:
    """INVITE dialog event handlers of :class:`~sipsimple.session.session.Session`, run under its lock."""

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
            self._start_streams(remote, kinds=("audio",))
        except Exception as exc:
            log.warning("early media could not start: %s", exc)

    def _outgoing_answered(self, remote) -> None:
        self._post("SCSessionWillStart")
        if remote is None:
            self._fail("remote", 0, "the answer has no SDP")
            return
        try:
            self._start_streams(remote)
        except Exception as exc:
            self._fail("local", 0, f"cannot use the answer: {exc}")
            return
        if not self.streams:
            self._fail("remote", 0, "the other party rejected every stream")

    def _started(self) -> None:
        self.start_time = datetime.now(UTC)
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
        proposal = []
        for index, line in enumerate(remote.media):
            kind = neg.stream_type(line)
            if line.port == 0 or kind not in ("audio", "chat") or kind in proposal or self._find(kind)[1] is not None:
                continue
            # a new m-line, or one refused so far that the other party brings back
            if index >= known or (self._local_sdp.media[index].port == 0 and
                                  (index >= len(self._streams) or self._streams[index] is None)):
                proposal.append(kind)
        if proposal:
            self._proposal = proposal
            self._change_state("PROPOSED")
            self._post("SCSessionGotStreamProposal", proposer="remote", streams=proposal)
            return
        self._answer_update(remote)

    def _answer_update(self, remote) -> None:
        """A re-INVITE that adds nothing: hold, unhold, removal or a refresh."""
        had = self._active_streams()
        was_held = self.on_hold_by_remote
        for index, stream in enumerate(list(self._streams)):
            if stream is None:
                continue
            line = remote.media[index] if index < len(remote.media) else None
            if line is None or line.port == 0:
                self._stop_stream(index)
            elif stream.type == "audio":
                self.on_hold_by_remote = neg_direction(remote, line) in ("sendonly", "inactive")
        if len(self._streams) < len(remote.media):
            self._streams += [None] * (len(remote.media) - len(self._streams))
        try:
            media = self._answer_media(remote)
        except Exception as exc:
            self._invitation.send_response(488, "Not Acceptable Here")
            log.warning("cannot answer the re-INVITE: %s", exc)
            return
        self._local_sdp = self._make_sdp(media)
        self._invitation.send_response(200, sdp=self._local_sdp)
        try:
            self._start_streams(remote)
        except Exception as exc:
            log.warning("stream update failed: %s", exc)
        if self.on_hold_by_remote and not was_held:
            self._post("SCSessionGotHoldRequest", originator="remote")
            self._post("SCSessionDidChangeHoldState", originator="remote", on_hold=True)
        elif was_held and not self.on_hold_by_remote:
            self._post("SCSessionGotUnholdRequest", originator="remote")
            self._post("SCSessionDidChangeHoldState", originator="remote", on_hold=False)
        if had != self._active_streams():
            self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

    def _got_reinvite_answer(self, data) -> None:
        self._answer_seq += 1
        if self._answer_seq < self._offer_seq:
            # the answer to a re-INVITE a newer one superseded (we sent that one as soon as the
            # dialog allowed, before this event reached the loop): the newer answer rules
            log.debug("ignoring the answer to a superseded re-INVITE")
            return
        code = data.code
        proposing = self.state == "PROPOSING" and self._proposal_seq == self._answer_seq
        if code == 491:
            delay = neg.glare_delay(self.direction == "outgoing")
            self._glare_handle = MiddlewareLoop().call_later(delay, self._retry_after_glare)
            return
        self._retire_leaving()
        if 200 <= code < 300 and data.sdp is not None:
            try:
                self._start_streams(data.sdp)
            except Exception as exc:
                log.warning("cannot use the re-INVITE answer: %s", exc)
                if proposing:
                    self._forget_new_streams(self._proposed_streams())
            self._hold_answered(True)
            if proposing:
                accepted = bool(self._proposed_streams())
                self._proposal = None
                self._sdp_before_proposal = None
                self._change_state("ESTABLISHED")
                if accepted:
                    self._post("SCSessionAcceptedStreamProposal", proposer="local")
                    self._post("SCSessionGotStreamUpdate", streams=self._active_streams())
                else:
                    self._post("SCSessionRejectedStreamProposal", proposer="local",
                               reason="the other party refused the stream")
            return
        if proposing:
            self._proposal_failed(f"{code} {data.reason}".strip())
        elif code >= 300:
            log.info("re-INVITE refused: %s %s", code, data.reason)
        self._hold_answered(200 <= code < 300)

    def _hold_answered(self, accepted: bool) -> None:
        """Our hold or unhold is answered: it took effect, or (refused) the flag goes back."""
        if self.on_hold_by_local == self._local_hold_in_effect:
            return
        if accepted:
            self._local_hold_in_effect = self.on_hold_by_local
            self._post("SCSessionDidChangeHoldState", originator="local", on_hold=self.on_hold_by_local)
        else:
            log.warning("the other party refused our %s", "hold" if self.on_hold_by_local else "unhold")
            self.on_hold_by_local = self._local_hold_in_effect

    def _retry_after_glare(self) -> None:
        with self._lock:
            self._glare_handle = None
            if self.state not in ("ESTABLISHED", "PROPOSING"):
                return
            try:
                if self._invitation.sub_state != "normal":
                    raise SessionStateError("the other party's re-INVITE is being handled")
                self._send_reinvite()
            except SessionStateError:
                # our offer still has to go out: try again once the other exchange is over
                self._glare_handle = MiddlewareLoop().call_later(0.2, self._retry_after_glare)
                return
            if self.state == "PROPOSING":
                self._proposal_seq = self._offer_seq

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
