"""The SIP trace parser: Sofia's dump and message log paired into whole messages; any input is safe."""

from hypothesis import given, settings
from hypothesis import strategies as st

from sipsimple.core.sip_trace import TraceParser

HEADERS = b"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\nContent-Length: 5\r\n\r\n"
STAMP_SENT = b"sent %d bytes to udp/[127.0.0.1]:5070 at 10:00:00.000001:\n" % (len(HEADERS) + 5)
STAMP_SEND = b"send %d bytes to udp/[127.0.0.1]:5070 at 10:00:00.000002:\n" % (len(HEADERS) + 5)
RULE = b"   " + b"-" * 72 + b"\n"


def logged(message: bytes) -> bytes:
    lines = message.split(b"\r\n")
    return b"".join(b"   " + line + b"\n" for line in lines[:-1]) + (b"   " + lines[-1] + b"\n" if lines[-1] else b"")


def test_a_sent_message_is_whole_and_its_retransmission_too():
    parser = TraceParser()
    message = HEADERS + b"hello"
    first = STAMP_SENT + HEADERS + b"\x0b\n" + STAMP_SEND + RULE + logged(message) + RULE
    again = STAMP_SENT + HEADERS + b"\x0b\n"
    records = parser.feed(first) + parser.feed(again)
    assert [(r.direction, r.port, r.data) for r in records] == [("out", 5070, message)] * 2


def test_received_comes_from_the_dump_and_other_text_is_diagnostics():
    parser = TraceParser()
    raw = b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"
    data = (b"nta: something odd\n" + b"recv 38 bytes from udp/[127.0.0.1]:5070 at 10:00:00.1:\n" + raw + b"\x0b\n"
            + b"recv 38 bytes from udp/[127.0.0.1]:5070 at 10:00:00.1:\n" + RULE + logged(raw) + RULE)
    records = parser.feed(data)
    assert [(r.direction, r.data) for r in records] == [("in", raw)]
    assert parser.diagnostics == [b"nta: something odd"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([STAMP_SENT, STAMP_SEND, RULE, b"\x0b\n", HEADERS, b"\n", b"   x"]) | st.binary(),
                max_size=12))
def test_any_input_parses_without_error(pieces):
    for record in TraceParser().feed(b"".join(pieces)):
        assert record.direction in ("in", "out") and isinstance(record.data, bytes)
