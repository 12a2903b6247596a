"""Incremental MSRP stream parser (RFC 4975 section 7.1 framing).

Feed it whatever the socket returned -- one byte or many frames at once -- and it returns
the frames that became complete.  The body end is found by searching for the end-line
``CRLF -------<transaction-id>`` from where the previous search stopped (``bytes.find``, or
libc ``memmem`` over long stretches, being several times faster), so a body is scanned
once whatever the split.

Parsing works on offsets into the received ``bytes`` object itself; only what is left
unfinished at the end of a feed (a partial head, or a partial body that is not streamed)
is copied into the parser's own buffer.  With body streaming (``max_body_buffer`` set)
the part of a large unfinished body that cannot belong to the end-line is handed out at
the end of every feed as a *piece*, and a piece of a received ``bytes`` object is a
read-only ``memoryview`` of it: a large chunk goes from the socket to its sink uncopied.

Errors are strict: anything that is not MSRP raises
:class:`~sipsimple.msrp.errors.MSRPProtocolError` and the parser is then unusable (the
connection must be closed, since framing is lost).
"""

from __future__ import annotations

import ctypes
import re

from .errors import MSRPProtocolError
from .message import MSRPData, canonical_header_name

__all__ = ["MSRPParser", "parse_frame"]

_PREFIX = b"MSRP "
_MAX_START_LINE = 512
_FLAGS = b"$+#"
_CR = 13
_START_RE = re.compile(
    rb"^MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]{1,32})|([0-9]{3})(?: ([^\r\n]*))?)$"
)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_BAD_CTRL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # applied after CRLFs are replaced

_MIN_PIECE = 16 * 1024  # a body starts streaming once this much is known: small frames stay whole
_HEAD = 0
_BODY = 1
_FAILED = 2

Buffer = bytes | bytearray


class MSRPParser:
    """Turns a byte stream into :class:`MSRPData` frames.

    ``max_head_size`` bounds start line plus headers.  ``max_body_buffer``, when set,
    turns on body streaming: at the end of each :meth:`feed`, the bytes of an unfinished
    body that are known to be body are handed out as a *piece* -- an MSRPData with
    ``contflag=None`` and ``body_offset`` set, sharing the headers of its frame; the last
    piece carries the flag.  A body starts streaming once ``min(max_body_buffer, 16 KiB)``
    of it is known (a small frame split over two reads still comes whole); from then on at
    most a partial end-line (a few dozen bytes) is held between feeds.  A piece's ``body``
    is a read-only ``memoryview`` when it could be taken from the fed ``bytes`` uncopied.
    """

    __slots__ = (
        "_buf",
        "_state",
        "_frame",
        "_marker",
        "_scan",
        "_offset",
        "max_head_size",
        "max_body_buffer",
    )

    def __init__(self, max_head_size: int = 65536, max_body_buffer: int | None = None) -> None:
        self._buf = bytearray()  # what is left unfinished between feeds
        self._state = _HEAD
        self._frame: MSRPData | None = None
        self._marker = b""
        self._scan = 0  # where to resume searching, relative to the unconsumed data
        self._offset = 0  # body bytes of the current frame already handed out as pieces
        self.max_head_size = max_head_size
        self.max_body_buffer = max_body_buffer

    @property
    def buffered(self) -> int:
        """Bytes held and not yet returned."""
        return len(self._buf)

    @property
    def in_frame(self) -> bool:
        """True while a frame has started but not ended."""
        return self._state == _BODY or bool(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[MSRPData]:
        """Add received bytes; return the frames (or body pieces) completed by them."""
        if self._state == _FAILED:
            raise MSRPProtocolError("parser already failed")
        held = self._buf
        buf: Buffer
        if held or type(data) is not bytes:
            held += data
            buf = held
        else:
            buf = data  # parse in place: nothing is held, and bytes cannot change under us
        out: list[MSRPData] = []
        pos = 0
        end = len(buf)
        try:
            while pos < end:
                if self._state == _HEAD:
                    nxt = self._parse_head(buf, pos, out)
                else:
                    nxt = self._parse_body(buf, pos, out)
                if nxt == pos:
                    break  # needs more data
                pos = nxt
        except MSRPProtocolError:
            self._state = _FAILED
            raise
        if buf is held:
            if pos:
                del held[:pos]
        elif pos < end:
            held += memoryview(buf)[pos:]
        return out

    # ------------------------------------------------------------------ head
    def _parse_head(self, buf: Buffer, p: int, out: list[MSRPData]) -> int:
        """Parse the head of the frame starting at ``p``; return where the next part starts (``p``: need more)."""
        end = len(buf)
        nl = buf.find(b"\r\n", p, p + _MAX_START_LINE)
        if nl < 0:
            size = min(end - p, len(_PREFIX))
            if buf[p : p + size] != _PREFIX[:size]:
                raise MSRPProtocolError(f"garbage instead of an MSRP start line: {bytes(buf[p : p + 32])!r}")
            if end - p >= _MAX_START_LINE:
                raise MSRPProtocolError("MSRP start line too long")
            return p
        if self._frame is None:
            match = _START_RE.match(bytes(buf[p:nl]))
            if match is None:
                raise MSRPProtocolError(f"bad MSRP start line: {bytes(buf[p : min(nl, p + 80)])!r}")
            tid = match.group(1).decode("ascii")
            if match.group(2) is not None:
                frame = MSRPData(tid, method=match.group(2).decode("ascii"))
            else:
                comment = match.group(4)
                try:
                    comment_s = comment.decode("utf-8") if comment is not None else None
                except UnicodeDecodeError:
                    raise MSRPProtocolError("response comment is not UTF-8") from None
                frame = MSRPData(tid, code=int(match.group(3)), comment=comment_s)
            self._frame = frame
            self._marker = b"\r\n-------" + match.group(1)
            self._scan = nl - p
        frame = self._frame
        marker = self._marker
        limit = p + self.max_head_size + len(marker) + 4
        scan = p + self._scan
        end_marker = buf.find(marker, scan, limit)
        # a blank line overlapping the marker ("CRLF CRLF -------tid") still starts a body
        end_blank = buf.find(b"\r\n\r\n", scan, end_marker + 2 if end_marker >= 0 else limit)
        if end_marker < 0 and end_blank < 0:
            if end - p > self.max_head_size:
                raise MSRPProtocolError("MSRP header section too long")
            self._scan = max(nl, end - len(marker) - 2) - p
            return p
        if end_blank >= 0:
            # Content section follows: headers end at end_blank, the body after the blank line.
            frame.headers = _parse_headers(buf, nl + 2, end_blank)
            if "Content-Type" not in frame.headers:
                raise MSRPProtocolError("content section without Content-Type")
            _check_paths(frame)
            self._state = _BODY
            self._scan = 0
            self._offset = 0
            return end_blank + 4
        flag_at = end_marker + len(marker)
        if end < flag_at + 3:
            self._scan = end_marker - p
            return p
        if buf[flag_at] not in _FLAGS or buf[flag_at + 1 : flag_at + 3] != b"\r\n":
            raise MSRPProtocolError("bad end-line after headers")
        frame.headers = _parse_headers(buf, nl + 2, end_marker)
        _check_paths(frame)
        frame.contflag = chr(buf[flag_at])
        out.append(frame)
        self._frame = None
        return flag_at + 3

    # ------------------------------------------------------------------ body
    def _parse_body(self, buf: Buffer, p: int, out: list[MSRPData]) -> int:
        """Find the end of the body starting at ``p``; return where the next part starts (``p``: need more)."""
        marker = self._marker
        mlen = len(marker)
        end = len(buf)
        scan = p + self._scan
        frame = self._frame
        assert frame is not None
        while True:
            at = _find(buf, marker, scan)
            if at < 0:
                bound = _end_line_start(buf, max(scan, end - mlen - 2), end, marker)
                break
            flag_at = at + mlen
            if end < flag_at + 3:
                bound = at
                break
            if buf[flag_at] in _FLAGS:
                if buf[flag_at + 1 : flag_at + 3] != b"\r\n":
                    raise MSRPProtocolError("end-line not followed by CRLF")
                if self._offset:
                    frame = _piece(frame, _share(buf, p, at), self._offset)
                else:
                    frame.body = _copy(buf, p, at)
                frame.contflag = chr(buf[flag_at])
                out.append(frame)
                self._frame = None
                self._state = _HEAD
                self._scan = 0
                self._offset = 0
                return flag_at + 3
            scan = at + 1
        limit = self.max_body_buffer
        if limit is None or bound == p or (not self._offset and bound - p < min(limit, _MIN_PIECE)):
            self._scan = bound - p
            return p
        # body streaming: what cannot be part of the end-line goes out now
        out.append(_piece(frame, _share(buf, p, bound), self._offset, None))
        self._offset += bound - p
        self._scan = 0
        return bound


def _memmem():
    """libc ``memmem`` (several times faster than ``bytes.find`` on large bodies), or None."""
    try:
        function = ctypes.CDLL(None).memmem
    except (OSError, AttributeError, TypeError):  # no such libc function here
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
    return function


_MEMMEM = _memmem()
_MEMMEM_MIN = 64 * 1024  # below this the call costs more than it saves


def _find(buf: Buffer, needle: bytes, start: int) -> int:
    """``buf.find(needle, start)``; through ``memmem`` for a long stretch of immutable bytes."""
    if _MEMMEM is None or type(buf) is not bytes or len(buf) - start < _MEMMEM_MIN:
        return buf.find(needle, start)
    base = ctypes.cast(ctypes.c_char_p(buf), ctypes.c_void_p).value  # the bytes' own storage, not a copy
    assert base is not None
    found = _MEMMEM(base + start, len(buf) - start, needle, len(needle))
    return -1 if found is None else found - base


def _end_line_start(buf: Buffer, lo: int, end: int, marker: bytes) -> int:
    """The first position in ``[lo, end)`` where ``buf[pos:end]`` could begin an end-line (``end`` if none).

    Only a CR can start one, so the (at most ``len(marker) + 2``) bytes before ``end`` are
    checked at their CRs against ``marker``, a flag and the CR of the final CRLF.
    """
    mlen = len(marker)
    i = buf.find(b"\r", lo, end)
    while i >= 0:
        tail = bytes(buf[i:end])
        n = len(tail)
        if n <= mlen:
            if marker.startswith(tail):
                return i
        elif tail.startswith(marker) and tail[mlen] in _FLAGS and (n == mlen + 1 or tail[mlen + 1] == _CR):
            return i
        i = buf.find(b"\r", i + 1, end)
    return end


def _copy(buf: Buffer, start: int, end: int) -> bytes:
    if type(buf) is bytes:
        return buf[start:end]
    with memoryview(buf) as view:
        return bytes(view[start:end])


def _share(buf: Buffer, start: int, end: int) -> bytes | memoryview:
    """``buf[start:end]`` without a copy when ``buf`` is immutable (the fed bytes), else copied."""
    if type(buf) is bytes:
        return memoryview(buf)[start:end]
    return _copy(buf, start, end)


def _piece(frame: MSRPData, body: bytes | memoryview, offset: int, contflag: str | None = "$") -> MSRPData:
    piece = MSRPData(
        frame.transaction_id, frame.method, frame.code, frame.comment, None, body, contflag, offset
    )
    piece.headers = frame.headers
    piece._cache = frame._cache  # the typed headers are parsed once per frame, not per piece
    return piece


def _parse_headers(buf: Buffer, start: int, end: int) -> dict[str, str]:
    if end <= start:
        return {}
    try:
        text = buf[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise MSRPProtocolError("MSRP headers are not UTF-8") from None
    if _BAD_CTRL_RE.search(text.replace("\r\n", " ")):
        raise MSRPProtocolError("control character in MSRP headers")
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN_RE.match(name):
            raise MSRPProtocolError(f"bad MSRP header line {line[:80]!r}")
        name = canonical_header_name(name)
        if name in headers:
            raise MSRPProtocolError(f"duplicate MSRP header {name}")
        headers[name] = value.strip(" \t")
    return headers


def _check_paths(frame: MSRPData) -> None:
    headers = frame.headers
    if "To-Path" not in headers or "From-Path" not in headers:
        raise MSRPProtocolError("MSRP frame without To-Path or From-Path")
    frame.to_path, frame.from_path  # noqa: B018  (parse and cache, raise if malformed)


def parse_frame(data: bytes) -> MSRPData:
    """Parse exactly one complete frame (convenience for tests and tools)."""
    parser = MSRPParser()
    frames = parser.feed(data)
    if len(frames) != 1 or parser.buffered:
        raise MSRPProtocolError("expected exactly one complete MSRP frame")
    return frames[0]
