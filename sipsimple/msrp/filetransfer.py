"""File transfer building blocks (RFC 5547) on top of :class:`~sipsimple.msrp.session.MSRPSession`.

* :func:`file_hash` / :func:`format_sha1` / :func:`parse_hash` -- the ``hash:sha-1:AB:CD:..``
  value of ``a=file-selector``.
* :func:`send_file` -- send a file (or its tail, for resume) chunk by chunk from disk.
* :class:`FileSink` -- receive into a directory: data goes to a hidden ``.part`` file, which
  is renamed to the real name only after size and SHA-1 check out.  A mismatch deletes it;
  an interrupted transfer keeps it, and :attr:`FileSink.resume_offset` says where to resume.
  Writing, hashing and the final fsync run in a thread of the sink.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import hashlib
import os
import queue
import re
import threading
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import FileTransferError
from .messages import IncomingMessage, OutgoingMessage, ProgressCallback

if TYPE_CHECKING:
    from .session import MSRPSession

__all__ = ["file_hash", "format_sha1", "parse_hash", "send_file", "FileSink", "safe_filename"]

_HASH_RE = re.compile(r"^(sha-1):((?:[0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2})$")
_READ_SIZE = 1024 * 1024
ASYNC_WRITE_MIN = 32 * 1024
"""Pieces this large are written by the sink's thread, not on the event loop."""
REPORT_STEP = 1024 * 1024
"""The sink's thread tells the loop about stored pieces at least every this many bytes."""
WRITEBACK_STEP = 8 * 1024 * 1024
"""After this many bytes the kernel is asked to start writing them out (the final fsync waits less)."""


def _writeback_starter():
    """Linux ``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: start writing dirty pages, not waiting."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError, TypeError):  # no such libc function here
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return lambda fd: function(fd, 0, 0, 2)


_start_writeback = _writeback_starter()


def format_sha1(digest: bytes) -> str:
    """``sha-1:AB:CD:...`` (RFC 5547 hash value, upper-case hex pairs)."""
    return "sha-1:" + ":".join(f"{byte:02X}" for byte in digest)


def parse_hash(value: str) -> tuple[str, bytes]:
    """Parse ``sha-1:AB:...`` (a leading ``hash:`` is accepted) into (algorithm, digest)."""
    if value.startswith("hash:"):
        value = value[5:]
    match = _HASH_RE.match(value)
    if match is None:
        raise ValueError(f"bad file hash {value!r}")
    return match.group(1).lower(), bytes.fromhex(match.group(2).replace(":", ""))


def file_hash(path: str | os.PathLike, end: int | None = None) -> str:
    """SHA-1 of a file (or of its first ``end`` bytes) as ``sha-1:AB:...``."""
    sha = hashlib.sha1()
    remaining = end
    with open(path, "rb") as f:
        while remaining is None or remaining > 0:
            size = _READ_SIZE if remaining is None else min(_READ_SIZE, remaining)
            data = f.read(size)
            if not data:
                break
            sha.update(data)
            if remaining is not None:
                remaining -= len(data)
    return format_sha1(sha.digest())


def safe_filename(name: str) -> str:
    """A file name that stays inside the target directory (no separators, no dot-files)."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lstrip(".")
    name = "".join(ch for ch in name if ch >= " " and ch != "\x7f")
    return name or "unnamed"


def send_file(
    session: MSRPSession,
    path: str | os.PathLike,
    *,
    content_type: str = "application/octet-stream",
    start: int = 0,
    success_report: bool = True,
    progress: ProgressCallback | None = None,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> OutgoingMessage:
    """Send ``path`` over ``session`` from 0-based offset ``start``; the file is closed at the end."""
    f: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by the done callback
    size = os.fstat(f.fileno()).st_size
    try:
        message = session.send_message(
            f,
            content_type,
            size=size,
            start=start,
            success_report=success_report,
            progress=progress,
            message_id=message_id,
            headers=headers,
        )
    except BaseException:
        f.close()
        raise
    message.result.add_done_callback(lambda _: f.close())
    return message


def _settle(future: asyncio.Future, result: object, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class FileSink:
    """Receives one file into ``directory`` (see module doc).

    ``expected_hash`` is the ``sha-1:..`` from the offer (None: not checked);
    ``expected_size`` likewise.  With ``resume`` an existing ``.part`` file of an earlier
    attempt is kept and reported through :meth:`initial_ranges`.

    Large pieces (:data:`ASYNC_WRITE_MIN` and up) are written and hashed by a thread of the
    sink, so the event loop goes on receiving meanwhile: :meth:`write` then returns a future,
    done once the bytes are in the file (the session answers the chunk only then).  The
    thread takes pieces from a queue as they come and reports them back in groups (at most
    :data:`REPORT_STEP` bytes, fewer when the queue runs dry).  Small pieces are written at
    once while nothing is queued, as is everything when no loop runs.  :meth:`complete`
    (truncate, fsync, hash check, rename) always runs in the thread.
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        filename: str,
        *,
        expected_size: int | None = None,
        expected_hash: str | None = None,
        resume: bool = True,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.filename = safe_filename(filename)
        self.expected_size = expected_size
        self.expected_hash = None
        if expected_hash is not None:
            algorithm, digest = parse_hash(expected_hash)
            self.expected_hash = format_sha1(digest)
        self.progress = progress
        tag = self.expected_hash[6:17].replace(":", "") if self.expected_hash else "nohash"
        self.part_path = self.directory / f".{self.filename}.{tag}.part"
        self.path: Path | None = None  # final path, once complete
        self.directory.mkdir(parents=True, exist_ok=True)
        if not resume and self.part_path.exists():
            self.part_path.unlink()
        self._fd: int | None = None
        self._sha = hashlib.sha1()
        self._hashed = 0  # the file's first _hashed bytes are written and hashed, in order
        self._sequential = True  # no write has gone elsewhere than at _hashed
        self._written = 0
        self._written_back = 0  # _written when the kernel was last asked to write back
        # the writer thread: a queue of (sequence number, offset, data) or (None, job, future),
        # and on the loop the futures of queued pieces, in order: (sequence number, future, end)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue | None = None
        self._thread: threading.Thread | None = None
        self._queued: deque[tuple[int, asyncio.Future[None], int]] = deque()
        self._seq = 0
        self._dropping = False  # abort(): the thread skips what is still queued
        existing = self.part_path.stat().st_size if self.part_path.exists() else 0
        if expected_size is not None and existing > expected_size:
            self.part_path.unlink()
            existing = 0
        self.resume_offset = existing
        """Bytes already on disk from an earlier attempt (0-based offset to resume from)."""

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.part_path, os.O_RDWR | os.O_CREAT, 0o666)
            if self.resume_offset:
                position = 0
                while position < self.resume_offset:
                    data = os.pread(self._fd, min(_READ_SIZE, self.resume_offset - position), position)
                    if not data:
                        break
                    self._sha.update(data)
                    position += len(data)
                self._hashed = position
        return self._fd

    def _store(self, offset: int, data: bytes | memoryview) -> None:
        """Write and hash one piece (on the loop, or in the sink's thread: never both at a time)."""
        fd = self._open()
        size = len(data)
        with memoryview(data) as view:
            done = os.pwrite(fd, view, offset)
            while done < size:  # a short write (a signal, a full disk) goes on where it stopped
                done += os.pwrite(fd, view[done:], offset + done)
        if offset == self._hashed and self._sequential:
            self._sha.update(data)
            self._hashed += size
        else:
            self._sequential = False
        self._written += size

    def _report(self, end: int) -> None:
        if self.progress is not None:
            self.progress(end, self.expected_size)

    # ------------------------------------------------------------------ MessageSink
    def initial_ranges(self) -> list[tuple[int, int]]:
        return [(1, self.resume_offset)] if self.resume_offset else []

    def write(self, offset: int, data: bytes | memoryview) -> asyncio.Future[None] | None:
        if self.expected_size is not None and offset + len(data) > self.expected_size:
            raise FileTransferError(f"data beyond the announced size {self.expected_size}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        # (the first write of a resumed transfer hashes what is on disk: never on the loop)
        small = len(data) < ASYNC_WRITE_MIN and (self._fd is not None or not self.resume_offset)
        if loop is None or (small and not self._queued):
            self._store(offset, data)
            self._report(offset + len(data))
            return None
        self._seq += 1
        future = loop.create_future()
        self._queued.append((self._seq, future, offset + len(data)))
        self._start_thread(loop).put((self._seq, offset, data))
        return future

    def complete(self, message: IncomingMessage) -> asyncio.Future[None] | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # used without a loop: all at once
            self._finish(message.total)
            return None
        future = loop.create_future()
        self._start_thread(loop).put((None, functools.partial(self._finish, message.total), future))
        self._queue = None  # the thread ends after this job
        return future

    def _start_thread(self, loop: asyncio.AbstractEventLoop) -> queue.SimpleQueue:
        if self._queue is None:
            self._loop = loop
            self._queue = queue.SimpleQueue()
            # a daemon thread: a sink that nobody completes or aborts cannot hold up the exit
            self._thread = threading.Thread(target=self._run, args=(self._queue,), name="msrp-file-sink",
                                            daemon=True)
            self._thread.start()
        return self._queue

    def _run(self, jobs: queue.SimpleQueue) -> None:
        """The thread: store pieces in order; report them back to the loop per :data:`REPORT_STEP` bytes
        or when the queue runs dry, whichever comes first."""
        failure: BaseException | None = None
        while True:
            item = jobs.get()
            stored = 0  # sequence number of the last piece stored and not reported yet
            run = 0  # bytes since the last report
            while item is not None:
                seq, what, data = item
                if seq is None:  # a job (complete), last in line
                    self._report_back(stored, failure)
                    stored = 0
                    try:
                        outcome: tuple[object, BaseException | None] = (what(), None)
                    except BaseException as exc:  # reported to whoever awaits the job
                        outcome = (None, exc)
                    self._call_loop(_settle, data, *outcome)
                    return
                if failure is None and not self._dropping:
                    try:
                        self._store(what, data)
                    except BaseException as exc:  # the disk is full...: this and all later pieces fail
                        failure = exc
                stored = seq
                run += len(data)
                if run >= REPORT_STEP:  # acknowledge as it goes: the sender and reading go on sooner
                    self._report_back(stored, failure)
                    stored = run = 0
                    self._write_back()
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    item = None
            self._report_back(stored, failure)
            if self._dropping:
                return
            self._write_back()

    def _write_back(self) -> None:
        """Have the kernel start writing what is dirty (only a hint: complete() still fsyncs)."""
        if _start_writeback is not None and self._written - self._written_back >= WRITEBACK_STEP:
            self._written_back = self._written
            _start_writeback(self._fd)

    def _report_back(self, stored: int, failure: BaseException | None) -> None:
        if stored:
            self._call_loop(self._stored_through, stored, failure)

    def _call_loop(self, callback, *args) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _stored_through(self, seq: int, failure: BaseException | None) -> None:
        """On the loop: the pieces up to ``seq`` are stored (or, with ``failure``, failed)."""
        end = 0
        queued = self._queued
        while queued and queued[0][0] <= seq:
            _, future, piece_end = queued.popleft()
            end = max(end, piece_end)
            if not future.done():
                if failure is None:
                    future.set_result(None)
                else:
                    future.set_exception(failure)
        if end and failure is None:
            self._report(end)

    def _finish(self, size: int | None) -> None:
        fd = self._open()
        if size is None:
            size = os.fstat(fd).st_size
        os.ftruncate(fd, size)
        os.fsync(fd)
        os.close(fd)
        self._fd = None
        try:
            if self.expected_size is not None and size != self.expected_size:
                raise FileTransferError(f"size {size} differs from the announced {self.expected_size}")
            if self.expected_hash is not None:
                if self._sequential and self._hashed == size:
                    actual = format_sha1(self._sha.digest())
                else:
                    actual = file_hash(self.part_path, size)
                if actual != self.expected_hash:
                    raise FileTransferError(f"hash mismatch: got {actual}, expected {self.expected_hash}")
        except FileTransferError:
            self.part_path.unlink(missing_ok=True)
            self.resume_offset = 0
            raise
        path = self._final_path()
        os.replace(self.part_path, path)
        self.path = path

    def abort(self, message: IncomingMessage, reason: BaseException) -> None:
        """Keep the ``.part`` file (contiguous prefix) so the transfer can resume."""
        # pieces still queued were never acknowledged: they are simply not written
        self._dropping = True
        for _, future, _ in self._queued:
            future.cancel()
        self._queued.clear()
        if self._thread is not None:
            if self._queue is not None:
                self._queue.put(None)  # wakes the thread if it waits
            self._thread.join()  # the piece it is writing, or complete(), ends first
            self._thread = None
            self._queue = None
        if self.path is not None:
            return  # completed after all
        if self._fd is None:
            contiguous = self.resume_offset  # nothing written this time
        else:
            os.close(self._fd)
            self._fd = None
            if self._sequential:
                contiguous = self._hashed
            else:
                on_disk = self.part_path.stat().st_size if self.part_path.exists() else 0
                contiguous = min(message.received.contiguous_end(1), on_disk)
        if self.part_path.exists():
            os.truncate(self.part_path, contiguous)
        self.resume_offset = contiguous
        self._sha = hashlib.sha1()
        self._hashed = 0
        self._sequential = True

    def _final_path(self) -> Path:
        candidate = self.directory / self.filename
        stem, suffix = os.path.splitext(self.filename)
        counter = 1
        while candidate.exists():
            candidate = self.directory / f"{stem} ({counter}){suffix}"
            counter += 1
        return candidate
