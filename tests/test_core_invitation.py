"""Invitation: INVITE dialogs between our own endpoints, with sipp, and through Kamailio with auth."""

import pytest

from sipsimple.core import (
    SIPURI,
    Credentials,
    FromHeader,
    Invitation,
    Registration,
    Route,
    SDPAttribute,
    SDPConnection,
    SDPMediaStream,
    SDPSession,
    SIPCoreInvalidStateError,
    ToHeader,
)
from tests.peers.sipp import SippProcess


def audio_sdp(port=4000, direction="sendrecv", version=0):
    stream = SDPMediaStream("audio", port, "RTP/AVP", ["0", "101"],
                            attributes=[SDPAttribute("rtpmap", "0 PCMU/8000"),
                                        SDPAttribute("rtpmap", "101 telephone-event/8000"),
                                        SDPAttribute(direction)])
    return SDPSession("127.0.0.1", id=1, version=version, connection=SDPConnection("127.0.0.1"), media=[stream])


def states(recorder, invitation):
    return [n.data.state for n in recorder.of("SCInvitationChangedState", sender=invitation)]


def incoming(recorder, count=1):
    return recorder.wait("SCInvitationChangedState", predicate=lambda n: n.data.state == "incoming", count=count).sender


def call_self(engine, user="bob"):
    return Invitation(FromHeader(SIPURI("127.0.0.1", user="alice"), "Alice"),
                      ToHeader(SIPURI("127.0.0.1", user=user, port=engine.udp_port)))


def test_call_answer_reinvite_and_bye(engine, recorder):
    caller = call_self(engine)
    caller.send_invite(audio_sdp(4000))
    callee = incoming(recorder)
    assert callee.direction == "incoming" and callee.from_header.display_name == "Alice"
    assert callee.remote_sdp.media[0].port == 4000
    with pytest.raises(ValueError):
        callee.send_response(200)  # an offer needs an answer
    callee.send_response(180)
    recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "early")
    callee.send_response(200, sdp=audio_sdp(5000))
    connecting = recorder.wait("SCInvitationChangedState", sender=caller,
                               predicate=lambda n: n.data.state == "connecting")
    assert connecting.data.code == 200 and connecting.data.sdp.media[0].port == 5000
    recorder.wait_for(lambda: caller.state == callee.state == "connected")
    assert caller.remote_user_agent and caller.remote_user_agent.startswith("sipsimple")

    caller.send_reinvite(audio_sdp(4000, "sendonly", version=1))
    with pytest.raises(SIPCoreInvalidStateError):
        caller.send_reinvite(audio_sdp(4000, "sendonly", version=2))
    proposal = recorder.wait("SCInvitationChangedState", sender=callee,
                             predicate=lambda n: n.data.sub_state == "received_proposal")
    assert proposal.data.sdp.media[0].direction == "sendonly"
    callee.send_response(200, sdp=audio_sdp(5000, "recvonly", version=1))
    answered = recorder.wait("SCInvitationChangedState", sender=caller,
                             predicate=lambda n: n.data.prev_sub_state == "sending_proposal")
    assert answered.data.code == 200 and answered.data.sdp.media[0].direction == "recvonly"

    callee.end()
    ended = recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "disconnected")
    assert ended.data.originator == "remote"
    recorder.wait_for(lambda: callee.state == "disconnected")
    assert states(recorder, caller) == ["calling", "early", "connecting", "connected", "connected", "connected",
                                        "disconnected"]


def test_cancel_while_ringing(engine, recorder):
    caller = call_self(engine)
    caller.send_invite(audio_sdp())
    callee = incoming(recorder)
    callee.send_response(180)
    recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "early")
    caller.end()
    gone = recorder.wait("SCInvitationChangedState", sender=callee, predicate=lambda n: n.data.state == "disconnected")
    assert gone.data.originator == "remote" and gone.data.code == 487
    mine = recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "disconnected")
    assert mine.data.originator == "local"


@pytest.mark.parametrize("code", [486, 603])
def test_reject(engine, recorder, code):
    caller = call_self(engine)
    caller.send_invite(audio_sdp())
    callee = incoming(recorder)
    callee.send_response(code)
    failed = recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "disconnected")
    assert failed.data.code == code and failed.data.originator == "remote"
    recorder.wait_for(lambda: callee.state == "disconnected")


def test_invite_timeout_cancels(engine, recorder):
    caller = call_self(engine)
    caller.send_invite(audio_sdp(), timeout=0.5)
    incoming(recorder)  # nobody answers it
    failed = recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "disconnected")
    assert failed.data.code == 408 and failed.data.originator == "local"


def test_wrong_state_calls_change_nothing(engine, recorder):
    caller = call_self(engine)
    with pytest.raises(SIPCoreInvalidStateError):
        caller.send_reinvite(audio_sdp())
    with pytest.raises(SIPCoreInvalidStateError):
        caller.send_response(200, sdp=audio_sdp())
    with pytest.raises(ValueError):
        caller.send_response(99)
    assert caller.state == "null" and not recorder.of("SCInvitationChangedState", sender=caller)
    caller.end()  # nothing to end
    assert caller.state == "null"


def test_call_to_sipp_uas(engine, recorder, tmp_path):
    with SippProcess("uas", builtin=True, run_dir=tmp_path, calls=1, timeout=20) as uas:
        caller = Invitation(SIPURI("127.0.0.1", user="alice"), SIPURI("127.0.0.1", user="service", port=uas.local_port))
        caller.send_invite(audio_sdp())
        connected = recorder.wait("SCInvitationChangedState", sender=caller,
                                  predicate=lambda n: n.data.state == "connected")
        assert connected.data.prev_state == "connecting"
        caller.end()
        recorder.wait("SCInvitationChangedState", sender=caller, predicate=lambda n: n.data.state == "disconnected")
        result = uas.wait(20)
    assert result.successful == 1 and result.failed == 0, result.describe()


def test_call_through_kamailio_with_auth(kamailio, engine, recorder):
    route = Route(kamailio.host, kamailio.port, "udp")
    bob = Registration(SIPURI(kamailio.domain, user="bob"), Credentials("bob", "bobpw"), route=route)
    bob.register()
    recorder.wait("SCRegistrationDidSucceed", sender=bob)
    caller = Invitation(FromHeader(SIPURI(kamailio.domain, user="alice")), ToHeader(SIPURI(kamailio.domain, user="bob")),
                        route=route, credentials=Credentials("alice", "alicepw"))
    caller.send_invite(audio_sdp())
    callee = incoming(recorder)
    assert callee.from_header.uri.user == "alice"
    callee.send_response(200, sdp=audio_sdp(6000))
    recorder.wait_for(lambda: caller.state == callee.state == "connected")
    assert caller.remote_sdp.media[0].port == 6000
    caller.end()
    recorder.wait_for(lambda: caller.state == callee.state == "disconnected")
    bob.end()
    recorder.wait("SCRegistrationDidEnd", sender=bob)


def test_engine_stop_ends_calls(recorder):
    from sipsimple.core import Engine

    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",))
    caller = call_self(engine)
    caller.send_invite(audio_sdp())
    callee = incoming(recorder)
    callee.send_response(200, sdp=audio_sdp(5000))
    recorder.wait_for(lambda: caller.state == callee.state == "connected")
    engine.stop()
    assert caller.state == callee.state == "disconnected"

