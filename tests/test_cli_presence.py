"""``sipsimple presence publish`` and ``presence watch`` as subprocesses against the test Kamailio's presence server.

The watcher's readiness comes from its ``watching sip:...`` line on stderr, the publisher's from its
``published:`` line on stdout; nothing sleeps.
"""

from __future__ import annotations

import signal

import pytest

from tests.cli_helpers import TIMEOUT, CLIProcess, proxy_args, run_cli
from tests.test_account_presence import wait_presentity_gone


@pytest.fixture
def processes():
    """Starts ``sipsimple presence ARGS...`` processes, killed at the end of the test if still running."""
    started: list[CLIProcess] = []

    def start(*args: str) -> CLIProcess:
        process = CLIProcess("presence", *args)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_publish_once(kamailio, transport):
    result = run_cli("presence", "publish", "--status", "open", "--note", "just once", "--once",
                     *proxy_args(kamailio, "carol", transport))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.splitlines() == ["published: 200 OK expires=600", "unpublished: 200 OK"]
    assert f"over {transport.upper()}" in result.stderr


def test_publish_with_wrong_password_fails_with_the_code(kamailio):
    result = run_cli("presence", "publish", "--status", "open", "--once",
                     *proxy_args(kamailio, "carol", password="wrong"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.splitlines() in (["publish failed: 401 Unauthorized"],
                                          ["publish failed: 407 Proxy Authentication Required"])
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_watch_sees_open_then_closed_as_another_process_publishes(kamailio, processes, transport):
    wait_presentity_gone(kamailio, "alice")  # an earlier removal must not be the first change seen
    watcher = processes("watch", "alice", "--count", "2", *proxy_args(kamailio, "bob", transport))
    assert watcher.wait_line("watching ", stream="stderr") == f"watching sip:alice@{kamailio.domain}"
    # kept up until SIGTERM, which removes the publication
    publisher = processes("publish", "--status", "open", "--note", f"hello over {transport}",
                          "--activity", "busy", *proxy_args(kamailio, "alice", transport))
    assert publisher.wait_line("published: ") == "published: 200 OK expires=600"
    assert watcher.wait_line(f"sip:alice@{kamailio.domain}: ") == \
        f'sip:alice@{kamailio.domain}: open "hello over {transport}" (busy)'
    publisher.process.send_signal(signal.SIGTERM)
    assert publisher.process.wait(timeout=TIMEOUT) == 0
    assert publisher.rest() == ["unpublished: 200 OK"]
    assert watcher.process.wait(timeout=TIMEOUT) == 0
    assert watcher.rest() == [f"sip:alice@{kamailio.domain}: closed"]


def test_watch_with_wrong_password_fails_with_the_code(kamailio):
    result = run_cli("presence", "watch", "alice", "--count", "1", *proxy_args(kamailio, "bob", password="wrong"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.strip() in (f"subscription to sip:alice@{kamailio.domain} failed: 401 Unauthorized",
                                     f"subscription to sip:alice@{kamailio.domain} failed: "
                                     "407 Proxy Authentication Required")


@pytest.mark.parametrize("args, words", [
    (["publish", "--status", "open"], ["--account"]),
    (["publish", "--status", "open", "--account", "alice@example.com", "--expires", "0"], ["--expires"]),
    (["watch", "alice@example.com", "--count", "0"], ["--count"]),
])
def test_usage_errors(args, words):
    result = run_cli("presence", *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sipsimple: error: "), result.stderr
    for word in words:
        assert word in lines[0]
