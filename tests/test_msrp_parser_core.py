"""The compiled MSRP scans (sipsimple.core._msrp) against a pure-Python reference, on hostile input.

The reference is what the parser did in Python before the scans moved into the core: the
one-pass frame parser (``_parse_whole`` up to building the frame) and the regular expression
check of header lines.  The C functions must agree with it on valid frames, mutated frames
(truncated anywhere, flipped bits, NULs, non-ASCII transaction ids, huge header lines, bodies
holding partial end-lines) and random bytes; they must read nothing outside ``[pos, end)``
(the buffers are put between inaccessible pages: a stray read kills the test run); and the
parser, fed such streams whole or split, must only give frames or MSRPProtocolError.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipsimple.core._msrp import find, parse_headers, scan_frame
from sipsimple.msrp import parser as parser_module
from sipsimple.msrp.errors import MSRPProtocolError
from sipsimple.msrp.message import MSRPData, canonical_header_name
from sipsimple.msrp.parser import MSRPParser

A = "msrp://127.0.0.1:7777/iau39soe2843z;tcp"
B = "msrp://127.0.0.1:8888/9di4eae923wzd;tcp"
NAMES = parser_module._HEADER_NAMES
LIMITS = (parser_module._MAX_START_LINE, parser_module._HEAD_PROBE, parser_module._WHOLE_BODY_MAX)

# ---------------------------------------------------------------------- the reference
_START_RE = re.compile(rb"MSRP ([A-Za-z0-9][A-Za-z0-9.\-+%=]{3,31}) (?:([A-Z]{1,32})|([0-9]{3})(?: ([^\r\n]*))?)")
_HEADER_LINE_RE = re.compile(rb"[A-Za-z0-9!#$%&'*+\-.^_`|~]+:[^\x00-\x08\x0a-\x1f\x7f]*")


def reference_headers(block: bytes) -> dict[str, str] | None:
    if not block:
        return {}
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n"):
        if _HEADER_LINE_RE.fullmatch(line) is None:
            return None
        try:
            name, _, value = line.decode("utf-8").partition(":")
        except UnicodeDecodeError:
            return None
        name = canonical_header_name(name)
        if name in headers:
            return None
        headers[name] = value.strip(" \t")
    return headers


def reference_scan(buf: bytes, p: int = 0, end: int | None = None) -> tuple | None:
    """What scan_frame must return: None where the Python one-pass parser gave up or raised."""
    max_start_line, head_probe, max_body = LIMITS
    end = len(buf) if end is None else end
    buf = buf[:end]
    nl = buf.find(b"\r\n", p, p + max_start_line)
    if nl < 0:
        return None
    match = _START_RE.fullmatch(buf, p, nl)
    if match is None:
        return None
    tid, method, code, comment = match.groups()
    marker = b"\r\n-------" + tid
    bound = min(end, nl + head_probe)
    end_marker = buf.find(marker, nl, bound)
    end_blank = buf.find(b"\r\n\r\n", nl, end_marker + 2 if end_marker >= 0 else bound)
    if end_blank >= 0:
        body_at = end_blank + 4
        head_end = end_blank
        at = buf.find(marker, body_at, min(end, body_at + max_body + len(marker)))
    elif end_marker >= 0:
        at = head_end = body_at = end_marker
    else:
        return None
    flag_at = at + len(marker)
    if at < 0 or end < flag_at + 3 or buf[flag_at] not in b"$+#" or buf[flag_at + 1 : flag_at + 3] != b"\r\n":
        return None
    try:
        comment_s = None if comment is None else comment.decode("utf-8")
    except UnicodeDecodeError:
        return None
    headers = reference_headers(buf[nl + 2 : head_end])
    if headers is None or (end_blank >= 0 and "Content-Type" not in headers):
        return None
    return (tid.decode("ascii"), None if method is None else method.decode("ascii"), None if code is None else int(code),
            comment_s, headers, body_at, at, chr(buf[flag_at]), flag_at + 3)


def scan(buf, pos: int = 0, end: int | None = None):
    return scan_frame(buf, pos, len(buf) if end is None else end, NAMES, *LIMITS)


def scan_all(buf) -> list:
    """scan_frame from each frame's end to the next, as the parser does, until it gives up."""
    out, pos = [], 0
    while (found := scan(buf, pos)) is not None:
        out.append(found)
        pos = found[-1]
    return out


def reference_scan_all(buf: bytes) -> list:
    out, pos = [], 0
    while (found := reference_scan(buf, pos)) is not None:
        out.append(found)
        pos = found[-1]
    return out


# ---------------------------------------------------------------------- guarded memory
PAGE = mmap.PAGESIZE
_libc = ctypes.CDLL(None, use_errno=True)
PROT_NONE = 0  # <sys/mman.h>; the mmap module does not export it


class Guarded:
    """Pages of memory between two inaccessible ones: bytes copied in flush against either
    guard, so a read one byte before or after them faults."""

    def __init__(self, pages: int = 32) -> None:
        self.size = pages * PAGE
        self.map = mmap.mmap(-1, self.size + 2 * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(self.map))
        for at in (base, base + PAGE + self.size):
            if _libc.mprotect(ctypes.c_void_p(at), PAGE, PROT_NONE) != 0:
                raise OSError(ctypes.get_errno(), "mprotect")

    def at_end(self, data: bytes) -> memoryview:
        start = PAGE + self.size - len(data)
        self.map[start : start + len(data)] = data
        return memoryview(self.map)[start : start + len(data)]

    def at_start(self, data: bytes) -> memoryview:
        self.map[PAGE : PAGE + len(data)] = data
        return memoryview(self.map)[PAGE : PAGE + len(data)]


@pytest.fixture(scope="module")
def guarded():
    return Guarded()


def both_placements(guarded: Guarded, data: bytes):
    view = guarded.at_end(data)
    yield view
    view.release()
    view = guarded.at_start(data)
    yield view
    view.release()


# ---------------------------------------------------------------------- frames and their mutations
def send_frame(body: bytes, tid: str, flag: str = "$", **extra: str) -> bytes:
    headers = {"To-Path": A, "From-Path": B, "Message-ID": "12339sdqwer", "Byte-Range": f"1-{len(body)}/{len(body)}"}
    headers.update(extra)
    headers.setdefault("Content-Type", "text/plain")
    return MSRPData(tid, method="SEND", headers=headers, body=body, contflag=flag).encode()


def response(tid: str, code: int = 200, comment: str | None = "OK") -> bytes:
    return MSRPData(tid, code=code, comment=comment, headers={"To-Path": B, "From-Path": A}).encode()


SAMPLES = [
    send_frame(b"Hi, I'm Alice!", "d93kswow"),
    send_frame(os.urandom(2048), "chunk0001", "+", **{"Success-Report": "no", "X-Extra": " \tpadded\t "}),
    send_frame(b"x\r\n-------tid\r\n-------ti4$\r\n--------tid4$\r\n-------other$\r\n-------tid", "tid4", "#"),
    send_frame(b"", "empty000"),
    response("tid.-+%=00", 200, "OK"),
    response("resp0001", 481, None),
    response("resp0002", 413, "Trop gros, désolé"),
    response("resp0003", 200, ""),
    MSRPData("rep00001", method="REPORT", headers={"To-Path": B, "From-Path": A, "Message-ID": "x1234",
                                                   "Byte-Range": "1-*/*", "Status": "000 200 OK"}).encode(),
    b"MSRP abcd SEND\r\nto-path: " + A.encode() + b"\r\nFROM-PATH:" + B.encode() + b"\r\n-------abcd$\r\n",
]

_INSERTS = [b"\r\n", b"\r", b"\n", b":", b" ", b"\t", b"\x00", b"\x7f", b"\xc3\xa9", b"\xff", b"\xe9",
            b"\r\n\r\n", b"-------", b"$", b"MSRP ", b"\r\n-------"]


@st.composite
def valid_streams(draw) -> bytes:
    frames = []
    for _ in range(draw(st.integers(1, 4))):
        tid = draw(st.text("abcXYZ0189.-+%=", min_size=3, max_size=31).map(lambda s: "t" + s))
        if draw(st.booleans()):
            body = draw(st.binary(max_size=300) | st.sampled_from([b"\r\n", b"\r\n-------", b"-------" + tid.encode(),
                                                                  b"\r\n-------" + tid.encode() + b"+"]))
            frames.append(send_frame(body, tid, draw(st.sampled_from("$+#"))))
        else:
            frames.append(response(tid, draw(st.sampled_from([200, 400, 481])),
                                   draw(st.sampled_from(["OK", "", None, "naïve"]))))
    return b"".join(frames)


@st.composite
def mutated_streams(draw) -> bytes:
    stream = bytearray(draw(valid_streams() | st.sampled_from(SAMPLES)))
    tids = re.findall(rb"MSRP (\S+) ", bytes(stream)) or [b"abcd"]
    for _ in range(draw(st.integers(0, 3))):  # none: the frames as they are, a baseline to compare with
        kind = draw(st.sampled_from(["flip", "insert", "delete", "huge", "tid", "end-line", "truncate"]))
        pos = draw(st.integers(0, len(stream)))
        if kind == "flip" and pos < len(stream):
            stream[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            stream[pos:pos] = draw(st.sampled_from(_INSERTS))
        elif kind == "delete":
            del stream[pos : pos + draw(st.integers(1, 4))]
        elif kind == "huge":  # a header line longer than the probes of the one-pass scan
            stream[pos:pos] = b"X-Long: " + b"a" * draw(st.sampled_from([500, 1100, 3000])) + b"\r\n"
        elif kind == "tid":  # a transaction id with a byte that is not allowed in one
            tid = draw(st.sampled_from(tids))
            bad = tid[:1] + draw(st.sampled_from([b"\xc3\xa9", b"\x00", b"\xff", b" ", b"_"])) + tid[1:]
            stream[:] = bytes(stream).replace(tid, bad, draw(st.integers(1, 3)))
        elif kind == "end-line":  # part of an end-line, or a whole one with a wrong flag or ending
            tid = draw(st.sampled_from(tids))
            stream[pos:pos] = b"\r\n-------" + draw(st.sampled_from([tid[:2], tid, tid + b"$", tid + b"$\r", tid + b"!\r\n"]))
        elif kind == "truncate":
            del stream[pos:]
    return bytes(stream)


# ---------------------------------------------------------------------- scan_frame
def test_scan_frame_takes_valid_frames_apart():
    for raw in SAMPLES:
        found = scan(raw)
        assert found is not None and found == reference_scan(raw), raw[:40]
        assert found[-1] == len(raw)
    tid, method, code, comment, headers, body_at, body_end, flag, nxt = scan(SAMPLES[6])
    assert (tid, method, code, comment, flag) == ("resp0002", None, 413, "Trop gros, désolé", "$")
    assert headers == {"To-Path": B, "From-Path": A} and body_at == body_end
    assert scan(SAMPLES[9])[4] == {"To-Path": A, "From-Path": B}  # any case in, canonical names out
    assert scan(SAMPLES[1])[4]["X-Extra"] == "padded"


def test_scan_frame_truncated_at_every_position_reads_only_its_bounds(guarded):
    for raw in SAMPLES:
        stream = raw + SAMPLES[4]
        for cut in range(len(stream) + 1):
            expected = reference_scan(stream[:cut], 0)
            assert scan(stream, 0, cut) == expected  # ``end`` bounds the scan like the end of the data
            for view in both_placements(guarded, stream[:cut]):
                assert scan(view) == expected
            assert (expected is not None) == (cut >= len(raw))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams())
def test_scan_frame_agrees_with_the_reference_on_mutated_frames(guarded, stream):
    frames = scan_all(stream)
    assert frames == reference_scan_all(stream)
    for view in both_placements(guarded, stream):
        assert scan_all(view) == frames


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([b"", b"MSRP ", b"MSRP abcd ", b"MSRP abcd 200 ", b"MSRP abcd SEND\r\n"]))
def test_scan_frame_agrees_with_the_reference_on_random_bytes(guarded, data, prefix):
    stream = prefix + data
    assert scan_all(stream) == reference_scan_all(stream)
    for view in both_placements(guarded, stream):
        assert scan_all(view) == reference_scan_all(stream)


def test_scan_frame_limits():
    long_tid = "a" * 33
    assert scan(b"MSRP " + long_tid.encode() + b" SEND\r\n-------" + long_tid.encode() + b"$\r\n") is None
    huge = send_frame(b"y" * 300_000, "huge0001")  # larger than the one-pass scan takes: left to streaming
    assert scan(huge) is None and reference_scan(huge) is None
    assert scan(huge, len(huge) + 5) is None and scan(huge, 3, 2) is None
    with pytest.raises(ValueError):
        scan(huge, -1)


# ---------------------------------------------------------------------- parse_headers
_LINE_PARTS = st.sampled_from([
    b"To-Path", b"to-path", b"FROM-PATH", b"Content-Type", b"X-Foo", b"x_y!#$%&'*+-.^`|~", b"Byte-Range",
    b":", b": ", b" ", b"\t", b"value", b"msrp://h:1/s;tcp", b"\xc3\xa9", b"\xff", b"\xe2\x82", b"\x00", b"\x7f",
    b"\r", b"\n", b"\r\n", b"\x1f", b"(",
])


@settings(max_examples=500, deadline=None)
@given(st.lists(_LINE_PARTS, max_size=16).map(b"".join), st.binary(max_size=4))
def test_parse_headers_agrees_with_the_reference(guarded, block, pad):
    data = pad + block + pad
    expected = reference_headers(block)
    assert parse_headers(data, len(pad), len(pad) + len(block), NAMES) == expected
    for view in both_placements(guarded, block):
        assert parse_headers(view, 0, len(block), NAMES) == expected
    if expected is None:  # the parser's own reason, never its fallback for a disagreement
        with pytest.raises(MSRPProtocolError) as error:
            parser_module._parse_headers(data, len(pad), len(pad) + len(block))
        assert "bad MSRP header section" not in str(error.value)


def test_parse_headers_values_and_order():
    block = b"X-B: 1\r\nto-path:\t a b \t\r\nX-A:\r\nX-C: caf\xc3\xa9"
    headers = parse_headers(block, 0, len(block), NAMES)
    assert list(headers.items()) == [("X-B", "1"), ("To-Path", "a b"), ("X-A", ""), ("X-C", "café")]
    assert parse_headers(block, 5, 5, NAMES) == {}
    assert parse_headers(b"To-Path: a\r\nTO-PATH: a", 0, 22, NAMES) is None  # the same name twice


# ---------------------------------------------------------------------- find
@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=1200).map(lambda b: b.translate(bytes(i % 4 + 13 for i in range(256)))),
       st.sampled_from([b"\r", b"\r\n", b"\r\n\r\n", b"\r\n\x0f\x0e", b"\x0e\x0f\x10\r\x0e"]),
       st.integers(0, 1300), st.integers(-1, 1300))
def test_find_is_bytes_find(guarded, haystack, needle, start, stop):
    expected = haystack.find(needle, start, len(haystack) if stop < 0 else stop)
    assert find(haystack, needle, start, stop) == expected
    assert find(bytearray(haystack), needle, start, stop) == expected
    for view in both_placements(guarded, haystack):
        assert find(view, needle, start, stop) == expected


def test_find_long_bodies_and_empty_needles():
    marker = b"\r\n-------tid00001"
    body = bytearray(os.urandom(1 << 20))
    for at in (0, 255, 256, 300, 70_000, len(body) - len(marker)):
        body[at : at + len(marker)] = marker
        assert find(bytes(body), marker, 0) == bytes(body).find(marker)
        assert find(bytes(body), marker, at + 1) == bytes(body).find(marker, at + 1)
    assert find(b"abc", b"", 1) == 1 and find(b"abc", b"", 4) == -1 and find(b"abc", b"c", 1, 2) == -1
    with pytest.raises(ValueError):
        find(b"abc", b"c", -1)


# ---------------------------------------------------------------------- the parser over them
def _outcome(stream: bytes, cuts: list[int], max_body_buffer: int | None = None) -> tuple:
    parser, out, last = MSRPParser(max_body_buffer=max_body_buffer), [], 0
    try:
        for point in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
            out += parser.feed(stream[last:point])
            last = point
    except MSRPProtocolError:
        return ("error",)
    whole, body = [], b""
    for piece in out:  # streamed pieces joined into their frames
        body += bytes(piece.body)
        if piece.contflag is not None:
            whole.append((piece.transaction_id, piece.method, piece.code, piece.comment, piece.headers, body,
                          piece.contflag))
            body = b""
    return (*whole, parser.in_frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_streams(), st.lists(st.integers(0, 5000), max_size=10))
def test_mutated_streams_give_frames_or_protocol_errors_whole_or_split(stream, cuts):
    whole = _outcome(stream, [])
    assert _outcome(stream, cuts) == whole
    assert _outcome(stream, cuts, max_body_buffer=16) == whole
    if len(stream) < 2000:
        assert _outcome(stream, list(range(len(stream)))) == whole
