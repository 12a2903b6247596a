"""MSRPFileTransfer: a file sent or received in a Session (RFC 5547 push over MSRP).

The sender offers (``Session.connect(uri, routes, file=PATH)``)::

    m=message PORT TCP/MSRP *
    a=path:msrp://...
    a=sendonly
    a=accept-types:*
    a=file-selector:name:"report.pdf" type:application/pdf size:12345 hash:sha-1:AB:...
    a=file-transfer-id:<random>
    a=file-disposition:attachment
    a=setup:actpass

The receiver (``Session.accept(file_transfer=True, directory=DIR)``) answers ``a=recvonly``
with the same file-selector and file-transfer-id. Data goes to a hidden ``.part`` file in
DIR that becomes the real file only when size and SHA-1 match the offer (a mismatch deletes
it and the transfer fails). If an earlier attempt left a ``.part`` file for the same name
and hash, the answer carries ``a=file-range:N-SIZE`` (N = the first byte missing) and the
sender sends from there: an interrupted transfer resumes where it stopped. (RFC 5547 puts
file-range in the offer of a pull; taking it from the answer of a push is our extension: a
sender that ignores it sends everything, which the receiver also accepts.)

Notifications (sender: the MSRPFileTransfer), besides the life cycle ones of
:mod:`sipsimple.streams.msrp_base` (MSRPFileTransferDidInitialize, DidStart, DidFail,
WillEnd, DidEnd):

- ``MSRPFileTransferGotProgress``: direction ("outgoing"/"incoming"), transferred_bytes,
  total_bytes (the file size; resumed bytes count as transferred), at most every
  :data:`PROGRESS_INTERVAL` s and at the end.
- ``MSRPFileTransferGotFile`` (receiver): file_name (the final path), size, hash, content_type.
- ``MSRPFileTransferDidDeliverFile`` (sender): file_name, size, hash, code, reason.
- ``MSRPFileTransferDidNotDeliverFile`` (sender): file_name, code (0 for a local failure),
  reason, transferred_bytes.

A receiver whose file fails (hash or size mismatch, connection lost) posts
MSRPFileTransferDidFail with the reason.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import secrets
import time
from pathlib import Path
from typing import Any

from sipsimple.core.sdp import SDPAttribute, SDPMediaStream
from sipsimple.msrp.errors import FileTransferError, MSRPError, MSRPTransactionError
from sipsimple.msrp.filesink import FileSink
from sipsimple.msrp.filetransfer import file_hash, send_file
from sipsimple.msrp.messages import IncomingMessage
from sipsimple.streams.msrp_base import MSRPStreamBase, MSRPStreamError, error_code
from sipsimple.streams.msrp_sdp import FileRange, FileSelector, SDPValueError, parse_file_transfer_id

__all__ = ["MSRPFileTransfer", "file_selector_of", "PROGRESS_INTERVAL"]

PROGRESS_INTERVAL = 0.25
FILE_CHUNK_SIZE = 64 * 1024


def file_selector_of(media: SDPMediaStream) -> FileSelector | None:
    """The parsed a=file-selector of an m-line (None when absent or malformed)."""
    value = media.attributes.getfirst("file-selector")  # type: ignore[attr-defined]
    if not value:
        return None
    try:
        return FileSelector.parse(value)
    except SDPValueError:
        return None


class MSRPFileTransfer(MSRPStreamBase):
    """One file, either sent (``path`` given) or received into ``directory``."""

    type = "file-transfer"
    prefix = "MSRPFileTransfer"
    chunk_size = FILE_CHUNK_SIZE

    def __init__(self, account: Any, *, path: str | os.PathLike | None = None,
                 directory: str | os.PathLike | None = None, content_type: str | None = None,
                 local_ip: str | None = None) -> None:
        super().__init__(account, local_ip)
        if (path is None) == (directory is None):
            raise ValueError("give either path (to send) or directory (to receive)")
        self.direction = "outgoing" if path is not None else "incoming"
        self.path = Path(path) if path is not None else None
        self.directory = Path(directory) if directory is not None else None
        self.content_type = content_type
        self.selector: FileSelector | None = None
        self.transfer_id = secrets.token_hex(8)
        self.start_offset = 0
        """0-based offset the transfer (re)started from (non-zero when resumed)."""
        self.transferred_bytes = 0
        self.sink: FileSink | None = None
        self.received_path: Path | None = None
        self.outcome: str | None = None
        """None while the transfer is open; then "delivered"/"received" or "failed"."""
        self._last_progress = 0.0
        if self.path is not None and not self.path.is_file():
            raise FileNotFoundError(f"no such file: {self.path}")

    @property
    def file_name(self) -> str | None:
        if self.path is not None:
            return str(self.path)
        return str(self.received_path) if self.received_path is not None else None

    # ---------------------------------------------------------------- prepare

    async def _prepare_payload(self) -> None:
        if self.path is None:
            return
        size = self.path.stat().st_size
        digest = await asyncio.to_thread(file_hash, self.path)
        content_type = self.content_type or mimetypes.guess_type(self.path.name)[0] or "application/octet-stream"
        self.content_type = content_type
        self.selector = FileSelector(self.path.name, content_type, size, digest)

    # -------------------------------------------------------------------- SDP

    def _attributes(self, offer: bool) -> list[SDPAttribute]:
        assert self.selector is not None
        attrs = [SDPAttribute("sendonly" if self.direction == "outgoing" else "recvonly"),
                 SDPAttribute("accept-types", self.selector.type or "*" if offer else "*"),
                 SDPAttribute("file-selector", str(self.selector)),
                 SDPAttribute("file-transfer-id", self.transfer_id),
                 SDPAttribute("file-disposition", "attachment")]
        if self.sink is not None and self.sink.resume_offset and self.selector.size:
            attrs.append(SDPAttribute("file-range", str(FileRange(self.sink.resume_offset + 1, self.selector.size))))
        return attrs

    def answer(self, remote_sdp, remote_media: SDPMediaStream, direction: str | None = None) -> SDPMediaStream:
        if self.local_media is None:
            if self.direction != "incoming":
                raise MSRPStreamError("a sending file transfer cannot answer an offer")
            selector = file_selector_of(remote_media)
            if selector is None or not selector.name:
                raise MSRPStreamError("the file offer has no usable a=file-selector")
            if remote_media.direction not in ("sendonly", "sendrecv"):
                raise MSRPStreamError("only pushed files (a=sendonly) are supported")
            transfer_id = remote_media.attributes.getfirst("file-transfer-id")  # type: ignore[attr-defined]
            try:
                self.transfer_id = parse_file_transfer_id(transfer_id) if transfer_id else self.transfer_id
            except SDPValueError as exc:
                raise MSRPStreamError(str(exc)) from None
            self.selector = selector
            self.content_type = selector.type or "application/octet-stream"
            assert self.directory is not None
            self.sink = FileSink(self.directory, selector.name, expected_size=selector.size,
                                 expected_hash=selector.hash, resume=True, progress=self._progress)
            self.start_offset = self.sink.resume_offset
        return super().answer(remote_sdp, remote_media, direction)

    # ---------------------------------------------------------------- sending

    def _started(self) -> None:
        if self.direction != "outgoing":
            return
        assert self.msrp is not None and self.path is not None and self.selector is not None
        size = self.selector.size or 0
        offset = 0
        value = self.remote_media.attributes.getfirst("file-range") if self.remote_media is not None else None
        if value:
            try:
                offset = min(FileRange.parse(value).offset, size)
            except SDPValueError:
                offset = 0
        self.start_offset = offset
        self.transferred_bytes = offset
        try:
            outgoing = send_file(self.msrp, self.path, content_type=self.content_type or "application/octet-stream",
                                 start=offset, success_report=True, progress=self._progress)
        except (MSRPError, OSError) as exc:
            self._not_delivered(error_code(exc), str(exc))
            return
        self._task = asyncio.get_running_loop().create_task(self._outcome(outgoing))

    async def _outcome(self, outgoing) -> None:
        try:
            result = await outgoing.wait()
        except MSRPError as exc:
            self._not_delivered(error_code(exc), getattr(exc, "comment", None) or str(exc))
            return
        except asyncio.CancelledError:
            self._not_delivered(0, "the transfer was stopped")
            raise
        assert self.selector is not None
        if self.outcome is not None:
            return
        self.outcome = "delivered"
        self._progress(self.selector.size or 0, self.selector.size, force=True)
        self._post("DidDeliverFile", file_name=str(self.path), size=self.selector.size, hash=self.selector.hash,
                   code=result.code, reason=result.comment)

    def _not_delivered(self, code: int, reason: str) -> None:
        if self.outcome is not None:
            return
        self.outcome = "failed"
        self._post("DidNotDeliverFile", file_name=str(self.path), code=code, reason=reason,
                   transferred_bytes=self.transferred_bytes)

    def _failed(self, code: int, reason: str) -> None:
        if self.direction == "outgoing" and self.state == "failed":
            self._not_delivered(code, reason)

    # -------------------------------------------------------------- receiving

    def _session_callbacks(self) -> dict[str, Any]:
        return {"on_incoming": self._incoming, "on_message": self._received, "on_message_failed": self._lost}

    def _incoming(self, message: IncomingMessage) -> FileSink:
        if self.direction != "incoming" or self.sink is None or self.received_path is not None:
            raise MSRPTransactionError(403, "no file expected on this stream")
        if self.selector is not None and self.selector.size is not None and message.total is not None \
                and message.total != self.selector.size:
            raise MSRPTransactionError(413, "size differs from the file-selector")
        return self.sink

    def _received(self, message: IncomingMessage) -> None:
        assert self.sink is not None and self.selector is not None
        self.received_path = self.sink.path
        self.outcome = "received"
        self._progress(self.selector.size or 0, self.selector.size, force=True)
        self._post("GotFile", file_name=str(self.sink.path), size=self.selector.size, hash=self.selector.hash,
                   content_type=self.content_type)

    def _lost(self, message: IncomingMessage, exc: BaseException) -> None:
        if self.state in ("ending", "ended", "failed"):
            return
        if isinstance(exc, FileTransferError):
            self._fail(0, str(exc))
        else:
            self._fail(error_code(exc), f"the file did not arrive: {exc}")

    # --------------------------------------------------------------- progress

    def _progress(self, done: int, total: int | None, force: bool = False) -> None:
        self.transferred_bytes = done
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        self._post("GotProgress", direction=self.direction, transferred_bytes=done,
                   total_bytes=total if total is not None else (self.selector.size if self.selector else None))
