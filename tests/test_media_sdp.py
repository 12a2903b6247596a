"""Media descriptions through real SDP text (sipsimple.core.sdp) both ways."""

import time

import numpy as np
import pytest

from sipsimple.core._media import (
    AudioTransport,
    NumpyTap,
    ToneGenerator,
    media_from_sdp,
    sdp_from_media,
)
from sipsimple.core.sdp import SDPSession
from tests.media_engine import start_media_engine


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


def through_sdp(desc):
    text = str(SDPSession(desc["address"], media=[sdp_from_media(desc)]))
    session = SDPSession.parse(text)
    return text, media_from_sdp(session.media[0], session)


@pytest.mark.parametrize("srtp", ["off", "optional", "mandatory"])
def test_offer_answer_through_sdp_text(engine, srtp):
    a = AudioTransport(codecs=["opus", "G722", "PCMU"], srtp=srtp)
    b = AudioTransport(codecs=["G722", "PCMA", "PCMU"], srtp=srtp)
    tone = ToneGenerator(1000, level=-12)
    tap = NumpyTap()
    try:
        offer_text, offer = through_sdp(a.local_media())
        assert "a=rtpmap:96 opus/48000/2" in offer_text and "a=rtpmap:9 G722/8000" in offer_text
        assert ("a=crypto:" in offer_text) is (srtp != "off")
        assert ("RTP/SAVP" in offer_text) is (srtp == "mandatory")
        answer_text, answer = through_sdp(b.local_media(offer))
        assert "opus" not in answer_text and "PCMA" not in answer_text
        b.start(offer)
        a.start(answer)
        assert a.codec.name == b.codec.name == "G722"
        assert a.srtp_active is b.srtp_active is (srtp != "off")
        engine.connect(tone, a)
        engine.connect(b, tap)
        time.sleep(0.6)
        x = tap.read()[-19200:].astype(float)
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        assert abs(np.argmax(spec) * 48000 / len(x) - 1000) < 10
    finally:
        for o in (a, b, tone, tap):
            o.stop()


def test_static_payload_types_without_rtpmap():
    session = SDPSession.parse(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:4005\r\n"
        "a=sendonly\r\n")
    desc = media_from_sdp(session.media[0], session)
    assert desc["address"] == "192.0.2.7" and desc["port"] == 4000 and desc["rtcp_port"] == 4005
    assert desc["codecs"][:2] == [(0, "PCMU", 8000, 1, ""), (8, "PCMA", 8000, 1, "")]
    assert desc["direction"] == "sendonly" and desc["crypto"] == [] and not desc["rtcp_mux"]
