"""``sipsimple register`` run as a subprocess against the test Kamailio (UDP, TCP, TLS), plus its usage errors."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.peers.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipsimple", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=cli_env())


def account_args(kamailio, user: str = "alice", password: str | None = None, transport: str = "udp") -> list[str]:
    port = kamailio.tls_port if transport == "tls" else kamailio.port
    args = ["--account", f"{user}@{kamailio.domain}", "--password",
            kamailio.users[user] if password is None else password,
            "--proxy", f"{kamailio.host}:{port};transport={transport}", "--local-ip", "127.0.0.1"]
    if transport == "tls":
        args += ["--tls-ca-file", str(kamailio.ca_file)]
    return args


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sipsimple: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_register_once(kamailio, transport):
    result = run_cli("register", "--once", *account_args(kamailio, transport=transport))
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("registration succeeded: 200 OK contact=sip:alice@127.0.0.1:"), lines
    assert "expires=600" in lines[0]
    if transport != "udp":
        assert f"transport={transport}" in lines[0]
    assert lines[-1] == "unregistered: 200 OK"


def test_register_expires_is_asked_for(kamailio):
    result = run_cli("register", "--once", "--expires", "120", *account_args(kamailio, user="carol"))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "expires=120" in result.stdout


def test_register_wrong_password(kamailio):
    result = run_cli("register", "--once", *account_args(kamailio, password="not-it"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "registration failed: 401 Unauthorized" in result.stdout
    assert "Traceback" not in result.stderr


def test_register_wrong_password_without_once_exits_too(kamailio):
    result = run_cli("register", *account_args(kamailio, password="not-it"))
    assert result.returncode == 1
    assert "401" in result.stdout


def test_register_tls_untrusted_certificate(kamailio):
    args = account_args(kamailio, transport="tls")
    i = args.index("--tls-ca-file")
    del args[i:i + 2]
    started = time.monotonic()
    result = run_cli("register", "--once", *args)
    assert_one_line_error(result, "not trusted", "--tls-ca-file")
    assert time.monotonic() - started < 10


def test_register_tls_without_verification(kamailio):
    args = account_args(kamailio, transport="tls")
    i = args.index("--tls-ca-file")
    args[i:i + 2] = ["--no-verify-tls"]
    result = run_cli("register", "--once", *args)
    assert result.returncode == 0, (result.stdout, result.stderr)


def _read_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_register_runs_until_signal_then_unregisters(kamailio, signum):
    process = subprocess.Popen([sys.executable, "-m", "sipsimple", "register", *account_args(kamailio, user="bob")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=cli_env())
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        first = lines.get(timeout=TIMEOUT)
        assert first is not None and first.startswith("registration succeeded: 200 OK"), first
        assert process.poll() is None  # still running, keeping the registration
        process.send_signal(signum)
        assert process.wait(TIMEOUT) == 0
        rest = []
        while (line := lines.get(timeout=TIMEOUT)) is not None:
            rest.append(line)
        assert rest[-1] == "unregistered: 200 OK", rest
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


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
    result = run_cli("register", "--once", *account_args(kamailio), "--port", str(kamailio.port))
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("sipsimple: error: ")
