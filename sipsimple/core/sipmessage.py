"""A received or sent SIP message, read lazily from its text."""

from __future__ import annotations

from functools import cached_property

from sipsimple.core.headers import ContactHeader, FromHeader, ToHeader, split_header_list

__all__ = ["SIPMessage"]

# RFC 3261 compact forms and a few others
_COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
    "o": "event", "u": "allow-events", "r": "refer-to", "b": "referred-by", "x": "session-expires",
}
# headers whose values may be comma lists (split into separate values)
_LIST_HEADERS = frozenset(("contact", "via", "route", "record-route", "allow", "supported", "require",
                           "accept", "allow-events", "path", "service-route"))


class SIPMessage:
    """The text of a SIP message, parsed on first access.

    ``headers`` maps lower-case header names (compact forms expanded) to lists of
    values; the common ones have properties. Built by the core from the message
    the stack received, or from bytes with ``SIPMessage(data)``.
    """

    __slots__ = ("raw", "__dict__")

    def __init__(self, raw: bytes) -> None:
        self.raw = bytes(raw)

    @cached_property
    def _parsed(self) -> tuple[str, dict[str, list[str]], bytes]:
        head, _, body = self.raw.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "surrogateescape").split("\r\n")
        start = lines[0] if lines else ""
        headers: dict[str, list[str]] = {}
        name = None
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and name is not None:
                headers[name][-1] += " " + line.strip()
                continue
            raw_name, sep, value = line.partition(":")
            if not sep:
                continue
            name = raw_name.strip().lower()
            name = _COMPACT.get(name, name)
            headers.setdefault(name, []).append(value.strip())
        for list_name in _LIST_HEADERS & headers.keys():
            headers[list_name] = [item for value in headers[list_name] for item in split_header_list(value)]
        return start, headers, body

    @property
    def start_line(self) -> str:
        return self._parsed[0]

    @property
    def headers(self) -> dict[str, list[str]]:
        return self._parsed[1]

    @property
    def body(self) -> bytes:
        return self._parsed[2]

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of a header, by any-case name."""
        values = self.headers.get(_COMPACT.get(name.lower(), name.lower()))
        return values[0] if values else default

    @property
    def is_request(self) -> bool:
        return not self.start_line.startswith("SIP/")

    @property
    def method(self) -> str | None:
        if self.is_request:
            return self.start_line.split(" ", 1)[0]
        cseq = self.header("cseq")
        return cseq.split()[-1] if cseq else None

    @property
    def request_uri(self) -> str | None:
        parts = self.start_line.split(" ")
        return parts[1] if self.is_request and len(parts) > 1 else None

    @property
    def status(self) -> int | None:
        if self.is_request:
            return None
        parts = self.start_line.split(" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    @property
    def reason(self) -> str | None:
        parts = self.start_line.split(" ", 2)
        return parts[2] if not self.is_request and len(parts) > 2 else None

    @cached_property
    def from_header(self) -> FromHeader | None:
        value = self.header("from")
        return FromHeader.parse(value) if value else None

    @cached_property
    def to_header(self) -> ToHeader | None:
        value = self.header("to")
        return ToHeader.parse(value) if value else None

    @cached_property
    def contact_headers(self) -> list[ContactHeader]:
        out = []
        for value in self.headers.get("contact", []):
            if value.strip() == "*":
                continue
            try:
                out.append(ContactHeader.parse(value))
            except ValueError:
                continue
        return out

    @property
    def call_id(self) -> str | None:
        return self.header("call-id")

    @property
    def cseq(self) -> tuple[int, str] | None:
        value = self.header("cseq")
        if not value:
            return None
        number, _, method = value.partition(" ")
        return (int(number), method.strip()) if number.isdigit() else None

    @property
    def content_type(self) -> str | None:
        value = self.header("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    @property
    def user_agent(self) -> str | None:
        return self.header("user-agent")

    @property
    def server(self) -> str | None:
        return self.header("server")

    @property
    def expires(self) -> int | None:
        value = self.header("expires")
        return int(value) if value and value.isdigit() else None

    def __repr__(self) -> str:
        return f"<SIPMessage {self.start_line!r}>"
