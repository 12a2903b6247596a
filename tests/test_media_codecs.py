"""A 1 kHz tone through every codec, with and without SRTP, between two
AudioTransports on 127.0.0.1 in one process, checked with an FFT."""

import time

import numpy as np
import pytest

from sipsimple.core._media import (
    AudioTransport,
    NumpyTap,
    ToneGenerator,
    available_codecs,
)
from tests.media_engine import start_media_engine

CODECS = ["PCMU", "PCMA", "G722", "opus", "GSM"]
CASES = [(c, "off", None) for c in CODECS] + [(c, "mandatory", "AEAD_AES_128_GCM") for c in CODECS] + [
    ("PCMU", "mandatory", "AES_CM_128_HMAC_SHA1_80"),
    ("PCMU", "mandatory", "AES_CM_128_HMAC_SHA1_32"),
    ("opus", "optional", "AES_CM_128_HMAC_SHA1_80"),
    ("G722", "mandatory", "AES_CM_128_HMAC_SHA1_32"),
]
TONE_LEVEL = -12.0


def start_engine(rate):
    return start_media_engine(rate)


def analyse(x, rate):
    x = x.astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    peak = np.argmax(spec) * rate / len(x)
    level = 10 * np.log10(np.mean(x**2) / 32768.0**2 + 1e-20)
    return peak, level


def make_pair(codec, srtp, suite):
    suites = [suite] if suite else None
    a = AudioTransport(codecs=[codec], srtp=srtp, srtp_suites=suites)
    b = AudioTransport(codecs=[codec], srtp=srtp, srtp_suites=suites)
    offer = a.local_media()
    answer = b.local_media(offer)
    b.start(offer)
    a.start(answer)
    return a, b


@pytest.fixture(scope="module")
def results():
    eng = start_engine(48000)
    tone = ToneGenerator(1000, level=TONE_LEVEL)
    running = {}
    for case in CASES:
        a, b = make_pair(*case)
        tap = NumpyTap()
        eng.connect(tone, a)
        eng.connect(b, tap)
        running[case] = (a, b, tap)
    time.sleep(1.2)
    out = {}
    for case, (a, b, tap) in running.items():
        x = tap.read()[-24000:]
        out[case] = (analyse(x, 48000), a.statistics, b.statistics, eng.level(b))
        for obj in (a, b, tap):
            obj.stop()
    tone.stop()
    return out


@pytest.mark.parametrize("case", CASES, ids=["-".join(str(p) for p in c) for c in CASES])
def test_tone_through_codec(results, case):
    (peak, level), tx, rx, bridge_level = results[case]
    codec, srtp, suite = case
    assert abs(peak - 1000) < 10
    assert abs(level - TONE_LEVEL) < 1.5
    assert abs(bridge_level - TONE_LEVEL) < 1.5
    assert rx["codec"] == codec
    assert rx["srtp_active"] is (srtp != "off")
    assert rx["srtp_suite"] == suite
    assert tx["tx_packets"] >= 45
    assert rx["rx_packets"] >= 45
    assert rx["rx_lost"] == 0
    assert rx["rx_srtp_errors"] == rx["rx_bad"] == rx["rx_unknown_pt"] == 0
    assert rx["remote_address_received"] == ("127.0.0.1", tx["local_address"][1])


def test_tone_at_16k_bridge():
    eng = start_engine(16000)
    try:
        tone = ToneGenerator(1000, level=TONE_LEVEL)
        pairs = [make_pair(c, "off", None) for c in ("PCMU", "opus", "G722")]
        taps = []
        for a, b in pairs:
            tap = NumpyTap()
            eng.connect(tone, a)
            eng.connect(b, tap)
            taps.append(tap)
        time.sleep(1.0)
        for tap in taps:
            peak, level = analyse(tap.read()[-8000:], 16000)
            assert abs(peak - 1000) < 10
            assert abs(level - TONE_LEVEL) < 1.5
        for a, b in pairs:
            a.stop()
            b.stop()
        for tap in taps:
            tap.stop()
        tone.stop()
    finally:
        start_engine(48000)


def test_codec_catalogue():
    names = [c.name for c in available_codecs()]
    assert names == ["opus", "G722", "PCMU", "PCMA", "GSM"]
    g722 = [c for c in available_codecs() if c.name == "G722"][0]
    assert (g722.clock_rate, g722.sample_rate, g722.static_pt) == (8000, 16000, 9)


def test_payload_types_by_name_and_order():
    eng = start_engine(48000)
    assert eng.running
    a = AudioTransport(codecs=["PCMA", "opus", "PCMU"])
    b = AudioTransport(codecs=["PCMU", "opus"])
    try:
        offer = a.local_media()
        names = [c[1] for c in offer["codecs"]]
        assert names == ["PCMA", "opus", "PCMU", "telephone-event", "telephone-event"]
        opus = [c for c in offer["codecs"] if c[1] == "opus"][0]
        assert opus[2:4] == (48000, 2) and "useinbandfec=1" in opus[4]
        # remote uses its own dynamic payload type for opus: negotiated by name and rate
        offer["codecs"] = [(120 if c[1] == "opus" else c[0],) + tuple(c[1:]) for c in offer["codecs"]]
        answer = b.local_media(offer)
        assert [c[1] for c in answer["codecs"]][:2] == ["PCMU", "opus"]
        assert [c for c in answer["codecs"] if c[1] == "opus"][0][0] == 120
        b.start(offer)
        a.start(answer)
        assert a.codec.name == "PCMU" and b.codec.name == "PCMU"
    finally:
        a.stop()
        b.stop()
