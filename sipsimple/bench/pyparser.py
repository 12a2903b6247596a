"""A small, straightforward pure-Python SIP message parser and printer.

It is the baseline of the ``parse`` benchmark: it does the same job as the
core's ``_core.parse_message`` (Sofia-SIP's parser and printer) in plain
Python, written the way one would write it without trying to be clever:

- the start line is split into method, Request-URI and version (requests) or
  version, status code and reason phrase (responses);
- header lines folded onto continuation lines (leading SP/HT) are unfolded;
- compact header names (``v``, ``f``, ``t``, ``i``, ``m``, ``l``, ``c``...) are
  expanded and names are printed in their canonical spelling;
- headers that carry comma-separated lists (Via, Contact, Route...) are split
  into one value per element, honouring quoted strings and ``<...>``;
- the body is taken by Content-Length (or all the rest when it is absent, as
  on a stream the length is mandatory but on UDP it is not);
- :func:`serialize` prints the structure back, one header per line, with a
  Content-Length that matches the body.

:func:`normalize` reduces a message to a comparable form (used by the
benchmark to check that both parsers round-trip the content).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ParseError", "SIPMessageData", "parse", "serialize", "normalize"]


class ParseError(ValueError):
    pass


COMPACT = {
    "a": "accept-contact", "b": "referred-by", "c": "content-type", "d": "request-disposition",
    "e": "content-encoding", "f": "from", "i": "call-id", "j": "reject-contact", "k": "supported",
    "l": "content-length", "m": "contact", "n": "identity-info", "o": "event", "r": "refer-to",
    "s": "subject", "t": "to", "u": "allow-events", "v": "via", "x": "session-expires",
    "y": "identity",
}

CANONICAL = {
    name.lower(): name
    for name in (
        "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
        "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
        "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
        "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
        "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version",
        "Organization", "P-Asserted-Identity", "Path", "Priority", "Privacy", "Proxy-Authenticate",
        "Proxy-Authorization", "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To",
        "Referred-By", "Reject-Contact", "Reply-To", "Request-Disposition", "Require",
        "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires",
        "SIP-ETag", "SIP-If-Match", "Subject", "Subscription-State", "Supported", "Timestamp",
        "To", "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
    )
}

# headers whose value is a comma-separated list of elements (RFC 3261 section 7.3.1)
LIST_HEADERS = frozenset((
    "via", "contact", "route", "record-route", "path", "service-route", "allow", "supported",
    "require", "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
    "allow-events", "content-encoding", "content-language", "in-reply-to", "p-asserted-identity",
))


@dataclass
class SIPMessageData:
    """A parsed SIP message: start line parts, ordered headers, body."""

    method: str | None = None        # requests
    uri: str | None = None
    status: int | None = None        # responses
    reason: str | None = None
    version: str = "SIP/2.0"
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str) -> list[str]:
        name = name.lower()
        name = COMPACT.get(name, name)
        return [value for header, value in self.headers if header == name]


def _split_list(value: str) -> list[str]:
    """Split a header value at commas outside quoted strings and <...>."""
    if "," not in value:
        return [value]
    out = []
    start = 0
    quoted = angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if quoted:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        elif ch == "<":
            angle = True
        elif ch == ">":
            angle = False
        elif ch == "," and not angle:
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return [item for item in out if item]


def parse(data: bytes) -> SIPMessageData:
    """Parse one SIP message; raises :class:`ParseError` if it is malformed."""
    end = data.find(b"\r\n\r\n")
    if end >= 0:
        head, rest = data[:end], data[end + 4:]
        lines = head.decode("utf-8", "surrogateescape").split("\r\n")
    else:
        end = data.find(b"\n\n")
        if end < 0:
            raise ParseError("no end of headers")
        head, rest = data[:end], data[end + 2:]
        lines = head.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
    while lines and not lines[0]:      # leading CRLFs (keep-alives) are allowed
        del lines[0]
    if not lines:
        raise ParseError("empty message")

    msg = SIPMessageData()
    parts = lines[0].split(" ", 2)
    if len(parts) != 3:
        raise ParseError(f"bad start line: {lines[0]!r}")
    if parts[0].upper().startswith("SIP/"):
        msg.version = parts[0].upper()
        if not (len(parts[1]) == 3 and parts[1].isdigit()):
            raise ParseError(f"bad status code: {parts[1]!r}")
        msg.status = int(parts[1])
        msg.reason = parts[2]
    else:
        msg.method, msg.uri, msg.version = parts
        if not msg.version.upper().startswith("SIP/") or not msg.uri or not msg.method.isalpha():
            raise ParseError(f"bad request line: {lines[0]!r}")

    # unfold: a line starting with whitespace continues the previous header
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise ParseError("continuation line before any header")
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)

    headers = msg.headers
    for line in unfolded:
        name, sep, value = line.partition(":")
        if not sep:
            raise ParseError(f"header without colon: {line!r}")
        name = name.strip().lower()
        if not name or " " in name or "\t" in name:
            raise ParseError(f"bad header name: {line!r}")
        name = COMPACT.get(name, name)
        value = " ".join(value.split())          # trim and collapse whitespace runs
        if name in LIST_HEADERS:
            for item in _split_list(value):
                headers.append((name, item))
        else:
            headers.append((name, value))

    lengths = msg.get("content-length")
    if lengths:
        try:
            length = int(lengths[0])
        except ValueError:
            raise ParseError(f"bad Content-Length: {lengths[0]!r}") from None
        if length < 0 or length > len(rest):
            raise ParseError("body shorter than Content-Length")
        msg.body = rest[:length]
    else:
        msg.body = rest
    return msg


def canonical_name(name: str) -> str:
    known = CANONICAL.get(name)
    if known is not None:
        return known
    return "-".join(part.capitalize() for part in name.split("-"))


def serialize(msg: SIPMessageData) -> bytes:
    """Print a parsed message back: start line, one header per line, body."""
    if msg.is_request:
        lines = [f"{msg.method} {msg.uri} {msg.version}"]
    else:
        lines = [f"{msg.version} {msg.status:03d} {msg.reason}"]
    for name, value in msg.headers:
        if name == "content-length":
            continue
        lines.append(f"{canonical_name(name)}: {value}")
    lines.append(f"Content-Length: {len(msg.body)}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + msg.body


_SEPARATORS = ";,=:/<>@"
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_LEADING_ZEROS = re.compile(r"(?<![\w.])0+(?=\d)")
_UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!~*'()")


def _unescape_unreserved(match: re.Match) -> str:
    ch = chr(int(match.group(1), 16))
    return ch if ch in _UNRESERVED else "%" + match.group(1).upper()


def _squeeze(value: str) -> str:
    # equivalent spellings: escaped unreserved characters in URIs, leading zeros in numbers
    value = _ESCAPE.sub(_unescape_unreserved, value)
    value = _LEADING_ZEROS.sub("", value)
    value = " ".join(value.split())
    for sep in _SEPARATORS:
        if sep in value:
            value = sep.join(part.strip() for part in value.split(sep))
    return value


def normalize(data: bytes) -> tuple:
    """A comparable form of a message: start line, header values by name, body.

    Whitespace around separators and the order of different headers do not
    matter; the order of values of the same header does.
    """
    msg = parse(data)
    by_name: dict[str, list[str]] = {}
    for name, value in msg.headers:
        by_name.setdefault(name, []).append(_squeeze(value))
    if msg.is_request:
        start = (msg.method, msg.uri, msg.version.upper())
    else:
        start = (msg.version.upper(), msg.status, msg.reason)
    by_name.pop("content-length", None)
    return start, tuple(sorted((name, tuple(values)) for name, values in by_name.items())), msg.body
