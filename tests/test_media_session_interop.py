"""Sessions with media against sipp as the far end (an outside RTP peer).

(a) our Session calls sipp's built-in ``uas`` run with ``-rtp_echo``: the tone we send
    into the session's audio transport comes back from sipp's media port;
(b) sipp's ``uas`` without ``-rtp_echo`` answers but never sends RTP: the session posts
    ``SCSessionGotNoAudio`` about 5 s after it started (waited for, no sleeps);
(c) early media: ``uas_early_media.xml`` answers 183 with SDP, waits 2.5 s, then 200;
    the session rings, starts its audio from the 183's SDP and hears its echoed tone
    while still CALLING, before ``SCSessionDidStart``, and keeps the same stream after.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from sipsimple.core import SIPURI, Engine
from sipsimple.core._media import MediaEngine, NumpyTap, ToneGenerator
from sipsimple.session import Session, SessionManager
from tests.audio_analysis import dominant_frequency, level_dbfs
from tests.peers.ports import free_port, free_port_range
from tests.peers.sipp import SippProcess

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) is not installed")]


class Account:
    """The least an account needs for a Session; PCMU and no SRTP, as sipp's SDP offers only that."""

    def __init__(self, user: str = "alice") -> None:
        self.uri = SIPURI("127.0.0.1", user=user)
        self.credentials = None
        self.display_name = user.title()
        self.srtp_mode = "off"
        self.audio_codecs = ["PCMU"]


@pytest.fixture
def sip():
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), udp_port=free_port())
    SessionManager()
    try:
        yield engine
    finally:
        engine.stop()


def _wait_samples(tap: NumpyTap, seconds: float, timeout: float = 5.0) -> np.ndarray:
    """``seconds`` of what the tap received (it fills at the media clock's pace)."""
    rate = MediaEngine().sample_rate
    deadline = time.monotonic() + timeout
    while tap.available < int(rate * seconds) and time.monotonic() < deadline:
        time.sleep(0.02)
    return tap.read()[-int(rate * seconds):]


def _hang_up(recorder, session) -> None:
    session.end()
    recorder.wait("SCSessionDidEnd", sender=session)


def test_tone_echoed_by_sipp_uas(sip, recorder, tmp_path):
    media_port = free_port_range(4, tcp=False)
    with SippProcess("uas", builtin=True, run_dir=tmp_path, calls=1, timeout=30, media_port=media_port,
                     extra=["-rtp_echo"]) as uas:
        session = Session(Account())
        session.connect(SIPURI("127.0.0.1", user="echo", port=uas.local_port), [], audio=True)
        recorder.wait("SCSessionDidStart", sender=session)
        assert session.audio_codec == "PCMU" and not session.audio_srtp_active
        assert session.audio_remote_rtp_port_sdp == media_port
        media = MediaEngine()
        tone, tap = ToneGenerator(1000, level=-12), NumpyTap()
        try:
            media.connect(tone, session.audio_transport)
            media.connect(session.audio_transport, tap)
            _wait_samples(tap, 0.3)          # the jitter buffer fills with the tone's first packets
            tap.read()
            samples = _wait_samples(tap, 0.5)
        finally:
            tone.stop()
            tap.stop()
        assert len(samples) == media.sample_rate // 2
        assert abs(dominant_frequency(samples, media.sample_rate) - 1000) < 10
        assert abs(level_dbfs(samples) + 12) < 2      # G.711 both ways keeps the level
        stats = session.audio_transport.statistics
        assert stats["rx_packets"] > 25 and stats["rx_lost"] == 0
        assert stats["remote_address_received"] == ("127.0.0.1", media_port)
        assert session.audio_was_received
        _hang_up(recorder, session)
        assert uas.wait(15).successful == 1
    assert not recorder.of("SCSessionGotNoAudio", sender=session)


def test_no_audio_from_sipp_uas(sip, recorder, tmp_path):
    with SippProcess("uas", builtin=True, run_dir=tmp_path, calls=1, timeout=30) as uas:
        session = Session(Account())
        session.connect(SIPURI("127.0.0.1", user="silent", port=uas.local_port), [], audio=True)
        started = recorder.wait("SCSessionDidStart", sender=session)
        silent = recorder.wait("SCSessionGotNoAudio", sender=session, timeout=10)
        elapsed = (silent.data.timestamp - started.data.timestamp).total_seconds()
        assert 4.5 <= elapsed <= 6.5, elapsed
        assert session.state == "ESTABLISHED" and not session.audio_was_received
        assert session.audio_transport.statistics["tx_packets"] > 200    # we kept sending all along
        _hang_up(recorder, session)
        assert uas.wait(15).successful == 1
    assert len(recorder.of("SCSessionGotNoAudio", sender=session)) == 1


def test_early_media_from_183(sip, recorder, tmp_path):
    media_port = free_port_range(4, tcp=False)
    with SippProcess("uas_early_media.xml", run_dir=tmp_path, calls=1, timeout=30, media_port=media_port,
                     extra=["-rtp_echo"]) as uas:
        session = Session(Account())
        media = MediaEngine()
        tone, tap = ToneGenerator(700, level=-12), NumpyTap()
        try:
            session.connect(SIPURI("127.0.0.1", user="early", port=uas.local_port), [], audio=True)
            recorder.wait("SCSessionGotRingIndication", sender=session)
            # the 183's SDP starts the audio; the 200 comes 2.5 s after the 183
            recorder.wait_for(lambda: session.audio_transport is not None and session.audio_transport.is_started,
                              timeout=2)
            transport = session.audio_transport
            media.connect(tone, transport)
            media.connect(transport, tap)
            _wait_samples(tap, 0.3)
            tap.read()
            early = _wait_samples(tap, 0.5)
            early_stats = transport.statistics
            # all of that happened before the call was answered
            assert session.state == "CALLING"
            assert not recorder.of("SCSessionWillStart", sender=session)
            assert not recorder.of("SCSessionDidStart", sender=session)
            assert abs(dominant_frequency(early, media.sample_rate) - 700) < 10 and level_dbfs(early) > -20
            assert early_stats["rx_packets"] > 25 and early_stats["remote_address_sdp"] == ("127.0.0.1", media_port)

            recorder.wait("SCSessionDidStart", sender=session)
            names = [n.name for n in recorder.notifications if n.sender is session]
            assert names.index("SCSessionGotRingIndication") < names.index("SCSessionDidStart")
            # the answer (same SDP) keeps the early stream: same transport, counters go on
            assert session.audio_transport is transport and transport.is_started
            tap.read()
            after = _wait_samples(tap, 0.5)
            assert abs(dominant_frequency(after, media.sample_rate) - 700) < 10
            assert transport.statistics["rx_packets"] > early_stats["rx_packets"]
        finally:
            tone.stop()
            tap.stop()
        _hang_up(recorder, session)
        assert uas.wait(15).successful == 1
    assert not recorder.of("SCSessionDidFail", sender=session)
