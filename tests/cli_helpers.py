"""Helpers for tests that run ``sipsimple`` commands as subprocesses.

``run_cli``, ``cli_env``, ``proxy_args``, ``ROOT`` and ``TIMEOUT`` live in
tests/test_cli_message.py (the first CLI tests) and are re-exported here;
:class:`CLIProcess` is a long-running command driven through its stdin and
read line by line, without sleeping: every wait is for a line of its output.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable

from tests.test_cli_message import ROOT, TIMEOUT, cli_env, proxy_args, run_cli

__all__ = ["CLIProcess", "ROOT", "TIMEOUT", "cli_env", "proxy_args", "run_cli"]


class CLIProcess:
    """``sipsimple ARGS...`` with stdin, stdout and stderr as pipes.

    ``send(line)`` writes a line to its stdin; ``wait_line(match)`` returns the
    next stdout line (after those already returned) that ``match`` accepts (a
    substring, or a predicate), keeping every line read in ``lines``;
    ``finish()`` closes stdin and returns the exit status with the whole output.
    Unless ``env`` is given, it runs with an empty configuration directory of its own.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = args
        if env is None:
            # accounts the developer configured must not change what the test runs as
            self._config = tempfile.TemporaryDirectory(prefix="sipsimple-config-")
            env = {**cli_env(), "SIPSIMPLE_CONFIG_DIR": self._config.name}
        self.process = subprocess.Popen([sys.executable, "-m", "sipsimple", *args],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, cwd=ROOT, env=env)
        self._stdout: queue.Queue = queue.Queue()
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self._stdout.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process.stderr, self._keep_stderr), daemon=True).start()

    @staticmethod
    def _read(stream, put: Callable[[str | None], None]) -> None:
        for line in stream:
            put(line.rstrip("\n"))
        put(None)

    def _keep_stderr(self, line: str | None) -> None:
        if line is not None:
            self.stderr_lines.append(line)

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def wait_line(self, match: str | Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        accept = (lambda line: match in line) if isinstance(match, str) else match
        while True:
            try:
                line = self._stdout.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line matching {match!r} within {timeout} s; output so far:\n"
                                     + "\n".join(self.lines)) from None
            if line is None:
                self._stdout.put(None)  # stays at the end for the next caller
                raise AssertionError(f"{' '.join(self.args[:1])} ended before a line matching {match!r}; "
                                     f"output:\n" + "\n".join(self.lines) + "\nstderr:\n" + "\n".join(self.stderr_lines))
            self.lines.append(line)
            if accept(line):
                return line

    def address(self) -> str:
        """The URI of its ``listening on URI`` line."""
        return self.wait_line(lambda line: line.startswith("listening on ")).removeprefix("listening on ")

    def finish(self, timeout: float = TIMEOUT) -> tuple[int, str]:
        """Close its stdin, wait for it to exit; (exit status, whole stdout)."""
        if not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        status = self.process.wait(timeout)
        while (line := self._stdout.get(timeout=timeout)) is not None:
            self.lines.append(line)
        self._stdout.put(None)
        return status, "\n".join(self.lines)

    def __enter__(self) -> CLIProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
