"""``sipsimple chat``, ``send-file`` and ``receive-files`` as subprocesses, peer to peer and through Kamailio.

The listening side's readiness and address come from its ``listening on sip:...`` line on stderr.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.cli_helpers import TIMEOUT, CLIProcess, proxy_args, run_cli

P2P = ["--local-ip", "127.0.0.1"]


def test_chat_send_between_two_processes():
    with CLIProcess("chat", "--listen", "--count", "1", "--account", "bob@127.0.0.1", *P2P) as bob:
        address = bob.address("stderr")
        result = run_cli("chat", address, "--send", "hello over msrp", "--account", "alice@127.0.0.1", *P2P)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "delivered: 200 OK" in result.stderr
        assert bob.next_line() == "sip:alice@127.0.0.1: hello over msrp"
        assert bob.process.wait(TIMEOUT) == 0


def test_chat_interactive_lines_in_and_out():
    with CLIProcess("chat", "--listen", "--count", "2", "--account", "bob@127.0.0.1", *P2P) as bob:
        address = bob.address("stderr")
        result = run_cli("chat", address, "--account", "alice@127.0.0.1", *P2P, stdin="first line\nsecond line\n")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert [bob.next_line(), bob.next_line()] == ["sip:alice@127.0.0.1: first line", "sip:alice@127.0.0.1: second line"]
        assert bob.process.wait(TIMEOUT) == 0
        assert result.stderr.count("delivered: 200 OK") == 2


def test_chat_send_through_kamailio_and_its_msrp_relay(kamailio):
    relay = ["--msrp-relay", kamailio.msrp_relay_uri]
    with CLIProcess("chat", "--listen", "--count", "1", *proxy_args(kamailio, "bob"), *relay) as bob:
        bob.address("stderr")
        result = run_cli("chat", f"bob@{kamailio.domain}", "--send", "relayed", *proxy_args(kamailio, "alice"), *relay)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert bob.next_line() == f"sip:alice@{kamailio.domain}: relayed"
        assert bob.process.wait(TIMEOUT) == 0


def test_chat_to_nobody_fails():
    result = run_cli("chat", "sip:nobody@127.0.0.1:9", "--send", "x", "--timeout", "5", *P2P, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)


def test_chat_usage_errors():
    assert run_cli("chat").returncode == 2
    assert run_cli("chat", "--listen", "bob@example.com").returncode == 2
    assert run_cli("chat", "bob@example.com", "--msrp-relay", "http://x").returncode == 2


def test_send_file_to_receive_files_with_the_hash_checked(tmp_path: Path):
    source = tmp_path / "photo.jpg"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    inbox = tmp_path / "inbox"
    with CLIProcess("receive-files", "--dir", str(inbox), "--count", "1", *P2P) as receiver:
        address = receiver.address("stderr")
        result = run_cli("send-file", address, str(source), *P2P)
        assert result.returncode == 0, (result.stdout, result.stderr)
        digest = hashlib.sha1(source.read_bytes()).hexdigest().upper()
        expected_hash = "sha-1:" + ":".join(digest[i:i + 2] for i in range(0, 40, 2))
        assert result.stdout.strip() == f"delivered {source} ({source.stat().st_size} bytes, {expected_hash})"
        assert receiver.next_line() == f"received {inbox / 'photo.jpg'} ({source.stat().st_size} bytes, {expected_hash})"
        assert receiver.finish()[0] == 0
        assert any(line.startswith("incoming file 'photo.jpg'") for line in receiver.stderr_lines)
        assert "progress: 100%" in result.stderr
    assert (inbox / "photo.jpg").read_bytes() == source.read_bytes()
    assert os.listdir(inbox) == ["photo.jpg"]


def test_send_file_usage_errors(tmp_path: Path):
    assert run_cli("send-file", "bob@127.0.0.1", str(tmp_path / "missing")).returncode == 2
    assert run_cli("receive-files").returncode == 2
