"""Incremental MSRP stream parser (RFC 4975 section 7.1 framing).

Feed it whatever the socket returned -- one byte or many frames at once -- and it returns
the frames that became complete.  The body end is found by searching for the end-line
``CRLF -------<transaction-id>`` from where the previous search stopped (libc ``memmem``, in
the compiled core: :mod:`sipsimple.core._msrp`), so a body is scanned once whatever the split.

Parsing works on offsets into the received ``bytes`` object itself; only what is left
unfinished at the end of a feed (a partial head, or a partial body that is not streamed)
is copied into the parser's own buffer.  With body streaming (``max_body_buffer`` set)
the part of a large unfinished body that cannot belong to the end-line is handed out at
the end of every feed as a *piece*, and a piece of a received ``bytes`` object is a
read-only ``memoryview`` of it: a large chunk goes from the socket to its sink uncopied
(so is a complete body of 16 KiB or more).  What is held is then small, and the next feed
joins only its first bytes to it: the rest of that read is parsed in place too.

A frame that is complete in the data is taken apart in one call into the compiled core
(:func:`~sipsimple.core._msrp.scan_frame`: the small chunks of a file transfer, responses);
anything else -- incomplete, unusual or bad -- goes through the step by step path here, which
has the precise errors.  Header sections are split by the core too; when it refuses one, the
reason is found here (:func:`_header_error`).

Errors are strict: anything that is not MSRP raises
:class:`~sipsimple.msrp.errors.MSRPProtocolError` and the parser is then unusable (the
connection must be closed, since framing is lost).
"""

from __future__ import annotations

import re

from sipsimple.core._msrp import find, parse_headers, scan_frame

from .errors import MSRPProtocolError
from .message import _KNOWN_HEADERS, MSRPData, canonical_header_name
from .uri import parse_path

__all__ = ["MSRPParser", "parse_frame"]

_PREFIX = b"MSRP "
_MAX_START_LINE = 512
_FLAGS = b"$+#"
_CR = 13
_START_RE = re.compile(
    rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]{1,32})|([0-9]{3})(?: ([^\r\n]*))?)"
)  # used with fullmatch(buf, start, end): anchored at both ends without slicing
_TOKEN_RE = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_BAD_CTRL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # applied after CRLFs are replaced
_HEAD_PROBE = 1024  # the head end is looked for this far first: a full search could run through a body
_HEADER_NAMES = tuple(_KNOWN_HEADERS)  # the core spells these canonically, whatever their case

_WHOLE_BODY_MAX = 256 * 1024  # the one-pass path takes bodies up to this size
_MIN_PIECE = 16 * 1024  # a body starts streaming once this much is known: small frames stay whole
_STITCH = _MIN_PIECE + 1024  # new bytes joined to what is held: enough to finish or stream it
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
        out: list[MSRPData] = []
        try:
            if held and type(data) is bytes and self.max_body_buffer is not None:
                # Finish what is held with the first bytes of ``data`` (copied with it), then go
                # on in ``data`` itself: the rest of a large read is neither copied nor parsed
                # out of a bytearray (no memmem, no shared body pieces there).  What is held is
                # small when bodies stream, and _STITCH bytes are enough to get past it.
                size = len(held)
                stitch = bytes(held) + data[:_STITCH]
                pos = self._parse(stitch, 0, size, out)
                if pos >= size:
                    held.clear()
                    pos = self._parse(data, pos - size, len(data), out)
                    if pos < len(data):
                        held += memoryview(data)[pos:]
                    return out
                del held[:pos]  # not past it (a long head): on in a buffer of everything
            if held or type(data) is not bytes:
                held += data
                pos = self._parse(held, 0, len(held), out)
                del held[:pos]
            else:  # parse in place: nothing is held, and bytes cannot change under us
                pos = self._parse(data, 0, len(data), out)
                if pos < len(data):
                    held += memoryview(data)[pos:]
        except MSRPProtocolError:
            self._state = _FAILED
            raise
        return out

    def _parse(self, buf: Buffer, pos: int, stop: int, out: list[MSRPData]) -> int:
        """Parse from ``pos`` until past ``stop`` or out of data; return where parsing stopped."""
        end = len(buf)
        while pos < stop:
            if self._state == _HEAD:
                if self._frame is None:
                    nxt = self._parse_whole(buf, pos, end, out)
                    if nxt:
                        pos = nxt
                        continue
                nxt = self._parse_head(buf, pos, out)
            else:
                nxt = self._parse_body(buf, pos, out)
            if nxt == pos:
                break  # needs more data
            pos = nxt
        return pos

    # ------------------------------------------------------------------ whole frames
    def _parse_whole(self, buf: Buffer, p: int, end: int, out: list[MSRPData]) -> int:
        """Parse a frame that is complete in ``buf`` at ``p`` in one go; return where the next
        starts, or 0 to leave it to the step by step path (incomplete, unusual or bad: that
        path has the precise errors).  Only a body of up to _WHOLE_BODY_MAX is looked for: a
        larger one streams through the step by step path, which would search it again."""
        found = scan_frame(buf, p, end, _HEADER_NAMES, _MAX_START_LINE, _HEAD_PROBE, _WHOLE_BODY_MAX)
        if found is None:
            return 0
        frame = _NEW(MSRPData)
        (frame.transaction_id, frame.method, frame.code, frame.comment, headers, body_at, body_end,
         frame.contflag, nxt) = found
        frame.headers = headers
        frame.body_offset = 0
        frame._cache = {}
        _check_paths(frame, headers)
        frame.body = _body(buf, body_at, body_end)
        out.append(frame)
        return nxt

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
            match = _START_RE.fullmatch(buf, p, nl)
            if match is None:
                raise MSRPProtocolError(f"bad MSRP start line: {bytes(buf[p : min(nl, p + 80)])!r}")
            tid = match.group(1).decode("ascii")
            method = match.group(2)
            if method is not None:
                frame = _new_frame(tid, method.decode("ascii"), None, None)
            else:
                comment = match.group(4)
                try:
                    comment_s = comment.decode("utf-8") if comment is not None else None
                except UnicodeDecodeError:
                    raise MSRPProtocolError("response comment is not UTF-8") from None
                frame = _new_frame(tid, None, int(match.group(3)), comment_s)
            self._frame = frame
            self._marker = b"\r\n-------" + match.group(1)
            self._scan = nl - p
        frame = self._frame
        marker = self._marker
        limit = p + self.max_head_size + len(marker) + 4
        scan = p + self._scan
        # The head ends at the first blank line (a content section follows) or end-line.  A
        # search straight to ``limit`` would run through a body or the frames behind this one:
        # look near first, where a head almost always ends.
        bound = min(limit, scan + _HEAD_PROBE)
        while True:
            end_marker = buf.find(marker, scan, bound)
            # a blank line overlapping the marker ("CRLF CRLF -------tid") still starts a body
            end_blank = buf.find(b"\r\n\r\n", scan, end_marker + 2 if end_marker >= 0 else bound)
            if end_marker >= 0 or end_blank >= 0 or bound >= limit or bound >= end:
                break
            bound = limit
        if end_marker < 0 and end_blank < 0:
            if end - p > self.max_head_size:
                raise MSRPProtocolError("MSRP header section too long")
            self._scan = max(nl, end - len(marker) - 2) - p
            return p
        if end_blank >= 0:
            # Content section follows: headers end at end_blank, the body after the blank line.
            headers = frame.headers = _parse_headers(buf, nl + 2, end_blank)
            if "Content-Type" not in headers:
                raise MSRPProtocolError("content section without Content-Type")
            _check_paths(frame, headers)
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
        headers = frame.headers = _parse_headers(buf, nl + 2, end_marker)
        _check_paths(frame, headers)
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
            at = find(buf, marker, scan)
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
                    frame.body = _body(buf, p, at)
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


def _body(buf: Buffer, start: int, end: int) -> bytes | memoryview:
    """The body of a complete frame: a view of the fed bytes when large, else its own bytes
    (a small body is cheaper to copy than to keep a whole read alive for)."""
    if end - start >= _MIN_PIECE and type(buf) is bytes:
        return memoryview(buf)[start:end]
    return _copy(buf, start, end)


def _new_frame(tid: str, method: str | None, code: int | None, comment: str | None) -> MSRPData:
    """An MSRPData for the parser, without the checks and defaults of ``__init__`` (known good here)."""
    frame = _NEW(MSRPData)
    frame.transaction_id = tid
    frame.method = method
    frame.code = code
    frame.comment = comment
    frame.headers = {}
    frame.body = b""
    frame.contflag = "$"
    frame.body_offset = 0
    frame._cache = {}
    return frame


_NEW = object.__new__


def _piece(frame: MSRPData, body: bytes | memoryview, offset: int, contflag: str | None = "$") -> MSRPData:
    piece = _new_frame(frame.transaction_id, frame.method, frame.code, frame.comment)
    piece.body = body
    piece.contflag = contflag
    piece.body_offset = offset
    piece.headers = frame.headers
    piece._cache = frame._cache  # the typed headers are parsed once per frame, not per piece
    return piece


def _parse_headers(buf: Buffer, start: int, end: int) -> dict[str, str]:
    """The header lines in ``buf[start:end]`` as {canonical name: value}, in wire order."""
    headers = parse_headers(buf, start, end, _HEADER_NAMES)
    if headers is None:
        raise _header_error(_copy(buf, start, end))
    return headers


def _header_error(block: bytes) -> MSRPProtocolError:
    """Why the core refused the header section ``block``: the first problem in it."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return MSRPProtocolError("MSRP headers are not UTF-8")
    if _BAD_CTRL_RE.search(text.replace("\r\n", " ")):
        return MSRPProtocolError("control character in MSRP headers")
    seen = set()
    for line in text.split("\r\n"):
        name, sep, _ = line.partition(":")
        if not sep or _TOKEN_RE.fullmatch(name) is None:
            return MSRPProtocolError(f"bad MSRP header line {line[:80]!r}")
        name = canonical_header_name(name)
        if name in seen:
            return MSRPProtocolError(f"duplicate MSRP header {name}")
        seen.add(name)
    return MSRPProtocolError("bad MSRP header section")  # the core and this disagree: still refused


def _check_paths(frame: MSRPData, headers: dict[str, str]) -> None:
    """Parse To-Path and From-Path into the frame's cache; raise if either is missing or malformed."""
    try:
        to_path = headers["To-Path"]
        from_path = headers["From-Path"]
    except KeyError:
        raise MSRPProtocolError("MSRP frame without To-Path or From-Path") from None
    cache = frame._cache
    cache["To-Path"] = parse_path(to_path)
    cache["From-Path"] = parse_path(from_path)


def parse_frame(data: bytes) -> MSRPData:
    """Parse exactly one complete frame (convenience for tests and tools)."""
    parser = MSRPParser()
    frames = parser.feed(data)
    if len(frames) != 1 or parser.buffered:
        raise MSRPProtocolError("expected exactly one complete MSRP frame")
    return frames[0]
