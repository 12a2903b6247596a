"""Turn what Sofia-SIP writes to the trace file into whole SIP messages.

Two writers append to the one trace file, in the order things happen on the
Engine thread:

- Sofia's *dump* (``TPTAG_DUMP``): a stamp line, the raw bytes, ``\\v\\n``. It
  holds every datagram or stream segment, retransmissions included, but for
  what we send it keeps only the first iovec -- the start line and headers --
  because ``tport_dump_iovec`` checks ``fwrite()``'s item count against a byte
  count and stops after the first piece.
- Sofia's *message log* (``TPTAG_LOG``, routed here by the core): a stamp line,
  a line of dashes, each line of the message indented by three spaces, a line of
  dashes. It holds whole messages, bodies included, but a sent message only the
  first time it goes out.

So received messages come from the dump as they are; a sent message is the log
record that follows its dump record, and a retransmission (a dump record with
no log record after it) is the message last logged with the same headers. Any
other text in the file is Sofia's own diagnostics.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["TraceRecord", "TraceParser"]

_STAMP = re.compile(rb"(sent|recv|send) (\d+) bytes (?:to|from) (\w+)/\[([^\]]+)\]:(\d+)[^\n]*? at [\d:.]+:\n")
_RULE = b"   " + b"-" * 72 + b"\n"
_DUMP_END = b"\x0b\n"
_REMEMBERED = 256  # sent messages kept for their retransmissions


@dataclass(frozen=True)
class TraceRecord:
    """One SIP message as it went over the wire."""

    direction: str  # "in" or "out"
    transport: str  # "udp", "tcp", "tls"
    address: str  # the other party's
    port: int
    data: bytes


def _unlog(lines: bytes, size: int) -> bytes:
    # the log indents each line by three spaces and ends it with a bare LF; SIP uses CRLF
    text = b"\r\n".join(line[3:] if line.startswith(b"   ") else line for line in lines.split(b"\n"))
    if len(text) == size + 2 and text.endswith(b"\r\n"):
        text = text[:-2]  # a body without a final CRLF
    return text


class TraceParser:
    """Feed it what the trace file grew by; it returns the messages in order."""

    def __init__(self) -> None:
        self._sent: OrderedDict[bytes, bytes] = OrderedDict()
        self.diagnostics: list[bytes] = []  # Sofia's other output, for the log

    def feed(self, data: bytes) -> list[TraceRecord]:
        records: list[TraceRecord] = []
        pending: tuple[re.Match, bytes] | None = None  # a dump record of something we sent
        pos = 0
        while True:
            match = _STAMP.search(data, pos)
            if match is None:
                self._note(data[pos:])
                break
            self._note(data[pos:match.start()])
            verb = match.group(1)
            if data.startswith(_RULE, match.end()):  # a log record
                start = match.end() + len(_RULE)
                end = data.find(_RULE, start)
                if end < 0:
                    end = len(data)
                    pos = end
                else:
                    pos = end + len(_RULE)
                if verb == b"send":
                    text = _unlog(data[start:end], int(match.group(2)))
                    if pending is not None:
                        self._remember(pending[1], text)
                        records.append(self._record(pending[0], text))
                        pending = None
                    else:  # no dump record before it (should not happen): still show it
                        records.append(self._record(match, text))
                continue
            end = data.find(_DUMP_END, match.end())
            if end < 0:
                end = len(data)
            raw = data[match.end():end]
            pos = end + len(_DUMP_END)
            if pending is not None:  # a sent record with no log record after it: a retransmission
                records.append(self._record(pending[0], self._sent.get(pending[1], pending[1])))
                pending = None
            if verb == b"sent":
                pending = (match, raw)
            else:
                records.append(self._record(match, raw))
        if pending is not None:
            records.append(self._record(pending[0], self._sent.get(pending[1], pending[1])))
        return records

    def _remember(self, headers: bytes, text: bytes) -> None:
        self._sent[headers] = text
        self._sent.move_to_end(headers)
        while len(self._sent) > _REMEMBERED:
            self._sent.popitem(last=False)

    def _note(self, text: bytes) -> None:
        text = text.strip()
        if text and not text.startswith(b"dump started at"):
            self.diagnostics.append(text)

    @staticmethod
    def _record(match: re.Match, data: bytes) -> TraceRecord:
        verb, _size, transport, address, port = match.groups()
        return TraceRecord("in" if verb == b"recv" else "out", transport.decode().lower(), address.decode(),
                           int(port), data)
