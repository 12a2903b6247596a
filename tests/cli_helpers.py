"""Helpers for tests that run ``sipsimple`` commands as subprocesses.

:func:`run_cli` runs a command to its end; :class:`CLIProcess` is a long-running one
driven through its stdin and read line by line, without sleeping: every wait is for a
line of its output. Both run in :func:`cli_env`, with an empty configuration directory
of their own, so that accounts a developer configured never change what a test runs as.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["CLIProcess", "ROOT", "TIMEOUT", "assert_one_line_error", "cli_env", "configure_tls", "proxy_args",
           "run_cli"]

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60

_config_dirs: list[tempfile.TemporaryDirectory] = []  # kept until the test run ends, then removed


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout first on PYTHONPATH, unbuffered output,
    and SIPSIMPLE_CONFIG_DIR at a new empty directory (``--config-dir`` still overrides it)."""
    config = tempfile.TemporaryDirectory(prefix="sipsimple-config-")
    _config_dirs.append(config)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env["SIPSIMPLE_CONFIG_DIR"] = config.name
    return env


def run_cli(*args: str, timeout: float = TIMEOUT, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``sipsimple ARGS...`` run to its end, its output captured."""
    return subprocess.run([sys.executable, "-m", "sipsimple", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=cli_env(), input=stdin)


def configure_tls(config_dir: Path, **settings: object) -> None:
    """Set global ``tls`` settings (``ca_file=``, ``certificate=``, ``verify_server=``) in ``config_dir``
    as an application would: through the SDK's SIPSimpleSettings (no CLI command edits the global
    settings), in a process of its own."""
    script = ("import sys, json\n"
              "from sipsimple.configuration import ConfigurationManager, FileBackend\n"
              "from sipsimple.configuration.settings import SIPSimpleSettings\n"
              "ConfigurationManager().start(FileBackend(sys.argv[1]))\n"
              "settings = SIPSimpleSettings()\n"
              "for name, value in json.loads(sys.argv[2]).items():\n"
              "    setattr(settings.tls, name, value)\n"
              "settings.save()\n")
    values = {name: str(value) if isinstance(value, Path) else value for name, value in settings.items()}
    subprocess.run([sys.executable, "-c", script, str(config_dir), json.dumps(values)], check=True, cwd=ROOT,
                   env=cli_env(), timeout=TIMEOUT)


def proxy_args(kamailio, user: str, transport: str = "udp", password: str | None = None) -> list[str]:
    """The options that make ``user`` an account of the test Kamailio, reached over ``transport``."""
    port = kamailio.tls_port if transport == "tls" else kamailio.port
    args = ["--account", f"{user}@{kamailio.domain}", "--password",
            kamailio.users[user] if password is None else password,
            "--proxy", f"{kamailio.host}:{port};transport={transport}", "--local-ip", "127.0.0.1"]
    if transport == "tls":
        args += ["--tls-ca-file", str(kamailio.ca_file)]
    return args


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """A usage error: exit status 2 and one ``sipsimple: error: ...`` line holding ``words``."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sipsimple: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


class _Output:
    """One output pipe of a process, read by a daemon thread: ``lines`` holds every line read
    so far; :meth:`next` hands them out in order, once each, and None after the last."""

    def __init__(self, pipe) -> None:
        self.lines: list[str] = []
        self._unread: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            line = line.rstrip("\n")
            self.lines.append(line)
            self._unread.put(line)
        self._unread.put(None)

    def next(self, timeout: float) -> str | None:
        line = self._unread.get(timeout=timeout)
        if line is None:
            self._unread.put(None)  # stays at the end for the next caller
        return line

    def wait_closed(self, timeout: float) -> None:
        self._thread.join(timeout)


class CLIProcess:
    """``sipsimple ARGS...`` with stdin, stdout and stderr as pipes, in :func:`cli_env` unless ``env`` is given.

    ``send(line)`` writes a line to its stdin; ``wait_line(match)`` returns the next line
    of stdout (or ``stream="stderr"``), after those already returned, that ``match`` accepts
    (a substring, or a predicate); ``lines`` and ``stderr_lines`` hold all that was read
    so far; ``finish()`` closes stdin and returns the exit status with the whole stdout.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.process = subprocess.Popen([sys.executable, "-m", "sipsimple", *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, cwd=ROOT, env=cli_env() if env is None else env)
        self._out = {"stdout": _Output(self.process.stdout), "stderr": _Output(self.process.stderr)}

    @property
    def lines(self) -> list[str]:
        return self._out["stdout"].lines

    @property
    def stderr_lines(self) -> list[str]:
        return self._out["stderr"].lines

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def next_line(self, stream: str = "stdout", timeout: float = TIMEOUT) -> str | None:
        """The next line of ``stream`` not returned yet; None once it ended."""
        try:
            return self._out[stream].next(timeout)
        except queue.Empty:
            raise AssertionError(f"no line on {stream} within {timeout} s; {self._so_far()}") from None

    def wait_line(self, match: str | Callable[[str], bool], timeout: float = TIMEOUT, stream: str = "stdout") -> str:
        accept = (lambda line: match in line) if isinstance(match, str) else match
        while True:
            line = self.next_line(stream, timeout)
            if line is None:
                raise AssertionError(f"{' '.join(self.args[:1])} ended before a line matching {match!r} "
                                     f"on {stream}; {self._so_far()}")
            if accept(line):
                return line

    def _so_far(self) -> str:
        return "output so far:\n" + "\n".join(self.lines) + "\nstderr:\n" + "\n".join(self.stderr_lines)

    def address(self, stream: str = "stdout") -> str:
        """The URI of its ``listening on URI`` line (``sipsimple session`` says it on stdout, the others on stderr)."""
        return self.wait_line(lambda line: line.startswith("listening on "), stream=stream).removeprefix("listening on ")

    def rest(self, stream: str = "stdout", timeout: float = TIMEOUT) -> list[str]:
        """The lines of ``stream`` not returned yet, up to its end (the process must be ending)."""
        rest = []
        while (line := self.next_line(stream, timeout)) is not None:
            rest.append(line)
        return rest

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Close its stdin, wait for it to exit and its output to be read; (exit status, whole stdout)."""
        if not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        status = self.process.wait(timeout)
        for output in self._out.values():
            output.wait_closed(timeout)
        return status, "\n".join(self.lines)

    def stop(self) -> None:
        """Kill it if it still runs."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> CLIProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
