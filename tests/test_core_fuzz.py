"""Fuzzing the core's parse entry points: URI, SIP message, SDP, headers.

Anything may come in; only ValueError (or TypeError for a wrong type) may come out,
never a crash, and repeated parsing does not grow memory.
"""

import resource

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipsimple.core import SIPURI, FromHeader, SDPSession, SIPMessage, _core

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID_MESSAGE = (
    b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"
    b"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\n"
    b"CSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 10\r\n\r\nv=0\r\no=x\r\n"
)
VALID_SDP = (
    b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)
URI_ALPHABET = "sip:sips@;=?&%.-_!~*'()[]/:+$,abcXYZ019 \t\"<>\\#"


def mutate(data: bytes, edits):
    buf = bytearray(data)
    for position, value in edits:
        if buf:
            buf[position % len(buf)] = value
    return bytes(buf)


def only_value_errors(fn, *args):
    try:
        fn(*args)
    except ValueError:
        pass


@FUZZ
@given(st.text(alphabet=URI_ALPHABET, max_size=60))
def test_uri_text(text):
    only_value_errors(SIPURI.parse, text)


@FUZZ
@given(st.binary(max_size=80))
def test_uri_bytes(data):
    only_value_errors(_core.parse_uri, data)


@FUZZ
@given(st.text(max_size=80))
def test_name_address_header(text):
    only_value_errors(FromHeader.parse, text)


@FUZZ
@given(st.binary(max_size=600))
def test_sip_message_random(data):
    only_value_errors(_core.parse_message, data)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12))
def test_sip_message_mutated(edits):
    data = mutate(VALID_MESSAGE, edits)
    only_value_errors(_core.parse_message, data)
    message = SIPMessage(data)  # the lazy Python view must never raise on access either
    for attribute in ("method", "status", "call_id", "cseq", "content_type", "expires", "body"):
        getattr(message, attribute)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12))
def test_sdp_mutated(edits):
    only_value_errors(SDPSession.parse, mutate(VALID_SDP, edits))


@FUZZ
@given(st.binary(max_size=400))
def test_sdp_random(data):
    only_value_errors(SDPSession.parse, data)


def _rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_parsing_does_not_leak():
    bad = VALID_MESSAGE.replace(b"CSeq: 1", b"CSeq: x")
    def round_():
        for _ in range(5000):
            _core.parse_message(VALID_MESSAGE)
            only_value_errors(_core.parse_message, bad)
            _core.parse_sdp(VALID_SDP)
            only_value_errors(_core.parse_sdp, b"v=0\r\nbroken")
            _core.parse_uri("sip:alice@example.com;transport=tcp")
            only_value_errors(_core.parse_uri, "sip:")
    round_()  # warm up allocator pools
    before = _rss_kib()
    for _ in range(4):
        round_()
    assert _rss_kib() - before < 2048, "RSS grew by more than 2 MiB over 20,000 parse rounds"
