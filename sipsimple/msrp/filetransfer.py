"""File transfer building blocks (RFC 5547) on top of :class:`~sipsimple.msrp.session.MSRPSession`.

* :func:`file_hash` / :func:`format_sha1` / :func:`parse_hash` -- the ``hash:sha-1:AB:CD:..``
  value of ``a=file-selector``.
* :func:`send_file` -- send a file (or its tail, for resume) chunk by chunk from disk.
* :func:`safe_filename` -- a received file's name, kept inside the target directory.

Receiving into a file is :class:`~sipsimple.msrp.filesink.FileSink`.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import TYPE_CHECKING, BinaryIO

from .messages import OutgoingMessage, ProgressCallback

if TYPE_CHECKING:
    from .session import MSRPSession

__all__ = ["file_hash", "format_sha1", "parse_hash", "send_file", "safe_filename"]

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
