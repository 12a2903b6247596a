"""Registration and MESSAGE against Kamailio (registrar, proxy, digest auth) over UDP, TCP and TLS."""

import socket

import pytest

from sipsimple.core import (
    SIPURI,
    Credentials,
    Engine,
    FromHeader,
    Message,
    Registration,
    Route,
    SIPCoreInvalidStateError,
    ToHeader,
)

TRANSPORTS = ["udp", "tcp", "tls"]


def _route(kamailio, transport):
    return Route(kamailio.host, kamailio.tls_port if transport == "tls" else kamailio.port, transport)


@pytest.fixture
def tls_engine(kamailio):
    """An Engine that checks Kamailio's certificate against its CA."""
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp", "tcp", "tls"), tls_ca_file=str(kamailio.ca_file))
    try:
        yield engine
    finally:
        engine.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_register_and_unregister(kamailio, tls_engine, recorder, transport):
    reg = Registration(SIPURI(kamailio.domain, user="alice"), Credentials("alice", "alicepw"), duration=120,
                       route=_route(kamailio, transport), display_name="Alice")
    reg.register()
    ok = recorder.wait("SCRegistrationDidSucceed", sender=reg)
    assert ok.data.code == 200 and ok.data.expires == 120
    assert ok.data.contact_header.uri.port == (tls_engine.tls_port if transport == "tls" else tls_engine.udp_port)
    assert ok.data.contact_header in ok.data.contact_header_list
    assert reg.is_registered
    with pytest.raises(SIPCoreInvalidStateError):
        reg.register()
    reg.end()
    recorder.wait("SCRegistrationWillEnd", sender=reg)
    ended = recorder.wait("SCRegistrationDidEnd", sender=reg)
    assert ended.data.code == 200 and reg.state == "unregistered"


def test_wrong_password_fails_with_code_and_retries(kamailio, engine, recorder):
    reg = Registration(SIPURI(kamailio.domain, user="bob"), Credentials("bob", "wrong"), duration=60,
                       route=_route(kamailio, "udp"), retry_interval=0.5)
    reg.register()
    first = recorder.wait("SCRegistrationDidFail", sender=reg)
    assert first.data.code == 401 and first.data.will_retry_in == 0.5
    second = recorder.wait("SCRegistrationDidFail", sender=reg, count=2)
    assert second.data.will_retry_in == 1.0  # back-off doubles
    reg.end()
    assert recorder.wait("SCRegistrationDidEnd", sender=reg).data.code == 0


def test_short_expiry_is_refreshed(kamailio, engine, recorder):
    reg = Registration(SIPURI(kamailio.domain, user="carol"), Credentials("carol", "carolpw"), duration=10,
                       route=_route(kamailio, "udp"))
    reg.register()
    recorder.wait("SCRegistrationDidSucceed", sender=reg)
    refreshed = recorder.wait("SCRegistrationDidSucceed", sender=reg, count=2, timeout=15)
    assert refreshed.data.expires == 10
    reg.end()
    recorder.wait("SCRegistrationDidEnd", sender=reg)


def test_dead_registrar_fails_with_retry_not_hang(engine, recorder):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    reg = Registration(SIPURI("127.0.0.1", user="alice"), Credentials("alice", "x"),
                       route=Route("127.0.0.1", dead, "tcp"), retry_interval=30)
    reg.register()
    failed = recorder.wait("SCRegistrationDidFail", sender=reg, timeout=40)
    assert failed.data.code >= 400 and failed.data.will_retry_in == 30
    reg.end()
    recorder.wait("SCRegistrationDidEnd", sender=reg)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_message_alice_to_bob_through_kamailio(kamailio, tls_engine, recorder, transport):
    route = _route(kamailio, transport)
    bob = Registration(SIPURI(kamailio.domain, user="bob"), Credentials("bob", "bobpw"), route=route)
    bob.register()
    recorder.wait("SCRegistrationDidSucceed", sender=bob)
    message = Message(FromHeader(SIPURI(kamailio.domain, user="alice"), "Alice"),
                      ToHeader(SIPURI(kamailio.domain, user="bob")), f"hello over {transport}",
                      credentials=Credentials("alice", "alicepw"), route=route)
    message.send()
    assert recorder.wait("SCMessageDidSucceed", sender=message).data.code == 200
    got = recorder.wait("SCEngineGotMessage")
    assert got.data.body == f"hello over {transport}".encode()
    assert got.data.from_header.uri.user == "alice" and got.data.to_header.uri.user == "bob"
    bob.end()
    recorder.wait("SCRegistrationDidEnd", sender=bob)


def test_message_with_wrong_credentials_fails(kamailio, engine, recorder):
    message = Message(SIPURI(kamailio.domain, user="alice"), SIPURI(kamailio.domain, user="bob"), "x",
                      credentials=Credentials("alice", "nope"), route=_route(kamailio, "udp"))
    message.send()
    assert recorder.wait("SCMessageDidFail", sender=message).data.code == 407


def test_message_to_unknown_user_fails_404(kamailio, engine, recorder):
    message = Message(SIPURI(kamailio.domain, user="alice"), SIPURI(kamailio.domain, user="nobody"), "x",
                      credentials=Credentials("alice", "alicepw"), route=_route(kamailio, "udp"))
    message.send()
    assert recorder.wait("SCMessageDidFail", sender=message).data.code == 404


def test_tls_with_unknown_ca_is_refused(kamailio, recorder):
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp", "tls"))  # no CA: Kamailio's cert cannot be verified
    try:
        reg = Registration(SIPURI(kamailio.domain, user="alice"), Credentials("alice", "alicepw"),
                           route=_route(kamailio, "tls"), retry_interval=60)
        reg.register()
        failed = recorder.wait("SCRegistrationDidFail", sender=reg, timeout=40)
        # the handshake fails, Sofia gives up on the request (408/5xx): never a success, never a hang
        assert failed.data.code >= 400 and not reg.is_registered
        reg.end()
    finally:
        engine.stop()
