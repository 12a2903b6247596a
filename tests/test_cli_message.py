"""``sipsimple message``: send and listen as subprocesses, through the test Kamailio and peer to peer.

The listener's readiness and address come from its ``listening on sip:...`` line on stderr.
"""

from __future__ import annotations

import signal

import pytest

from tests.cli_helpers import TIMEOUT, CLIProcess, proxy_args, run_cli
from tests.peers.ports import free_port


def listener(*args: str) -> CLIProcess:
    return CLIProcess("message", "--listen", *args)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_message_through_kamailio(kamailio, transport):
    with listener("--count", "1", *proxy_args(kamailio, "bob", transport)) as bob:
        address = bob.address("stderr")
        assert address.startswith("sip:bob@127.0.0.1:")
        assert any(line.startswith("registered sip:bob@127.0.0.1: 200") for line in bob.stderr_lines)
        result = run_cli("message", f"bob@{kamailio.domain}", "hello", *proxy_args(kamailio, "alice", transport))
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert result.stdout.strip() == f"message to sip:bob@{kamailio.domain} delivered: 200 OK"
        assert bob.next_line() == f"sip:alice@{kamailio.domain}: hello"
        assert bob.process.wait(TIMEOUT) == 0  # --count 1 reached; it unregistered and left


def test_message_bare_user_takes_account_domain(kamailio):
    with listener("--count", "1", *proxy_args(kamailio, "carol")) as carol:
        carol.address("stderr")
        result = run_cli("message", "carol", "hi carol", *proxy_args(kamailio, "alice"))
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert carol.next_line() == f"sip:alice@{kamailio.domain}: hi carol"
        assert carol.process.wait(TIMEOUT) == 0


def test_message_to_unregistered_user(kamailio):
    result = run_cli("message", f"nobody@{kamailio.domain}", "anyone?", *proxy_args(kamailio, "alice"),
                     "--timeout", "10")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "failed: 404 Not Found" in result.stdout


def test_message_wrong_password(kamailio):
    result = run_cli("message", f"bob@{kamailio.domain}", "x", *proxy_args(kamailio, "alice", password="bad"),
                     "--timeout", "10")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "407" in result.stdout


def test_message_peer_to_peer():
    with listener("--count", "2", "--account", "bob@127.0.0.1", "--local-ip", "127.0.0.1") as bob:
        address = bob.address("stderr")
        assert address.startswith("sip:bob@127.0.0.1:")
        result = run_cli("message", address, "héllo, direct", "--account", "alice@127.0.0.1", "--local-ip", "127.0.0.1")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "delivered: 200 OK" in result.stdout
        assert bob.next_line() == "sip:alice@127.0.0.1: héllo, direct"
        # the same port takes TCP too; the text may come from stdin
        target = address.removeprefix("sip:") + ";transport=tcp"
        result = run_cli("message", target, "-", "--account", "alice@127.0.0.1", "--local-ip", "127.0.0.1",
                         stdin="over tcp\n")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert bob.next_line() == "sip:alice@127.0.0.1: over tcp"
        assert bob.process.wait(TIMEOUT) == 0


def test_message_from_carries_the_configured_display_name(tmp_path):
    config = ["--config-dir", str(tmp_path)]
    added = run_cli(*config, "account", "add", "alice@127.0.0.1", "--display-name", "Alice Liddell")
    assert added.returncode == 0, added.stderr
    with listener("--count", "1", "--account", "bob@127.0.0.1", "--local-ip", "127.0.0.1") as bob:
        address = bob.address("stderr")
        result = run_cli(*config, "message", address, "who is it?", "--local-ip", "127.0.0.1")
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert bob.next_line() == "Alice Liddell <sip:alice@127.0.0.1>: who is it?"
        assert bob.process.wait(TIMEOUT) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_listen_until_signal(signum):
    with listener("--local-ip", "127.0.0.1") as anyone:
        address = anyone.address("stderr")
        assert address.startswith("sip:127.0.0.1:")
        anyone.process.send_signal(signum)
        assert anyone.process.wait(TIMEOUT) == 0
        assert anyone.next_line() is None  # nothing printed on stdout


def test_listen_registered_until_signal(kamailio):
    with listener(*proxy_args(kamailio, "bob")) as bob:
        bob.address("stderr")
        bob.process.send_signal(signal.SIGTERM)
        assert bob.process.wait(TIMEOUT) == 0
    # bob is gone from the location table: a message to him now fails
    result = run_cli("message", f"bob@{kamailio.domain}", "still there?", *proxy_args(kamailio, "alice"),
                     "--timeout", "10")
    assert result.returncode == 1
    assert "404" in result.stdout


def test_message_to_closed_port_fails():
    port = free_port()
    result = run_cli("message", f"sip:bob@127.0.0.1:{port}", "x", "--local-ip", "127.0.0.1", "--timeout", "5")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.startswith(f"message to sip:bob@127.0.0.1:{port} failed: ")


@pytest.mark.parametrize("target", ["bob@@127.0.0.1", "tel:+15551234", "sip:bob@127.0.0.1:99999", "sip:", "a b@c"])
def test_message_bad_target(target):
    result = run_cli("message", target, "x")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("sipsimple: error: invalid target")


@pytest.mark.parametrize("args, words", [
    (["message"], "TARGET and TEXT"),
    (["message", "bob@127.0.0.1", "x", "--count", "2"], "--listen"),
    (["message", "--listen", "--count", "0"], "--count"),
    (["message", "--listen", "--proxy", "127.0.0.1:5060"], "--account"),
    (["message", "bob@127.0.0.1", "x", "--proxy", "127.0.0.1:5060;transport=foo"], "unknown transport"),
    (["message", "bob@127.0.0.1", "x", "--local-ip", "::1"], "--local-ip"),
    (["message", "bob@127.0.0.1", "x", "--tls-ca-file", "/no/such/file.pem"], "--tls-ca-file"),
])
def test_message_usage_errors(args, words):
    result = run_cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("sipsimple: error: ")
    assert words in result.stderr


# ----------------------------------------------------- parsing, in process


def test_parse_proxy():
    from sipsimple.cli.options import CLIError, parse_proxy

    assert str(parse_proxy("127.0.0.1:5070")) == "127.0.0.1:5070;transport=udp"
    assert str(parse_proxy("proxy.example.com;transport=TLS")) == "proxy.example.com:5061;transport=tls"
    assert str(parse_proxy("sip:127.0.0.1:5080;transport=tcp")) == "127.0.0.1:5080;transport=tcp"
    assert str(parse_proxy("sips:example.com")) == "example.com:5061;transport=tls"
    for bad in ("127.0.0.1:x", "127.0.0.1:70000", ":5060", "host;transport=sctp", ""):
        with pytest.raises(CLIError):
            parse_proxy(bad)


def test_parse_target_and_account():
    from sipsimple.cli.options import CLIError, parse_account, parse_target

    assert str(parse_target("bob@example.com")) == "sip:bob@example.com"
    assert str(parse_target("bob", "example.com")) == "sip:bob@example.com"
    assert str(parse_target("sips:bob@example.com:5071")) == "sips:bob@example.com:5071"
    assert str(parse_target("<sip:bob@10.0.0.1;transport=tcp>")) == "sip:bob@10.0.0.1;transport=tcp"
    assert str(parse_account("sip:alice@example.com:5070;transport=tcp")) == "sip:alice@example.com"
    for bad in ("bob@@x", "http://example.com", "alice@"):
        with pytest.raises(CLIError):
            parse_target(bad)
    with pytest.raises(CLIError):
        parse_account("example.com")
