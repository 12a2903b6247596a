"""``sipsimple demo`` (and the dispatcher around it) as a subprocess: every check OK, every item there, quickly."""

from __future__ import annotations

import hashlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave

import pytest

from tests.audio_analysis import dominant_frequency, level_dbfs, read_wav
from tests.cli_helpers import ROOT, TIMEOUT, cli_env, run_cli

DEMO_BUDGET = 20.0  # seconds a demo run may take (about 3 s on an idle machine)

# what the summary must show, in this order (the direct demo)
CALL_ITEMS = [
    "call: alice calls bob: ", "codec: opus/48000 on both sides", "SRTP: ", "presence: bob is in a call: ",
    "recording started: ", "tone: alice played 1000 Hz", "DTMF: alice sent 1 2 3 4 #, bob got 1 2 3 4 #",
    "hold: alice on_hold_by_local=True, bob on_hold_by_remote=True; audio alice sendonly, bob recvonly",
    "resume: on_hold alice=False, bob=False; audio sendrecv/sendrecv", "chat alice -> bob: ",
    "chat bob -> alice: ", "recording: call.wav: ", "hang up: ", "RTP alice -> bob: ", "RTP bob -> alice: ",
    "presence: bob is available again: ", "file transfer: 4 MB", "MSRP bytes: chat 88 bytes in 2 messages",
]
DIRECT_ITEMS = ["engine started: ", "accounts: alice = BonjourAccount", "presence: alice watches bob: ", *CALL_ITEMS,
                "presence: alice stops watching bob: ", "engine stopped: "]
SERVER_ITEMS = ["local Kamailio started: ", "engine started: ", "accounts: alice = Account",
                "alice registers: 200 OK with digest auth", "bob registers: 200 OK with digest auth",
                "presence: bob publishes: PUBLISH 200", "presence: alice watches bob: SUBSCRIBE via Kamailio 200",
                *CALL_ITEMS, "alice unregisters: 200", "bob unregisters: 200", "presence: removed at the server: ",
                "engine stopped: "]


def summary(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    assert "Summary" in lines, stdout
    return [line.strip() for line in lines[lines.index("Summary") + 1:]]


def checks_of(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The summary's check lines without their OK/FAIL mark; asserts that every one is OK."""
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    items = summary(result.stdout)
    checks, verdict = items[:-1], items[-1]
    failed = [line for line in checks if not line.startswith("OK ")]
    assert not failed, failed
    assert re.fullmatch(rf"all {len(checks)} checks OK in [\d.]+ s", verdict), verdict
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr)
    return [line[2:].strip() for line in checks]


def assert_items_in_order(checks: list[str], expected: list[str]) -> None:
    assert len(checks) == len(expected), (checks, expected)
    for line, item in zip(checks, expected, strict=True):
        assert line.startswith(item), (item, line)


def item(checks: list[str], prefix: str) -> str:
    return next(line for line in checks if line.startswith(prefix))


def assert_measurements(checks: list[str]) -> None:
    """What the summary claims, read back: tone, SRTP suite, RTP figures, file hash."""
    from sipsimple.core._media import SRTP_SUITES

    heard = [float(f) for f in re.findall(r"bob measured ([\d.]+) Hz at (?:-[\d.]+) dBFS", " ".join(checks))]
    assert len(heard) == 2 and all(abs(f - 1000) < 10 for f in heard), heard
    suite = re.match(r"SRTP: (\S+) active on both sides", item(checks, "SRTP: "))
    assert suite and suite.group(1) in SRTP_SUITES, item(checks, "SRTP: ")
    for direction in ("alice -> bob", "bob -> alice"):
        rtp = re.search(r"(\d+) packets sent, (\d+) received, (\d+) lost \(([\d.]+)%\), jitter ([\d.]+) ms",
                        item(checks, f"RTP {direction}: "))
        assert rtp and int(rtp.group(2)) > 50 and float(rtp.group(4)) < 1.0, item(checks, f"RTP {direction}")
    sha = re.search(r"SHA-1 sent (\w+)\.\.\., received (\w+)\.\.\. -- identical", item(checks, "file transfer: "))
    assert sha and sha.group(1) == sha.group(2)


def timed_run(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = run_cli(*args)
    return result, time.monotonic() - started


def test_demo():
    result, elapsed = timed_run("demo")
    checks = checks_of(result)
    assert_items_in_order(checks, DIRECT_ITEMS)
    assert_measurements(checks)
    assert elapsed < DEMO_BUDGET, elapsed
    timeline = result.stdout.split("\nSummary\n")[0]
    # a readable timeline: time since start, notification name, who sent it, its key data
    assert re.search(r"\+\s*\d+\.\d{3}s\s+SCEngineDidStart\s+\[engine\] local_ip=127\.0\.0\.1 udp=\d+", timeline)
    assert re.search(r"SCSessionNewIncoming\s+\[bob's call\] streams=\['audio', 'chat'\]", timeline)
    assert [m for m in re.findall(r"SCSessionGotDTMF\s+\[bob's call\] digit=(\S)", timeline)] == list("1234#")
    assert re.search(r"SCSessionGotHoldRequest\s+\[bob's call\] originator=remote", timeline)
    assert re.search(r'SCSubscriptionGotNotify\s+\[alice->bob subscription\] presence active: open "in a call"',
                     timeline)
    assert re.search(r"SCSessionDidDeliverMessage\s+\[alice's call\] message \S+: 200 OK", timeline)
    assert re.search(r"SCSessionGotFile\s+\[bob's file transfer\] demo-file\.bin 4194304 bytes sha-1:", timeline)
    # each verdict is noted in the timeline as it is made
    assert timeline.count("  OK: ") == len(checks)


def test_demo_trace_keeps_its_files(tmp_path):
    result, _ = timed_run("demo", "--trace", "--output-dir", str(tmp_path))
    checks_of(result)
    assert re.search(r"SCEngineSIPTrace\s+\[engine\] --> UDP 127\.0\.0\.1:\d+ INVITE sip:bob@", result.stdout)
    assert re.search(r"SCEngineSIPTrace\s+\[engine\] <-- UDP 127\.0\.0\.1:\d+ SIP/2\.0 200 OK", result.stdout)
    # the recording and the received file are kept: look at them independently of the demo
    samples, rate = read_wav(tmp_path / "call.wav")
    with wave.open(str(tmp_path / "call.wav")) as wav:
        assert wav.getframerate() == 48000 and wav.getnframes() > rate
    blocks = [samples[start:start + rate // 10] for start in range(0, len(samples) - rate // 10, rate // 10)]
    loudest = max(blocks, key=lambda block: level_dbfs(block))
    assert level_dbfs(loudest) > -30 and abs(dominant_frequency(loudest, rate) - 1000) < 10
    sent, received = tmp_path / "demo-file.bin", tmp_path / "inbox" / "demo-file.bin"
    assert received.stat().st_size == 4 * 1024 * 1024
    assert hashlib.sha1(received.read_bytes()).digest() == hashlib.sha1(sent.read_bytes()).digest()


@pytest.mark.interop
def test_demo_with_server():
    if shutil.which("kamailio") is None:
        pytest.skip("'kamailio' is not installed (make install-deps installs it)")
    result, elapsed = timed_run("demo", "--with-server")
    checks = checks_of(result)
    assert_items_in_order(checks, SERVER_ITEMS)
    assert_measurements(checks)
    assert elapsed < DEMO_BUDGET, elapsed
    timeline = result.stdout.split("\nSummary\n")[0]
    assert re.search(r'SIPAccountGotPresenceState\s+\[alice\] bob@127\.0\.0\.1 is open "in a call"', timeline)
    assert re.search(r"SIPAccountRegistrationDidSucceed\s+\[bob\] 200 OK contact=sip:bob@127\.0\.0\.1:\d+", timeline)
    assert "local Kamailio stopped" in timeline


def test_ctrl_c_stops_everything_and_exits_130():
    process = subprocess.Popen([sys.executable, "-m", "sipsimple", "demo"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT, env=cli_env())
    watchdog = threading.Timer(TIMEOUT, process.kill)
    watchdog.start()
    try:
        seen = []
        for line in process.stdout:  # the demo flushes every line
            seen.append(line)
            if "OK: call: alice calls bob" in line:
                break
        assert seen and "OK: call: alice calls bob" in seen[-1], "".join(seen)
        interrupted = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
        took = time.monotonic() - interrupted
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, (stdout, stderr)
    assert took < 10, took
    assert "Traceback" not in stderr
    items = summary("".join(seen) + stdout)
    assert re.fullmatch(r"interrupted after \d+ checks \(0 FAILED\) in [\d.]+ s", items[-1]), items
    # the call was ended (both sides hang up on the way out) and the Engine stopped
    for party in ("alice", "bob"):
        assert re.search(rf"SCSessionDidEnd\s+\[{party}'s call\] originator=local", stdout), stdout
    assert items[-2].startswith("OK    engine stopped: SCEngineDidEnd; media engine stopped; no session left")


def test_stuck_step_fails_with_its_reason_and_the_rest_goes_on():
    # bob's phone rings forever: the call step must fail after its timeout, not hang
    code = (
        "import sys\n"
        "from sipsimple.session import Session\n"
        "accept = Session.accept\n"
        "Session.accept = lambda self, **kw: None if kw.get('audio') else accept(self, **kw)\n"
        "from sipsimple.cli.main import main\n"
        "sys.exit(main(['demo']))\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT,
                            env=cli_env())
    elapsed = time.monotonic() - started
    assert result.returncode == 1, (result.stdout[-3000:], result.stderr)
    assert "Traceback" not in result.stderr
    items = summary(result.stdout)
    assert "FAIL  call: alice calls bob: no SCSessionDidStart at alice within 5 s" in items
    assert "FAIL  tone: skipped: the call is not established" in items
    assert any(line.startswith("OK    file transfer: ") for line in items)  # what does not need the call works
    assert items[-2].startswith("OK    engine stopped")
    assert re.fullmatch(r"\d+ of \d+ checks FAILED in [\d.]+ s", items[-1])
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
