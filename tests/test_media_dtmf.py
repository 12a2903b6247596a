"""RFC 4733 DTMF: digits sent arrive in order as events; the packets carry
correct durations, one marker and three end packets per digit."""

import socket
import struct
import time

import numpy as np
import pytest

from sipsimple.core._media import AudioTransport, MediaError, NumpyTap
from tests.media_engine import recorded_events, start_media_engine


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


@pytest.fixture
def events(engine):
    with recorded_events(engine) as got:
        yield got


@pytest.mark.parametrize("codec", ["PCMU", "opus"])
def test_digits_arrive_in_order(engine, events, codec):
    a = AudioTransport(codecs=[codec])
    b = AudioTransport(codecs=[codec])
    try:
        offer = a.local_media()
        answer = b.local_media(offer)
        b.start(offer)
        a.start(answer)
        digits = "123*#0ABCD9"
        for d in digits:
            a.send_dtmf(d, duration_ms=60)
        deadline = time.monotonic() + 5
        while len(b.dtmf_received) < len(digits) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "".join(b.dtmf_received) == digits
        got = [d["digit"] for name, sender, d in events if name == "AudioStreamGotDTMF" and sender is b]
        assert "".join(got) == digits
        assert b.statistics["rx_dtmf_packets"] >= (len(digits) - 1) * 5
    finally:
        a.stop()
        b.stop()


def test_packet_format(engine):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    a = AudioTransport(codecs=["PCMU"])
    try:
        a.start({"address": "127.0.0.1", "port": sock.getsockname()[1],
                 "codecs": [(0, "PCMU", 8000, 1, ""), (98, "telephone-event", 8000, 1, "0-15")]})
        a.send_dtmf("5", duration_ms=100)
        a.send_dtmf("#", duration_ms=100)
        events = []
        audio_after = 0
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                pkt = sock.recv(2048)
            except TimeoutError:
                break
            b0, b1, seq, ts = struct.unpack("!BBHI", pkt[:8])
            if (b1 & 0x7F) == 98:
                ev, flags, dur = struct.unpack("!BBH", pkt[12:16])
                events.append((seq, ts, b1 >> 7, ev, flags >> 7, dur))
            elif len(events) >= 14:
                audio_after += 1
                if audio_after > 3:
                    break
        assert len(events) == 14
        for digit, chunk in ((5, events[:7]), (11, events[7:14])):
            assert [e[0] for e in chunk] == list(range(chunk[0][0], chunk[0][0] + 7))
            assert {e[3] for e in chunk} == {digit}
            assert len({e[1] for e in chunk}) == 1                     # one timestamp per event
            assert [e[2] for e in chunk] == [1, 0, 0, 0, 0, 0, 0]         # marker on the first packet
            assert [e[5] for e in chunk] == [160, 320, 480, 640, 800, 800, 800]
            assert [e[4] for e in chunk] == [0, 0, 0, 0, 1, 1, 1]         # three end packets
        assert events[7][1] > events[0][1] + 800
        assert audio_after > 0
    finally:
        a.stop()
        sock.close()


def test_dtmf_needs_telephone_event(engine):
    a = AudioTransport(codecs=["PCMU"])
    try:
        with pytest.raises(MediaError):
            a.send_dtmf("1")
        a.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        with pytest.raises(MediaError):
            a.send_dtmf("1")
        with pytest.raises(ValueError):
            a.send_dtmf("x")
    finally:
        a.stop()


def test_local_tone_playback(engine):
    a = AudioTransport(codecs=["PCMU"], dtmf_local_tone=True)
    tap = NumpyTap()
    try:
        a.start({"address": "127.0.0.1", "port": 9,
                 "codecs": [(0, "PCMU", 8000, 1, ""), (101, "telephone-event", 8000, 1, "")]})
        engine.connect(a, tap)
        a.send_dtmf("1", duration_ms=200)
        time.sleep(0.4)
        x = tap.read().astype(float)
        spec = np.abs(np.fft.rfft(x))
        freqs = np.fft.rfftfreq(len(x), 1 / 48000)
        top = sorted(freqs[np.argsort(spec)[-2:]])
        assert abs(top[0] - 697) < 15 and abs(top[1] - 1209) < 15
    finally:
        a.stop()
        tap.stop()


@pytest.mark.parametrize("ptime", [20, 40])
def test_audio_resumes_after_digits(engine, ptime):
    from sipsimple.core._media import ToneGenerator

    a = AudioTransport(codecs=["PCMU"], ptime=ptime)
    b = AudioTransport(codecs=["PCMU"], ptime=ptime)
    tone = ToneGenerator(1000, level=-12)
    tap = NumpyTap()
    try:
        offer = a.local_media()
        answer = b.local_media(offer)
        b.start(offer)
        a.start(answer)
        engine.connect(tone, a)
        engine.connect(b, tap)
        time.sleep(0.2)
        for d in "123":
            a.send_dtmf(d, duration_ms=100)
        time.sleep(0.5)
        tap.read()
        assert b.dtmf_received == list("123")
        time.sleep(0.3)
        x = tap.read().astype(float)
        assert abs(10 * np.log10(np.mean(x**2) / 32768**2) + 12) < 0.5   # no holes left behind
        assert b.statistics["jb_buffered"] <= 3                           # and no added delay
    finally:
        for o in (a, b, tone, tap):
            o.stop()


def test_telephone_event_8000_next_to_opus(engine):
    # some phones offer telephone-event/8000 only, also with opus/48000
    a = AudioTransport(codecs=["opus"])
    b = AudioTransport(codecs=["opus"])
    try:
        offer = a.local_media()
        offer["codecs"] = [c for c in offer["codecs"] if not (c[1] == "telephone-event" and c[2] == 48000)]
        answer = b.local_media(offer)
        assert [c[1:3] for c in answer["codecs"]] == [("opus", 48000), ("telephone-event", 8000)]
        b.start(offer)
        a.start(answer)
        a.send_dtmf("4", duration_ms=100)
        a.send_dtmf("2", duration_ms=100)
        deadline = time.monotonic() + 3
        while len(b.dtmf_received) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b.dtmf_received == ["4", "2"]
    finally:
        a.stop()
        b.stop()
