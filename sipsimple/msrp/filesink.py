"""FileSink: receive one file (RFC 5547) into a directory, off the event loop.

Data goes to a hidden ``.part`` file, which is renamed to the real name only after size and
SHA-1 check out.  A mismatch deletes it; an interrupted transfer keeps its contiguous prefix,
and :attr:`FileSink.resume_offset` says where to resume.

Pieces that arrive together (one socket read holds many chunks at small chunk sizes) are
gathered into one batch, written with one ``pwritev`` and hashed in one go; a batch ends at
:data:`BATCH_MAX` bytes, at a gap in the offsets, or when the loop has handled the read.
The announced size is reserved when the file is opened (``fallocate``), so a disk without room
fails the first chunk with 413 and the reason.  Batches go through two threads, one after the
other: a writer (``pwritev``, and a hint to the kernel to start writing back) and a hasher
(SHA-1, then the report to the loop).  SHA-1 is the
slowest step (about 1.8 GB/s per core here, writing to the page cache about 4.5), so the two
run side by side on different batches instead of one after the other; a piece counts as
stored once both are done with it.  A batch smaller than :data:`ASYNC_WRITE_MIN` is written
and hashed on the loop while nothing is queued, so a chat-sized file costs no thread hand-offs.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import functools
import hashlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from .errors import FileTransferError
from .filetransfer import file_hash, format_sha1, parse_hash, safe_filename
from .messages import IncomingMessage, ProgressCallback

__all__ = ["FileSink", "ASYNC_WRITE_MIN", "BATCH_MAX", "REPORT_STEP", "WRITEBACK_STEP"]

_READ_SIZE = 1024 * 1024
ASYNC_WRITE_MIN = 32 * 1024
"""Batches this large are written by the sink's threads, not on the event loop."""
BATCH_MAX = 1024 * 1024
"""A batch of pieces is handed on once it holds this many bytes."""
_BATCH_PIECES = 512
"""... or this many pieces (pwritev takes at most IOV_MAX, 1024 on Linux)."""
REPORT_STEP = 1024 * 1024
"""The sink tells the loop about stored pieces at least every this many bytes."""
WRITEBACK_STEP = 8 * 1024 * 1024
"""After this many bytes the kernel is asked to start writing them out (the final fsync waits less)."""

_STOP = object()
"""Queued by abort(): the threads end without touching what is still queued."""


def _libc_function(name: str, *argtypes: type) -> Callable[..., int] | None:
    """A libc function returning an int (errno kept for ctypes.get_errno), or None where libc lacks it."""
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError, TypeError):  # no such libc function here
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function


_sync_file_range = _libc_function("sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
_SYNC_FILE_RANGE_WRITE = 2
_fallocate = _libc_function("fallocate", ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
_FALLOC_FL_KEEP_SIZE = 1


def _start_writeback(fd: int) -> None:
    """Linux ``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)``: start writing dirty pages, not waiting."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


def _reserve_space(fd: int, offset: int, length: int) -> None:
    """Linux ``fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length)``: give the file its blocks up
    front, without changing its size (a kept ``.part`` still says how much arrived).

    Raises OSError when the disk has no room; a file system that cannot reserve is no error.
    """
    if _fallocate is not None and _fallocate(fd, _FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        error = ctypes.get_errno()
        if error not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise OSError(error, os.strerror(error))


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

    Pieces of :data:`ASYNC_WRITE_MIN` bytes and up are stored by the sink's threads, so the
    event loop goes on receiving meanwhile: :meth:`write` then returns a future, done once the
    bytes are in the file and hashed (the session answers the chunk only then).  The threads
    take pieces as they come and report them back in groups (at most :data:`REPORT_STEP`
    bytes, fewer when the queue runs dry).  :meth:`complete` (truncate, fsync, hash check,
    rename) always runs in a thread.
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
            _, digest = parse_hash(expected_hash)
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
        self._write_end = 0  # the file's first _write_end bytes are written, in order
        self._hashed = 0  # ... and its first _hashed bytes are hashed
        self._sequential = True  # no write has gone elsewhere than at _write_end
        self._written = 0
        self._written_back = 0  # _written when the kernel was last asked to write back
        self._failure: BaseException | None = None  # a write failed: this and all later pieces fail
        # the batch being gathered on the loop: its offset, pieces, size and the future they share
        self._batch_offset = 0
        self._batch: list[bytes | memoryview] = []
        self._batch_size = 0
        self._batch_future: asyncio.Future[None] | None = None
        # the threads: queues of (sequence number, offset, pieces, size) or (None, job, future, 0)
        # or _STOP; on the loop the futures of queued batches, in order: (sequence number, future, end)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: queue.SimpleQueue | None = None
        self._threads: list[threading.Thread] = []
        self._queued: deque[tuple[int, asyncio.Future[None], int]] = deque()
        self._seq = 0
        self._aborting = False  # abort(): what is queued is written but not hashed
        existing = self.part_path.stat().st_size if self.part_path.exists() else 0
        if expected_size is not None and existing > expected_size:
            self.part_path.unlink()
            existing = 0
        self.resume_offset = existing
        """Bytes already on disk from an earlier attempt (0-based offset to resume from)."""

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.part_path, os.O_RDWR | os.O_CREAT, 0o666)
            if self.expected_size and self.expected_size > self.resume_offset:
                # in one piece: the file system maps the blocks once instead of page by page (writing
                # then costs a quarter less CPU here), and a full disk shows now, not near the end
                try:
                    _reserve_space(self._fd, self.resume_offset, self.expected_size - self.resume_offset)
                except OSError as exc:
                    os.close(self._fd)
                    self._fd = None
                    if not self.resume_offset:  # made just now: no empty part is left behind
                        self.part_path.unlink(missing_ok=True)
                    raise FileTransferError(
                        f"no room for {self.expected_size - self.resume_offset} bytes in {self.directory}: "
                        f"{exc.strerror}"
                    ) from None
            if self.resume_offset and self.expected_hash is None:
                self._write_end = self.resume_offset  # nothing to check: the kept part is not read
            elif self.resume_offset:
                position = 0
                while position < self.resume_offset:
                    data = os.pread(self._fd, min(_READ_SIZE, self.resume_offset - position), position)
                    if not data:
                        break
                    self._sha.update(data)
                    position += len(data)
                self._hashed = self._write_end = position
        return self._fd

    def _store(self, offset: int, pieces: list[bytes | memoryview], size: int) -> None:
        """Write pieces that follow each other to the file from ``offset`` (``size`` bytes in all),
        on the loop or in the writer thread, never both at a time."""
        fd = self._open()
        done = os.pwritev(fd, pieces, offset)
        if done < size:  # a short write (a signal, a full disk) goes on where it stopped
            with memoryview(b"".join(pieces)) as view:
                while done < size:
                    done += os.pwrite(fd, view[done:], offset + done)
        self._written += size

    def _hash(self, pieces: list[bytes | memoryview], size: int) -> None:
        if self.expected_hash is None:  # the offer gave no hash: nothing to check the digest against
            return
        update = self._sha.update
        for piece in pieces:
            update(piece)
        self._hashed += size

    def _follows(self, offset: int, size: int) -> bool:
        """After a piece is stored: does it continue the file in order (and so goes into the hash)?"""
        if self._sequential and offset == self._write_end:
            self._write_end += size
            return True
        self._sequential = False
        return False

    def _report(self, end: int) -> None:
        if self.progress is not None:
            self.progress(end, self.expected_size)

    # ------------------------------------------------------------------ MessageSink
    def initial_ranges(self) -> list[tuple[int, int]]:
        return [(1, self.resume_offset)] if self.resume_offset else []

    def write(self, offset: int, data: bytes | memoryview) -> asyncio.Future[None] | None:
        size = len(data)
        if self.expected_size is not None and offset + size > self.expected_size:
            raise FileTransferError(f"data beyond the announced size {self.expected_size}")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # used without a loop: at once
            self._store_now(offset, [data], size)
            return None
        if self._batch and (offset != self._batch_offset + self._batch_size or len(self._batch) >= _BATCH_PIECES):
            self._flush()
        if not self._batch:
            self._batch_offset = offset
            self._batch_future = loop.create_future()
            loop.call_soon(self._flush)  # once the loop has handled what this read brought
        self._batch.append(data)
        self._batch_size += size
        future = self._batch_future
        if self._batch_size >= BATCH_MAX:
            self._flush()
        return future

    def _flush(self) -> None:
        """Hand the batch on: to the threads, or, when it is small and nothing waits, store it here."""
        if not self._batch:
            return
        offset, pieces, size, future = self._batch_offset, self._batch, self._batch_size, self._batch_future
        self._batch, self._batch_size, self._batch_future = [], 0, None
        assert future is not None
        # (the first write of a resumed transfer hashes what is on disk: never on the loop)
        if size < ASYNC_WRITE_MIN and not self._queued and (self._fd is not None or not self.resume_offset):
            try:
                self._store_now(offset, pieces, size)
            except BaseException as exc:
                future.set_exception(exc)
                return
            future.set_result(None)
            return
        self._seq += 1
        self._queued.append((self._seq, future, offset + size))
        self._start_threads(future.get_loop()).put((self._seq, offset, pieces, size))

    def _store_now(self, offset: int, pieces: list[bytes | memoryview], size: int) -> None:
        self._store(offset, pieces, size)
        if self._follows(offset, size):
            self._hash(pieces, size)
        if not self._aborting:
            self._report(offset + size)

    def complete(self, message: IncomingMessage) -> asyncio.Future[None] | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # used without a loop: all at once
            self._finish(message.total)
            return None
        self._flush()
        future = loop.create_future()
        self._start_threads(loop).put((None, functools.partial(self._finish, message.total), future, 0))
        self._queue = None  # the threads end after this job
        return future

    def _start_threads(self, loop: asyncio.AbstractEventLoop) -> queue.SimpleQueue:
        if self._queue is None:
            self._loop = loop
            self._queue = queue.SimpleQueue()
            hashes: queue.SimpleQueue = queue.SimpleQueue()
            # daemon threads: a sink that nobody completes or aborts cannot hold up the exit
            self._threads = [
                threading.Thread(target=self._run_writer, args=(self._queue, hashes), name="msrp-file-sink",
                                 daemon=True),
                threading.Thread(target=self._run_hasher, args=(hashes,), name="msrp-file-hash", daemon=True),
            ]
            for thread in self._threads:
                thread.start()
        return self._queue

    def _run_writer(self, jobs: queue.SimpleQueue, hashes: queue.SimpleQueue) -> None:
        """The first thread: write batches in order and hand each on to the hasher (with its pieces
        only when it continues the file in order), then the final job."""
        while True:
            item = jobs.get()
            if item is _STOP or item[0] is None:
                hashes.put(item)
                return
            seq, offset, pieces, size = item
            follows = False
            if self._failure is None:
                try:
                    self._store(offset, pieces, size)
                    follows = self._follows(offset, size)
                except BaseException as exc:  # the disk is full...: this and all later pieces fail
                    self._failure = exc
                self._write_back()
            hashes.put((seq, pieces if follows else None, size))

    def _run_hasher(self, hashes: queue.SimpleQueue) -> None:
        """The second thread: hash what the writer handed on; report stored batches back to the loop
        per :data:`REPORT_STEP` bytes or when nothing waits, whichever comes first; run the final job."""
        stored = 0  # sequence number of the last batch stored and not reported yet
        run = 0  # bytes since the last report
        while True:
            if stored:
                try:
                    item = hashes.get_nowait()
                except queue.Empty:
                    self._report_back(stored)
                    stored = run = 0
                    item = hashes.get()
            else:
                item = hashes.get()
            if item is _STOP:
                return
            if item[0] is None:  # the final job (complete), last in line
                _, job, future, _ = item
                self._report_back(stored)
                try:
                    outcome: tuple[object, BaseException | None] = (job(), None)
                except BaseException as exc:  # reported to whoever awaits the job
                    outcome = (None, exc)
                self._call_loop(_settle, future, *outcome)
                return
            seq, pieces, size = item
            if pieces is not None and not self._aborting:
                self._hash(pieces, size)
            stored = seq
            run += size
            if run >= REPORT_STEP:  # acknowledge as it goes: the sender and reading go on sooner
                self._report_back(stored)
                stored = run = 0

    def _write_back(self) -> None:
        """Have the kernel start writing what is dirty (only a hint: complete() still fsyncs)."""
        if self._written - self._written_back >= WRITEBACK_STEP:
            self._written_back = self._written
            _start_writeback(self._fd)

    def _report_back(self, stored: int) -> None:
        if stored:
            self._call_loop(self._stored_through, stored, self._failure)

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
        """Keep the ``.part`` file (contiguous prefix) so the transfer can resume.

        What arrived is still written, though not acknowledged: at most the session's write
        backlog and one batch, a few milliseconds of disk time, and that much less to send again.
        """
        self._aborting = True  # (no more hashing: the hash starts again from the disk on resume)
        batch_future = self._batch_future
        self._flush()
        if batch_future is not None:
            batch_future.cancel()
        for _, future, _ in self._queued:
            future.cancel()
        self._queued.clear()
        if self._threads:
            if self._queue is not None:
                self._queue.put(_STOP)  # after what is queued; the writer passes the stop on
            for thread in self._threads:
                thread.join()
            self._threads = []
            self._queue = None
        if self.path is not None:
            return  # completed after all
        if self._fd is None:
            contiguous = self.resume_offset  # nothing written this time
        else:
            os.close(self._fd)
            self._fd = None
            if self._sequential:
                contiguous = self._write_end
            else:
                on_disk = self.part_path.stat().st_size if self.part_path.exists() else 0
                contiguous = min(message.received.contiguous_end(1), on_disk)
        if self.part_path.exists():
            os.truncate(self.part_path, contiguous)
        self.resume_offset = contiguous
        self._sha = hashlib.sha1()
        self._hashed = self._write_end = 0
        self._sequential = True

    def _final_path(self) -> Path:
        candidate = self.directory / self.filename
        stem, suffix = os.path.splitext(self.filename)
        counter = 1
        while candidate.exists():
            candidate = self.directory / f"{stem} ({counter}){suffix}"
            counter += 1
        return candidate
