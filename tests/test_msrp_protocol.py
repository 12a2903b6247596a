"""MSRP wire format: URIs, frames, the incremental parser (incl. hypothesis fuzzing)."""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipsimple.msrp import parser as parser_module
from sipsimple.msrp.errors import MSRPProtocolError, MSRPURIError
from sipsimple.msrp.message import ByteRange, MSRPData, Status, parse_digest_challenge
from sipsimple.msrp.parser import MSRPParser, parse_frame
from sipsimple.msrp.ranges import ByteRanges
from sipsimple.msrp.uri import MSRPURI, parse_path

A = "msrp://127.0.0.1:7777/iau39soe2843z;tcp"
B = "msrp://127.0.0.1:8888/9di4eae923wzd;tcp"


def send_frame(body: bytes = b"Hi, I'm Alice!", tid: str = "d93kswow", flag: str = "$", **extra) -> MSRPData:
    headers = [("To-Path", A), ("From-Path", B), ("Message-ID", "12339sdqwer"), ("Byte-Range", f"1-{len(body)}/{len(body)}")]
    headers += list(extra.items())
    if body or "Content-Type" not in extra:
        headers.append(("Content-Type", "text/plain"))
    return MSRPData(tid, method="SEND", headers=headers, body=body, contflag=flag)


# ---------------------------------------------------------------------- URIs
def test_uri_parse_and_format():
    uri = MSRPURI.parse("msrps://alice@[::1]:2855/s3ss10n/x=y;tcp;foo=bar")
    assert uri.use_tls and uri.host == "::1" and uri.port == 2855 and uri.user == "alice"
    assert uri.session_id == "s3ss10n/x=y" and uri.transport == "tcp" and uri.parameters == ("foo=bar",)
    assert str(uri) == "msrps://alice@[::1]:2855/s3ss10n/x=y;tcp;foo=bar"
    relay = MSRPURI.parse("msrp://relay.example.com;tcp")
    assert relay.session_id is None and relay.port is None and relay.effective_port == 2855


def test_uri_equality_rfc4975_6_1():
    assert MSRPURI.parse("MSRP://Host.EXAMPLE.com:1/abc;TCP") == MSRPURI.parse("msrp://bob@host.example.com:1/abc;tcp")
    assert MSRPURI.parse("msrp://h:1/abc;tcp") != MSRPURI.parse("msrp://h:1/ABC;tcp")
    assert MSRPURI.parse("msrp://h/abc;tcp") != MSRPURI.parse("msrp://h:2855/abc;tcp")
    assert MSRPURI.parse("msrp://h:1/abc;tcp") != MSRPURI.parse("msrps://h:1/abc;tcp")
    assert len({MSRPURI.parse("msrp://H:1/a1;tcp"), MSRPURI.parse("msrp://h:1/a1;TCP")}) == 1


@pytest.mark.parametrize(
    "bad",
    ["sip:alice@example.com", "msrp://h:1/abc", "msrp://:1/abc;tcp", "msrp://h:99999/a;tcp", "msrp://h:1/;tcp",
     "msrp://h:x/a;tcp", "msrp://[::1/a;tcp", "msrp://h:1/a b;tcp", ""],
)
def test_uri_rejects(bad):
    with pytest.raises(MSRPURIError):
        MSRPURI.parse(bad)


def test_path():
    path = parse_path(f"{A} {B}")
    assert [str(u) for u in path] == [A, B]
    with pytest.raises(MSRPProtocolError):
        parse_path("  ")


# ---------------------------------------------------------------------- frames
def test_rfc4975_example_frame():
    raw = (
        b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://biloxi.example.com:12763/kjhd37s2s20w2a;tcp\r\n"
        b"From-Path: msrp://atlanta.example.com:7654/jshA7weztas;tcp\r\nMessage-ID: 87652491\r\n"
        b"Byte-Range: 1-25/25\r\nContent-Type: text/plain\r\n\r\nHey Bob, are you there?\r\n-------a786hjs2$\r\n"
    )
    frame = parse_frame(raw)
    assert frame.method == "SEND" and frame.transaction_id == "a786hjs2"
    assert frame.body == b"Hey Bob, are you there?"
    assert frame.byte_range == ByteRange(1, 25, 25)
    assert frame.to_path[0].session_id == "kjhd37s2s20w2a"
    assert frame.success_report is False and frame.failure_report == "yes"
    assert frame.encode() == raw


def test_response_and_report_round_trip():
    request = send_frame()
    response = request.new_response(200)
    assert str(response.to_path[0]) == B and str(response.from_path[0]) == A
    parsed = parse_frame(response.encode())
    assert parsed.code == 200 and parsed.comment == "OK" and parsed.body == b""
    report = MSRPData(method="REPORT", headers={"To-Path": B, "From-Path": A, "Message-ID": "x1234",
                                               "Byte-Range": "1-*/*", "Status": "000 200 OK"})
    parsed = parse_frame(report.encode())
    assert parsed.status == Status(200, "OK") and parsed.byte_range == ByteRange(1, None, None)
    assert parse_frame(MSRPData("abcd", code=481, headers={"To-Path": B, "From-Path": A}).encode()).comment is None


def test_empty_body_with_content_type_and_flags():
    for flag in "$+#":
        frame = send_frame(b"", flag=flag, **{"Content-Type": "text/plain"})
        parsed = parse_frame(frame.encode())
        assert parsed.body == b"" and parsed.contflag == flag and parsed.content_type == "text/plain"


def test_body_containing_partial_end_lines():
    body = b"x\r\n-------d93kswowZ\r\n-------d93ksw\r\n-------other$\r\n"
    frame = send_frame(body)
    assert parse_frame(frame.encode()).body == body


def test_digest_challenge():
    params = parse_digest_challenge('Digest realm="127.0.0.1", nonce="ab\\"c", qop="auth"')
    assert params == {"realm": "127.0.0.1", "nonce": 'ab"c', "qop": "auth"}


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"MSRP a SEND\r\n",  # tid too short
        b"MSRP abcd send\r\nTo-Path: " + A.encode() + b"\r\nFrom-Path: " + B.encode() + b"\r\n-------abcd$\r\n",
        b"MSRP abcd SEND\r\nTo-Path: " + A.encode() + b"\r\n-------abcd$\r\n",  # no From-Path
        b"MSRP abcd SEND\r\nTo-Path: " + A.encode() + b"\r\nFrom-Path: bad\r\n-------abcd$\r\n",
        b"MSRP abcd SEND\r\nTo-Path: " + A.encode() + b"\r\nTo-Path: " + A.encode() + b"\r\n-------abcd$\r\n",
        b"MSRP abcd SEND\r\nTo-Path: " + A.encode() + b"\r\nFrom-Path: " + B.encode() + b"\r\n\r\nbody\r\n-------abcd$\r\n",
        b"MSRP abcd SEND\r\nTo-Path: " + A.encode() + b"\r\nFrom-Path: " + B.encode() + b"\r\n-------abcd!\r\n",
        b"MSRP abcd SEND\r\nBad Header\r\nTo-Path: " + A.encode() + b"\r\n-------abcd$\r\n",
        b"MSRP abcd SEND\r\nTo-Path: \xff\r\n-------abcd$\r\n",
        b"MSRP abcd SEND\r\nX: a\nb\r\n-------abcd$\r\n",
    ],
)
def test_parser_rejects(raw):
    parser = MSRPParser()
    with pytest.raises(MSRPProtocolError):
        parser.feed(raw)
    with pytest.raises(MSRPProtocolError):
        parser.feed(b"more")  # a failed parser stays failed


def test_header_limits():
    parser = MSRPParser(max_head_size=1024)
    with pytest.raises(MSRPProtocolError):
        parser.feed(b"MSRP abcd SEND\r\nX-Long: " + b"a" * 2000)
    with pytest.raises(MSRPProtocolError):
        MSRPParser().feed(b"MSRP " + b"x" * 600)


def test_typed_header_errors():
    frame = send_frame(**{"Byte-Range": "0-3/3"})
    with pytest.raises(MSRPProtocolError):
        frame.byte_range  # noqa: B018
    with pytest.raises(MSRPProtocolError):
        send_frame(**{"Failure-Report": "maybe"}).failure_report  # noqa: B018
    with pytest.raises(MSRPProtocolError):
        MSRPData(method="REPORT", headers={"Status": "200 OK"}).status  # noqa: B018


def test_many_frames_in_one_feed_and_byte_by_byte():
    frames = [send_frame(bytes([i]) * i, tid=f"tid{i:04d}") for i in range(1, 40)]
    stream = b"".join(f.encode() for f in frames)
    parsed = MSRPParser().feed(stream)
    assert [p.body for p in parsed] == [f.body for f in frames]
    parser = MSRPParser()
    out = []
    for i in range(len(stream)):
        out += parser.feed(stream[i : i + 1])
    assert [p.body for p in out] == [f.body for f in frames]
    assert parser.buffered == 0 and not parser.in_frame


def test_body_pieces_with_max_body_buffer():
    body = bytes(range(256)) * 4096  # 1 MiB
    raw = send_frame(body, tid="bigframe1").encode()
    parser = MSRPParser(max_body_buffer=64 * 1024)
    pieces = []
    for i in range(0, len(raw), 10000):
        pieces += parser.feed(raw[i : i + 10000])
    assert len(pieces) > 10
    assert all(p.contflag is None for p in pieces[:-1]) and pieces[-1].contflag == "$"
    assert b"".join(p.body for p in pieces) == body
    assert [p.body_offset for p in pieces] == [sum(len(q.body) for q in pieces[:i]) for i in range(len(pieces))]
    assert max(len(p.body) for p in pieces) <= 64 * 1024 + 10000


@pytest.mark.parametrize("boundary_tail", [None, b"\r", b"\r\n----"])
def test_streamed_body_pieces_are_views_of_the_received_bytes(boundary_tail):
    read = 256 * 1024
    # no CR in the body, so no read ends in what could be the start of the end-line ...
    body = bytearray(random.Random(5).randbytes(1024 * 1024).replace(b"\r", b"x"))
    if boundary_tail is not None:  # ... unless the test puts one right before each read boundary
        head_size = send_frame(bytes(body), tid="bigframe2").encode().index(bytes(body[:64]))
        for boundary in range(read, len(body), read):
            at = boundary - head_size - len(boundary_tail)
            body[at : at + len(boundary_tail)] = boundary_tail
    body = bytes(body)
    raw = send_frame(body, tid="bigframe2").encode() + send_frame(b"next", tid="small001").encode()
    parser = MSRPParser(max_body_buffer=4 * 1024 * 1024)
    received = [raw[i : i + read] for i in range(0, len(raw), read)]
    out = []
    for data in received:
        out += parser.feed(data)
        assert parser.buffered < 64  # at most a partial end-line is held, never the body
    pieces, last = out[:-1], out[-1]
    assert last.body == b"next" and last.contflag == "$"
    assert b"".join(p.body for p in pieces) == body and pieces[-1].contflag == "$"
    copied = [p for p in pieces if not (isinstance(p.body, memoryview) and any(p.body.obj is d for d in received))]
    if boundary_tail is None:
        assert not copied  # nothing was copied: every piece is a window on one of the fed bytes objects
    else:
        # a held partial end-line is joined to the first bytes of the next read only
        assert copied and sum(len(p.body) for p in copied) <= (len(received) - 1) * parser_module._STITCH


def test_large_bodies_with_false_end_lines_parse_like_whole():
    tid = "bigframe3"
    decoy = b"\r\n-------" + tid.encode() + b"X"  # the end-line's start, but no flag: still body
    body = bytearray(os.urandom(1024 * 1024))
    for at in (0, 1000, 65536 - 3, 262144 - 5, 500_000, len(body) - len(decoy)):
        body[at : at + len(decoy)] = decoy
    body = bytes(body)
    raw = send_frame(body, tid=tid).encode() + send_frame(b"after", tid="small002").encode()
    assert [f.body for f in MSRPParser().feed(raw)] == [body, b"after"]
    for step in (256 * 1024, 100_000, 65536 + 7, 262144 - 20):
        parser, out = MSRPParser(max_body_buffer=4 * 1024 * 1024), []
        for i in range(0, len(raw), step):
            out += parser.feed(raw[i : i + step])
        assert b"".join(p.body for p in out[:-1]) == body and out[-2].contflag == "$"
        assert out[-1].body == b"after" and parser.buffered == 0


# ---------------------------------------------------------------------- hypothesis
_tids = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=4, max_size=20).map(lambda s: "t" + s)


@st.composite
def frame_lists(draw):
    frames = []
    for _ in range(draw(st.integers(1, 6))):
        tid = draw(_tids)
        if draw(st.booleans()):
            body = draw(st.binary(max_size=300) | st.sampled_from([b"\r\n", b"\r\n-------", b"-------" + tid.encode()]))
            frame = send_frame(body, tid=tid, flag=draw(st.sampled_from("$+#")))
        else:
            frame = MSRPData(tid, code=draw(st.sampled_from([200, 400, 481])), comment=draw(st.sampled_from(["OK", "", "x y"])),
                             headers={"To-Path": B, "From-Path": A})
        frames.append(frame)
    return frames


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame_lists(), st.lists(st.integers(0, 2000), max_size=12))
def test_random_splits_parse_like_whole(frames, cuts):
    stream = b"".join(f.encode() for f in frames)
    whole = MSRPParser().feed(stream)
    points = sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]
    parser, split, last = MSRPParser(), [], 0
    for point in points:
        split += parser.feed(stream[last:point])
        last = point
    key = [(f.transaction_id, f.method, f.code, f.headers, f.body, f.contflag) for f in whole]
    assert key == [(f.transaction_id, f.method, f.code, f.headers, f.body, f.contflag) for f in split]
    assert key == [(f.transaction_id, f.method, f.code, f.headers, f.body, f.contflag) for f in frames]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_random_bytes_only_raise_protocol_error(data, prefix):
    parser = MSRPParser()
    try:
        frames = parser.feed((b"MSRP abcd " if prefix else b"") + data)
        for frame in frames:
            frame.validate()
    except MSRPProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(frame_lists(), st.integers(0, 10**6), st.binary(min_size=1, max_size=3))
def test_mutated_frames_only_raise_protocol_error(frames, where, junk):
    stream = bytearray(b"".join(f.encode() for f in frames))
    pos = where % len(stream)
    stream[pos : pos + len(junk)] = junk
    try:
        for frame in MSRPParser().feed(bytes(stream)):
            frame.validate()
    except MSRPProtocolError:
        pass


# ---------------------------------------------------------------------- ranges
def test_byte_ranges():
    ranges = ByteRanges()
    ranges.add(1, 10)
    ranges.add(21, 30)
    assert not ranges.covers(1, 30) and ranges.contiguous_end() == 10
    ranges.add(11, 20)
    assert ranges.covers(1, 30) and len(ranges) == 1 and ranges.total == 30
    ranges.add(50, 40)  # empty
    ranges.add(35, 36)
    ranges.add(33, 34)
    assert list(ranges) == [(1, 30), (33, 36)]
    assert ranges.covers(5, 4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame_lists(), st.lists(st.integers(0, 2000), max_size=12))
def test_random_splits_with_streamed_bodies_give_the_same_bodies(frames, cuts):
    stream = b"".join(f.encode() for f in frames)
    points = sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]
    parser, out, last = MSRPParser(max_body_buffer=16), [], 0
    for point in points:
        out += parser.feed(stream[last:point])
        last = point
    whole, body = [], b""
    for piece in out:
        if piece.contflag is None:
            assert piece.body_offset == len(body)
            body += bytes(piece.body)
            continue
        assert piece.body_offset == len(body)
        whole.append((piece.transaction_id, piece.method, piece.code, piece.headers, body + bytes(piece.body),
                      piece.contflag))
        body = b""
    assert whole == [(f.transaction_id, f.method, f.code, f.headers, f.body, f.contflag) for f in frames]
    assert parser.buffered == 0 and not parser.in_frame


# ---------------------------------------------------------------------- whole-frame path and stitching
def test_large_complete_bodies_are_views_small_ones_bytes():
    big, small = os.urandom(40_000), b"small body"
    raw = send_frame(big, tid="bigone01").encode() + send_frame(small, tid="small003").encode()
    first, second = MSRPParser(max_body_buffer=4 * 1024 * 1024).feed(raw)
    assert isinstance(first.body, memoryview) and first.body.obj is raw and first.body == big
    assert type(second.body) is bytes and second.body == small


def test_a_read_after_a_held_partial_frame_is_not_copied():
    """A read ending inside a frame leaves a little held; the next (large) read is parsed in place:
    the frames after the stitched one have bodies that are views of that read."""
    frames = [send_frame(os.urandom(20_000), tid=f"frame{i:03d}") for i in range(30)]
    raw = b"".join(f.encode() for f in frames)
    cut = len(frames[0].encode()) + 100  # inside the second frame's head
    first, rest = raw[:cut], raw[cut:]
    parser = MSRPParser(max_body_buffer=4 * 1024 * 1024)
    out = parser.feed(first) + parser.feed(rest)
    assert [bytes(f.body) for f in out] == [f.body for f in frames]
    assert all(isinstance(f.body, memoryview) and f.body.obj is rest for f in out[2:])
    assert parser.buffered == 0 and not parser.in_frame


def _outcome(parser: MSRPParser, pieces) -> tuple:
    out = []
    try:
        for piece in pieces:
            out += parser.feed(piece)
    except MSRPProtocolError:
        return ("error",)
    return tuple((f.transaction_id, f.method, f.code, f.comment, f.headers, bytes(f.body), f.contflag) for f in out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame_lists(), st.integers(0, 10**6), st.binary(min_size=1, max_size=4))
def test_mutated_streams_parse_the_same_whole_and_byte_by_byte(frames, where, junk):
    """The one-pass path for complete frames must accept, refuse and read exactly what the
    byte-by-byte path does (which never has a whole frame at once)."""
    stream = bytearray(b"".join(f.encode() for f in frames))
    pos = where % len(stream)
    stream[pos : pos + len(junk)] = junk
    data = bytes(stream)
    whole = _outcome(MSRPParser(), [data])
    assert whole == _outcome(MSRPParser(), [data[i : i + 1] for i in range(len(data))])


@st.composite
def large_frame_lists(draw):
    frames = []
    for i in range(draw(st.integers(1, 5))):
        size = draw(st.sampled_from([0, 1, 100, 2048, 16 * 1024 - 1, 16 * 1024, 40_000]))
        body = bytes([i + 1]) * size
        frames.append(send_frame(body, tid=f"large{i:03d}", flag=draw(st.sampled_from("$+#"))))
    return frames


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(large_frame_lists(), st.lists(st.integers(0, 200_000), max_size=8))
def test_random_splits_with_large_reads_give_the_same_frames(frames, cuts):
    """Streaming on (max_body_buffer), reads of any size: held bytes are stitched to the next
    read and parsing goes on in it; the frames come out the same, bodies whole or in pieces."""
    stream = b"".join(f.encode() for f in frames)
    points = sorted({min(c, len(stream)) for c in cuts}) + [len(stream)]
    parser, out, last = MSRPParser(max_body_buffer=4 * 1024 * 1024), [], 0
    for point in points:
        out += parser.feed(stream[last:point])
        last = point
    whole, body = [], b""
    for piece in out:
        assert piece.body_offset == len(body)
        body += bytes(piece.body)
        if piece.contflag is not None:
            whole.append((piece.transaction_id, piece.headers, body, piece.contflag))
            body = b""
    assert whole == [(f.transaction_id, f.headers, f.body, f.contflag) for f in frames]
    assert parser.buffered == 0 and not parser.in_frame
