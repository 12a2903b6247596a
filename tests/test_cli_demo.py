"""``sipsimple demo`` (and the dispatcher around it) as a subprocess: exit 0, every check OK, quickly."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60
DEMO_BUDGET = 10.0  # seconds the demo may take


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sipsimple", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=cli_env())


def summary(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert "Summary" in lines, stdout
    return [line.strip() for line in lines[lines.index("Summary") + 1:]]


def assert_all_ok(result: subprocess.CompletedProcess[str], expected_checks: list[str]) -> None:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    items = summary(result.stdout)
    checks, verdict = items[:-1], items[-1]
    assert checks and all(line.startswith("OK ") for line in checks), items
    assert re.fullmatch(rf"all {len(checks)} checks OK in [\d.]+ s", verdict), verdict
    for expected in expected_checks:
        assert any(expected in line for line in checks), (expected, checks)


def test_demo():
    started = time.monotonic()
    result = run_cli("demo")
    elapsed = time.monotonic() - started
    assert_all_ok(result, ["engine started", "alice -> bob directly over UDP", "bob -> alice directly over TCP",
                           "closed port is reported as failed", "engine stopped"])
    assert elapsed < DEMO_BUDGET, elapsed
    timeline = result.stdout.split("Summary")[0]
    # a readable timeline: relative time, notification name, its key data
    assert re.search(r"\+\s*\d+\.\d{3}s\s+SCEngineDidStart\s+\[engine\] local_ip=127\.0\.0\.1 ", timeline)
    assert re.search(r'SCEngineGotMessage\s+\[engine\] sip:alice@127\.0\.0\.1 -> sip:bob@127\.0\.0\.1:\d+: "Hello Bob',
                     timeline)
    assert re.search(r"SCMessageDidSucceed\s+\[alice->bob message\] 200 OK", timeline)


def test_demo_trace_shows_sip():
    result = run_cli("demo", "--trace")
    assert_all_ok(result, [])
    assert re.search(r"SCEngineSIPTrace\s+\[engine\] --> UDP 127\.0\.0\.1:\d+ MESSAGE sip:bob@", result.stdout)


@pytest.mark.interop
def test_demo_with_server():
    if shutil.which("kamailio") is None:
        pytest.fail("'kamailio' is not installed; run 'make install-deps'", pytrace=False)
    started = time.monotonic()
    result = run_cli("demo", "--with-server")
    elapsed = time.monotonic() - started
    assert_all_ok(result, ["local Kamailio started", "wrong password is refused: 401",
                           "alice registers with digest authentication: 200 OK",
                           "bob registers with digest authentication: 200 OK",
                           "alice -> bob via the proxy", "bob -> alice via the proxy",
                           "alice unregisters: 200", "bob unregisters: 200", "engine stopped"])
    assert elapsed < DEMO_BUDGET, elapsed


def test_help_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("register", "message", "demo"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), result.stdout


def test_no_command_is_a_usage_error():
    result = run_cli()
    assert result.returncode == 2
    assert "usage: sipsimple" in result.stderr


def test_console_script_entry_point_matches():
    # pyproject declares sipsimple = sipsimple.cli.main:main; python -m sipsimple runs the same
    from sipsimple.cli import main as cli_main

    assert callable(cli_main.main)
    with pytest.raises(SystemExit) as info:
        cli_main.main(["demo", "--help"])
    assert info.value.code == 0


def test_broken_subcommand_does_not_break_the_others(monkeypatch, capsys):
    from sipsimple.cli import main as cli_main

    monkeypatch.setattr(cli_main, "COMMANDS", ["sipsimple.cli.demo", "sipsimple.cli.no_such_command"])
    assert cli_main.main(["no-such-command"]) == 2
    assert "command 'no-such-command' is unavailable" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main.main(["demo", "--help"])  # the working one is still there
