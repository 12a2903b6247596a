"""``sipsimple register`` run as a subprocess against the test Kamailio (UDP, TCP, TLS), plus its usage errors."""

from __future__ import annotations

import signal
import time

import pytest

from tests.cli_helpers import CLIProcess, assert_one_line_error, configure_tls, proxy_args, run_cli
from tests.peers.ports import free_port


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_register_once(kamailio, transport):
    result = run_cli("register", "--once", *proxy_args(kamailio, "alice", transport))
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("registration succeeded: 200 OK contact=sip:alice@127.0.0.1:"), lines
    assert "expires=600" in lines[0]
    if transport != "udp":
        assert f"transport={transport}" in lines[0]
    assert lines[-1] == "unregistered: 200 OK"


def test_register_expires_is_asked_for(kamailio):
    result = run_cli("register", "--once", "--expires", "120", *proxy_args(kamailio, "carol"))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "expires=120" in result.stdout


def test_register_wrong_password(kamailio):
    result = run_cli("register", "--once", *proxy_args(kamailio, "alice", password="not-it"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "registration failed: 401 Unauthorized" in result.stdout
    assert "Traceback" not in result.stderr


def test_register_wrong_password_without_once_exits_too(kamailio):
    result = run_cli("register", *proxy_args(kamailio, "alice", password="not-it"))
    assert result.returncode == 1
    assert "401" in result.stdout


def tls_args_without_ca_file(kamailio) -> list[str]:
    """alice over TLS, with nothing that makes the test Kamailio's certificate trusted."""
    args = proxy_args(kamailio, "alice", "tls")
    i = args.index("--tls-ca-file")
    del args[i:i + 2]
    return args


def test_register_tls_untrusted_certificate(kamailio):
    args = tls_args_without_ca_file(kamailio)
    started = time.monotonic()
    result = run_cli("register", "--once", *args)
    assert_one_line_error(result, "not trusted", "--tls-ca-file")
    assert time.monotonic() - started < 10


def test_register_tls_checks_against_the_configured_ca_file(kamailio, tmp_path):
    """No --tls-ca-file: the configured tls.ca_file is what the proxy's certificate is checked against."""
    args = tls_args_without_ca_file(kamailio)
    config = tmp_path / "config"
    configure_tls(config, ca_file=kamailio.ca_file)
    result = run_cli("--config-dir", str(config), "register", "--once", *args)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "transport=tls" in result.stdout
    # a configured file that holds no CA certificates is a usage error naming where it was set
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate")
    configure_tls(config, ca_file=not_pem)
    broken = run_cli("--config-dir", str(config), "register", "--once", *args)
    assert_one_line_error(broken, "invalid configured tls.ca_file", str(not_pem), str(config / "config.json"))


def test_register_tls_without_verification_when_configured(kamailio, tmp_path):
    """tls.verify_server false in the configuration: an unknown CA is accepted, as with --no-verify-tls."""
    args = tls_args_without_ca_file(kamailio)
    config = tmp_path / "config"
    configure_tls(config, verify_server=False)
    result = run_cli("--config-dir", str(config), "register", "--once", *args)
    assert result.returncode == 0, (result.stdout, result.stderr)


def test_register_tls_without_verification(kamailio):
    args = [*tls_args_without_ca_file(kamailio), "--no-verify-tls"]
    result = run_cli("register", "--once", *args)
    assert result.returncode == 0, (result.stdout, result.stderr)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_register_runs_until_signal_then_unregisters(kamailio, signum):
    with CLIProcess("register", *proxy_args(kamailio, "bob")) as registered:
        first = registered.next_line()
        assert first is not None and first.startswith("registration succeeded: 200 OK"), first
        assert registered.process.poll() is None  # still running, keeping the registration
        registered.process.send_signal(signum)
        status, _ = registered.finish()
        assert status == 0
        assert registered.rest()[-1:] == ["unregistered: 200 OK"], registered.lines
        assert not any("Traceback" in line for line in registered.stderr_lines)


def test_register_unknown_transport(kamailio):
    result = run_cli("register", "--once", "--account", "alice@127.0.0.1", "--password", "x",
                     "--proxy", f"127.0.0.1:{kamailio.port};transport=sctp")
    assert_one_line_error(result, "unknown transport 'sctp'")


@pytest.mark.parametrize("account", ["al ice@127.0.0.1", "alice@", "tel:+15551234", "sip:@127.0.0.1"])
def test_register_bad_account(account):
    result = run_cli("register", "--once", "--account", account, "--password", "x", "--proxy", "127.0.0.1:5060")
    assert_one_line_error(result, "invalid account")


def test_register_needs_account():
    assert_one_line_error(run_cli("register", "--once"), "--account")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_unreachable_proxy(transport):
    port = free_port()
    result = run_cli("register", "--once", "--account", "alice@127.0.0.1", "--password", "x",
                     "--proxy", f"127.0.0.1:{port};transport={transport}")
    assert_one_line_error(result, "unreachable")


def test_register_unresolvable_proxy():
    result = run_cli("register", "--once", "--account", "alice@example.invalid", "--password", "x",
                     "--proxy", "no-such-host.invalid:5060")
    assert_one_line_error(result, "cannot resolve")


def test_port_in_use(kamailio):
    # Kamailio holds its SIP port for UDP and TCP
    result = run_cli("register", "--once", *proxy_args(kamailio, "alice"), "--port", str(kamailio.port))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("sipsimple: error: ")


REGISTRAR = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<!-- a registrar that takes anyone: the REGISTER, then the one that unregisters -->
<scenario name="registrar">
  <recv request="REGISTER" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      [last_Contact:];expires=600
      Content-Length: 0
    ]]></send>
  <recv request="REGISTER" crlf="true"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]></send>
</scenario>
"""


@pytest.mark.parametrize("command", ["register", "message --listen"])
def test_registration_sends_the_configured_display_name(tmp_path, command):
    from tests.peers.sipp import SippProcess

    scenario = tmp_path / "registrar.xml"
    scenario.write_text(REGISTRAR)
    config = ["--config-dir", str(tmp_path / "config")]
    with SippProcess(scenario, calls=1, timeout=20, run_dir=tmp_path / "sipp") as registrar:
        added = run_cli(*config, "account", "add", "alice@127.0.0.1", "--display-name", "Alice Liddell",
                        "--proxy", registrar.address)
        assert added.returncode == 0, added.stderr
        if command == "register":
            result = run_cli(*config, "register", "--once", "--local-ip", "127.0.0.1")
            assert result.returncode == 0, (result.stdout, result.stderr)
            assert result.stdout.splitlines()[-1] == "unregistered: 200 OK"
        else:  # registered while it listens, unregistered when it ends
            with CLIProcess(*config, "message", "--listen", "--local-ip", "127.0.0.1") as listener:
                listener.wait_line("registered sip:alice@127.0.0.1: 200 OK", stream="stderr")
                listener.address("stderr")
                listener.process.send_signal(signal.SIGTERM)
                assert listener.process.wait(30) == 0
        seen = registrar.wait(timeout=10)
    assert seen.ok, seen.describe()
    registers = [m for m in seen.messages.split("\n\n") if m.lstrip().startswith("REGISTER ")]
    from_lines = [line for m in registers for line in m.splitlines() if line.startswith("From:")]
    assert len(from_lines) == 2 and all(line.startswith('From: "Alice Liddell" <sip:alice@127.0.0.1>')
                                        for line in from_lines), seen.messages
