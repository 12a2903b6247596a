"""RTP through a real outside peer: sipp's -rtp_echo returns our packets from
its media port (no SIP needed), so a tone must come back, plain and SRTP."""

import time

import numpy as np
import pytest

from sipsimple.core._media import AudioTransport, NumpyTap, ToneGenerator
from tests.media_engine import start_media_engine
from tests.peers.ports import free_port_range
from tests.peers.sipp import SippProcess

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def echo(tmp_path_factory):
    media_port = free_port_range(4, tcp=False)
    sipp = SippProcess("uas", builtin=True, run_dir=tmp_path_factory.mktemp("sipp"), media_port=media_port,
                       extra=["-rtp_echo"])
    sipp.start()
    yield media_port
    sipp.stop()


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


@pytest.mark.parametrize("codec", ["PCMU", "G722", "opus"])
@pytest.mark.parametrize("srtp", ["off", "mandatory"])
def test_tone_comes_back_from_sipp(engine, echo, codec, srtp):
    a = AudioTransport(codecs=[codec], srtp=srtp, srtp_suites=["AES_CM_128_HMAC_SHA1_80"])
    tone = ToneGenerator(1000, level=-12)
    tap = NumpyTap()
    try:
        me = a.local_media()
        # the echo sends our own packets back, so the "remote" key is ours
        remote = dict(me, address="127.0.0.1", port=echo, rtcp_port=echo + 1, rtcp_mux=False)
        a.start(remote)
        engine.connect(tone, a)
        engine.connect(a, tap)
        time.sleep(0.7)
        x = tap.read()[-24000:].astype(float)
        s = a.statistics
        assert s["rx_packets"] >= 25 and s["rx_srtp_errors"] == 0
        assert s["remote_address_received"] == ("127.0.0.1", echo)
        spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        assert abs(np.argmax(spec) * 48000 / len(x) - 1000) < 10
        assert abs(10 * np.log10(np.mean(x**2) / 32768**2) + 12) < 1.5
    finally:
        for o in (a, tone, tap):
            o.stop()
