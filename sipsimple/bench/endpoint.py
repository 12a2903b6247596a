"""The endpoint under test of the ``message`` benchmark, run as a child process.

    python -m sipsimple.bench.endpoint PORT [--profile FILE]

It starts the sipsimple Engine on 127.0.0.1:PORT (UDP only) and counts the
``SCEngineGotMessage`` notifications it receives (the stack answers every
MESSAGE 200; the observer runs on the Engine thread). The parent talks to it
over stdin/stdout, one JSON document per line:

- at start it prints ``{"ready": true, "port": PORT, "pid": PID}``
  (or ``{"ready": false, "error": "..."}``);
- for ``stats`` it prints ``{"count", "body_bytes", "cpu", "utime", "stime", "rss_kb", "threads"}``,
  CPU-seconds being this whole process's (os.times());
- ``trim`` calls glibc's ``malloc_trim(0)`` and prints ``{"rss_kb"}`` (a diagnostic);
- ``quit`` (or end of input) stops the Engine and exits.

``--rcvbuf BYTES`` enlarges the receive buffer of the stack's UDP socket
(a diagnostic for datagram drops; the Engine has no option for it).

With ``--profile FILE`` the Engine thread runs under cProfile (the profiler
is switched on by the first profiling event in each new thread) and the
statistics are written to FILE on ``quit``.

The parent's side of this conversation, for this child and the ``cps`` one
(:mod:`sipsimple.bench.cps_endpoint`, which speaks the same commands), is
:class:`EndpointProcess`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path


def reply(doc: dict) -> None:
    """One JSON line to the parent on stdout."""
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def serve_commands(stats: Callable[[], dict]) -> None:
    """Answer the parent's commands on stdin until ``quit`` or EOF: stats, trim, quit."""
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            times = os.times()
            status = read_status()
            reply({**stats(), "cpu": times.user + times.system, "utime": times.user, "stime": times.system,
                   "rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM"), "threads": status.get("Threads")})
        elif command == "trim":
            # diagnostic: give free heap memory back to the OS, then report RSS
            import ctypes

            try:
                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass
            reply({"rss_kb": read_status().get("VmRSS")})
        elif command == "quit":
            break
        elif command:
            reply({"error": f"unknown command {command!r}"})


class EndpointProcess:
    """The parent's handle on an endpoint child: ``python -m MODULE ARGS...`` with this source tree first
    on PYTHONPATH, started once it says it is ready; then one command a line, one JSON answer each.

    The children of ``message`` and ``cps`` take bare words (``stats``) and say their port when
    ready; the ``media`` ones take JSON commands and have no SIP port: a subclass says so
    with :attr:`quit_command` (what :meth:`close` sends) and finds ``port`` and ``address`` None.
    """

    name = "ours"  # the side it is in a benchmark's comparison
    quit_command = "quit"
    quit_timeout = 15.0  # for it to stop and exit once asked

    def __init__(self, module: str, args: list[str], what: str = "the endpoint") -> None:
        self.what = what  # names it in errors
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        try:
            ready = self._read()
        except BaseException:
            self._kill()
            raise
        if not ready.get("ready"):
            self._kill()
            raise RuntimeError(f"{what} did not start: {ready}")
        self.ready = ready
        self.pid: int = ready["pid"]
        self.port: int | None = ready.get("port")
        self.address = f"127.0.0.1:{self.port}" if self.port is not None else None

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.what} exited (rc={self.process.poll()})")
        return json.loads(line)

    def _command(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def _kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stats(self) -> dict:
        return self._command("stats")

    def trim(self) -> dict:
        return self._command("trim")

    def close(self) -> dict:
        """Ask it to quit; its last answer (``{"stopped": true, ...}``), or {} when it had to be killed."""
        try:
            final = self._command(self.quit_command)
            self.process.wait(self.quit_timeout)
            return final
        except Exception:  # it died, hangs, or its pipe is gone: it must not outlive the benchmark
            self._kill()
            return {}


def read_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads of a process, from /proc/PID/status."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def set_udp_rcvbuf(ip: str, port: int, size: int) -> int | None:
    """Diagnostic: enlarge SO_RCVBUF of the stack's UDP socket bound to ip:port; returns the new size.

    The socket is found among this process's descriptors and changed through a
    duplicate (``socket.fromfd``), which is then closed; the stack's own
    descriptor is untouched otherwise.
    """
    import socket

    for name in os.listdir("/proc/self/fd"):
        try:
            fd = int(name)
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            dup = socket.fromfd(fd, socket.AF_INET, socket.SOCK_DGRAM)
        except (OSError, ValueError):
            continue
        try:
            if dup.type == socket.SOCK_DGRAM and dup.getsockname() == (ip, port):
                dup.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                return dup.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError:
            pass
        finally:
            dup.close()
    return None


class Counter:
    """The observer: counts the MESSAGEs Python sees (and touches their body)."""

    def __init__(self) -> None:
        self.count = 0
        self.body_bytes = 0

    def __call__(self, notification) -> None:
        body = notification.data.body
        self.count += 1
        self.body_bytes += len(body) if body else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sipsimple.bench.endpoint")
    parser.add_argument("port", type=int)
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--rcvbuf", type=int, metavar="BYTES",
                        help="diagnostic: set SO_RCVBUF of the UDP socket (the core does not expose it)")
    args = parser.parse_args(argv)

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

        def _enable(*_args):
            sys.setprofile(None)
            profiler.enable()

        threading.setprofile(_enable)

    from sipsimple.core import Engine
    from sipsimple.notification import NotificationCenter

    counter = Counter()                       # strong reference: observers are weakly held
    NotificationCenter().add_observer(counter, name="SCEngineGotMessage")
    engine = Engine()
    try:
        engine.start(local_ip=args.ip, udp_port=args.port, transports=("udp",))
    except Exception as exc:  # report, do not hang the parent
        reply({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    threading.setprofile(None)
    rcvbuf = set_udp_rcvbuf(args.ip, engine.udp_port, args.rcvbuf) if args.rcvbuf else None
    reply({"ready": True, "port": engine.udp_port, "pid": os.getpid(), "rcvbuf": rcvbuf})

    serve_commands(lambda: {"count": counter.count, "body_bytes": counter.body_bytes})
    engine.stop()
    if profiler is not None:
        profiler.dump_stats(args.profile)
    reply({"stopped": True, "count": counter.count})
    return 0


if __name__ == "__main__":
    sys.exit(main())
