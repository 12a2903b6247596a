"""Message summary bodies for message-waiting indication (RFC 3842).

``application/simple-message-summary`` is line-oriented text, not XML::

    Messages-Waiting: yes
    Message-Account: sip:alice@vmail.example.com
    Voice-Message: 2/8 (0/2)

optionally followed by a blank line and opaque message headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import ParserError, ValidationError
from .xmlbinding import MAX_PAYLOAD_SIZE

__all__ = ["CONTENT_TYPE", "MESSAGE_CLASSES", "MessageCount", "MessageSummary"]

CONTENT_TYPE = "application/simple-message-summary"

#: Message context classes of RFC 3458, in their canonical spelling.
MESSAGE_CLASSES = {
    name.lower(): name
    for name in (
        "Voice-Message",
        "Fax-Message",
        "Pager-Message",
        "Multimedia-Message",
        "Text-Message",
        "None",
    )
}

_HEADER_RE = re.compile(r"([!-9;-~]+)[ \t]*:[ \t]*(.*)")
_COUNT_RE = re.compile(
    r"([0-9]{1,9})[ \t]*/[ \t]*([0-9]{1,9})(?:[ \t]*\([ \t]*([0-9]{1,9})[ \t]*/[ \t]*([0-9]{1,9})[ \t]*\))?"
)


@dataclass
class MessageCount:
    """New and old message counts of one message class, with optional urgent counts."""

    new: int = 0
    old: int = 0
    new_urgent: int | None = None
    old_urgent: int | None = None

    def __post_init__(self) -> None:
        for name in ("new", "old", "new_urgent", "old_urgent"):
            value = getattr(self, name)
            if value is None and name.endswith("urgent"):
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValidationError(f"message count {name} must be a non-negative integer, not {value!r}")
        if (self.new_urgent is None) != (self.old_urgent is None):
            raise ValidationError("new_urgent and old_urgent must be given together")

    def __str__(self) -> str:
        text = f"{self.new}/{self.old}"
        if self.new_urgent is not None:
            text += f" ({self.new_urgent}/{self.old_urgent})"
        return text


@dataclass
class MessageSummary:
    """A parsed or to-be-sent message summary.

    ``summaries`` maps a message context class (canonical spelling, e.g.
    ``"Voice-Message"``) to its counts. Unrecognised status lines are kept in
    ``extra_headers`` and the optional trailing section in ``message_headers``.
    """

    messages_waiting: bool
    account: str | None = None
    summaries: dict[str, MessageCount] = field(default_factory=dict)
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    message_headers: str = ""

    content_type = CONTENT_TYPE

    @property
    def voice(self) -> MessageCount | None:
        """Counts for voice messages, the common case."""
        return self.summaries.get("Voice-Message")

    @classmethod
    def parse(cls, data: bytes | str) -> MessageSummary:
        """Parse a body; raises :class:`ParserError` or :class:`ValidationError`."""
        if isinstance(data, bytes | bytearray | memoryview):
            if len(data) > MAX_PAYLOAD_SIZE:
                raise ParserError(f"message summary is {len(data)} bytes, larger than the limit")
            try:
                text = bytes(data).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ParserError(f"message summary is not valid UTF-8: {exc}") from None
        elif isinstance(data, str):
            text = data
        else:
            raise TypeError(f"message summary must be bytes or str, not {type(data).__name__}")
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        status_part, _, opaque = text.lstrip("\n").partition("\n\n")
        lines = [line for line in status_part.split("\n") if line.strip()]
        if not lines:
            raise ParserError("message summary is empty")
        waiting: bool | None = None
        account: str | None = None
        summaries: dict[str, MessageCount] = {}
        extra: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            match = _HEADER_RE.fullmatch(line.strip())
            if not match:
                raise ParserError(f"message summary line {number} is not a header: {line[:60]!r}")
            name, value = match[1], match[2].strip()
            key = name.lower()
            if key == "messages-waiting":
                if waiting is not None:
                    raise ValidationError("Messages-Waiting appears more than once")
                if value.lower() not in ("yes", "no"):
                    raise ValidationError(f"Messages-Waiting must be yes or no, not {value[:30]!r}")
                waiting = value.lower() == "yes"
            elif waiting is None:
                raise ValidationError("message summary must start with a Messages-Waiting line")
            elif key == "message-account":
                if not value or any(ch.isspace() for ch in value):
                    raise ValidationError(f"Message-Account is not a URI: {value[:60]!r}")
                account = value
            elif key in MESSAGE_CLASSES:
                counts = _COUNT_RE.fullmatch(value)
                if not counts:
                    raise ValidationError(f"{name} counts must look like 2/8 (0/2), not {value[:40]!r}")
                new_urgent = int(counts[3]) if counts[3] is not None else None
                old_urgent = int(counts[4]) if counts[4] is not None else None
                summaries[MESSAGE_CLASSES[key]] = MessageCount(
                    int(counts[1]), int(counts[2]), new_urgent, old_urgent
                )
            else:
                extra.append((name, value))
        if waiting is None:
            raise ValidationError("message summary has no Messages-Waiting line")
        return cls(waiting, account, summaries, extra, opaque.strip("\n"))

    def encode(self) -> bytes:
        """Serialize with CRLF line endings."""
        if not isinstance(self.messages_waiting, bool):
            raise ValidationError("messages_waiting must be a bool")
        lines = [f"Messages-Waiting: {'yes' if self.messages_waiting else 'no'}"]
        if self.account is not None:
            if not self.account or any(ch.isspace() for ch in self.account):
                raise ValidationError(f"account is not a URI: {self.account!r}")
            lines.append(f"Message-Account: {self.account}")
        for name, counts in self.summaries.items():
            canonical = MESSAGE_CLASSES.get(name.lower())
            if canonical is None:
                raise ValidationError(f"unknown message context class {name!r}")
            lines.append(f"{canonical}: {counts}")
        for name, value in self.extra_headers:
            if not _HEADER_RE.fullmatch(f"{name}: {value}") or "\n" in value or "\r" in value:
                raise ValidationError(f"invalid extra header {name!r}")
            lines.append(f"{name}: {value}")
        body = "\r\n".join(lines) + "\r\n"
        if self.message_headers:
            # split("\n"), not splitlines(): the latter also breaks at \v, \x1c, U+2028, ...
            lines = self.message_headers.replace("\r\n", "\n").replace("\r", "\n").split("\n")
            body += "\r\n" + "\r\n".join(lines) + "\r\n"
        return body.encode("utf-8")

    to_bytes = encode
