"""G.711 bit-exactness against an independent implementation (the standard
library's audioop, where it still exists) in both directions, over RTP."""

import socket
import struct
import time
import warnings

import numpy as np
import pytest

from sipsimple.core._media import AudioTransport, MediaEngine, NumpyTap

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop")

CODECS = [("PCMU", 0, audioop.lin2ulaw, audioop.ulaw2lin), ("PCMA", 8, audioop.lin2alaw, audioop.alaw2lin)]


@pytest.fixture(scope="module")
def engine8k():
    eng = MediaEngine()
    eng.stop()
    eng.start(sample_rate=8000, device="null")
    yield eng
    eng.stop()
    eng.start(sample_rate=48000, device="null")


@pytest.mark.parametrize("name,pt,encode,decode", CODECS, ids=[c[0] for c in CODECS])
def test_g711_is_bit_exact(engine8k, name, pt, encode, decode):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1)
    t = AudioTransport(codecs=[name])
    tap_in = NumpyTap()
    tap_out = NumpyTap()
    try:
        t.start({"address": "127.0.0.1", "port": sock.getsockname()[1], "codecs": [(pt, name, 8000, 1, "")]})
        engine8k.connect(tap_in, t)
        engine8k.connect(t, tap_out)
        ramp = np.arange(-32768, 32768, 16).astype(np.int16)          # every 16th 16-bit value
        # encoder: what we send equals the reference encoding
        tap_in.write(ramp)
        sent = b""
        deadline = time.monotonic() + 3
        while len(sent) < 2 * len(ramp) and time.monotonic() < deadline:
            packet = sock.recv(2048)
            sent += packet[12:]
        reference = encode(ramp.tobytes(), 2)
        start = sent.find(reference[:160])
        assert start >= 0 and sent[start:start + len(reference)] == reference
        # decoder: every one of the 256 code words decodes like the reference
        codes = bytes(range(256)) * 5
        tap_out.clear()
        for seq in range(len(codes) // 160):
            sock.sendto(struct.pack("!BBHII", 0x80, pt, seq, seq * 160, 7) + codes[seq * 160:(seq + 1) * 160],
                        ("127.0.0.1", t.local_port))
            time.sleep(0.02)
        time.sleep(0.15)
        heard = tap_out.read().tobytes()
        expected = decode(codes, 2)
        assert expected[:320] in heard                                  # one packet, sample for sample
        assert set(np.frombuffer(expected, np.int16)) <= set(np.frombuffer(heard, np.int16))
    finally:
        t.stop()
        tap_in.stop()
        tap_out.stop()
        sock.close()
