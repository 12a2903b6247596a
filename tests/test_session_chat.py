"""MSRP chat in Sessions between two of our endpoints on loopback (and through the Kamailio MSRP relay)."""

from __future__ import annotations

import os

import pytest

from sipsimple.core import SIPURI
from sipsimple.middleware import MiddlewareLoop
from sipsimple.msrp.cpim import CPIMIdentity
from sipsimple.session import Session, SessionStateError
from sipsimple.streams.msrp_chat import MSRPChat
from tests.local_accounts import LocalAccount, bob_uri
from tests.msrp_helpers import tls_engine


def chat_pair(recorder, engine, alice_account=None, bob_account=None, audio=False, early=None, count=1):
    """alice calls bob with chat (and audio); bob accepts; both wait for their chat to be connected."""
    alice = Session(alice_account or LocalAccount("alice"))
    alice.connect(bob_uri(engine), [], audio=audio, chat=True)
    early_id = alice.send_message(early) if early is not None else None
    incoming = recorder.wait("SCSessionNewIncoming", count=count)
    bob = incoming.sender
    assert incoming.data.streams == (["audio", "chat"] if audio else ["chat"])
    if bob_account is not None:
        bob.account = bob_account
    bob.accept(audio=audio, chat=True)
    recorder.wait("SCSessionDidStart", sender=alice)
    recorder.wait("SCSessionDidStart", sender=bob)
    recorder.wait("MSRPChatDidStart", sender=alice.chat_transport)
    recorder.wait("MSRPChatDidStart", sender=bob.chat_transport)
    return alice, bob, early_id


def hang_up(recorder, alice, bob):
    alice.end()
    recorder.wait("SCSessionDidEnd", sender=alice)
    recorder.wait("SCSessionDidEnd", sender=bob)


def delivered(recorder, session, message_id, timeout=10.0):
    return recorder.wait("SCSessionDidDeliverMessage", sender=session, timeout=timeout,
                         predicate=lambda n: n.data.message_id == message_id)


def test_chat_both_ways_with_delivery_reports(sip, recorder):
    alice, bob, _ = chat_pair(recorder, sip)
    assert alice.has_chat and bob.has_chat and not alice.has_audio
    chat = alice.chat_transport
    assert isinstance(chat, MSRPChat)
    assert recorder.wait("SCSessionNewOutgoing", sender=alice).data.streams == ["chat"]
    assert recorder.wait("SCSessionGotStreamUpdate", sender=bob).data.streams == ["chat"]
    first = alice.send_message("hello bob")
    report = delivered(recorder, alice, first)
    assert report.data.code == 200 and report.data.message.method == "REPORT"
    got = recorder.wait("SCSessionGotMessage", sender=bob)
    assert got.data.content == "hello bob" and got.data.content_type == "text/plain"
    headers = got.data.cpim_headers
    assert headers["From"] == CPIMIdentity(str(alice.local_uri), "Alice")
    assert headers["To"] == [CPIMIdentity(str(alice.remote_uri))]
    assert headers["DateTime"].tzinfo is not None
    assert got.data.message.method == "SEND" and got.data.message.content_type == "message/cpim"

    other = SIPURI("example.com", user="carol")
    back = bob.send_message("<b>hi</b>", "text/html", to_uri=other)
    delivered(recorder, bob, back)
    got = recorder.wait("SCSessionGotMessage", sender=alice)
    assert got.data.content == "<b>hi</b>" and got.data.content_type == "text/html"
    assert got.data.cpim_headers["To"] == [CPIMIdentity(str(other))]

    ids = [alice.send_message(f"line {i}") for i in range(20)]
    for message_id in ids:
        delivered(recorder, alice, message_id)
    recorder.wait("SCSessionGotMessage", sender=bob, count=21)
    assert [n.data.content for n in recorder.of("SCSessionGotMessage", sender=bob)][1:] == \
        [f"line {i}" for i in range(20)]
    assert len(set(ids)) == 20

    bob.send_composing_indication("active", refresh=60)
    composing = recorder.wait("SCSessionGotComposingIndication", sender=alice)
    assert composing.data.state == "active" and composing.data.refresh == 60
    hang_up(recorder, alice, bob)
    recorder.wait("MSRPChatDidEnd", sender=chat)
    names = [n.name for n in recorder.notifications if n.sender is chat]
    assert names[0] == "MSRPChatDidInitialize" and names[-2:] == ["MSRPChatWillEnd", "MSRPChatDidEnd"]
    assert not alice.has_chat and alice.chat_transport is None


def test_message_sent_before_the_stream_is_up_is_delivered(sip, recorder):
    alice, bob, early_id = chat_pair(recorder, sip, early="sent while calling")
    assert delivered(recorder, alice, early_id).data.code == 200
    assert recorder.wait("SCSessionGotMessage", sender=bob).data.content == "sent while calling"
    hang_up(recorder, alice, bob)


def test_one_megabyte_message_is_chunked_and_reassembled(sip, recorder):
    alice, bob, _ = chat_pair(recorder, sip)
    body = os.urandom(512 * 1024).hex()  # 1 MiB of text
    message_id = alice.send_message(body)
    delivered(recorder, alice, message_id, timeout=30)
    got = recorder.wait("SCSessionGotMessage", sender=bob)
    assert got.data.content == body
    assert alice.chat_transport.msrp.chunk_size < len(body) // 100  # it really went in many chunks
    hang_up(recorder, alice, bob)


def test_chat_with_audio_and_remove_chat(sip, recorder):
    alice, bob, _ = chat_pair(recorder, sip, audio=True)
    assert alice.has_audio and alice.has_chat and bob.has_audio
    message_id = bob.send_message("with audio")
    delivered(recorder, bob, message_id)
    alice.remove_chat()
    recorder.wait("SCSessionGotStreamUpdate", sender=bob, predicate=lambda n: n.data.streams == ["audio"])
    recorder.wait_for(lambda: not bob.has_chat and alice._invitation.sub_state == "normal")
    assert alice.has_audio and bob.has_audio
    hang_up(recorder, alice, bob)


def test_add_chat_to_audio_session_accepted_and_rejected(sip, recorder):
    alice = Session(LocalAccount("alice"))
    alice.connect(bob_uri(sip), [], audio=True)
    bob = recorder.wait("SCSessionNewIncoming").sender
    bob.accept(audio=True)
    recorder.wait("SCSessionDidStart", sender=alice)
    recorder.wait("SCSessionDidStart", sender=bob)
    assert not alice.has_chat

    alice.add_chat()
    assert alice.state == "PROPOSING"
    proposal = recorder.wait("SCSessionGotStreamProposal", sender=bob)
    assert proposal.data.proposer == "remote" and proposal.data.streams == ["chat"]
    bob.reject_proposal()
    rejected = recorder.wait("SCSessionRejectedStreamProposal", sender=alice)
    assert "488" in rejected.data.reason
    recorder.wait_for(lambda: alice.state == "ESTABLISHED" and alice._invitation.sub_state == "normal")
    assert not alice.has_chat and alice.has_audio

    alice.add_chat()
    recorder.wait("SCSessionGotStreamProposal", sender=bob, count=2)
    bob.accept_proposal(chat=True)
    assert recorder.wait("SCSessionAcceptedStreamProposal", sender=alice).data.proposer == "local"
    assert recorder.wait("SCSessionAcceptedStreamProposal", sender=bob).data.proposer == "remote"
    update = recorder.wait("SCSessionGotStreamUpdate", sender=alice, count=2)
    assert update.data.streams == ["audio", "chat"]
    message_id = alice.send_message("added later")
    delivered(recorder, alice, message_id)
    assert recorder.wait("SCSessionGotMessage", sender=bob).data.content == "added later"
    assert alice.has_audio and bob.has_audio
    hang_up(recorder, alice, bob)


def test_chat_through_the_relay_with_auth(sip, recorder, kamailio):
    relay = kamailio.msrp_relay_uri
    alice_account = LocalAccount("alice", msrp_relay=relay, password=kamailio.users["alice"])
    bob_account = LocalAccount("bob", msrp_relay=relay, password=kamailio.users["bob"])
    alice, bob, early_id = chat_pair(recorder, sip, alice_account, bob_account, early="via the relay")
    for session in (alice, bob):
        path = session.chat_transport.local_path
        assert len(path) == 2 and path[0].port == kamailio.msrp_port
    delivered(recorder, alice, early_id)
    assert recorder.wait("SCSessionGotMessage", sender=bob).data.content == "via the relay"
    body = "x" * 100_000  # many relay-sized chunks
    delivered(recorder, bob, bob.send_message(body))
    assert recorder.wait("SCSessionGotMessage", sender=alice).data.content == body
    hang_up(recorder, alice, bob)


def test_relay_auth_failure_fails_the_session(sip, recorder, kamailio):
    alice = Session(LocalAccount("alice", msrp_relay=kamailio.msrp_relay_uri, password="wrong"))
    alice.connect(bob_uri(sip), [], chat=True)
    failed = recorder.wait("SCSessionDidFail", sender=alice)
    assert failed.data.code == 0 and ("401" in failed.data.reason or "403" in failed.data.reason)
    recorder.wait("SCSessionDidEnd", sender=alice)
    assert not recorder.of("SCSessionNewIncoming")


def test_garbage_from_the_peer_closes_its_stream_only(sip, recorder):
    alice, bob, _ = chat_pair(recorder, sip)
    carol, dave, _ = chat_pair(recorder, sip, LocalAccount("carol"), count=2)
    bob_connection = bob.chat_transport.msrp.connection
    sent = []

    def send_then_garbage():
        # in one loop callback: the message is on its way when bob's side answers with garbage,
        # and alice's session cannot have ended before the message was accepted for sending
        sent.append(alice.send_message("into the void"))
        bob_connection.transport.write(b"THIS IS NOT MSRP\r\n\r\n")

    MiddlewareLoop().run_sync(send_then_garbage)
    message_id = sent[0]
    failed = recorder.wait("MSRPChatDidFail", sender=alice.chat_transport)
    assert failed.data.reason
    not_delivered = recorder.wait("SCSessionDidNotDeliverMessage", sender=alice)
    assert not_delivered.data.message_id == message_id
    # alice's session had nothing but the chat: it ends, cleanly
    recorder.wait("SCSessionDidEnd", sender=alice)
    recorder.wait("SCSessionDidEnd", sender=bob)
    assert not recorder.of("SCSessionDidDeliverMessage", sender=alice)
    # the other session goes on
    delivered(recorder, carol, carol.send_message("still here"))
    assert recorder.wait("SCSessionGotMessage", sender=dave).data.content == "still here"
    hang_up(recorder, carol, dave)


def test_chat_refused_in_the_answer_leaves_audio(sip, recorder):
    alice = Session(LocalAccount("alice"))
    alice.connect(bob_uri(sip), [], audio=True, chat=True)
    bob = recorder.wait("SCSessionNewIncoming").sender
    bob.accept(audio=True)
    recorder.wait("SCSessionDidStart", sender=alice)
    assert recorder.wait("SCSessionGotStreamUpdate", sender=alice).data.streams == ["audio"]
    assert alice.has_audio and not alice.has_chat and not bob.has_chat
    with pytest.raises(SessionStateError):
        alice.send_message("nobody listens")
    hang_up(recorder, alice, bob)


def tls_account(user):
    account = LocalAccount(user)
    account.msrp_use_tls = True  # what Account.msrp_use_tls reads from the setting msrp.use_tls
    return account


def test_chat_over_tls_between_two_endpoints(recorder, tmp_path):
    with tls_engine(tmp_path) as engine:
        # only alice asks for TLS: bob's answer follows her offer
        alice, bob, _ = chat_pair(recorder, engine, alice_account=tls_account("alice"))
        ours, theirs = alice.chat_transport, bob.chat_transport
        assert ours.local_media.transport == theirs.local_media.transport == "TCP/TLS/MSRP"
        assert [str(uri)[:8] for uri in ours.local_path + ours.remote_path] == ["msrps://"] * 2
        # the bytes really go through TLS, with bob's certificate checked against the CA file
        ssl_object = ours.msrp.connection.transport.get_extra_info("ssl_object")
        assert ssl_object is not None and ssl_object.version().startswith("TLS")
        assert ssl_object.getpeercert()["subjectAltName"] == (("IP Address", "127.0.0.1"),)
        delivered(recorder, alice, alice.send_message("hello over TLS"))
        assert recorder.wait("SCSessionGotMessage", sender=bob).data.content == "hello over TLS"
        delivered(recorder, bob, bob.send_message("and back"))
        assert recorder.wait("SCSessionGotMessage", sender=alice).data.content == "and back"
        hang_up(recorder, alice, bob)


def test_chat_over_tls_with_an_untrusted_certificate_fails_clearly(recorder, tmp_path):
    with tls_engine(tmp_path, trusted=False) as engine:
        alice = Session(tls_account("alice"))
        alice.connect(bob_uri(engine), [], chat=True)
        chat = alice.chat_transport
        bob = recorder.wait("SCSessionNewIncoming").sender
        bob.accept(chat=True)
        failed = recorder.wait("MSRPChatDidFail", sender=chat)
        assert "TLS certificate of 127.0.0.1:" in failed.data.reason, failed.data.reason
        assert "not accepted" in failed.data.reason and "self-signed" in failed.data.reason
        # alice's session had nothing but the chat: it ends, and bob's with it
        recorder.wait("SCSessionDidEnd", sender=alice)
        recorder.wait("SCSessionDidEnd", sender=bob)
        assert not recorder.of("MSRPChatDidStart")
