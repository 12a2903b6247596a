"""Message-level objects of an MSRP session: what is being sent and what is arriving.

* :class:`OutgoingMessage` -- a message being sent in chunks; ``await message.wait()``
  gives a :class:`DeliveryResult` or raises (non-2xx response, failure REPORT, timeout,
  abort).  ``message.abort()`` stops it, cutting the current chunk with ``#``.
* :class:`IncomingMessage` -- a message being reassembled from chunks (by Byte-Range)
  into a :class:`MessageSink`: :class:`MemorySink` by default, or anything the session's
  ``on_incoming`` callback returns (a file, see :mod:`sipsimple.msrp.filetransfer`).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import MSRPAbortedError, MSRPTransactionError
from .message import MSRPData, canonical_header_name
from .ranges import ByteRanges

if TYPE_CHECKING:
    from .transport import MSRPConnection

__all__ = [
    "DeliveryResult",
    "OutgoingMessage",
    "IncomingMessage",
    "MessageSink",
    "MemorySink",
    "ProgressCallback",
]

READ_AHEAD = 256 * 1024
"""A file being sent is read this much at a time (chunks smaller than that are cut from it)."""
RESERVED_HEADERS = frozenset(
    ("To-Path", "From-Path", "Message-ID", "Byte-Range", "Content-Type", "Success-Report", "Failure-Report")
)
"""Headers of a chunk that the session sets itself; ``send_message(headers=...)`` may not."""
_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")

ProgressCallback = Callable[[int, int | None], None]
"""``progress(bytes_done, total)``: bytes confirmed so far (or written, without responses)."""


@dataclass(frozen=True)
class DeliveryResult:
    """How an outgoing message ended well: the code/comment and the frame that told us."""

    message_id: str
    code: int
    comment: str
    frame: MSRPData | None


class OutgoingMessage:
    """A message queued on a session.  Body is ``bytes`` or a readable binary file object."""

    def __init__(
        self,
        message_id: str,
        content_type: str,
        source: bytes | IO[bytes],
        total: int,
        *,
        start: int = 0,
        success_report: bool = False,
        failure_report: str = "yes",
        headers: dict[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        if failure_report not in ("yes", "no", "partial"):
            raise ValueError(f"bad failure_report {failure_report!r}")
        if not 0 <= start <= total:
            raise ValueError(f"start {start} outside 0..{total}")
        if "\r" in content_type or "\n" in content_type:
            raise ValueError(f"line break in content type {content_type!r}")
        for name, value in (headers or {}).items():
            if canonical_header_name(name) in RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by the session, not by the caller")
            if not _HEADER_NAME_RE.match(name) or "\r" in value or "\n" in value:
                raise ValueError(f"bad header {name!r}: {value!r}")
        self.message_id = message_id
        self.content_type = content_type
        self.source = source
        self.total = total
        self.start = start
        self.success_report = success_report
        self.failure_report = failure_report
        self.headers = dict(headers or {})
        self.progress = progress
        self.bytes_sent = start
        self.bytes_acked = start
        self.reported = ByteRanges()
        self.aborted = False
        self.last_response: MSRPData | None = None
        self.result: asyncio.Future[DeliveryResult] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task | None = None
        self._block = b""  # read ahead from a file source, starting at _block_at
        self._block_at = 0
        self._block_view = memoryview(b"")

    def __repr__(self) -> str:
        return f"<OutgoingMessage {self.message_id} {self.content_type} {self.bytes_acked}/{self.total}>"

    @property
    def done(self) -> bool:
        return self.result.done()

    def abort(self) -> None:
        """Stop sending: the chunk in progress is ended with ``#``; ``wait()`` raises."""
        if not self.result.done():
            self.aborted = True
            self.fail(MSRPAbortedError("aborted by local request"))

    def is_aborted(self) -> bool:
        return self.aborted or self.result.done()

    async def wait(self) -> DeliveryResult:
        """Wait for the outcome (re-raises the failure)."""
        return await asyncio.shield(self.result)

    # used by the session
    def succeed(self, code: int, comment: str, frame: MSRPData | None) -> None:
        if not self.result.done():
            self.result.set_result(DeliveryResult(self.message_id, code, comment, frame))

    def fail(self, exc: BaseException) -> None:
        if not self.result.done():
            self.result.set_exception(exc)
            self.result.exception()  # retrieved: nobody has to await a failed fire-and-forget message

    def read(self, offset: int, size: int) -> bytes | memoryview:
        """``size`` bytes of the body at 0-based ``offset`` (a read-only view where possible).

        A file is read :data:`READ_AHEAD` bytes at a time and small chunks are cut from that:
        one read call for many 2 KiB chunks.  What is read ahead is at most that much.
        """
        source = self.source
        if type(source) is bytes:
            return memoryview(source)[offset : offset + size]
        if isinstance(source, bytes | bytearray | memoryview):
            return bytes(memoryview(source)[offset : offset + size])  # the caller may change it later
        at = offset - self._block_at
        if 0 <= at and at + size <= len(self._block):
            return self._block_view[at : at + size]
        want = size if size >= READ_AHEAD else min(READ_AHEAD, self.total - offset)
        if source.tell() != offset:
            source.seek(offset)
        data = source.read(want)
        if len(data) < size:
            raise MSRPTransactionError(
                400, f"source ended early at byte {offset + len(data)} of {self.total}"
            )
        if want == size:
            return data
        self._block, self._block_at, self._block_view = data, offset, memoryview(data)
        return self._block_view[:size]

    def report_progress(self, done: int) -> None:
        if self.progress is not None:
            try:
                self.progress(done, self.total)
            except Exception:  # a callback bug must not break the transfer
                import logging

                logging.getLogger(__name__).exception("progress callback failed")


@runtime_checkable
class MessageSink(Protocol):
    """Where an incoming message's bytes go.

    ``write`` and ``complete`` either finish before they return (and return None) or
    return an awaitable that finishes later (work done in a thread): the session then
    answers the chunk, or sends the Success-Report, only once it is done, and treats its
    exception like one raised at once.

    The bytes handed to ``write`` are ``bytes`` *or* a read-only ``memoryview``: a body of
    16 KiB or more, and a piece of a body that arrives over several reads, is normally a
    view of the bytes read from the socket, not a copy.  A sink uses them through the buffer
    protocol (``file.write``, ``os.pwrite``, ``hashlib`` ``update``, ``bytearray +=``)
    or ``bytes(data)``, not ``bytes`` methods such as ``decode``.  The view stays valid
    after ``write`` returns (a sink may queue it to a thread), but while it is kept it
    keeps the whole read (up to 1 MiB) in memory: copy what is kept for long.
    """

    def initial_ranges(self) -> list[tuple[int, int]]:
        """Byte ranges (1-based, inclusive) already present, e.g. from an earlier attempt."""
        ...

    def write(self, offset: int, data: bytes | memoryview) -> Awaitable[Any] | None:
        """Store ``data`` at 0-based ``offset``; raise to refuse the chunk (413 is answered).

        ``data`` is ``bytes`` or a read-only ``memoryview`` of the received bytes (see above).
        """
        ...

    def complete(self, message: IncomingMessage) -> Awaitable[Any] | None:
        """All bytes arrived; raise to turn it into a failure."""
        ...

    def abort(self, message: IncomingMessage, reason: BaseException) -> None:
        """The message will not complete (aborted, connection lost, session closed)."""
        ...


class MemorySink:
    """Collects the message in a bytearray, refusing more than ``max_size`` bytes."""

    def __init__(self, max_size: int = 16 * 1024 * 1024) -> None:
        self.max_size = max_size
        self.buffer = bytearray()

    def initial_ranges(self) -> list[tuple[int, int]]:
        return []

    def write(self, offset: int, data: bytes | memoryview) -> None:
        end = offset + len(data)
        if end > self.max_size:
            raise MSRPTransactionError(413, "message too large for memory")
        buffer = self.buffer
        if offset == len(buffer):
            buffer += data
            return
        if end > len(buffer):
            buffer.extend(bytes(end - len(buffer)))
        buffer[offset:end] = data

    def complete(self, message: IncomingMessage) -> None:
        pass

    def abort(self, message: IncomingMessage, reason: BaseException) -> None:
        self.buffer.clear()


class IncomingMessage:
    """A message being received; ``body`` is available when it used a :class:`MemorySink`."""

    def __init__(self, first: MSRPData) -> None:
        self.message_id: str = first.message_id or ""
        self.content_type: str | None = first.content_type
        self.first_frame = first
        self.last_frame = first
        byte_range = first.byte_range
        self.total: int | None = byte_range.total if byte_range is not None else None
        self.success_report = first.success_report
        self.failure_report = first.failure_report
        self.received = ByteRanges()
        self.sink: MessageSink = MemorySink()
        self.rejected: MSRPTransactionError | None = None
        self.chunks = 0
        self.error: BaseException | None = None
        # Bookkeeping of the session for sinks that store asynchronously: writes not
        # finished ([sequence number, finished flag]), chunk ends waiting for the writes before
        # them (sequence number of the last such write, connection, frame), bytes not yet
        # stored, and the connection whose reading is paused until they are.
        self.write_seq = 0
        self.writes: deque[list] = deque()
        self.steps: deque[tuple[int, MSRPConnection, MSRPData]] = deque()
        self.write_backlog = 0
        self.paused: MSRPConnection | None = None

    def __repr__(self) -> str:
        return f"<IncomingMessage {self.message_id} {self.content_type} {self.received.total}/{self.total}>"

    @property
    def headers(self) -> dict[str, str]:
        return self.first_frame.headers

    @property
    def body(self) -> bytes:
        """The content (only for in-memory messages)."""
        if isinstance(self.sink, MemorySink):
            return bytes(self.sink.buffer)
        raise AttributeError("message was not received into memory")

    @property
    def bytes_received(self) -> int:
        return self.received.total

    def reject(self, code: int = 413, comment: str = "Message Too Large") -> None:
        """Refuse the rest of the message: its next chunk is answered with ``code``."""
        self.rejected = MSRPTransactionError(code, comment)
