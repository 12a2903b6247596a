"""SDES crypto attributes, SRTP negotiation modes, and robustness against
wrong keys, short/garbage packets and unknown payload types."""

import base64
import socket
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipsimple.core._media import (
    SRTP_SUITES,
    AudioTransport,
    MediaEngine,
    MediaError,
    NumpyTap,
    ToneGenerator,
    build_crypto_line,
    generate_srtp_key,
    parse_crypto_line,
)
from tests.media_engine import start_media_engine


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


@pytest.mark.parametrize("suite", sorted(SRTP_SUITES))
def test_crypto_line_roundtrip(suite):
    key = generate_srtp_key(suite)
    assert len(key) == (28 if "GCM" in suite else 30)
    line = build_crypto_line(3, suite, key)
    assert line.startswith(f"3 {suite} inline:")
    assert parse_crypto_line(line) == (3, suite, key)
    assert parse_crypto_line("a=crypto:" + line) == (3, suite, key)
    assert parse_crypto_line(line + "|2^31") == (3, suite, key)


def test_generated_keys_differ():
    assert generate_srtp_key("AES_CM_128_HMAC_SHA1_80") != generate_srtp_key("AES_CM_128_HMAC_SHA1_80")


@pytest.mark.parametrize("line", [
    "",
    "1 AES_CM_128_HMAC_SHA1_80",
    "x AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 30).decode(),
    "1 F8_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 30).decode(),
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 29).decode(),
    "1 AES_CM_128_HMAC_SHA1_80 inline:!!notbase64!!",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 30).decode() + "|2^20|1:4",
    "1 AES_CM_128_HMAC_SHA1_80 inline:" + base64.b64encode(b"k" * 30).decode() + " UNENCRYPTED_SRTP",
    "1 AES_CM_128_HMAC_SHA1_80 uri:http://example.com/key",
])
def test_crypto_line_rejects(line):
    with pytest.raises(ValueError):
        parse_crypto_line(line)


@given(st.text(max_size=120))
@settings(max_examples=200, deadline=None)
def test_crypto_line_parser_never_crashes(text):
    try:
        parse_crypto_line(text)
    except ValueError:
        pass


def test_offer_modes(engine):
    off = AudioTransport(srtp="off")
    opt = AudioTransport(srtp="optional")
    mand = AudioTransport(srtp="mandatory")
    try:
        assert off.local_media()["crypto"] == [] and off.local_media()["transport"] == "RTP/AVP"
        o = opt.local_media()
        assert len(o["crypto"]) == 3 and o["transport"] == "RTP/AVP"
        m = mand.local_media()
        assert len(m["crypto"]) == 3 and m["transport"] == "RTP/SAVP"
        assert [parse_crypto_line(c)[1] for c in m["crypto"]] == [
            "AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
        # an optional answerer takes the first usable line and answers with the same tag
        answer = opt.local_media(m)
        assert len(answer["crypto"]) == 1
        assert parse_crypto_line(answer["crypto"][0])[:2] == (1, "AEAD_AES_128_GCM")
        # mandatory against a plain offer: no crypto in the answer, start refuses
        plain = off.local_media()
        assert mand.local_media(plain)["crypto"] == []
        with pytest.raises(MediaError):
            mand.start(plain)
        # optional against a plain offer falls back to RTP
        opt.local_media(plain)
        opt.start(plain)
        assert not opt.srtp_active
    finally:
        for t in (off, opt, mand):
            t.stop()


def connect_pair(a, b):
    offer = a.local_media()
    answer = b.local_media(offer)
    b.start(offer)
    a.start(answer)
    return offer, answer


def test_wrong_key_is_counted_and_dropped(engine):
    a = AudioTransport(codecs=["PCMU"], srtp="mandatory", srtp_suites=["AES_CM_128_HMAC_SHA1_80"])
    b = AudioTransport(codecs=["PCMU"], srtp="mandatory", srtp_suites=["AES_CM_128_HMAC_SHA1_80"])
    tone = ToneGenerator(1000)
    tap = NumpyTap()
    try:
        offer = a.local_media()
        answer = b.local_media(offer)
        # b believes a uses another key
        tag, suite, _ = parse_crypto_line(offer["crypto"][0])
        forged = dict(offer, crypto=[build_crypto_line(tag, suite, generate_srtp_key(suite))])
        b.start(forged)
        a.start(answer)
        engine.connect(tone, a)
        engine.connect(b, tap)
        time.sleep(0.5)
        sb = b.statistics
        assert sb["rx_srtp_errors"] >= 15
        assert sb["rx_packets"] == 0
        assert engine.level(b) == float("-inf")
        assert not (tap.read() != 0).any()
        # and the other direction works
        assert a.statistics["rx_srtp_errors"] == 0
    finally:
        for o in (a, b, tone, tap):
            o.stop()


def rtp_packet(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq, ts, ssrc) + payload


@pytest.mark.parametrize("srtp", ["off", "mandatory"])
def test_garbage_short_and_unknown_pt(engine, srtp):
    a = AudioTransport(codecs=["PCMU"], srtp=srtp)
    b = AudioTransport(codecs=["PCMU"], srtp=srtp)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        connect_pair(a, b)
        dest = ("127.0.0.1", b.local_port)
        for _ in range(5):
            sock.sendto(b"\x80\x00", dest)                       # short
            sock.sendto(b"\x00" * 40, dest)                       # version 0
            sock.sendto(b"\xff" * 100, dest)                      # garbage
        if srtp == "off":
            for i in range(5):
                sock.sendto(rtp_packet(77, i, i * 160, 1234, b"\x00" * 160), dest)   # unknown PT
            sock.sendto(rtp_packet(0, 9, 0, 1234, b""), dest)                       # empty payload
            # extension header claims more than the packet holds
            sock.sendto(bytes([0x90]) + rtp_packet(0, 10, 0, 1234, b"\x00\x01\x00\xff")[1:], dest)
        else:
            for i in range(5):
                sock.sendto(rtp_packet(0, i, i * 160, 1234, b"\x00" * 170), dest)    # unauthenticated
        time.sleep(0.3)
        s = b.statistics
        assert s["rx_short"] == 5
        if srtp == "off":
            assert s["rx_unknown_pt"] == 5
            assert s["rx_bad"] >= 10 + 2
        else:
            assert s["rx_srtp_errors"] >= 5
            assert s["rx_bad"] >= 10
        # garbage did not steer the latched address away from the peer
        assert s["remote_address_received"] in (None, ("127.0.0.1", a.local_port))
        assert b.is_started
    finally:
        a.stop()
        b.stop()
        sock.close()


CODEC_PT = {"PCMU": (0, 8000), "G722": (9, 8000), "GSM": (3, 8000), "opus": (96, 48000)}


@given(st.lists(st.binary(min_size=0, max_size=300), min_size=1, max_size=30), st.sampled_from(sorted(CODEC_PT)))
@settings(max_examples=40, deadline=None)
def test_random_packets_never_crash(packets, codec):
    eng = MediaEngine()
    if not eng.running:
        eng.start(sample_rate=48000, device="null")
    b = AudioTransport(codecs=["opus", "PCMU", "G722", "GSM"], srtp="optional")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        pt, rate = CODEC_PT[codec]
        b.start({"address": "127.0.0.1", "port": 9,
                 "codecs": [(pt, codec, rate, 1, ""), (101, "telephone-event", rate, 1, "")]})
        assert b.codec.name == codec
        for i, p in enumerate(packets):
            sock.sendto(p, ("127.0.0.1", b.local_port))
            # valid RTP headers with random payloads, for the codec and for telephone-event
            sock.sendto(rtp_packet(pt, i, i * 160, 42, p), ("127.0.0.1", b.local_port))
            sock.sendto(rtp_packet(101, i, i * 160, 42, p), ("127.0.0.1", b.local_port))
            sock.sendto(p, ("127.0.0.1", b.local_rtcp_port))
        time.sleep(0.05)
        assert isinstance(b.statistics, dict)
    finally:
        b.stop()
        sock.close()
