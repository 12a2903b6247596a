"""One side of the ``media`` benchmark, run as a child process.

    python -m sipsimple.bench.media_endpoint [--sample-rate HZ] [--frame-ms MS] [--port-range LO-HI] [--udp]

It starts the media engine (clocked null device) and hosts N AudioTransports
(or, with ``--udp``, N plain UDP sockets driven by a Python loop: the physical
reference). The parent talks to it over stdin/stdout, one JSON document per
line, ``{"cmd": NAME, ...}`` in and one JSON document out:

- at start ``{"ready": true, "pid": PID, "sample_rate": HZ}`` (or ``{"ready": false, "error": ...}``);
- ``offer`` {n, codec, srtp, ptime}: create n transports, reply ``{"media": [offer, ...]}``;
- ``answer`` {offers, codec, srtp, ptime, append}: create one transport per offer (after
  the existing ones with ``append``), start it with the offer, reply ``{"media": [answer, ...]}``;
- ``start`` {answers, offset}: start the transports created by ``offer`` from ``offset`` on
  (the parent starts both sides batch by batch, so that no stream starts long after its
  peer began sending to it);
- ``wire``: a ToneGenerator feeds every transport but the first; the first is fed by a
  NumpyTap (clicks for the latency probe, else silence) and its output goes to another
  NumpyTap, and a third tap monitors what the click tap sends;
- ``stats``: this process's CPU seconds, RSS, the engine's counters and the streams'
  counters summed (``streams``), with how many streams received audio, the mean
  jitter-buffer wait and margin over the streams, and the probe stream's buffer state;
- ``listen`` {seconds}: watch the monitor tap and the receive tap for click onsets in a
  thread for that long; ``clicks`` {count, interval}: write count clicks into the click tap
  (returns when written); ``onsets``: wait for the watcher and reply
  ``{"sent": [ns, ...], "received": [ns, ...]}`` (CLOCK_MONOTONIC, shared by the processes);
- ``clear``: stop every transport and port; ``quit`` (or end of input): stop and exit.

UDP reference (``--udp``): ``offer``/``answer`` create n socket pairs' halves bound on
127.0.0.1 (``answer`` also connects them), ``start`` connects the offerer's, and
``run`` {size} starts a thread that every 20 ms sends one ``size``-byte datagram on
every socket and reads every datagram waiting (epoll), i.e. the packet pattern of the
media streams without codec, SRTP, jitter buffer or bridge; ``stats`` reports sent and
received counts and CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from sipsimple.bench.endpoint import read_status

CLICK_FREQUENCY = 1000.0
CLICK_AMPLITUDE = 12000
CLICK_MS = 60
ONSET_THRESHOLD = 3000       # a quarter of the click's amplitude
ONSET_QUIET_MS = 100         # an onset follows at least this much quiet
STREAM_COUNTERS = ("tx_packets", "tx_bytes", "rx_packets", "rx_bytes", "rx_expected", "rx_lost", "rx_late",
                   "rx_duplicates", "rx_srtp_errors", "rx_bad", "rx_short", "rx_unknown_pt", "plc_frames",
                   "decode_errors", "send_errors", "jb_underruns", "jb_dropped", "rtcp_sent", "rtcp_received")

PROBE_KEYS = ("jb_wait_ms", "jb_target_ms", "jb_buffered", "jb_underruns", "jb_dropped", "jb_skipped_silent",
              "plc_frames", "rx_late", "rx_lost")


def _cpu() -> float:
    return time.process_time()     # CLOCK_PROCESS_CPUTIME_ID: every thread, ns resolution


class OnsetWatcher:
    """Watches NumpyTaps for click onsets, timed by the media clock itself.

    ``NumpyTap.read_stamped()`` gives every sample the CLOCK_MONOTONIC time of the
    media tick that delivered its frame plus its offset in the frame, so an onset
    is timed exactly however late the watcher reads: it polls every 10 ms, and its
    CPU does not disturb the engines being measured (a tight poll loop did, at
    high stream counts). Onsets carry an uncertainty of 0 (kept for the format).
    """

    def __init__(self, taps: dict, rate: int, frame: int) -> None:
        self.taps = taps
        self.rate = rate
        self.frame = frame
        self.onsets: dict[str, list[tuple[int, int]]] = {name: [] for name in taps}
        self._quiet = {name: 10 ** 9 for name in taps}
        self.phase_points: dict[str, list[int]] = {name: [] for name in taps}
        self.thread: threading.Thread | None = None
        self.max_poll_gap_ns = 0

    def start(self, seconds: float) -> None:
        for tap in self.taps.values():
            tap.read()
        self.thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self.thread.start()

    def _run(self, seconds: float) -> None:
        import numpy as np

        deadline = time.monotonic_ns() + int(seconds * 1e9)
        period_ns = self.frame * 1_000_000_000 // self.rate
        quiet_samples = ONSET_QUIET_MS * self.rate // 1000
        last = time.monotonic_ns()
        while True:
            now = time.monotonic_ns()
            self.max_poll_gap_ns = max(self.max_poll_gap_ns, now - last)
            last = now
            for name, tap in self.taps.items():
                samples, times = tap.read_stamped()
                if len(samples) == 0:
                    continue
                # whole frames are read, so every frame-th sample starts one: its tick
                self.phase_points[name].extend(int(t) % period_ns for t in times[::self.frame] if t)
                loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > ONSET_THRESHOLD)
                quiet = self._quiet[name]
                previous = -1
                for index in loud:
                    gap = quiet + index if previous < 0 else index - previous - 1
                    if gap >= quiet_samples and times[index]:
                        self.onsets[name].append((int(times[index]), 0))
                    previous = int(index)
                self._quiet[name] = (len(samples) - 1 - previous) if previous >= 0 else quiet + len(samples)
            if now > deadline:
                return
            time.sleep(0.01)

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def phases(self) -> dict:
        """Per tap, the phase (ns within a frame period, circular mean) of the ticks delivering its frames."""
        import cmath
        import math

        period_ns = self.frame * 1_000_000_000 // self.rate
        out = {}
        for name, points in self.phase_points.items():
            if len(points) < 5:
                out[name] = None
                continue
            mean = sum(cmath.exp(2j * math.pi * p / period_ns) for p in points) / len(points)
            out[name] = int((cmath.phase(mean) % (2 * math.pi)) / (2 * math.pi) * period_ns)
        return out


class MediaSide:
    """The transports of one side and their sources and sinks."""

    def __init__(self, port_range: tuple[int, int]) -> None:
        from sipsimple.core._media import MediaEngine

        self.engine = MediaEngine()
        self.port_range = port_range
        self.transports: list = []
        self.tone = None
        self.click_tap = None
        self.monitor_tap = None
        self.rx_tap = None
        self.watcher: OnsetWatcher | None = None

    def _create(self, n: int, codec: str, srtp: bool, ptime: int, suites: list | None, append: bool = False,
                jitter_min_ms: int = 0) -> None:
        from sipsimple.core._media import AudioTransport

        if not append:
            self.clear()
        for _ in range(n):
            self.transports.append(AudioTransport(local_ip="127.0.0.1", port_range=self.port_range,
                                                  srtp="mandatory" if srtp else "off", codecs=[codec],
                                                  srtp_suites=suites or None, ptime=ptime,
                                                  no_audio_timeout=60.0, rtp_timeout=60.0,
                                                  jitter_min_ms=jitter_min_ms))

    def offer(self, n: int, codec: str, srtp: bool, ptime: int = 20, suites: list | None = None,
              jitter_min_ms: int = 0) -> dict:
        self._create(n, codec, srtp, ptime, suites, jitter_min_ms=jitter_min_ms)
        return {"media": [t.local_media() for t in self.transports]}

    def answer(self, offers: list, codec: str, srtp: bool, ptime: int = 20, suites: list | None = None,
               append: bool = False, jitter_min_ms: int = 0) -> dict:
        first = len(self.transports) if append else 0
        self._create(len(offers), codec, srtp, ptime, suites, append, jitter_min_ms)
        answers = []
        for t, offer in zip(self.transports[first:], offers, strict=False):
            answers.append(t.local_media(offer))
            t.start(offer)
        return {"media": answers}

    def start(self, answers: list, offset: int = 0) -> dict:
        for t, answer in zip(self.transports[offset:], answers, strict=False):
            t.start(answer)
        return {"started": len(answers)}

    def wire(self) -> dict:
        self._wire()
        return {"wired": len(self.transports)}

    def _wire(self) -> None:
        from sipsimple.core._media import NumpyTap, ToneGenerator

        self.tone = ToneGenerator(440, level=-12.0)
        self.click_tap = NumpyTap()
        self.monitor_tap = NumpyTap()
        self.rx_tap = NumpyTap()
        first = self.transports[0]
        self.engine.connect(self.click_tap, first)
        self.engine.connect(self.click_tap, self.monitor_tap)
        self.engine.connect(first, self.rx_tap)
        for t in self.transports[1:]:
            self.engine.connect(self.tone, t)

    def stats(self) -> dict:
        sums = dict.fromkeys(STREAM_COUNTERS, 0)
        with_audio = 0
        buffered = 0
        waits = []
        margins = []
        codec = None
        srtp = None
        for t in self.transports:
            s = t.statistics
            for key in STREAM_COUNTERS:
                sums[key] += s.get(key) or 0
            with_audio += 1 if s.get("audio_received") else 0
            buffered += s.get("jb_buffered") or 0
            waits.append(s.get("jb_wait_ms") or 0.0)
            margins.append(s.get("jb_target_ms") or 0.0)
            codec = s.get("codec")
            srtp = s.get("srtp_suite") if s.get("srtp_active") else None
        status = read_status()
        return {"cpu": _cpu(), "t": time.monotonic(), "rss_kb": status.get("VmRSS"), "threads": status.get("Threads"),
                "engine": self.engine.statistics, "streams": sums, "n": len(self.transports),
                "with_audio": with_audio, "codec": codec,
                "jb_buffered_mean": round(buffered / len(self.transports), 2) if self.transports else None,
                "jb_wait_ms_mean": round(sum(waits) / len(waits), 2) if waits else None,
                "jb_margin_ms_mean": round(sum(margins) / len(margins), 2) if margins else None,
                "probe": {key: self.transports[0].statistics.get(key) for key in PROBE_KEYS} if self.transports else None,
                "srtp_active": srtp,
                "sample_rate": self.engine.sample_rate}

    def listen(self, seconds: float) -> dict:
        self.watcher = OnsetWatcher({"sent": self.monitor_tap, "received": self.rx_tap},
                                    self.engine.sample_rate, self.engine.frame_samples)
        self.watcher.start(seconds)
        return {"listening": True}

    def clicks(self, count: int, interval: float) -> dict:
        import numpy as np

        rate = self.engine.sample_rate
        n = rate * CLICK_MS // 1000
        click = (CLICK_AMPLITUDE * np.sin(2 * np.pi * CLICK_FREQUENCY * np.arange(n) / rate)).astype(np.int16)
        for _ in range(count):
            self.click_tap.write(click)
            time.sleep(interval)
        return {"written": count}

    def onsets(self) -> dict:
        if self.watcher is None:
            return {"sent": [], "received": []}
        self.watcher.wait()
        doc = dict(self.watcher.onsets)
        doc["max_poll_gap_ms"] = round(self.watcher.max_poll_gap_ns / 1e6, 2)
        doc["phase_ns"] = self.watcher.phases()
        doc["period_ns"] = self.engine.frame_samples * 1_000_000_000 // self.engine.sample_rate
        self.watcher = None
        return doc

    def clear(self) -> dict:
        for obj in [*self.transports, self.tone, self.click_tap, self.monitor_tap, self.rx_tap]:
            if obj is not None:
                obj.stop()
        self.transports = []
        self.tone = self.click_tap = self.monitor_tap = self.rx_tap = None
        return {"cleared": True}


class UdpSide:
    """The physical reference: the same datagram pattern over plain sockets from a Python loop."""

    def __init__(self, port_range: tuple[int, int]) -> None:
        self.port_range = port_range
        self.sockets: list = []
        self.thread: threading.Thread | None = None
        self.running = False
        self.sent = self.received = self.send_errors = self.late_ticks = 0

    def _bind(self, n: int) -> list[dict]:
        import socket

        self.clear()
        port = self.port_range[0]
        while len(self.sockets) < n:
            if port > self.port_range[1]:
                raise RuntimeError("no free port left in the range")
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                port += 1
                continue
            s.setblocking(False)
            self.sockets.append(s)
            port += 1
        return [{"address": "127.0.0.1", "port": s.getsockname()[1]} for s in self.sockets]

    def offer(self, n: int, **_ignored) -> dict:
        return {"media": self._bind(n)}

    def answer(self, offers: list, **_ignored) -> dict:
        media = self._bind(len(offers))
        for s, offer in zip(self.sockets, offers, strict=True):
            s.connect((offer["address"], offer["port"]))
        return {"media": media}

    def start(self, answers: list) -> dict:
        for s, answer in zip(self.sockets, answers, strict=True):
            s.connect((answer["address"], answer["port"]))
        return {"started": len(self.sockets)}

    def run(self, size: int, frame_ms: int = 20) -> dict:
        self.running = True
        self.thread = threading.Thread(target=self._loop, args=(size, frame_ms), daemon=True)
        self.thread.start()
        return {"running": True}

    def _loop(self, size: int, frame_ms: int) -> None:
        import select

        payload = os.urandom(size)
        ep = select.epoll()
        by_fd = {}
        for s in self.sockets:
            ep.register(s.fileno(), select.EPOLLIN)
            by_fd[s.fileno()] = s
        period = frame_ms / 1000.0
        due = time.monotonic()
        try:
            while self.running:
                timeout = due - time.monotonic()
                events = ep.poll(max(timeout, 0.0))
                for fd, _ in events:
                    s = by_fd[fd]
                    while True:
                        try:
                            s.recv(2048)
                        except BlockingIOError:
                            break
                        except OSError:
                            break
                        self.received += 1
                now = time.monotonic()
                if now >= due:
                    ticks = 1 + int((now - due) / period)
                    if ticks > 5:
                        self.late_ticks += ticks - 5
                        ticks = 5
                    due += ticks * period if ticks < 5 else (now - due) + period
                    for _ in range(ticks):
                        for s in self.sockets:
                            try:
                                s.send(payload)
                                self.sent += 1
                            except OSError:
                                self.send_errors += 1
        finally:
            ep.close()

    def stats(self) -> dict:
        status = read_status()
        return {"cpu": _cpu(), "t": time.monotonic(), "rss_kb": status.get("VmRSS"),
                "n": len(self.sockets), "streams": {"tx_packets": self.sent, "rx_packets": self.received,
                                                    "send_errors": self.send_errors},
                "engine": {"late_ticks": self.late_ticks}}

    def clear(self) -> dict:
        self.running = False
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        for s in self.sockets:
            s.close()
        self.sockets = []
        return {"cleared": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sipsimple.bench.media_endpoint")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--frame-ms", type=int, default=20)
    parser.add_argument("--port-range", default="20000-29999")
    parser.add_argument("--udp", action="store_true", help="the plain-socket reference instead of the media engine")
    args = parser.parse_args(argv)
    lo, _, hi = args.port_range.partition("-")
    port_range = (int(lo), int(hi))

    def reply(doc: dict) -> None:
        sys.stdout.write(json.dumps(doc) + "\n")
        sys.stdout.flush()

    try:
        if args.udp:
            side = UdpSide(port_range)
        else:
            from sipsimple.core._media import MediaEngine

            MediaEngine().start(sample_rate=args.sample_rate, frame_ms=args.frame_ms, device="null")
            side = MediaSide(port_range)
    except Exception as exc:  # report, do not hang the parent
        reply({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    reply({"ready": True, "pid": os.getpid(), "sample_rate": args.sample_rate, "udp": args.udp})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            command = request.pop("cmd")
            if command == "quit":
                break
            handler = getattr(side, command, None)
            if handler is None or command.startswith("_"):
                raise ValueError(f"unknown command {command!r}")
            reply(handler(**request))
        except Exception as exc:
            reply({"error": f"{type(exc).__name__}: {exc}"})
    try:
        side.clear()
        if not args.udp:
            from sipsimple.core._media import MediaEngine

            MediaEngine().stop()
    finally:
        reply({"stopped": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
