"""Sessions against baresip (a softphone we did not write) through Kamailio with digest auth."""

import glob
import time

import pytest

from sipsimple.core import SIPURI, Route
from sipsimple.core._media import MediaEngine, NumpyTap, ToneGenerator
from sipsimple.session import Session
from tests.audio_analysis import dominant_frequency, read_wav
from tests.local_accounts import LocalAccount
from tests.notifications import reinvite_answered


def kamailio_account(kamailio, srtp_mode="optional"):
    return LocalAccount("alice", srtp_mode, password="alicepw", domain=kamailio.domain,
                        outbound_proxy=Route(kamailio.host, kamailio.port, "udp"))


def heard(session, seconds=0.5):
    """The dominant frequency of what the session's stream receives."""
    media = MediaEngine()
    tap = NumpyTap()
    media.connect(session.audio_transport, tap)
    try:
        deadline = time.monotonic() + 5
        while tap.available < int(media.sample_rate * seconds) and time.monotonic() < deadline:
            time.sleep(0.05)  # the tap fills at the pace of the media clock
        samples = tap.read()[-int(media.sample_rate * seconds):]
    finally:
        tap.stop()
    return dominant_frequency(samples, media.sample_rate)


def baresip_heard(bob):
    """The dominant frequency of what baresip decoded (its sndfile recording of the call)."""
    files = glob.glob(str(bob.run_dir / "rec" / "*-dec.wav"))
    assert files, "baresip recorded nothing"
    samples, rate = read_wav(files[-1])
    return dominant_frequency(samples[-rate // 2:], rate)


@pytest.mark.parametrize("mediaenc", [None, "srtp-mand"])
def test_call_baresip(kamailio, baresip_factory, sip, recorder, tmp_path, mediaenc):
    bob = baresip_factory(user="bob", password="bobpw", registrar=f"{kamailio.host}:{kamailio.port}",
                          mediaenc=mediaenc)
    bob.wait_registered()
    account = kamailio_account(kamailio, "mandatory" if mediaenc else "optional")
    alice = Session(account)
    alice.connect(SIPURI(kamailio.domain, user="bob"), [account.outbound_proxy], audio=True)
    recorder.wait("SCSessionDidStart", sender=alice, timeout=15)
    assert alice.audio_codec == "PCMU" and alice.audio_srtp_active is bool(mediaenc)
    assert alice.remote_user_agent and "baresip" in alice.remote_user_agent.lower()

    media = MediaEngine()
    tone = ToneGenerator(1000, level=-12)
    media.connect(tone, alice.audio_transport)
    try:
        assert abs(heard(alice) - 440) < 10              # baresip's own tone reaches us
        recording = tmp_path / "alice.wav"
        alice.start_recording_audio(str(recording))
        recorder.wait("SCSessionDidStartRecordingAudio", sender=alice)

        alice.hold()
        reinvite_answered(recorder, alice, 1)
        assert alice._invitation.remote_sdp.media[0].direction == "recvonly"   # baresip's view of our hold
        alice.unhold()
        reinvite_answered(recorder, alice, 2)
        assert alice._invitation.remote_sdp.media[0].direction == "sendrecv"

        alice.send_dtmf("7")
        assert bob.ctrl.wait_event("CALL_DTMF_START")["param"] == "7"
        assert abs(heard(alice) - 440) < 10
        alice.stop_recording_audio()
    finally:
        tone.stop()
    samples, rate = read_wav(recording)
    assert len(samples) > rate // 4 and abs(dominant_frequency(samples, rate) - 440) < 10  # baresip's voice
    alice.end()
    assert recorder.wait("SCSessionDidEnd", sender=alice).data.originator == "local"
    bob.ctrl.wait_event("CALL_CLOSED")
    assert abs(baresip_heard(bob) - 1000) < 10           # our tone reached baresip


@pytest.fixture
def own_kamailio(tmp_path):
    """A Kamailio of this test's own: no stale contacts of other tests to fork the call to."""
    from tests.peers.kamailio import Kamailio

    server = Kamailio(tmp_path / "kamailio").start(set())
    try:
        yield server
    finally:
        server.stop()


def test_baresip_calls_us(own_kamailio, baresip_factory, sip, recorder):
    from sipsimple.core import Registration

    kamailio = own_kamailio
    account = kamailio_account(kamailio)
    registration = Registration(account.uri, account.credentials, route=account.outbound_proxy)
    registration.register()
    recorder.wait("SCRegistrationDidSucceed", sender=registration)
    bob = baresip_factory(user="bob", password="bobpw", registrar=f"{kamailio.host}:{kamailio.port}")
    bob.wait_registered()
    try:
        bob.ctrl.command("dial", f"sip:alice@{kamailio.domain}")
        incoming = recorder.wait("SCSessionNewIncoming", timeout=15)
        session = incoming.sender
        assert incoming.data.streams == ["audio"] and session.remote_uri.user == "bob"
        session.accept(audio=True)
        recorder.wait("SCSessionDidStart", sender=session)
        bob.ctrl.wait_event("CALL_ESTABLISHED")
        assert abs(heard(session) - 440) < 10
        bob.ctrl.command("hangup")
        assert recorder.wait("SCSessionDidEnd", sender=session).data.originator == "remote"
        bob.ctrl.wait_event("CALL_CLOSED")

        bob.ctrl.command("dial", f"sip:alice@{kamailio.domain}")
        second = recorder.wait("SCSessionNewIncoming", count=2, timeout=15).sender
        second.reject()
        closed = bob.ctrl.wait_event("CALL_CLOSED")
        assert "603" in closed.get("param", "")          # the code seen at baresip
        recorder.wait("SCSessionDidEnd", sender=second)
    finally:
        registration.end()
        recorder.wait("SCRegistrationDidEnd", sender=registration)
