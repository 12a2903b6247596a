"""MSRP file transfer in Sessions between two of our endpoints on loopback (RFC 5547 push)."""

from __future__ import annotations

import hashlib
import os

import pytest

from sipsimple.msrp.filetransfer import file_hash
from sipsimple.notification import NotificationCenter
from sipsimple.session import Session
from sipsimple.streams import msrp_filetransfer as filetransfer_stream
from sipsimple.streams.msrp_filetransfer import MSRPFileTransfer
from tests.local_accounts import LocalAccount, bob_uri
from tests.msrp_helpers import tls_engine

MB = 1024 * 1024


def make_file(path, size):
    with open(path, "wb") as f:
        block = os.urandom(MB)
        for offset in range(0, size, MB):
            f.write(block[: min(MB, size - offset)] if offset else os.urandom(min(MB, size)))
    return path


def sha1_of(path):
    sha = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(MB):
            sha.update(block)
    return sha.digest()


def relay_accounts(kamailio):
    """alice and bob, each reaching MSRP through the Kamailio relay with digest AUTH."""
    relay = kamailio.msrp_relay_uri
    return (LocalAccount("alice", msrp_relay=relay, password=kamailio.users["alice"]),
            LocalAccount("bob", msrp_relay=relay, password=kamailio.users["bob"]))


def accounts_for(request, route):
    if route == "direct":
        return None, None
    return relay_accounts(request.getfixturevalue("kamailio"))


def offer_file(recorder, engine, path, count=1, alice_account=None, bob_account=None):
    alice = Session(alice_account or LocalAccount("alice"))
    alice.connect(bob_uri(engine), [], file=path)
    incoming = recorder.wait("SCSessionNewIncoming", count=count)
    assert incoming.data.streams == ["file-transfer"]
    bob = incoming.sender
    if bob_account is not None:
        bob.account = bob_account
    return alice, bob


def check_relayed(recorder, kamailio):
    """Both file streams went through the relay: each one's own path is the relay, then itself."""
    started = recorder.of("MSRPFileTransferDidStart")
    assert len(started) == 2
    for notification in started:
        path = notification.data.local_path
        assert len(path) == 2 and path[0].port == kamailio.msrp_port


@pytest.mark.parametrize(("size", "route"), [(20 * MB, "direct"), (200 * MB, "direct"), (200 * MB, "relay")])
def test_file_is_transferred_with_the_same_sha1(sip, recorder, tmp_path, size, route, request):
    source = make_file(tmp_path / "big file.bin", size)
    inbox = tmp_path / "inbox"
    alice_account, bob_account = accounts_for(request, route)
    alice, bob = offer_file(recorder, sip, source, alice_account=alice_account, bob_account=bob_account)
    offered = bob.proposed_file
    assert offered.name == "big file.bin" and offered.size == size and offered.hash == file_hash(source)
    assert recorder.wait("SCSessionNewOutgoing", sender=alice).data.streams == ["file-transfer"]
    bob.accept(file_transfer=True, directory=inbox)
    got = recorder.wait("SCSessionGotFile", sender=bob, timeout=60)
    assert got.data.size == size and got.data.hash == file_hash(source)
    assert got.data.file_name == str(inbox / "big file.bin")
    if route == "relay":
        check_relayed(recorder, request.getfixturevalue("kamailio"))
    sent = recorder.wait("SCSessionDidDeliverFile", sender=alice, timeout=30)
    assert sent.data.code == 200 and sent.data.file_name == str(source)
    # the sender ends the session once the file is delivered
    assert recorder.wait("SCSessionDidEnd", sender=alice).data.originator == "local"
    assert recorder.wait("SCSessionDidEnd", sender=bob).data.originator == "remote"
    assert sha1_of(inbox / "big file.bin") == sha1_of(source)
    assert sorted(os.listdir(inbox)) == ["big file.bin"]  # no .part left over
    progress = recorder.of("SCSessionFileTransferProgress", sender=bob)
    assert progress and progress[-1].data.transferred_bytes == progress[-1].data.total_bytes == size
    done = [n.data.transferred_bytes for n in progress]
    assert done == sorted(done)
    assert recorder.of("SCSessionFileTransferProgress", sender=alice)[-1].data.direction == "outgoing"
    os.unlink(source)
    os.unlink(inbox / "big file.bin")


@pytest.mark.parametrize("route", ["direct", "relay"])
def test_cut_transfer_resumes_from_the_received_offset(sip, recorder, tmp_path, monkeypatch, route, request):
    monkeypatch.setattr(filetransfer_stream, "PROGRESS_INTERVAL", 0)  # a notification per chunk
    source = make_file(tmp_path / "resume.bin", 20 * MB)
    inbox = tmp_path / "inbox"
    alice_account, bob_account = accounts_for(request, route)
    alice, bob = offer_file(recorder, sip, source, alice_account=alice_account, bob_account=bob_account)
    cut = []

    def cut_midway(notification):
        # on the middleware loop: once bob has stored 4 MB (his own progress counts stored bytes;
        # alice's 200s may come from the relay), drop his connection under the transfer
        stream = notification.sender
        if stream.direction == "incoming" and notification.data.transferred_bytes >= 4 * MB and not cut:
            cut.append(notification.data.transferred_bytes)
            stream.msrp.connection.abort()

    NotificationCenter().add_observer(cut_midway, name="MSRPFileTransferGotProgress")
    try:
        bob.accept(file_transfer=True, directory=inbox)
        failed = recorder.wait("SCSessionDidNotDeliverFile", sender=alice, timeout=30)
    finally:
        NotificationCenter().discard_observer(cut_midway, name="MSRPFileTransferGotProgress")
    assert failed.data.code == 0 and 0 < failed.data.transferred_bytes <= 20 * MB
    if route == "direct":  # through the relay a chunk's 200 comes from the relay (hop by hop), not from bob
        assert failed.data.transferred_bytes < 20 * MB
    recorder.wait("SCSessionDidEnd", sender=alice)
    recorder.wait("SCSessionDidEnd", sender=bob)
    assert not recorder.of("SCSessionGotFile")
    assert not (inbox / "resume.bin").exists()
    parts = [name for name in os.listdir(inbox) if name.endswith(".part")]
    assert len(parts) == 1
    kept = (inbox / parts[0]).stat().st_size
    assert 4 * MB <= kept < 20 * MB

    alice2, bob2 = offer_file(recorder, sip, source, count=2, alice_account=alice_account, bob_account=bob_account)
    bob2.accept(file_transfer=True, directory=inbox)
    got = recorder.wait("SCSessionGotFile", sender=bob2, timeout=60)
    assert got.data.hash == file_hash(source)
    recorder.wait("SCSessionDidDeliverFile", sender=alice2)
    assert file_hash(inbox / "resume.bin") == file_hash(source)
    assert sorted(os.listdir(inbox)) == ["resume.bin"]
    # only the rest went over the second time
    first = recorder.of("SCSessionFileTransferProgress", sender=alice2)[0].data.transferred_bytes
    assert first >= kept
    recorder.wait("SCSessionDidEnd", sender=bob2)


def test_hash_mismatch_fails_and_leaves_no_file(sip, recorder, tmp_path):
    source = make_file(tmp_path / "changed.bin", 2 * MB)
    inbox = tmp_path / "inbox"
    alice, bob = offer_file(recorder, sip, source)
    # the file changes (same size) after its hash went into the offer
    source.write_bytes(os.urandom(2 * MB))
    bob.accept(file_transfer=True, directory=inbox)
    failed = recorder.wait("MSRPFileTransferDidFail", predicate=lambda n: n.sender.direction == "incoming")
    assert "hash mismatch" in failed.data.reason
    not_delivered = recorder.wait("SCSessionDidNotDeliverFile", sender=alice)
    assert not_delivered.data.code == 400, not_delivered.data.reason
    recorder.wait("SCSessionDidEnd", sender=alice)
    recorder.wait("SCSessionDidEnd", sender=bob)
    assert os.listdir(inbox) == []


def test_refused_file_and_bad_arguments(sip, recorder, tmp_path):
    source = make_file(tmp_path / "small.txt", 1000)
    alice, bob = offer_file(recorder, sip, source)
    with pytest.raises(ValueError):
        bob.accept(chat=True)
    bob.reject()
    assert recorder.wait("SCSessionDidFail", sender=alice).data.code == 603
    with pytest.raises(FileNotFoundError):
        Session(LocalAccount("alice")).connect(bob_uri(sip), [], file=tmp_path / "missing")
    with pytest.raises(ValueError):
        MSRPFileTransfer(LocalAccount("x"))


def test_file_over_tls(recorder, tmp_path):
    source = make_file(tmp_path / "secret.bin", 3 * MB)
    inbox = tmp_path / "inbox"
    with tls_engine(tmp_path / "tls") as engine:
        account = LocalAccount("alice")
        account.msrp_use_tls = True
        alice = Session(account)
        alice.connect(bob_uri(engine), [], file=source)
        sending = alice.file_transfer
        bob = recorder.wait("SCSessionNewIncoming").sender
        bob.accept(file_transfer=True, directory=inbox)
        got = recorder.wait("SCSessionGotFile", sender=bob, timeout=30)
        assert got.data.hash == file_hash(source) and sha1_of(inbox / "secret.bin") == sha1_of(source)
        assert recorder.wait("SCSessionDidDeliverFile", sender=alice).data.code == 200
        assert sending.local_media.transport == "TCP/TLS/MSRP"
        assert str(sending.remote_path[-1]).startswith("msrps://")
        recorder.wait("SCSessionDidEnd", sender=alice)
        recorder.wait("SCSessionDidEnd", sender=bob)
