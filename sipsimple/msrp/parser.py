"""Incremental MSRP stream parser (RFC 4975 section 7.1 framing).

Feed it whatever the socket returned -- one byte or many frames at once -- and it returns
the frames that became complete.  The body end is found by searching the buffer for the
end-line ``CRLF -------<transaction-id>`` with ``bytearray.find`` from where the previous
search stopped, so a body is scanned once and copied once, whatever the split.

Errors are strict: anything that is not MSRP raises
:class:`~sipsimple.msrp.errors.MSRPProtocolError` and the parser is then unusable (the
connection must be closed, since framing is lost).
"""

from __future__ import annotations

import re

from .errors import MSRPProtocolError
from .message import MSRPData, canonical_header_name

__all__ = ["MSRPParser", "parse_frame"]

_PREFIX = b"MSRP "
_MAX_START_LINE = 512
_FLAGS = b"$+#"
_START_RE = re.compile(
    rb"^MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]{1,32})|([0-9]{3})(?: ([^\r\n]*))?)$"
)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$")
_BAD_CTRL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # applied after CRLFs are replaced

_HEAD = 0
_BODY = 1
_FAILED = 2


class MSRPParser:
    """Turns a byte stream into :class:`MSRPData` frames.

    ``max_head_size`` bounds start line plus headers.  ``max_body_buffer``, when set, bounds
    how much body is held: once that much of a body is known to be body (cannot be part of
    the end-line) it is handed out as a *piece*: an MSRPData with ``contflag=None`` and
    ``body_offset`` set, sharing the headers of its frame; the last piece carries the flag.
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
        self._buf = bytearray()
        self._state = _HEAD
        self._frame: MSRPData | None = None
        self._marker = b""
        self._scan = 0
        self._offset = 0
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
        buf = self._buf
        buf += data
        out: list[MSRPData] = []
        try:
            while buf:
                if self._state == _HEAD:
                    if not self._parse_head(buf, out):
                        break
                elif not self._parse_body(buf, out):
                    break
        except MSRPProtocolError:
            self._state = _FAILED
            raise
        return out

    # ------------------------------------------------------------------ head
    def _parse_head(self, buf: bytearray, out: list[MSRPData]) -> bool:
        nl = buf.find(b"\r\n", 0, _MAX_START_LINE)
        if nl < 0:
            size = min(len(buf), len(_PREFIX))
            if buf[:size] != _PREFIX[:size]:
                raise MSRPProtocolError(f"garbage instead of an MSRP start line: {bytes(buf[:32])!r}")
            if len(buf) >= _MAX_START_LINE:
                raise MSRPProtocolError("MSRP start line too long")
            return False
        if self._frame is None:
            match = _START_RE.match(bytes(buf[:nl]))
            if match is None:
                raise MSRPProtocolError(f"bad MSRP start line: {bytes(buf[: min(nl, 80)])!r}")
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
            self._scan = nl
        frame = self._frame
        marker = self._marker
        limit = self.max_head_size + len(marker) + 4
        end_marker = buf.find(marker, self._scan, limit)
        # a blank line overlapping the marker ("CRLF CRLF -------tid") still starts a body
        end_blank = buf.find(b"\r\n\r\n", self._scan, end_marker + 2 if end_marker >= 0 else limit)
        if end_marker < 0 and end_blank < 0:
            if len(buf) > self.max_head_size:
                raise MSRPProtocolError("MSRP header section too long")
            self._scan = max(nl, len(buf) - len(marker) - 2)
            return False
        if end_blank >= 0:
            # Content section follows: headers end at end_blank, the body after the blank line.
            frame.headers = _parse_headers(buf, nl + 2, end_blank)
            if "Content-Type" not in frame.headers:
                raise MSRPProtocolError("content section without Content-Type")
            _check_paths(frame)
            del buf[: end_blank + 4]
            self._state = _BODY
            self._scan = 0
            self._offset = 0
            return True
        flag_at = end_marker + len(marker)
        if len(buf) < flag_at + 3:
            self._scan = end_marker
            return False
        if buf[flag_at] not in _FLAGS or buf[flag_at + 1 : flag_at + 3] != b"\r\n":
            raise MSRPProtocolError("bad end-line after headers")
        frame.headers = _parse_headers(buf, nl + 2, end_marker)
        _check_paths(frame)
        frame.contflag = chr(buf[flag_at])
        del buf[: flag_at + 3]
        out.append(frame)
        self._frame = None
        return True

    # ------------------------------------------------------------------ body
    def _parse_body(self, buf: bytearray, out: list[MSRPData]) -> bool:
        marker = self._marker
        mlen = len(marker)
        scan = self._scan
        while True:
            pos = buf.find(marker, scan)
            if pos < 0:
                scan = max(scan, len(buf) - mlen + 1)
                break
            flag_at = pos + mlen
            if len(buf) < flag_at + 3:
                scan = pos
                break
            if buf[flag_at] in _FLAGS:
                if buf[flag_at + 1 : flag_at + 3] != b"\r\n":
                    raise MSRPProtocolError("end-line not followed by CRLF")
                frame = self._frame
                assert frame is not None
                with memoryview(buf) as view:
                    body = bytes(view[:pos])
                if self._offset:
                    frame = _piece(frame, body, self._offset)
                else:
                    frame.body = body
                frame.contflag = chr(buf[flag_at])
                del buf[: flag_at + 3]
                out.append(frame)
                self._frame = None
                self._state = _HEAD
                self._scan = 0
                self._offset = 0
                return True
            scan = pos + 1
        self._scan = scan
        limit = self.max_body_buffer
        if limit is not None and scan >= limit:
            frame = self._frame
            assert frame is not None
            with memoryview(buf) as view:
                body = bytes(view[:scan])
            del buf[:scan]
            out.append(_piece(frame, body, self._offset, None))
            self._offset += scan
            self._scan = 0
        return False


def _piece(frame: MSRPData, body: bytes, offset: int, contflag: str | None = "$") -> MSRPData:
    piece = MSRPData(
        frame.transaction_id, frame.method, frame.code, frame.comment, None, body, contflag, offset
    )
    piece.headers = frame.headers
    return piece


def _parse_headers(buf: bytearray, start: int, end: int) -> dict[str, str]:
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
