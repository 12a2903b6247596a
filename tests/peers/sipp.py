"""Run sipp (Debian package ``sip-tester``) against something under test, on 127.0.0.1 only.

Scenario files live in ``tests/peers/sipp/`` (pass a bare name such as
``"reg_auth.xml"``) or anywhere else (pass a path); sipp's built-in scenarios
are named with ``builtin="uac"``, ``"uas"``, ... instead.

    result = run_sipp("127.0.0.1:5060", "reg_auth.xml", service="alice", user="alice", password="alicepw")
    assert result.ok, result.describe()

    with SippProcess("uas", builtin=True, local_port=free_port()) as uas:   # in the background
        ...
    uas.result  # statistics once it has stopped

sipp always gets ``-i 127.0.0.1 -mi 127.0.0.1 -mp PORT -cp PORT -nostdin`` with
ports picked free, so several can run side by side without touching 5060/8888.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .ports import HOST, free_port

SCENARIOS = Path(__file__).parent / "sipp"


@dataclass
class SippResult:
    """What one sipp run did: its exit code and its final statistics."""

    returncode: int
    stats: dict[str, str] = field(default_factory=dict)
    output: str = ""
    messages: str = ""
    errors: str = ""

    def _count(self, column: str) -> int:
        try:
            return int(self.stats.get(column, "0") or 0)
        except ValueError:
            return 0

    @property
    def successful(self) -> int:
        return self._count("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self._count("FailedCall(C)")

    @property
    def retransmissions(self) -> int:
        return self._count("Retransmissions(C)")

    @property
    def created(self) -> int:
        return self._count("TotalCallCreated")

    @property
    def ok(self) -> bool:
        """sipp exited 0: every call it made followed the scenario."""
        return self.returncode == 0

    def describe(self) -> str:
        return (f"sipp rc={self.returncode} successful={self.successful} failed={self.failed} "
                f"retransmissions={self.retransmissions}\n--- output\n{self.output[-3000:]}"
                f"\n--- unexpected messages\n{self.errors[-3000:]}")


def _scenario_args(scenario: str | Path, builtin: bool) -> list[str]:
    if builtin:
        return ["-sn", str(scenario)]
    path = Path(scenario)
    if not path.is_absolute() and not path.exists():
        path = SCENARIOS / path
    if not path.exists():
        raise FileNotFoundError(f"sipp scenario not found: {scenario}")
    return ["-sf", str(path)]


def sipp_command(
    scenario: str | Path,
    target: str | None = None,
    *,
    run_dir: Path,
    builtin: bool = False,
    service: str | None = None,
    user: str | None = None,
    password: str | None = None,
    keys: Mapping[str, str] | None = None,
    calls: int | None = 1,
    rate: float | None = None,
    transport: str = "u1",
    local_port: int | None = None,
    media_port: int | None = None,
    control_port: int | None = None,
    timeout: float | None = 15,
    trace: bool = True,
    extra: Iterable[str] = (),
) -> list[str]:
    """The sipp command line for one run; statistics and traces go to *run_dir*."""
    command = ["sipp", *_scenario_args(scenario, builtin)]
    command += ["-i", HOST, "-mi", HOST, "-nostdin",
                "-p", str(local_port or free_port()),
                "-mp", str(media_port or free_port(tcp=False)),
                "-cp", str(control_port or free_port(tcp=False)),
                "-t", transport,
                "-trace_stat", "-stf", str(run_dir / "stats.csv")]
    if trace:
        command += ["-trace_msg", "-message_file", str(run_dir / "messages.log"),
                    "-trace_err", "-error_file", str(run_dir / "errors.log")]
    if service is not None:
        command += ["-s", service]
    if user is not None:
        command += ["-au", user]
    if password is not None:
        command += ["-ap", password]
    for key, value in (keys or {}).items():
        command += ["-key", key, value]
    if calls is not None:
        command += ["-m", str(calls)]
    if rate is not None:
        command += ["-r", str(rate)]
    if timeout is not None:
        # -timeout_error: running out of time is a failure, not a clean exit
        command += ["-timeout", f"{timeout}s", "-timeout_error"]
    command += list(extra)
    if target is not None:
        command.append(target)
    return command


def _listening(port: int) -> bool:
    """Whether some socket is bound to *port* on 127.0.0.1 (UDP or TCP), from /proc."""
    needle = f"0100007F:{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/tcp"):
        try:
            with open(table) as f:
                if any(needle in line for line in f):
                    return True
        except OSError:
            pass
    return False


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _result(returncode: int, run_dir: Path, output: str) -> SippResult:
    stats: dict[str, str] = {}
    text = _read(run_dir / "stats.csv")
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    if len(rows) >= 2:
        # the last row is the final dump, written when sipp ends
        stats = {name: value for name, value in zip(rows[0], rows[-1], strict=False) if name}
    return SippResult(returncode, stats, output, _read(run_dir / "messages.log"), _read(run_dir / "errors.log"))


def run_sipp(scenario: str | Path, target: str | None = None, *, run_dir: Path | str | None = None,
             wait: float | None = None, **options: object) -> SippResult:
    """Run sipp to the end (see :func:`sipp_command` for *options*) and return what it did.

    *wait* bounds the whole run (default: sipp's own timeout plus 10 s).
    """
    directory = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="sipp-"))
    directory.mkdir(parents=True, exist_ok=True)
    command = sipp_command(scenario, target, run_dir=directory, **options)  # type: ignore[arg-type]
    timeout = options.get("timeout", 15)
    if wait is None and isinstance(timeout, (int, float)):
        wait = float(timeout) + 10
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, cwd=directory,
                          timeout=wait)
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    return _result(done.returncode, directory, output)


class SippProcess:
    """sipp running in the background, e.g. a built-in ``uas`` for calls to land on.

    ``local_port`` is where it listens (``self.local_port``, picked free if not given).
    :meth:`wait` (it ends by itself, e.g. after ``calls``) or :meth:`stop` fill in
    :attr:`result`; as a context manager it starts, and stops on exit if still running.
    """

    def __init__(self, scenario: str | Path, target: str | None = None, *, builtin: bool = False,
                 run_dir: Path | str | None = None, local_port: int | None = None,
                 calls: int | None = None, timeout: float | None = None, **options: object) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="sipp-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.local_port = local_port or free_port()
        self.command = sipp_command(scenario, target, run_dir=self.run_dir, builtin=builtin,
                                    local_port=self.local_port, calls=calls, timeout=timeout,
                                    **options)  # type: ignore[arg-type]
        self.output_path = self.run_dir / "output.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.result: SippResult | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.local_port}"

    def start(self, ready_timeout: float = 5.0) -> SippProcess:
        """Start sipp; returns once it listens on :attr:`local_port`."""
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, cwd=self.run_dir)
        deadline = time.monotonic() + ready_timeout
        while not _listening(self.local_port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                output_text = _read(self.output_path)
                self.stop()
                raise RuntimeError(f"sipp did not start listening on {self.address}: {self.command}\n{output_text}")
            time.sleep(0.01)
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to finish by itself (e.g. after its -m calls)."""
        assert self.process is not None, "not started"
        returncode = self.process.wait(timeout)
        self.result = _result(returncode, self.run_dir, _read(self.output_path))
        return self.result

    def stop(self, graceful: bool = False, timeout: float = 10.0) -> SippResult:
        """End sipp and return its result.

        sipp writes its final statistics only when it ends by itself or on SIGUSR1
        (*graceful*, which takes about 4 s); the quick default (SIGTERM) leaves the
        counts of its last periodic dump.
        """
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGUSR1 if graceful else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.wait()

    def __enter__(self) -> SippProcess:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.result is None:
            self.stop()
