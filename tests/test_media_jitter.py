"""Jitter buffer, loss concealment (repetition, Opus PLC and FEC), reordering."""

import math
import socket
import struct
import time

import numpy as np
import pytest

from sipsimple.core._media import AudioTransport, NumpyTap, ToneGenerator
from tests.media_engine import start_media_engine


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


def analyse(x, rate=48000):
    x = x.astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * rate / len(x), 10 * np.log10(np.mean(x**2) / 32768.0**2 + 1e-20)


def pair(codec):
    a = AudioTransport(codecs=[codec])
    b = AudioTransport(codecs=[codec])
    offer = a.local_media()
    answer = b.local_media(offer)
    b.start(offer)
    a.start(answer)
    return a, b


LOSS_CODECS = ["PCMU", "G722", "GSM", "opus"]


@pytest.fixture(scope="module")
def lossy_calls(engine):
    """All codecs at once, every 5th packet dropped by the sender."""
    tone = ToneGenerator(1000, level=-12)
    calls = {}
    for codec in LOSS_CODECS:
        a, b = pair(codec)
        tap = NumpyTap()
        a._simulate_loss(5)
        engine.connect(tone, a)
        engine.connect(b, tap)
        calls[codec] = (a, b, tap)
    time.sleep(1.2)
    out = {codec: (tap.read()[-38400:], b.statistics) for codec, (a, b, tap) in calls.items()}
    for a, b, tap in calls.values():
        for o in (a, b, tap):
            o.stop()
    tone.stop()
    return out


@pytest.mark.parametrize("codec", LOSS_CODECS)
def test_loss_is_concealed(lossy_calls, codec):
    x, s = lossy_calls[codec]
    assert 0.12 < s["rx_loss_rate"] < 0.28
    if codec == "opus":
        assert s["fec_frames"] >= 8
    else:
        assert s["plc_frames"] >= 8
    peak, level = analyse(x)
    assert abs(peak - 1000) < 10
    assert level > -12 - 3
    # concealment keeps the gaps filled: no 20 ms hole of silence
    frames = x[: len(x) // 960 * 960].reshape(-1, 960)
    assert (np.abs(frames).max(axis=1) > 1000).all()


def ulaw(samples):
    # G.711 mu-law, for packets crafted by the test itself
    s = np.clip(samples.astype(np.int32), -32635, 32635)
    sign = np.where(s < 0, 0x80, 0)
    m = np.abs(s) + 0x84
    exp = np.floor(np.log2(m)).astype(int) - 7
    mant = (m >> (exp + 3)) & 0x0F
    return bytes((~(sign | (exp << 4) | mant) & 0xFF).astype(np.uint8))


def test_reordered_and_duplicated_packets(engine):
    b = AudioTransport(codecs=["PCMU"])
    tap = NumpyTap()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        b.start({"address": "127.0.0.1", "port": sock.getsockname()[1] or 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        engine.connect(b, tap)
        t = np.arange(160 * 60)
        pcm = (0.25 * 32767 * np.sin(2 * math.pi * 1000 * t / 8000)).astype(np.int16)
        pkts = [struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 777) + ulaw(pcm[seq * 160:(seq + 1) * 160])
                for seq in range(60)]
        order = []
        for i in range(0, 60, 2):
            order += [i + 1, i]                          # every pair swapped
        start = time.monotonic()
        for n, i in enumerate(order):
            sock.sendto(pkts[i], ("127.0.0.1", b.local_port))
            if i % 10 == 0:
                sock.sendto(pkts[i], ("127.0.0.1", b.local_port))   # duplicate
            delay = start + (n + 1) * 0.02 - time.monotonic()
            if delay > 0 and n % 2:
                time.sleep(delay)
        time.sleep(0.2)
        s = b.statistics
        assert s["rx_packets"] == 66
        assert s["rx_lost"] == 0
        assert s["rx_duplicates"] + s["rx_late"] >= 6
        x = tap.read()
        nz = np.flatnonzero(np.abs(x) > 100)
        mid = (nz[0] + nz[-1]) // 2
        peak, level = analyse(x[mid - 19200:mid + 19200])
        assert abs(peak - 1000) < 10
        assert abs(level - (-12 - 3.0)) < 3   # 0.25 full-scale sine = -15 dBov
    finally:
        b.stop()
        tap.stop()
        sock.close()


def test_sender_restart_resets_buffer(engine):
    b = AudioTransport(codecs=["PCMU"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        b.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        for seq in list(range(10)) + list(range(30000, 30010)):
            sock.sendto(struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 5) + b"\xff" * 160,
                        ("127.0.0.1", b.local_port))
            time.sleep(0.02)
        time.sleep(0.1)
        s = b.statistics
        assert s["rx_packets"] == 20
        assert s["rx_lost"] == 0
    finally:
        b.stop()
        sock.close()


def test_buffer_adapts_to_jitter(engine):
    b = AudioTransport(codecs=["PCMU"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = np.random.default_rng(7)
    try:
        b.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        # each packet is late by 0..80 ms (order kept): 80 ms of jitter
        release, last = [], 0.0
        for seq in range(120):
            last = max(last, seq * 0.02 + rng.uniform(0, 0.08))
            release.append(last)
        t0 = time.monotonic()
        waits = []
        for seq, when in enumerate(release):
            delay = t0 + when - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sock.sendto(struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 3) + b"\x7f" * 160,
                        ("127.0.0.1", b.local_port))
            waits.append(b.statistics["jb_wait_ms"])
        s = b.statistics
        assert s["jitter_ms"] > 5
        assert s["jb_underruns"] >= 1 and max(waits) >= 40        # it had to grow...
        assert s["jb_underruns"] <= 4                             # ...and then it held
        assert s["rx_lost"] == 0 and s["rx_late"] == 0
    finally:
        b.stop()
        sock.close()


def send_paced(sock, port, schedule, payload=b"\xff" * 160, ssrc=9):
    """Send PCMU packets (seq, at): at seconds after the first; returns the start time."""
    t0 = time.monotonic()
    for seq, at in schedule:
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(struct.pack("!BBHII", 0x80, 0, seq, seq * 160, ssrc) + payload, ("127.0.0.1", port))
    return t0


def test_backlog_is_not_kept_as_delay(engine):
    # a backlog read at once (a sender that queued packets before we started, or after a
    # pause longer than any jitter) must not become standing delay: play from the newest
    b = AudioTransport(codecs=["PCMU"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        b.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        backlog = [(seq, 0.0) for seq in range(12)]
        paced = [(seq, 0.02 * (seq - 11)) for seq in range(12, 40)]
        send_paced(sock, b.local_port, backlog + paced)
        s = b.statistics
        # played from the newest: the 240 ms backlog is not waiting in the buffer (the bounds
        # leave room for a late packet or two from this Python sender on a busy machine)
        assert s["jb_dropped"] >= 10 and s["jb_buffered"] <= 2 and s["jb_wait_ms"] < 60
        # a pause (0.5 s: longer than jitter_max_ms) and another backlog
        time.sleep(0.5)
        backlog = [(seq, 0.0) for seq in range(40, 50)]
        paced = [(seq, 0.02 * (seq - 49)) for seq in range(50, 75)]
        send_paced(sock, b.local_port, backlog + paced)
        s2 = b.statistics
        assert s2["jb_dropped"] - s["jb_dropped"] >= 8 and s2["jb_buffered"] <= 2 and s2["jb_wait_ms"] < 60
        assert s2["jb_target_ms"] < 100      # the pause was not taken for 500 ms of jitter
        assert s2["rx_lost"] == 0 and s2["rx_late"] == 0
    finally:
        b.stop()
        sock.close()


@pytest.mark.parametrize("audio", ["silence", "tone"])
def test_surplus_delay_is_removed(engine, audio):
    # the network delay drops by 200 ms (ten packets arrive at once, then on time again):
    # once the last seconds show that the extra wait is never needed, the buffer plays
    # that many packets fewer: silent ones, so no audio is lost; in a tone that never
    # pauses, after waiting for silence in vain, all of the surplus at once (one glitch)
    b = AudioTransport(codecs=["PCMU"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = np.arange(160)
    payload = b"\xff" * 160 if audio == "silence" else ulaw(8000 * np.sin(2 * math.pi * 1000 * t / 8000))
    last = 250 if audio == "silence" else 400
    try:
        b.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        before = [(seq, 0.02 * seq) for seq in range(30)]
        after = [(seq, 0.02 * seq - 0.2) for seq in range(30, last)]
        waits = []
        t0 = time.monotonic()
        send_paced(sock, b.local_port, before, payload)
        for seq, at in after:
            send_paced(sock, b.local_port, [(seq, max(0.0, t0 + at - time.monotonic()))], payload)
            waits.append(b.statistics["jb_wait_ms"])
        s = b.statistics
        assert max(waits[10:60]) >= 160                 # the surplus was there...
        assert s["jb_wait_ms"] < 80                     # ...and is gone (a late packet or two
        if audio == "silence":                          # from this sender may keep some)
            assert s["jb_skipped_silent"] >= 6 and s["jb_dropped"] == 0
        else:
            assert s["jb_dropped"] >= 6 and s["jb_skipped_silent"] == 0
    finally:
        b.stop()
        sock.close()


def test_ticks_skipped_in_a_stall_leave_no_delay():
    # an engine held up (here: its process stopped for 0.3 s) skips the ticks it missed;
    # what the sender sent meanwhile is read in one go, and keeping it would add 0.3 s
    import os
    import signal

    from sipsimple.bench.media import Side

    side = Side("stalled", 8000, (43000, 43999))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        offer = side("offer", n=1, codec="PCMU", srtp=False)["media"][0]
        side("start", answers=[{"address": "127.0.0.1", "port": sock.getsockname()[1] or 9,
                                "codecs": [(0, "PCMU", 8000, 1, "")]}])
        port = offer["port"]
        send_paced(sock, port, [(seq, 0.02 * seq) for seq in range(25)])
        before = side("stats")
        os.kill(side.pid, signal.SIGSTOP)
        try:
            send_paced(sock, port, [(seq, 0.02 * (seq - 25)) for seq in range(25, 40)])
        finally:
            os.kill(side.pid, signal.SIGCONT)
        send_paced(sock, port, [(seq, 0.02 * (seq - 40)) for seq in range(40, 60)])
        after = side("stats")
        assert after["engine"]["late_ticks"] - before["engine"]["late_ticks"] >= 5
        probe = after["probe"]
        assert probe["jb_dropped"] >= 5 and probe["jb_buffered"] <= 3 and probe["jb_wait_ms"] < 60
    finally:
        sock.close()
        side.close()
