"""The endpoint under test of the ``cps`` benchmark, run as a child process.

    python -m sipsimple.bench.cps_endpoint PORT

It starts the Engine on 127.0.0.1:PORT (UDP only) and the SessionManager, and
accepts every incoming session with audio through the full Session path: SDP
offer/answer in the middleware, an AudioTransport started on the media
engine (clocked null device) and stopped when the caller's BYE ends the call.
The parent talks to it over stdin/stdout, one JSON document per line:

- at start ``{"ready": true, "port": PORT, "pid": PID}`` (or ``{"ready": false, "error": ...}``);
- ``stats``: ``{"incoming", "started", "ended", "failed", "active", "errors", "cpu", "rss_kb",
  "hwm_kb", "threads"}``, CPU-seconds being this whole process's;
- ``trim``: glibc ``malloc_trim(0)``, then ``{"rss_kb"}`` (a diagnostic);
- ``quit`` (or end of input): stop the engines and exit.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from sipsimple.bench.endpoint import reply, serve_commands

EVENTS = ("SCSessionNewIncoming", "SCSessionDidStart", "SCSessionDidFail", "SCSessionDidEnd")


class Answerer:
    """Accepts every incoming session with audio and counts what happens to them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.incoming = self.started = self.ended = self.failed = self.accept_errors = 0
        self.errors: dict[str, int] = {}
        self.codecs: dict[str, int] = {}

    def handle_notification(self, notification) -> None:
        name = notification.name
        if name == "SCSessionNewIncoming":
            try:
                notification.sender.accept(audio=True)
            except Exception as exc:
                with self.lock:
                    self.accept_errors += 1
                    key = f"accept: {type(exc).__name__}: {exc}"[:120]
                    self.errors[key] = self.errors.get(key, 0) + 1
            with self.lock:
                self.incoming += 1
        elif name == "SCSessionDidStart":
            codec = notification.sender.audio_codec or "none"
            with self.lock:
                self.started += 1
                self.codecs[codec] = self.codecs.get(codec, 0) + 1
        elif name == "SCSessionDidFail":
            key = f"{notification.data.code} {notification.data.reason}"[:120]
            with self.lock:
                self.failed += 1
                self.errors[key] = self.errors.get(key, 0) + 1
        elif name == "SCSessionDidEnd":
            with self.lock:
                self.ended += 1

    def snapshot(self) -> dict:
        with self.lock:
            return {"incoming": self.incoming, "started": self.started, "ended": self.ended,
                    "failed": self.failed, "accept_errors": self.accept_errors,
                    "errors": dict(self.errors), "codecs": dict(self.codecs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sipsimple.bench.cps_endpoint")
    parser.add_argument("port", type=int)
    parser.add_argument("--ip", default="127.0.0.1")
    args = parser.parse_args(argv)

    from sipsimple.core import Engine
    from sipsimple.core._media import MediaEngine
    from sipsimple.notification import NotificationCenter
    from sipsimple.session import SessionManager

    answerer = Answerer()  # strong reference: observers are held weakly
    for name in EVENTS:
        NotificationCenter().add_observer(answerer, name=name)
    engine = Engine()
    try:
        engine.start(local_ip=args.ip, udp_port=args.port, transports=("udp",))
        MediaEngine().start()  # up front, so the first call does not pay for it
        manager = SessionManager()
    except Exception as exc:  # report, do not hang the parent
        reply({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    reply({"ready": True, "port": engine.udp_port, "pid": os.getpid()})

    serve_commands(lambda: {**answerer.snapshot(), "active": len(manager.sessions)})
    engine.stop()
    MediaEngine().stop()
    reply({"stopped": True, **answerer.snapshot()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
