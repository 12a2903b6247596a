"""What a Session does with its streams' events (mixed into Session).

Audio reports DTMF and silence; MSRP chat and file transfer report messages,
delivery, progress and failure. Each becomes the seed's ``SCSession*``
notification, and a failed or finished stream leaves the session (the session
ends when it was the last one).
"""

from __future__ import annotations

import logging
from typing import Any

from sipsimple.middleware import MiddlewareLoop

__all__ = ["StreamEvents", "FILE_FAILURE_GRACE"]

log = logging.getLogger("sipsimple.session")

FILE_FAILURE_GRACE = 5.0  # s a receiver whose file failed waits for the sender to end the session


class StreamEvents:
    """Stream event handlers of :class:`~sipsimple.session.session.Session`, run under its lock."""

    def _NH_AudioStreamGotDTMF(self, notification) -> None:
        self._post("SCSessionGotDTMF", digit=notification.data.digit)

    def _NH_AudioStreamGotNoAudio(self, notification) -> None:
        self._post("SCSessionGotNoAudio")

    def _live(self, stream: Any) -> bool:
        return self.state != "TERMINATED" and any(s is stream for s in self._streams)

    def _NH_MSRPChatGotMessage(self, notification) -> None:
        if self._live(notification.sender):
            data = notification.data
            self._post("SCSessionGotMessage", content=data.content, content_type=data.content_type,
                       cpim_headers=data.cpim_headers, message=data.message)

    def _NH_MSRPChatGotComposingIndication(self, notification) -> None:
        if self._live(notification.sender):
            data = notification.data
            self._post("SCSessionGotComposingIndication", state=data.state, refresh=data.refresh,
                       last_active=data.last_active, content_type=data.content_type)

    def _NH_MSRPChatDidDeliverMessage(self, notification) -> None:
        if self.state != "TERMINATED":
            data = notification.data
            self._post("SCSessionDidDeliverMessage", message_id=data.message_id, code=data.code,
                       reason=data.reason, message=data.message)

    def _NH_MSRPChatDidNotDeliverMessage(self, notification) -> None:
        if self.state != "TERMINATED":
            data = notification.data
            self._post("SCSessionDidNotDeliverMessage", message_id=data.message_id, code=data.code,
                       reason=data.reason, message=data.message)

    def _NH_MSRPChatDidFail(self, notification) -> None:
        self._stream_failed(notification.sender, notification.data.reason)

    def _NH_MSRPFileTransferDidFail(self, notification) -> None:
        self._stream_failed(notification.sender, notification.data.reason)

    def _NH_MSRPFileTransferGotProgress(self, notification) -> None:
        if self._live(notification.sender):
            data = notification.data
            self._post("SCSessionFileTransferProgress", direction=data.direction,
                       transferred_bytes=data.transferred_bytes, total_bytes=data.total_bytes)

    def _NH_MSRPFileTransferGotFile(self, notification) -> None:
        if self._live(notification.sender):
            data = notification.data
            self._post("SCSessionGotFile", file_name=data.file_name, size=data.size, hash=data.hash,
                       content_type=data.content_type)

    def _NH_MSRPFileTransferDidDeliverFile(self, notification) -> None:
        if self._live(notification.sender):
            data = notification.data
            self._post("SCSessionDidDeliverFile", file_name=data.file_name, size=data.size, hash=data.hash,
                       code=data.code, reason=data.reason)
            self._file_done(notification.sender)

    def _NH_MSRPFileTransferDidNotDeliverFile(self, notification) -> None:
        if self._live(notification.sender):
            data = notification.data
            self._post("SCSessionDidNotDeliverFile", file_name=data.file_name, code=data.code,
                       reason=data.reason, transferred_bytes=data.transferred_bytes)
            self._file_done(notification.sender)

    def _file_done(self, stream: Any) -> None:
        """The sender's file is done with: the transfer's session ends unless other streams remain."""
        index = next((i for i, s in enumerate(self._streams) if s is stream), None)
        if index is None:
            return
        if all(s is None or s is stream for s in self._streams):
            self.end()
        elif self.state == "ESTABLISHED" and self._can_reinvite():
            self._remove(index)

    def _stream_failed(self, stream: Any, reason: str) -> None:
        """An MSRP stream died: drop it; end the session when nothing else is left."""
        index = next((i for i, s in enumerate(self._streams) if s is stream), None)
        if index is None or self.state in ("TERMINATING", "TERMINATED"):
            return
        log.info("%s stream failed: %s", stream.type, reason)
        if self.state in ("CALLING", "ACCEPTING", "INCOMING"):
            self._stop_stream(index)
            if not self.streams:
                self._fail("local", 0, f"{stream.type} stream failed: {reason}")
            return
        if all(s is None or s is stream for s in self._streams):
            self._stop_stream(index)
            if stream.type == "file-transfer" and stream.direction == "incoming":
                # the sender ends the session when it learns of the failure (our REPORT goes
                # over MSRP, a BYE now could overtake it); end it ourselves if it does not
                MiddlewareLoop().call_later(FILE_FAILURE_GRACE, self._end_if_idle)
            else:
                self.end()
            return
        if self.state == "ESTABLISHED" and self._can_reinvite():
            self._remove(index)
        else:
            self._stop_stream(index)  # its port 0 goes out with the next offer or answer
            self._post("SCSessionGotStreamUpdate", streams=self._active_streams())

    def _end_if_idle(self) -> None:
        with self._lock:
            if self.state == "ESTABLISHED" and not self.streams:
                self.end()

    def _can_reinvite(self) -> bool:
        return self._invitation is not None and self._invitation.sub_state == "normal" and self._glare_handle is None
