"""File transfer building blocks (RFC 5547) on top of :class:`~sipsimple.msrp.session.MSRPSession`.

* :func:`file_hash` / :func:`format_sha1` / :func:`parse_hash` -- the ``hash:sha-1:AB:CD:..``
  value of ``a=file-selector``.
* :func:`send_file` -- send a file (or its tail, for resume) chunk by chunk from disk.
* :class:`FileSink` -- receive into a directory: data goes to a hidden ``.part`` file, which
  is renamed to the real name only after size and SHA-1 check out.  A mismatch deletes it;
  an interrupted transfer keeps it, and :attr:`FileSink.resume_offset` says where to resume.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .errors import FileTransferError
from .messages import IncomingMessage, OutgoingMessage, ProgressCallback

if TYPE_CHECKING:
    from .session import MSRPSession

__all__ = ["file_hash", "format_sha1", "parse_hash", "send_file", "FileSink", "safe_filename"]

_HASH_RE = re.compile(r"^(sha-1):((?:[0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2})$")
_READ_SIZE = 1024 * 1024


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


class FileSink:
    """Receives one file into ``directory`` (see module doc).

    ``expected_hash`` is the ``sha-1:..`` from the offer (None: not checked);
    ``expected_size`` likewise.  With ``resume`` an existing ``.part`` file of an earlier
    attempt is kept and reported through :meth:`initial_ranges`.
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
        self._file: BinaryIO | None = None
        self._sha = hashlib.sha1()
        self._hashed = 0
        self._sequential = True
        self._written = 0
        existing = self.part_path.stat().st_size if self.part_path.exists() else 0
        if expected_size is not None and existing > expected_size:
            self.part_path.unlink()
            existing = 0
        self.resume_offset = existing
        """Bytes already on disk from an earlier attempt (0-based offset to resume from)."""

    def _open(self) -> BinaryIO:
        if self._file is None:
            exists = self.part_path.exists()
            self._file = open(self.part_path, "r+b" if exists else "w+b")  # noqa: SIM115
            if self.resume_offset:
                self._file.seek(0)
                remaining = self.resume_offset
                while remaining:
                    data = self._file.read(min(_READ_SIZE, remaining))
                    if not data:
                        break
                    self._sha.update(data)
                    remaining -= len(data)
                self._hashed = self.resume_offset - remaining
        return self._file

    # ------------------------------------------------------------------ MessageSink
    def initial_ranges(self) -> list[tuple[int, int]]:
        return [(1, self.resume_offset)] if self.resume_offset else []

    def write(self, offset: int, data: bytes) -> None:
        f = self._open()
        if self.expected_size is not None and offset + len(data) > self.expected_size:
            raise FileTransferError(f"data beyond the announced size {self.expected_size}")
        if f.tell() != offset:
            f.seek(offset)
        f.write(data)
        if offset == self._hashed and self._sequential:
            self._sha.update(data)
            self._hashed += len(data)
        else:
            self._sequential = False
        self._written += len(data)
        if self.progress is not None:
            self.progress(offset + len(data), self.expected_size)

    def complete(self, message: IncomingMessage) -> None:
        f = self._open()
        size = message.total if message.total is not None else f.seek(0, os.SEEK_END)
        f.truncate(size)
        f.flush()
        os.fsync(f.fileno())
        f.close()
        self._file = None
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
        self.path = self._final_path()
        os.replace(self.part_path, self.path)

    def abort(self, message: IncomingMessage, reason: BaseException) -> None:
        """Keep the ``.part`` file (contiguous prefix) so the transfer can resume."""
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None
        contiguous = message.received.contiguous_end(1)
        if self.part_path.exists():
            with open(self.part_path, "r+b") as f:
                f.truncate(contiguous)
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
