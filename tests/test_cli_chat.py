"""``sipsimple chat``, ``send-file`` and ``receive-files`` as subprocesses, peer to peer and through Kamailio,
over TCP and TLS (``--msrp-tls``, an ``msrps:`` relay).

The listening side's readiness and address come from its ``listening on sip:...`` line on stderr.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.cli_helpers import TIMEOUT, CLIProcess, assert_one_line_error, configure_tls, proxy_args, run_cli
from tests.msrp_helpers import make_tls_identity
from tests.peers.ports import free_port

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


def test_send_file_over_msrp_tls_with_the_certificate_checked(tmp_path: Path):
    identity, certificate = make_tls_identity(tmp_path / "receiver")  # for 127.0.0.1
    source = tmp_path / "secret.bin"
    source.write_bytes(os.urandom(2 * 1024 * 1024))
    inbox = tmp_path / "inbox"
    with CLIProcess("receive-files", "--dir", str(inbox), "--count", "1", "--tls-certificate", str(identity),
                    *P2P) as receiver:
        address = receiver.address("stderr")
        # the system's CAs do not know the receiver's certificate: refused before a byte is sent
        refused = run_cli("send-file", address, str(source), "--msrp-tls", *P2P)
        assert refused.returncode == 1, (refused.stdout, refused.stderr)
        assert "TLS certificate of 127.0.0.1:" in refused.stdout and "not accepted" in refused.stdout, refused.stdout
        result = run_cli("send-file", address, str(source), "--msrp-tls", "--tls-ca-file", str(certificate), *P2P)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "accepted over TLS" in result.stderr
        assert result.stdout.startswith(f"delivered {source} ({source.stat().st_size} bytes, sha-1:")
        assert receiver.wait_line("received ").startswith(f"received {inbox / 'secret.bin'}")
        assert receiver.finish()[0] == 0
    assert hashlib.sha1((inbox / "secret.bin").read_bytes()).digest() == hashlib.sha1(source.read_bytes()).digest()


def test_receive_files_over_msrp_tls_shows_the_configured_certificate(tmp_path: Path):
    identity, certificate = make_tls_identity(tmp_path / "receiver")  # for 127.0.0.1
    configure_tls(tmp_path / "config", certificate=identity)
    source = tmp_path / "note.txt"
    source.write_bytes(os.urandom(64 * 1024))
    trusting = ["--msrp-tls", "--tls-ca-file", str(certificate), *P2P]  # trusts that certificate alone
    # configured, no --tls-certificate: the listener shows the configured certificate, which the sender checks
    inbox = tmp_path / "inbox"
    with CLIProcess("--config-dir", str(tmp_path / "config"), "receive-files", "--dir", str(inbox), "--count", "1",
                    *P2P) as receiver:
        result = run_cli("send-file", receiver.address("stderr"), str(source), *trusting)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "accepted over TLS" in result.stderr
        assert receiver.wait_line("received ").startswith(f"received {inbox / 'note.txt'}")
        assert receiver.finish()[0] == 0
    assert (inbox / "note.txt").read_bytes() == source.read_bytes()
    # nothing configured: the certificate made for the run, which that CA file does not vouch for
    with CLIProcess("receive-files", "--dir", str(tmp_path / "other"), "--count", "1", *P2P) as receiver:
        refused = run_cli("send-file", receiver.address("stderr"), str(source), *trusting)
        assert refused.returncode == 1, (refused.stdout, refused.stderr)
        assert "TLS certificate of 127.0.0.1:" in refused.stdout and "not accepted" in refused.stdout, refused.stdout


def test_configured_certificate_is_checked_and_the_option_overrides_it(tmp_path: Path):
    config = tmp_path / "config"
    configure_tls(config, certificate=tmp_path / "gone.pem")
    missing = run_cli("--config-dir", str(config), "receive-files", "--dir", str(tmp_path), *P2P)
    assert_one_line_error(missing, "cannot read configured tls.certificate", str(tmp_path / "gone.pem"),
                          str(config / "config.json"))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    configure_tls(config, certificate=not_pem)
    invalid = run_cli("chat", "bob@127.0.0.1", "--send", "x", "--config-dir", str(config), *P2P)
    assert_one_line_error(invalid, "invalid configured tls.certificate", "certificate and its private key")
    # --tls-certificate wins: the configured file is not even read, and the run goes on to its SIP outcome
    identity, _ = make_tls_identity(tmp_path / "own")
    result = run_cli("--config-dir", str(config), "message", f"sip:bob@127.0.0.1:{free_port()}", "x",
                     "--tls-certificate", str(identity), "--timeout", "5", *P2P)
    assert result.returncode == 1, (result.stdout, result.stderr)


def test_chat_over_msrp_tls_with_a_certificate_made_for_the_run():
    # no --tls-certificate: the listener makes a self-signed one, which only a peer not checking accepts
    with CLIProcess("chat", "--listen", "--count", "1", "--account", "bob@127.0.0.1", *P2P) as bob:
        address = bob.address("stderr")
        result = run_cli("chat", address, "--send", "hello over TLS", "--msrp-tls", "--no-verify-tls",
                         "--account", "alice@127.0.0.1", *P2P)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "established over TLS" in result.stderr and "delivered: 200 OK" in result.stderr
        assert bob.next_line() == "sip:alice@127.0.0.1: hello over TLS"
        assert bob.process.wait(TIMEOUT) == 0


def test_chat_through_the_msrp_relay_over_tls(kamailio):
    relay = ["--msrp-relay", kamailio.msrps_relay_uri, "--tls-ca-file", str(kamailio.ca_file)]
    with CLIProcess("chat", "--listen", "--count", "1", *proxy_args(kamailio, "bob"), *relay) as bob:
        bob.address("stderr")
        result = run_cli("chat", f"bob@{kamailio.domain}", "--send", "relayed over TLS", *proxy_args(kamailio, "alice"),
                         *relay)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "established over TLS" in result.stderr and "delivered: 200 OK" in result.stderr
        assert bob.next_line() == f"sip:alice@{kamailio.domain}: relayed over TLS"
        assert bob.process.wait(TIMEOUT) == 0
        assert any(line.endswith("established over TLS") for line in bob.stderr_lines), bob.stderr_lines


def test_msrp_tls_usage_errors(tmp_path: Path):
    tcp_relay = run_cli("chat", "bob@127.0.0.1", "--send", "x", "--msrp-tls", "--msrp-relay", "msrp://127.0.0.1:2855;tcp")
    assert_one_line_error(tcp_relay, "--msrp-tls", "msrps://127.0.0.1:")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    assert_one_line_error(run_cli("receive-files", "--dir", str(tmp_path), "--tls-certificate", str(not_pem)),
                          "--tls-certificate", "certificate and its private key")
    assert_one_line_error(run_cli("send-file", "bob@127.0.0.1", str(not_pem), "--tls-certificate",
                                  str(tmp_path / "missing.pem")), "cannot read --tls-certificate")
