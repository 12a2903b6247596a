"""Session between two of our own endpoints on loopback: the seed's states and notifications."""

import asyncio
import wave

import pytest

from sipsimple.core import SIPURI
from sipsimple.core._media import MediaEngine, NumpyTap, ToneGenerator
from sipsimple.session import Session, SessionError, SessionManager, SessionStateError
from tests.audio_analysis import dominant_frequency, level_dbfs
from tests.local_accounts import LocalAccount, bob_uri
from tests.notifications import reinvite_answered


def call(recorder, engine, caller_account=None, callee_account=None, accept=True):
    alice = Session(caller_account or LocalAccount("alice"))
    alice.connect(bob_uri(engine), [], audio=True)
    incoming = recorder.wait("SCSessionNewIncoming")
    bob = incoming.sender
    assert incoming.data.streams == ["audio"]
    if accept:
        bob.accept(audio=True)
        recorder.wait("SCSessionDidStart", sender=alice)
        recorder.wait("SCSessionDidStart", sender=bob)
    return alice, bob


def hang_up(recorder, alice, bob):
    alice.end()
    recorder.wait("SCSessionDidEnd", sender=alice)
    recorder.wait("SCSessionDidEnd", sender=bob)


def measure(session_from, session_to, frequency):
    """Play a tone into one side's stream and measure what the other side receives."""
    media = MediaEngine()
    tone, tap = ToneGenerator(frequency, level=-12), NumpyTap()
    media.connect(tone, session_from.audio_transport)
    media.connect(session_to.audio_transport, tap)
    try:
        import time

        deadline = time.monotonic() + 5
        while tap.available < media.sample_rate // 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the tap fills at the media clock's pace: 0.5 s of audio
        samples = tap.read()[-media.sample_rate // 2:]
    finally:
        tone.stop()
        tap.stop()
    return dominant_frequency(samples, media.sample_rate), level_dbfs(samples)


def states(recorder, session):
    return [n.data.state for n in recorder.of("SCSessionChangedState", sender=session)]


@pytest.mark.parametrize("srtp,codec", [("optional", None), ("mandatory", ["PCMU"]), ("off", ["G722"])])
def test_call_with_tone_both_ways(sip, recorder, srtp, codec):
    alice, bob = call(recorder, sip, LocalAccount("alice", srtp, codec), LocalAccount("bob", srtp, codec))
    assert recorder.wait("SCSessionNewOutgoing", sender=alice).data.streams == ["audio"]
    assert alice.direction == "outgoing" and bob.direction == "incoming"
    assert alice.audio_codec == bob.audio_codec == (codec[0] if codec else "opus")
    assert alice.audio_srtp_active is bob.audio_srtp_active is (srtp != "off")
    assert alice.remote_user_agent.startswith("sipsimple") and bob.remote_user_agent.startswith("sipsimple")
    assert alice.audio_remote_rtp_port_sdp == bob.audio_local_rtp_port
    assert bob.caller_uri.user == "alice" and alice.callee_uri.user == "bob"
    freq, level = measure(alice, bob, 1000)
    assert abs(freq - 1000) < 10 and level > -30
    freq, level = measure(bob, alice, 700)
    assert abs(freq - 700) < 10 and level > -30
    assert alice.audio_was_received and bob.audio_was_received
    assert recorder.wait("SCSessionGotStreamUpdate", sender=alice).data.streams == ["audio"]
    hang_up(recorder, alice, bob)
    final = alice.audio_statistics   # the last reading outlives the stream
    assert final["rx_packets"] > 0 and final["tx_packets"] > 0
    assert states(recorder, alice) == ["CALLING", "ESTABLISHED", "TERMINATING", "TERMINATED"]
    assert states(recorder, bob) == ["INCOMING", "ACCEPTING", "ESTABLISHED", "TERMINATED"]
    assert recorder.wait("SCSessionDidEnd", sender=alice).data.originator == "local"
    assert recorder.wait("SCSessionDidEnd", sender=bob).data.originator == "remote"
    assert alice.start_time <= alice.stop_time and not SessionManager().sessions


def test_ring_indication_and_will_start(sip, recorder):
    alice, bob = call(recorder, sip, accept=False)
    recorder.wait("SCSessionGotRingIndication", sender=alice)
    bob.accept(audio=True)
    recorder.wait("SCSessionDidStart", sender=alice)
    names = [n.name for n in recorder.notifications if n.sender is alice]
    assert names.index("SCSessionWillStart") < names.index("SCSessionDidStart")
    assert set(SessionManager().sessions) == {alice, bob}
    hang_up(recorder, alice, bob)


def test_hold_and_unhold(sip, recorder):
    alice, bob = call(recorder, sip)
    alice.hold()
    assert recorder.wait("SCSessionGotHoldRequest", sender=alice).data.originator == "local"
    assert recorder.wait("SCSessionGotHoldRequest", sender=bob).data.originator == "remote"
    assert alice.on_hold_by_local and bob.on_hold_by_remote and bob.on_hold and not bob.on_hold_by_local
    held = recorder.wait("SCSessionDidChangeHoldState", sender=alice)  # bob's 200 came
    assert (held.data.originator, held.data.on_hold) == ("local", True)
    remote = recorder.wait("SCSessionDidChangeHoldState", sender=bob)
    assert (remote.data.originator, remote.data.on_hold) == ("remote", True)
    assert alice.audio_transport.direction == "sendonly" and bob.audio_transport.direction == "recvonly"
    alice.unhold()
    assert recorder.wait("SCSessionGotUnholdRequest", sender=bob).data.originator == "remote"
    resumed = recorder.wait("SCSessionDidChangeHoldState", sender=alice, count=2)
    assert (resumed.data.originator, resumed.data.on_hold) == ("local", False)
    assert not bob.on_hold and alice.audio_transport.direction == "sendrecv"
    freq, _ = measure(alice, bob, 1000)
    assert abs(freq - 1000) < 10
    hang_up(recorder, alice, bob)


def test_dtmf(sip, recorder):
    alice, bob = call(recorder, sip)
    for digit in "19#":
        alice.send_dtmf(digit)
        recorder.wait("SCSessionGotDTMF", sender=bob, predicate=lambda n, d=digit: n.data.digit == d)
    assert [n.data.digit for n in recorder.of("SCSessionGotDTMF", sender=bob)] == ["1", "9", "#"]
    with pytest.raises(ValueError):
        alice.send_dtmf("x")
    hang_up(recorder, alice, bob)


def test_recording_holds_the_tone(sip, recorder, tmp_path):
    alice, bob = call(recorder, sip)
    path = tmp_path / "call.wav"
    media = MediaEngine()
    tone = ToneGenerator(1000, level=-12)
    media.connect(tone, alice.audio_transport)
    try:
        bob.start_recording_audio(str(path))
        assert recorder.wait("SCSessionWillStartRecordingAudio", sender=bob).data.file_name == str(path)
        assert recorder.wait("SCSessionDidStartRecordingAudio", sender=bob).data.file_name == str(path)
        assert bob.audio_recording_file_name == str(path)
        with pytest.raises(SessionStateError):
            bob.start_recording_audio(str(tmp_path / "other.wav"))
        recorder.wait_for(lambda: path.exists() and path.stat().st_size > 48000 * 2)  # ~0.5 s recorded
        bob.stop_recording_audio()
        recorder.wait("SCSessionDidStopRecordingAudio", sender=bob)
    finally:
        tone.stop()
    from tests.audio_analysis import read_wav

    samples, rate = read_wav(path)
    assert abs(dominant_frequency(samples[-rate // 4:], rate) - 1000) < 10
    with wave.open(str(path)) as w:
        assert w.getnframes() > 0
    hang_up(recorder, alice, bob)


def test_reject(sip, recorder):
    alice, bob = call(recorder, sip, accept=False)
    bob.reject()
    failed = recorder.wait("SCSessionDidFail", sender=alice)
    assert failed.data.code == 603 and failed.data.originator == "remote"
    assert recorder.wait("SCSessionDidEnd", sender=alice).data.originator == "remote"
    recorder.wait("SCSessionWillEnd", sender=bob)
    assert recorder.wait("SCSessionDidEnd", sender=bob).data.originator == "local"
    assert states(recorder, bob) == ["INCOMING", "TERMINATING", "TERMINATED"]


def test_cancel_before_answer(sip, recorder):
    alice, bob = call(recorder, sip, accept=False)
    alice.end()
    recorder.wait("SCSessionWillEnd", sender=alice)
    assert recorder.wait("SCSessionDidEnd", sender=alice).data.originator == "local"
    assert recorder.wait("SCSessionDidEnd", sender=bob).data.originator == "remote"
    assert not recorder.of("SCSessionDidFail", sender=alice)


def test_call_to_nowhere_fails(sip, recorder):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    alice = Session(LocalAccount("alice"))
    alice.connect(SIPURI("127.0.0.1", user="x", port=dead, parameters={"transport": "tcp"}), [], audio=True)
    failed = recorder.wait("SCSessionDidFail", sender=alice, timeout=40)
    assert failed.data.code >= 400
    recorder.wait("SCSessionDidEnd", sender=alice)


def test_wrong_state_calls_change_nothing(sip, recorder):
    alice = Session(LocalAccount("alice"))
    for method, args in [("accept", {"audio": True}), ("reject", {}), ("hold", {}), ("unhold", {}),
                         ("send_dtmf", {"digit": "1"}), ("add_audio", {}), ("remove_audio", {}),
                         ("accept_proposal", {"audio": True}), ("reject_proposal", {}),
                         ("start_recording_audio", {}), ("stop_recording_audio", {})]:
        with pytest.raises(SessionStateError):
            getattr(alice, method)(**args)
    assert alice.state == "NULL" and not recorder.of("SCSessionChangedState", sender=alice)
    with pytest.raises(ValueError):
        alice.connect(bob_uri(sip), [], audio=False)
    with pytest.raises(TypeError):
        alice.connect("sip:bob@127.0.0.1", [], audio=True)
    alice.end()  # nothing to end in NULL
    assert alice.state == "NULL"


def test_stream_proposals_accepted_and_rejected(sip, recorder):
    alice, bob = call(recorder, sip)
    alice.remove_audio()
    update = recorder.wait("SCSessionGotStreamUpdate", sender=bob, predicate=lambda n: n.data.streams == [])
    assert update and not bob.has_audio and not alice.has_audio
    reinvite_answered(recorder, alice, 1)

    alice.add_audio()
    assert recorder.wait("SCSessionGotStreamProposal", sender=alice).data.proposer == "local"
    proposal = recorder.wait("SCSessionGotStreamProposal", sender=bob)
    assert proposal.data.proposer == "remote" and proposal.data.streams == ["audio"]
    assert alice.state == "PROPOSING" and bob.state == "PROPOSED"
    bob.reject_proposal()
    rejected = recorder.wait("SCSessionRejectedStreamProposal", sender=alice)
    assert rejected.data.proposer == "local" and "488" in rejected.data.reason
    assert recorder.wait("SCSessionRejectedStreamProposal", sender=bob).data.proposer == "remote"
    reinvite_answered(recorder, alice, 2)
    recorder.wait_for(lambda: alice.state == bob.state == "ESTABLISHED")
    assert not alice.has_audio

    alice.add_audio()
    recorder.wait("SCSessionGotStreamProposal", sender=bob, count=2)
    bob.accept_proposal(audio=True)
    assert recorder.wait("SCSessionAcceptedStreamProposal", sender=alice).data.proposer == "local"
    assert recorder.wait("SCSessionAcceptedStreamProposal", sender=bob).data.proposer == "remote"
    recorder.wait_for(lambda: alice.state == "ESTABLISHED" and alice.has_audio and bob.has_audio)
    freq, _ = measure(alice, bob, 1200)
    assert abs(freq - 1200) < 10
    hang_up(recorder, alice, bob)


def test_awaitable_connect_and_notification_iterator(sip, recorder):
    async def main():
        alice = Session(LocalAccount("alice"))
        outcome = alice.connect(bob_uri(sip), [], audio=True)
        seen = []

        async def collect():
            async for notification in alice.notifications():
                seen.append(notification.name)

        collector = asyncio.ensure_future(collect())
        bob = (await asyncio.get_running_loop().run_in_executor(None, recorder.wait, "SCSessionNewIncoming")).sender
        await bob.accept(audio=True)
        await outcome
        alice.end()
        await asyncio.wait_for(collector, 10)
        return seen

    seen = asyncio.run(main())
    assert "SCSessionDidStart" in seen and seen[-1] == "SCSessionDidEnd"


def test_awaited_connect_raises_on_failure(sip, recorder):
    alice = Session(LocalAccount("alice"))
    outcome = alice.connect(bob_uri(sip), [], audio=True)
    recorder.wait("SCSessionNewIncoming").sender.reject()
    with pytest.raises(SessionError) as info:
        outcome.wait(10)
    assert info.value.code == 603

