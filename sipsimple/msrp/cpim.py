"""message/cpim (RFC 3862): build and parse.

    msg = CPIMMessage(b"hi", "text/plain", sender=CPIMIdentity("sip:alice@example.com", "Alice"),
                      recipients=[CPIMIdentity("sip:bob@example.com")], timestamp=datetime.now(UTC))
    data = msg.encode()
    back = CPIMMessage.parse(data)

Message headers: From, To, cc, DateTime, Subject (with ``;lang=``), NS, Require and
namespaced extension headers (``prefix.Name``, the prefix declared by NS).  Then the
encapsulated MIME headers (Content-Type and others) and the content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .errors import CPIMError

__all__ = ["CPIMIdentity", "CPIMMessage", "CPIM_CONTENT_TYPE", "format_datetime", "parse_datetime"]

CPIM_CONTENT_TYPE = "message/cpim"

_HEADER_RE = re.compile(r"^([A-Za-z0-9!#$%&'*+\-^_`|~]+(?:\.[A-Za-z0-9!#$%&'*+\-^_`|~]+)?):(.*)$")
_IDENTITY_RE = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|([^<"]*?))\s*<([^<>\s]+)>\s*$')
_NS_RE = re.compile(r"^\s*([A-Za-z0-9\-_]*)\s*<([^<>\s]+)>\s*$")
_PARAM_RE = re.compile(r"^;([A-Za-z0-9\-]+)=([^ ;]*)")
_STANDARD = ("From", "To", "cc", "DateTime", "Subject", "NS", "Require")
_STANDARD_LOWER = {name.lower(): name for name in _STANDARD}


def format_datetime(value: datetime) -> str:
    """RFC 3339 text; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_datetime(value: str) -> datetime:
    """RFC 3339 text to an aware datetime."""
    text = value.strip()
    if not re.match(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", text):
        raise CPIMError(f"bad DateTime {value!r}")
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise CPIMError(f"bad DateTime {value!r}") from None


@dataclass(frozen=True)
class CPIMIdentity:
    """``"Display Name" <uri>`` as in From, To and cc."""

    uri: str
    display_name: str | None = None

    def __str__(self) -> str:
        if self.display_name:
            escaped = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            return f'"{escaped}" <{self.uri}>'
        return f"<{self.uri}>"

    @classmethod
    def parse(cls, value: str) -> CPIMIdentity:
        match = _IDENTITY_RE.match(value)
        if match is None:
            raise CPIMError(f"bad CPIM identity {value!r}")
        quoted, plain, uri = match.groups()
        if quoted is not None:
            name: str | None = re.sub(r"\\(.)", r"\1", quoted)
        else:
            name = plain.strip() or None
        return cls(uri, name or None)


@dataclass
class CPIMMessage:
    """One message/cpim document."""

    content: bytes
    content_type: str = "text/plain"
    sender: CPIMIdentity | None = None
    recipients: list[CPIMIdentity] = field(default_factory=list)
    cc: list[CPIMIdentity] = field(default_factory=list)
    timestamp: datetime | None = None
    subjects: dict[str | None, str] = field(default_factory=dict)
    """Subject per language (None: no ``lang`` parameter)."""
    namespaces: dict[str, str] = field(default_factory=dict)
    """NS declarations: prefix -> URI ('' is the default namespace)."""
    required: list[str] = field(default_factory=list)
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    """Other message headers in order, e.g. ``("MyFeatures.VitalMessageOption", "yes")``."""
    content_headers: list[tuple[str, str]] = field(default_factory=list)
    """Encapsulated MIME headers other than Content-Type."""

    @property
    def subject(self) -> str | None:
        if None in self.subjects:
            return self.subjects[None]
        return next(iter(self.subjects.values()), None)

    # ------------------------------------------------------------------ build
    def encode(self) -> bytes:
        """The document as bytes (CRLF line ends)."""
        lines: list[str] = []
        if self.sender is not None:
            lines.append(f"From: {self.sender}")
        lines += [f"To: {identity}" for identity in self.recipients]
        lines += [f"cc: {identity}" for identity in self.cc]
        if self.timestamp is not None:
            lines.append(f"DateTime: {format_datetime(self.timestamp)}")
        for lang, text in self.subjects.items():
            _check_value(text)
            lines.append(f"Subject:;lang={lang} {text}" if lang else f"Subject: {text}")
        for prefix, uri in self.namespaces.items():
            lines.append(f"NS: {prefix} <{uri}>" if prefix else f"NS: <{uri}>")
        if self.required:
            lines.append("Require: " + ",".join(self.required))
        for name, value in self.extra_headers:
            self._check_extension(name)
            _check_value(value)
            lines.append(f"{name}: {value}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        content_lines = [f"Content-Type: {self.content_type}"]
        for name, value in self.content_headers:
            _check_value(value)
            content_lines.append(f"{name}: {value}")
        return (head + "\r\n".join(content_lines) + "\r\n\r\n").encode("utf-8") + self.content

    def _check_extension(self, name: str) -> None:
        if not _HEADER_RE.match(name + ":"):
            raise CPIMError(f"bad header name {name!r}")
        if "." in name:
            prefix = name.split(".", 1)[0]
            if prefix not in self.namespaces:
                raise CPIMError(f"namespace prefix {prefix!r} not declared")

    def headers_dict(self) -> dict[str, object]:
        """Message headers as a dict (the seed's ``cpim_headers``)."""
        result: dict[str, object] = {}
        if self.sender is not None:
            result["From"] = self.sender
        if self.recipients:
            result["To"] = list(self.recipients)
        if self.cc:
            result["cc"] = list(self.cc)
        if self.timestamp is not None:
            result["DateTime"] = self.timestamp
        if self.subjects:
            result["Subject"] = self.subject
        if self.namespaces:
            result["NS"] = dict(self.namespaces)
        if self.required:
            result["Require"] = list(self.required)
        for name, value in self.extra_headers:
            result[name] = value
        return result

    # ------------------------------------------------------------------ parse
    @classmethod
    def parse(cls, data: bytes) -> CPIMMessage:
        """Parse a message/cpim body; raise :class:`CPIMError` when it is not one."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise CPIMError("CPIM data must be bytes")
        data = bytes(data)
        head, body = _split_block(data, "message headers")
        content_head, content = _split_block(body, "content headers")
        message = cls(content=content)
        for name, value in _header_lines(head):
            message._add_header(name, value)
        content_type = None
        for name, value in _header_lines(content_head):
            if name.lower() == "content-type":
                if content_type is not None:
                    raise CPIMError("two Content-Type headers")
                content_type = value.strip()
            else:
                message.content_headers.append((name, value.strip()))
        if not content_type:
            raise CPIMError("encapsulated content without Content-Type")
        message.content_type = content_type
        for name, _ in message.extra_headers:
            if "." in name and name.split(".", 1)[0] not in message.namespaces:
                raise CPIMError(f"namespace prefix of {name!r} not declared")
        return message

    def _add_header(self, name: str, value: str) -> None:
        standard = _STANDARD_LOWER.get(name.lower()) if "." not in name else None
        if standard is None:
            self.extra_headers.append((name, value.strip()))
            return
        params: dict[str, str] = {}
        while True:
            match = _PARAM_RE.match(value)
            if match is None:
                break
            params[match.group(1).lower()] = match.group(2)
            value = value[match.end() :]
        value = value.strip()
        if standard == "From":
            if self.sender is not None:
                raise CPIMError("more than one From header")
            self.sender = CPIMIdentity.parse(value)
        elif standard == "To":
            self.recipients.append(CPIMIdentity.parse(value))
        elif standard == "cc":
            self.cc.append(CPIMIdentity.parse(value))
        elif standard == "DateTime":
            if self.timestamp is not None:
                raise CPIMError("more than one DateTime header")
            self.timestamp = parse_datetime(value)
        elif standard == "Subject":
            self.subjects[params.get("lang")] = value
        elif standard == "NS":
            match = _NS_RE.match(value)
            if match is None:
                raise CPIMError(f"bad NS header {value!r}")
            self.namespaces[match.group(1)] = match.group(2)
        elif standard == "Require":
            self.required += [item.strip() for item in value.split(",") if item.strip()]


def _split_block(data: bytes, what: str) -> tuple[str, bytes]:
    index = data.find(b"\r\n\r\n")
    sep = 4
    lf_index = data.find(b"\n\n")
    if lf_index >= 0 and (index < 0 or lf_index < index):
        index, sep = lf_index, 2
    if index < 0:
        raise CPIMError(f"CPIM {what} not terminated by an empty line")
    try:
        head = data[:index].decode("utf-8")
    except UnicodeDecodeError:
        raise CPIMError(f"CPIM {what} are not UTF-8") from None
    return head, data[index + sep :]


def _header_lines(block: str) -> list[tuple[str, str]]:
    if not block:
        return []
    result = []
    for line in block.replace("\r\n", "\n").split("\n"):
        match = _HEADER_RE.match(line)
        if match is None:
            raise CPIMError(f"bad CPIM header line {line[:80]!r}")
        value = match.group(2)
        _check_value(value)
        result.append((match.group(1), value[1:] if value.startswith(" ") else value))
    return result


def _check_value(value: str) -> None:
    if any(ch in value for ch in "\r\n\x00"):
        raise CPIMError("line break or NUL in a CPIM header value")
