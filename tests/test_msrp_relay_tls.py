"""MSRP through the Kamailio MSRP relay over TLS (RFC 4976 with msrps:): AUTH, Use-Path, chat and a file.

The account's relay is an ``msrps:`` URI (``kamailio.msrps_relay_uri``); the relay's
certificate is checked against the Engine's ``tls_ca_file`` like any TLS peer of an MSRP
stream. Kamailio answers AUTH on its TLS socket with ``Use-Path: msrps://host:port/id;tcp``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sipsimple.core import Engine
from sipsimple.msrp.filetransfer import file_hash
from sipsimple.session import Session, SessionManager
from tests.local_accounts import LocalAccount, bob_uri
from tests.msrp_helpers import make_tls_identity

MB = 1024 * 1024


@contextlib.contextmanager
def relay_tls_engine(kamailio, directory: Path, *, trust_relay: bool = True) -> Iterator[Engine]:
    """The Engine (UDP, SessionManager) trusting the relay's certificate (or an unrelated one).

    It also has a certificate of its own, for an endpoint that takes MSRP over TLS directly.
    """
    own, own_cert = make_tls_identity(directory / "own")
    ca_file = kamailio.ca_file if trust_relay else own_cert
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), tls_certificate=str(own), tls_ca_file=str(ca_file))
    SessionManager()
    try:
        yield engine
    finally:
        engine.stop()


def relayed(kamailio, user: str, password: str | None = None) -> LocalAccount:
    return LocalAccount(user, msrp_relay=kamailio.msrps_relay_uri, password=password or kamailio.users[user])


def delivered(recorder, session, message_id, timeout: float = 10.0):
    return recorder.wait("SCSessionDidDeliverMessage", sender=session, timeout=timeout,
                         predicate=lambda n: n.data.message_id == message_id)


def assert_tls_to_relay(kamailio, stream) -> None:
    """The stream AUTHed at the relay's TLS socket, which checked out against the CA file."""
    relay_hop, ours = stream.local_path
    assert str(relay_hop).startswith(f"msrps://{kamailio.host}:{kamailio.msrps_port}/")
    assert relay_hop.session_id and ours.use_tls
    assert stream.local_media.transport == "TCP/TLS/MSRP"
    ssl_object = stream.msrp.connection.transport.get_extra_info("ssl_object")
    assert ssl_object is not None and ssl_object.version().startswith("TLS")
    assert ssl_object.getpeercert()["subjectAltName"] == (("IP Address", kamailio.host),)


def test_chat_both_ways_through_the_tls_relay(recorder, tmp_path, kamailio):
    with relay_tls_engine(kamailio, tmp_path) as engine:
        alice = Session(relayed(kamailio, "alice"))
        alice.connect(bob_uri(engine), [], chat=True)
        early = alice.send_message("sent while calling")
        bob = recorder.wait("SCSessionNewIncoming").sender
        bob.account = relayed(kamailio, "bob")
        bob.accept(chat=True)
        for session in (alice, bob):
            recorder.wait("MSRPChatDidStart", sender=session.chat_transport)
            assert_tls_to_relay(kamailio, session.chat_transport)
        # alice's messages go alice -> relay (her session) -> relay (bob's) -> bob, all over TLS
        assert alice.chat_transport.remote_path == bob.chat_transport.local_path

        assert delivered(recorder, alice, early).data.code == 200
        assert recorder.wait("SCSessionGotMessage", sender=bob).data.content == "sent while calling"
        report = delivered(recorder, bob, bob.send_message("and back"))
        assert report.data.code == 200 and report.data.message.method == "REPORT"
        assert recorder.wait("SCSessionGotMessage", sender=alice).data.content == "and back"
        ids = [alice.send_message(f"line {i}") for i in range(20)]
        for message_id in ids:
            delivered(recorder, alice, message_id)
        body = "x" * 100_000  # many relay-sized (8 KiB) chunks
        delivered(recorder, bob, bob.send_message(body))
        recorder.wait("SCSessionGotMessage", sender=bob, count=21)
        assert [n.data.content for n in recorder.of("SCSessionGotMessage", sender=bob)][1:] == \
            [f"line {i}" for i in range(20)]
        assert recorder.wait("SCSessionGotMessage", sender=alice, count=2).data.content == body
        alice.end()
        recorder.wait("SCSessionDidEnd", sender=alice)
        recorder.wait("SCSessionDidEnd", sender=bob)
        assert not recorder.of("MSRPChatDidFail")


@pytest.mark.parametrize("bob_behind_relay", [False, True], ids=["bob-direct", "bob-relayed"])
def test_file_from_behind_the_tls_relay(recorder, tmp_path, kamailio, bob_behind_relay):
    source = tmp_path / "report.bin"
    source.write_bytes(os.urandom(4 * MB))
    inbox = tmp_path / "inbox"
    with relay_tls_engine(kamailio, tmp_path) as engine:
        alice = Session(relayed(kamailio, "alice"))
        alice.connect(bob_uri(engine), [], file=source)
        sending = alice.file_transfer
        bob = recorder.wait("SCSessionNewIncoming").sender
        # without a relay bob answers alice's msrps: offer on a TLS listener of his own, to which
        # the relay connects (with his: relay to relay, Kamailio to itself over TLS)
        if bob_behind_relay:
            bob.account = relayed(kamailio, "bob")
        bob.accept(file_transfer=True, directory=inbox)
        got = recorder.wait("SCSessionGotFile", sender=bob, timeout=30)
        assert recorder.wait("SCSessionDidDeliverFile", sender=alice).data.code == 200
        assert got.data.hash == file_hash(source)
        assert hashlib.sha1((inbox / "report.bin").read_bytes()).digest() == \
            hashlib.sha1(source.read_bytes()).digest()
        assert_tls_to_relay(kamailio, sending)
        assert len(sending.remote_path) == (2 if bob_behind_relay else 1) and sending.remote_path[-1].use_tls
        if bob_behind_relay:
            receiving = recorder.wait("MSRPFileTransferDidStart", predicate=lambda n: n.sender.direction == "incoming")
            assert_tls_to_relay(kamailio, receiving.sender)
        recorder.wait("SCSessionDidEnd", sender=alice)
        recorder.wait("SCSessionDidEnd", sender=bob)


def test_wrong_relay_password_over_tls_fails_clearly(recorder, tmp_path, kamailio):
    with relay_tls_engine(kamailio, tmp_path) as engine:
        alice = Session(relayed(kamailio, "alice", password="wrong"))
        alice.connect(bob_uri(engine), [], chat=True)
        failed = recorder.wait("MSRPChatDidFail", sender=alice.chat_transport)
        assert "401" in failed.data.reason or "403" in failed.data.reason, failed.data.reason
        session_failed = recorder.wait("SCSessionDidFail", sender=alice)
        assert session_failed.data.reason
        recorder.wait("SCSessionDidEnd", sender=alice)
        assert not recorder.of("SCSessionNewIncoming")


def test_untrusted_relay_certificate_fails_clearly(recorder, tmp_path, kamailio):
    with relay_tls_engine(kamailio, tmp_path, trust_relay=False) as engine:
        alice = Session(relayed(kamailio, "alice"))
        alice.connect(bob_uri(engine), [], chat=True)
        failed = recorder.wait("MSRPChatDidFail", sender=alice.chat_transport)
        reason = failed.data.reason
        assert f"TLS certificate of {kamailio.host}:{kamailio.msrps_port} not accepted" in reason, reason
        assert "self-signed" in reason
        recorder.wait("SCSessionDidFail", sender=alice)
        recorder.wait("SCSessionDidEnd", sender=alice)
        assert not recorder.of("SCSessionNewIncoming")
