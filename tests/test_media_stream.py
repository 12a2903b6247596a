"""Stream lifecycle: statistics, RTCP (RTT, loss reports), no-audio and RTP
timeout events, symmetric RTP latching, hold/unhold via update()."""

import socket
import struct
import time

import numpy as np
import pytest

from sipsimple.core._media import AudioTransport, MediaError, NumpyTap, ToneGenerator
from tests.media_engine import recorded_events, start_media_engine


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


@pytest.fixture
def events(engine):
    with recorded_events(engine) as got:
        yield got


def pair(**kw):
    a = AudioTransport(**kw)
    b = AudioTransport(**kw)
    offer = a.local_media()
    answer = b.local_media(offer)
    b.start(offer)
    a.start(answer)
    return a, b


def test_local_media_description(engine):
    t = AudioTransport(local_ip="127.0.0.1", port_range=(41000, 41100), codecs=["PCMU", "G722"], ptime=20)
    try:
        m = t.local_media(direction="sendonly")
        assert m["address"] == "127.0.0.1"
        assert 41000 <= m["port"] <= 41100 and m["port"] % 2 == 0 and m["rtcp_port"] == m["port"] + 1
        assert m["codecs"] == [(0, "PCMU", 8000, 1, ""), (9, "G722", 8000, 1, ""),
                               (101, "telephone-event", 8000, 1, "0-16")]
        assert m["ptime"] == 20 and m["direction"] == "sendonly" and m["crypto"] == []
    finally:
        t.stop()


def test_port_range_exhaustion(engine):
    ts = []
    try:
        for _ in range(2):
            ts.append(AudioTransport(port_range=(41200, 41204)))
        with pytest.raises(MediaError):
            AudioTransport(port_range=(41200, 41204))
    finally:
        for t in ts:
            t.stop()


def test_statistics_and_rtcp_rtt(engine):
    a, b = pair(codecs=["PCMU"], rtcp_interval=0.3, srtp="mandatory")
    tone = ToneGenerator(1000)
    try:
        engine.connect(tone, a)
        engine.connect(tone, b)
        time.sleep(1.5)
        sa, sb = a.statistics, b.statistics
        for s, other in ((sa, sb), (sb, sa)):
            assert s["codec"] == "PCMU" and s["sample_rate"] == 8000 and s["srtp_active"]
            assert s["tx_packets"] > 60 and s["tx_bytes"] == s["tx_packets"] * 160
            assert s["rx_packets"] > 60 and s["rx_lost"] == 0
            assert s["rtcp_sent"] >= 2 and s["rtcp_received"] >= 2
            assert s["rtt_ms"] is not None and 0 <= s["rtt_ms"] < 50
            assert s["remote_fraction_lost"] == 0 and s["remote_cumulative_lost"] == 0
            assert s["jitter_ms"] < 20
            assert s["remote_address_sdp"] == ("127.0.0.1", other["local_address"][1])
            assert s["audio_received"]
    finally:
        for o in (a, b, tone):
            o.stop()


def test_rtcp_reports_loss(engine):
    a, b = pair(codecs=["PCMU"], rtcp_interval=0.3)
    try:
        a._simulate_loss(4)
        time.sleep(1.5)
        sa = a.statistics
        assert sa["remote_cumulative_lost"] > 5
        assert b.statistics["rx_loss_rate"] == pytest.approx(0.25, abs=0.06)
    finally:
        a.stop()
        b.stop()


def test_no_audio_event(engine, events):
    a = AudioTransport(codecs=["PCMU"], no_audio_timeout=0.4)
    try:
        a.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        time.sleep(0.8)
        assert [n for n, s, d in events if s is a] == ["AudioStreamGotNoAudio"]
        assert not a.statistics["audio_received"]
    finally:
        a.stop()


def test_no_audio_event_not_sent_when_audio_flows(engine, events):
    a, b = pair(codecs=["PCMU"], no_audio_timeout=0.4, rtp_timeout=0.3)
    try:
        time.sleep(0.7)
        assert not [n for n, s, d in events if s in (a, b)]
        a.stop()
        time.sleep(0.6)
        assert [n for n, s, d in events if s is b] == ["AudioStreamDidTimeout"]
    finally:
        a.stop()
        b.stop()


def test_symmetric_rtp_latching(engine, events):
    b = AudioTransport(codecs=["PCMU"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1)
    try:
        # the SDP names a port nobody listens on; RTP really comes from sock
        b.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        for seq in range(3):
            sock.sendto(struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 99) + b"\xff" * 160,
                        ("127.0.0.1", b.local_port))
        data = sock.recv(2048)          # b now sends to where RTP came from
        assert len(data) == 12 + 160
        assert b.remote_address_received == sock.getsockname()
        assert b.remote_address_sdp == ("127.0.0.1", 9)
        time.sleep(0.1)
        latch = [d for n, s, d in events if s is b and n == "RTPStreamDidChangeRemoteAddress"]
        assert latch == [{"address": "127.0.0.1", "port": sock.getsockname()[1]}], (latch, events)
        # a second source cannot take over while the latched one is live
        intruder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for seq in range(3, 6):
            intruder.sendto(struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 99) + b"\xff" * 160,
                            ("127.0.0.1", b.local_port))
        intruder.close()
        time.sleep(0.1)
        assert b.statistics["rx_foreign"] == 3
        assert b.remote_address_received == sock.getsockname()
    finally:
        b.stop()
        sock.close()


def test_hold_and_unhold(engine):
    a, b = pair(codecs=["G722"])
    tone = ToneGenerator(1000)
    tap = NumpyTap()
    try:
        engine.connect(tone, a)
        engine.connect(b, tap)
        time.sleep(0.3)
        # a puts b on hold: a sends sendonly, b answers recvonly
        offer = a.local_media(direction="sendonly")
        answer = b.local_media(offer, direction="recvonly")
        b.update(offer)
        a.update(answer)
        sa = a.statistics
        assert sa["can_send"] and not sa["can_recv"]
        assert not b.statistics["can_send"] and b.statistics["can_recv"]
        # inactive both ways
        offer = a.local_media(direction="inactive")
        answer = b.local_media(offer, direction="inactive")
        b.update(offer)
        a.update(answer)
        time.sleep(0.1)
        before = b.statistics["rx_packets"]
        time.sleep(0.3)
        assert b.statistics["rx_packets"] == before
        assert a.statistics["tx_packets"] == sa["tx_packets"] or a.statistics["tx_packets"] - sa["tx_packets"] < 10
        # unhold
        offer = a.local_media(direction="sendrecv")
        answer = b.local_media(offer, direction="sendrecv")
        b.update(offer)
        a.update(answer)
        tap.read()
        time.sleep(0.4)
        assert b.statistics["rx_packets"] > before + 10
        assert (abs(tap.read()[-4800:]) > 1000).any()
    finally:
        for o in (a, b, tone, tap):
            o.stop()


def test_mixer_connect_mute_level(engine):
    t1 = ToneGenerator(500, level=-20)
    t2 = ToneGenerator(1500, level=-20)
    tap = NumpyTap()
    try:
        engine.connect(t1, tap)
        engine.connect(t2, tap)
        assert (t1.port, tap.port) in engine.connections()
        time.sleep(0.2)
        assert engine.level(t1) == pytest.approx(-20, abs=0.2)
        assert engine.input_level(tap) == pytest.approx(-17, abs=0.3)     # two uncorrelated tones
        engine.mute(t2)
        time.sleep(0.2)
        assert engine.is_muted(t2)
        assert engine.level(t2) < -35        # the meter decays within ~200 ms
        assert engine.input_level(tap) == pytest.approx(-20, abs=0.3)
        engine.mute(t2, False)
        engine.disconnect(t1, tap)
        time.sleep(0.2)
        assert (t1.port, tap.port) not in engine.connections()
        assert engine.input_level(tap) == pytest.approx(-20, abs=0.3)
        with pytest.raises(MediaError):
            engine.connect(t1, 1999)
    finally:
        for o in (t1, t2, tap):
            o.stop()


def test_conference_of_several_calls(engine):
    # three calls mixed into one conference: each remote hears the other two
    calls = [pair(codecs=[c]) for c in ("PCMU", "opus", "G722")]
    tones = [ToneGenerator(f, level=-20) for f in (400, 800, 1600)]
    taps = [NumpyTap() for _ in calls]
    try:
        for (_local, remote), tone, tap in zip(calls, tones, taps, strict=True):
            engine.connect(tone, remote)        # the remote party speaks its tone
            engine.connect(remote, tap)         # and we listen to what it receives
        for i, (local_i, _) in enumerate(calls):
            for j, (local_j, _) in enumerate(calls):
                if i != j:
                    engine.connect(local_i, local_j)
        time.sleep(1.0)

        for i, tap in enumerate(taps):
            x = tap.read()[-24000:].astype(float)
            spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
            freqs = np.fft.rfftfreq(len(x), 1 / 48000)
            top = sorted(freqs[np.argsort(spec)[-2:]])
            expected = sorted(f for j, f in enumerate((400, 800, 1600)) if j != i)
            assert np.allclose(top, expected, atol=5)
    finally:
        for local, remote in calls:
            local.stop()
            remote.stop()
        for o in tones + taps:
            o.stop()


def test_events_become_notifications(engine):
    from sipsimple.core._media import _default_event_handler
    from sipsimple.notification import NotificationCenter

    got = []

    def observer(notification):
        got.append(notification)

    old = engine.event_handler
    engine.event_handler = _default_event_handler
    a = AudioTransport(codecs=["PCMU"], no_audio_timeout=0.2)
    NotificationCenter().add_observer(observer, name="AudioStreamGotNoAudio", sender=a)
    try:
        a.start({"address": "127.0.0.1", "port": 9, "codecs": [(0, "PCMU", 8000, 1, "")]})
        time.sleep(0.5)
        assert [(n.name, n.sender) for n in got] == [("AudioStreamGotNoAudio", a)]
    finally:
        NotificationCenter().discard_observer(observer, name="AudioStreamGotNoAudio", sender=a)
        engine.event_handler = old
        a.stop()


def test_numpy_tap_frames_roundtrip(engine):
    src = NumpyTap()
    dst = NumpyTap()
    try:
        engine.connect(src, dst)
        ramp = (np.arange(engine.frame_samples * 5) % 2000 - 1000).astype(np.int16)
        dst.clear()
        assert src.write(ramp) == len(ramp)
        time.sleep(0.25)
        frames = dst.read_frames()
        assert frames.shape[1] == engine.frame_samples
        flat = frames.reshape(-1)
        start = int(np.flatnonzero(flat == -1000)[0])
        assert np.array_equal(flat[start:start + len(ramp)], ramp)
    finally:
        src.stop()
        dst.stop()


def test_numpy_tap_stamps_each_sample_with_its_tick(engine):
    tap = NumpyTap()
    try:
        before = time.monotonic_ns()
        while tap.available < engine.frame_samples * 10:   # every tap takes a frame per tick
            time.sleep(0.02)
        samples, times = tap.read_stamped()
        after = time.monotonic_ns()
        assert len(samples) == len(times) >= engine.frame_samples * 10
        # a sample's time is its frame's tick plus its offset in the frame, so up to a frame ahead
        assert (times > 0).all() and before - 25_000_000 <= times[0] and times[-1] <= after + 20_000_000
        step = 1_000_000_000 // engine.sample_rate
        frames = times[: len(times) // engine.frame_samples * engine.frame_samples].reshape(-1, engine.frame_samples)
        within = np.diff(frames, axis=1)
        assert ((within >= step - 1) & (within <= step + 1)).all()     # sample by sample in a frame
        ticks = frames[:, 0]
        assert (np.diff(ticks) > 0).all()                                # one tick after another,
        assert abs(np.median(np.diff(ticks)) - engine.frame_ms * 1_000_000) < 2_000_000  # a frame apart
        assert len(tap.read_stamped()[0]) < engine.frame_samples * 3     # and read only once
    finally:
        tap.stop()


def test_ipv6_loopback(engine):
    try:
        socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    a, b = pair(local_ip="::1", codecs=["PCMU"], srtp="mandatory")
    try:
        assert a.local_media()["address"] == "::1"
        time.sleep(0.3)
        s = b.statistics
        assert s["rx_packets"] > 5 and s["rx_srtp_errors"] == 0
        assert s["remote_address_received"] == ("::1", a.local_port)
    finally:
        a.stop()
        b.stop()
