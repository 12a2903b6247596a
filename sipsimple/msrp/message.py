"""The MSRP frame model (RFC 4975 section 7 and 8) and its serializer.

:class:`MSRPData` is one request or response frame as it appears on the wire: a transaction
id, either a method or a status code and comment, ordered headers, an optional body and the
continuation flag of its end-line (``$`` complete, ``+`` more chunks follow, ``#`` aborted).
Typed accessors (``to_path``, ``byte_range``, ``status`` ...) parse header values on demand
and raise :class:`~sipsimple.msrp.errors.MSRPProtocolError` for malformed ones.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable
from typing import NamedTuple

from .errors import MSRPProtocolError
from .uri import MSRPURI, format_path, parse_path

__all__ = [
    "MSRPData",
    "ByteRange",
    "Status",
    "CONTINUATION_FLAGS",
    "canonical_header_name",
    "new_transaction_id",
    "encode_response",
    "new_message_id",
    "parse_digest_challenge",
    "RESPONSE_COMMENTS",
]

CONTINUATION_FLAGS = frozenset("$+#")

RESPONSE_COMMENTS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Message Too Large",
    415: "Unsupported Media Type",
    423: "Interval Out-of-Bounds",
    481: "Session Does Not Exist",
    501: "Unknown Method",
    506: "Session Already Bound",
}

_KNOWN_HEADERS = (
    "To-Path",
    "From-Path",
    "Message-ID",
    "Success-Report",
    "Failure-Report",
    "Byte-Range",
    "Status",
    "Content-Type",
    "Content-ID",
    "Content-Description",
    "Content-Disposition",
    "Use-Path",
    "WWW-Authenticate",
    "Authorization",
    "Authentication-Info",
    "Expires",
    "Min-Expires",
    "Max-Expires",
)
_CANONICAL = {name.lower(): name for name in _KNOWN_HEADERS}
_CONTENT_HEADERS = ("Content-ID", "Content-Description", "Content-Disposition")

_TID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$")
_BYTE_RANGE_RE = re.compile(r"\s*([0-9]{1,19})-([0-9]{1,19}|\*)/([0-9]{1,19}|\*)\s*\Z")
_new_tuple = tuple.__new__
_STATUS_RE = re.compile(r"^([0-9]{3}) ([0-9]{3})(?: (.*))?$")
_IDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}$")


def canonical_header_name(name: str) -> str:
    """Return the canonical spelling of a known header name, or ``name`` unchanged."""
    return _CANONICAL.get(name.lower(), name)


_TID_BATCH = 256
_tid_pool: list[str] = []


def new_transaction_id() -> str:
    """A random transaction id (16 hex digits, RFC 4975 ``ident``).

    Ids are cut from one ``secrets`` draw of 256 at a time: a file sent in 2 KiB chunks needs
    tens of thousands per second, and one system call each would be a noticeable part of a chunk.
    """
    if not _tid_pool:
        pool = secrets.token_hex(8 * _TID_BATCH)
        _tid_pool.extend(pool[i : i + 16] for i in range(0, len(pool), 16))
    return _tid_pool.pop()


if hasattr(os, "register_at_fork"):  # a forked child must not hand out its parent's ids again
    os.register_at_fork(after_in_child=_tid_pool.clear)


def new_message_id() -> str:
    """A random Message-ID (RFC 4975 ``ident``)."""
    return secrets.token_hex(10)


class ByteRange(NamedTuple):
    """``Byte-Range: start-end/total``; ``end``/``total`` are None for ``*``.  1-based, inclusive."""

    start: int
    end: int | None
    total: int | None

    def __str__(self) -> str:
        end = "*" if self.end is None else str(self.end)
        total = "*" if self.total is None else str(self.total)
        return f"{self.start}-{end}/{total}"

    @classmethod
    def parse(cls, value: str) -> ByteRange:
        match = _BYTE_RANGE_RE.match(value)
        if match is None:
            raise MSRPProtocolError(f"bad Byte-Range {value!r}")
        start_s, end_s, total_s = match.groups()
        start = int(start_s)
        end = None if end_s == "*" else int(end_s)
        total = None if total_s == "*" else int(total_s)
        if start < 1:
            raise MSRPProtocolError(f"Byte-Range start must be >= 1: {value!r}")
        if end is not None and end < start - 1:
            raise MSRPProtocolError(f"Byte-Range end before start: {value!r}")
        if total is not None and end is not None and end > total:
            raise MSRPProtocolError(f"Byte-Range end beyond total: {value!r}")
        return _new_tuple(cls, (start, end, total))  # cls(...) without the generated __new__: once per chunk


class Status(NamedTuple):
    """``Status: 000 200 OK`` as found in REPORT requests."""

    code: int
    comment: str = ""
    namespace: int = 0

    def __str__(self) -> str:
        text = f"{self.namespace:03d} {self.code:03d}"
        return f"{text} {one_line(self.comment)}" if self.comment else text

    @classmethod
    def parse(cls, value: str) -> Status:
        match = _STATUS_RE.match(value.strip())
        if match is None:
            raise MSRPProtocolError(f"bad Status {value!r}")
        return cls(int(match.group(2)), match.group(3) or "", int(match.group(1)))


def parse_digest_challenge(value: str) -> dict[str, str]:
    """Parse ``Digest realm="x", nonce="y", qop="auth"`` into a lower-cased dict."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise MSRPProtocolError(f"unsupported authentication scheme {scheme!r}")
    params: dict[str, str] = {}
    for match in re.finditer(r'\s*([A-Za-z0-9\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*,?', rest):
        key, raw = match.group(1).lower(), match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key] = raw
    return params


class MSRPData:
    """One MSRP frame (request or response, or one piece of a long body).

    Requests have ``method`` set and ``code`` None; responses the reverse.  ``headers``
    maps canonical header names to raw string values in wire order.  ``contflag`` is the
    end-line flag; the parser sets it to None on a *piece* of a body that it hands out
    before the end-line arrived (see ``MSRPParser(max_body_buffer=...)``), in which case
    ``body_offset`` tells where in the frame's body the piece starts.  The ``body`` of a
    received frame or piece is ``bytes`` or, normally for a body of 16 KiB or more and for
    pieces, a read-only ``memoryview`` of the received bytes (not a copy; see
    :class:`~sipsimple.msrp.messages.MessageSink`).
    """

    __slots__ = (
        "transaction_id",
        "method",
        "code",
        "comment",
        "headers",
        "body",
        "contflag",
        "body_offset",
        "_cache",
    )

    def __init__(
        self,
        transaction_id: str | None = None,
        method: str | None = None,
        code: int | None = None,
        comment: str | None = None,
        headers: dict[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | memoryview = b"",
        contflag: str | None = "$",
        body_offset: int = 0,
    ) -> None:
        if (method is None) == (code is None):
            raise ValueError("exactly one of method and code must be given")
        self.transaction_id = transaction_id or new_transaction_id()
        self.method = method
        self.code = code
        self.comment = comment
        self.headers: dict[str, str] = {}
        if headers:
            items = headers.items() if isinstance(headers, dict) else headers
            for name, value in items:
                self.headers[canonical_header_name(name)] = value
        self.body = body
        self.contflag = contflag
        self.body_offset = body_offset
        self._cache: dict[str, object] = {}

    # ------------------------------------------------------------------ generic headers
    def __repr__(self) -> str:
        kind = self.method if self.method is not None else f"{self.code} {self.comment or ''}".strip()
        return f"<MSRPData {self.transaction_id} {kind} {len(self.body)}B {self.contflag}>"

    @property
    def is_request(self) -> bool:
        return self.method is not None

    @property
    def is_complete(self) -> bool:
        """True unless this is a body piece handed out before its end-line arrived."""
        return self.contflag is not None

    def get_header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(canonical_header_name(name), default)

    def set_header(self, name: str, value: object) -> None:
        """Set (or replace, keeping its position) a header; ``value`` is formatted with str()."""
        canon = canonical_header_name(name)
        if canon in ("To-Path", "From-Path", "Use-Path") and not isinstance(value, str):
            value = format_path(value)  # type: ignore[arg-type]
        self.headers[canon] = str(value)
        self._cache.pop(canon, None)

    def delete_header(self, name: str) -> None:
        canon = canonical_header_name(name)
        self.headers.pop(canon, None)
        self._cache.pop(canon, None)

    def _parsed(self, name: str, parse, default=None):
        cache = self._cache
        if name in cache:
            return cache[name]
        raw = self.headers.get(name)
        value = default if raw is None else parse(raw)
        cache[name] = value
        return value

    # ------------------------------------------------------------------ typed accessors
    @property
    def to_path(self) -> list[MSRPURI]:
        return self._parsed("To-Path", parse_path, [])

    @property
    def from_path(self) -> list[MSRPURI]:
        return self._parsed("From-Path", parse_path, [])

    @property
    def use_path(self) -> list[MSRPURI]:
        return self._parsed("Use-Path", parse_path, [])

    @property
    def message_id(self) -> str | None:
        return self.headers.get("Message-ID")

    @property
    def byte_range(self) -> ByteRange | None:
        return self._parsed("Byte-Range", ByteRange.parse)

    @property
    def status(self) -> Status | None:
        return self._parsed("Status", Status.parse)

    @property
    def success_report(self) -> bool:
        """Success-Report: yes|no (default no)."""
        return self._parsed("Success-Report", _parse_success_report, False)

    @property
    def failure_report(self) -> str:
        """Failure-Report: yes|no|partial (default yes)."""
        return self._parsed("Failure-Report", _parse_failure_report, "yes")

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def expires(self) -> int | None:
        return self._parsed("Expires", _parse_int)

    @property
    def www_authenticate(self) -> dict[str, str] | None:
        return self._parsed("WWW-Authenticate", parse_digest_challenge)

    def validate(self) -> None:
        """Parse every typed header once; raise MSRPProtocolError on the first bad one."""
        if "To-Path" not in self.headers or "From-Path" not in self.headers:
            raise MSRPProtocolError("frame without To-Path or From-Path")
        self.to_path, self.from_path, self.byte_range, self.status  # noqa: B018
        self.success_report, self.failure_report  # noqa: B018
        if self.body and "Content-Type" not in self.headers:
            raise MSRPProtocolError("frame with a body but no Content-Type")

    # ------------------------------------------------------------------ serializer
    def encode_head(self) -> bytes:
        """Start line and headers (plus the blank line if there is a content section)."""
        if self.method is not None:
            start = f"MSRP {self.transaction_id} {self.method}\r\n"
        else:
            start = f"MSRP {self.transaction_id} {self.code:03d}"
            start += f" {one_line(self.comment)}\r\n" if self.comment else "\r\n"
        headers = self.headers
        lines = [start]
        for name in ("To-Path", "From-Path"):
            if name in headers:
                lines.append(f"{name}: {headers[name]}\r\n")
        for name, value in headers.items():
            if name in ("To-Path", "From-Path", "Content-Type") or name in _CONTENT_HEADERS:
                continue
            lines.append(f"{name}: {value}\r\n")
        if self.has_content_section:
            for name in _CONTENT_HEADERS:
                if name in headers:
                    lines.append(f"{name}: {headers[name]}\r\n")
            lines.append(f"Content-Type: {headers['Content-Type']}\r\n\r\n")
        return "".join(lines).encode("utf-8")

    @property
    def has_content_section(self) -> bool:
        return "Content-Type" in self.headers

    def encode_tail(self, contflag: str | None = None) -> bytes:
        """The end-line (preceded by CRLF when there is a content section)."""
        flag = contflag or self.contflag or "$"
        lead = "\r\n" if self.has_content_section else ""
        return f"{lead}-------{self.transaction_id}{flag}\r\n".encode("ascii")

    def encode(self) -> bytes:
        """The whole frame as bytes."""
        if self.body and not self.has_content_section:
            raise MSRPProtocolError("cannot encode a body without Content-Type")
        return b"".join((self.encode_head(), self.body, self.encode_tail()))

    def __bytes__(self) -> bytes:
        return self.encode()

    # ------------------------------------------------------------------ helpers
    def new_response(self, code: int, comment: str | None = None) -> MSRPData:
        """The response to this request: To-Path is the previous hop, From-Path is us."""
        if comment is None:
            comment = RESPONSE_COMMENTS.get(code, "")
        response = MSRPData(self.transaction_id, code=code, comment=comment)
        from_path = self.from_path
        to_path = self.to_path
        response.headers["To-Path"] = str(from_path[0]) if from_path else ""
        response.headers["From-Path"] = str(to_path[0]) if to_path else ""
        return response

    def copy(self) -> MSRPData:
        clone = MSRPData(
            self.transaction_id,
            self.method,
            self.code,
            self.comment,
            dict(self.headers),
            self.body,
            self.contflag,
            self.body_offset,
        )
        return clone


_RESPONSE_PATHS: dict[tuple[str, str], str] = {}
_RESPONSE_PATHS_SIZE = 1024
_STATUS_LINES: dict[tuple[int, str | None], str] = {}  # (code, comment) -> " 200 OK\r\n"
_STATUS_LINES_SIZE = 256


def one_line(text: str) -> str:
    """``text`` with CR and LF replaced by spaces: safe in a start line or header value."""
    if "\r" in text or "\n" in text:
        return text.replace("\r", " ").replace("\n", " ")
    return text


def encode_response(request: MSRPData, code: int, comment: str | None = None) -> bytes:
    """The same bytes as ``request.new_response(code, comment).encode()``, made directly.

    A receiver answers every chunk: the path lines of the answer depend only on the request's
    To-Path and From-Path, which repeat on every chunk of a session, so they are formatted once.
    """
    headers = request.headers
    key = (headers.get("To-Path", ""), headers.get("From-Path", ""))
    paths = _RESPONSE_PATHS.get(key)
    if paths is None:
        from_path = request.from_path
        to_path = request.to_path
        paths = (
            f"To-Path: {from_path[0] if from_path else ''}\r\n"
            f"From-Path: {to_path[0] if to_path else ''}\r\n"
        )
        if len(_RESPONSE_PATHS) >= _RESPONSE_PATHS_SIZE:
            _RESPONSE_PATHS.clear()
        _RESPONSE_PATHS[key] = paths
    status = _STATUS_LINES.get((code, comment))
    if status is None:
        text = RESPONSE_COMMENTS.get(code, "") if comment is None else comment
        status = f" {code:03d} {one_line(text)}\r\n" if text else f" {code:03d}\r\n"
        if len(_STATUS_LINES) < _STATUS_LINES_SIZE:
            _STATUS_LINES[(code, comment)] = status
    tid = request.transaction_id
    return f"MSRP {tid}{status}{paths}-------{tid}$\r\n".encode()


def _parse_success_report(value: str) -> bool:
    value = value.strip()
    if value == "yes":
        return True
    if value == "no":
        return False
    raise MSRPProtocolError(f"bad Success-Report {value!r}")


def _parse_failure_report(value: str) -> str:
    value = value.strip()
    if value not in ("yes", "no", "partial"):
        raise MSRPProtocolError(f"bad Failure-Report {value!r}")
    return value


def _parse_int(value: str) -> int:
    value = value.strip()
    if not value.isdigit() or not value.isascii():
        raise MSRPProtocolError(f"bad integer header value {value!r}")
    return int(value)


def is_valid_transaction_id(value: str) -> bool:
    """RFC 4975 ``transact-id``: alphanumeric start, 4-32 ident characters."""
    return bool(_TID_RE.match(value))
