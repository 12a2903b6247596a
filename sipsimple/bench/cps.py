"""Workload ``cps``: calls per second from sipp into our SessionManager, beside baresip auto-answering.

Between processes, all on 127.0.0.1 over UDP:

- ours: a child process (:mod:`sipsimple.bench.cps_endpoint`) running the Engine
  and the SessionManager, accepting every incoming session with audio through the
  full Session path (SDP offer/answer, an AudioTransport started on the media
  engine's clocked null device, stopped at the BYE); it reports its counts, CPU
  time and RSS over a control pipe;
- peer: baresip auto-answering (``audio_player aubridge,sink``, a short WAV as
  its source, ``call_max_calls 255``, no recording), CPU time and RSS read from
  /proc/PID;
- load: sipp's built-in ``uac`` (``-sn uac -d CALL_MS``: INVITE with PCMU SDP,
  ACK, a pause of CALL_MS, BYE) at ``-r RATE -m RATE*DURATION``, run against each
  target in turn, alternating which goes first, at rising rates.

A step is clean when sipp exits 0 with every call successful, no failed call, no
retransmission and an achieved rate of at least 90 % of the asked one, and (for
ours) every call was started and ended by a Session with no SCSessionDidFail.
Each side stops at its first unclean step. CPU per 1000 calls is the process's
CPU time over the step (until its calls have ended) per successful call; it
includes the media (RTP both ways for every call). RSS is read at start and after
the sweep, and with ``full`` after a further 20,000 calls at a rate both handled.
baresip 1.0 refuses calls beyond 255 at once, so with 1 s calls its clean rate
tops out below ~250/s: that is its configuration's ceiling, not its speed.
"""

from __future__ import annotations

import math
import re
import tempfile
import time
import wave
from pathlib import Path

from sipsimple.bench import rising
from sipsimple.bench.endpoint import EndpointProcess, read_status
from sipsimple.bench.rising import proc_cpu

__all__ = ["run", "DEFAULT_RATES", "GOAL_RATE", "CALL_MS", "FULL_CALLS"]

DEFAULT_RATES = (25, 50, 100, 150, 200, 300, 400)
GOAL_RATE = 400
CALL_MS = 1000
FULL_CALLS = 20000
BARESIP_MAX_CALLS = 255


def _baresip_class():
    """tests.peers.baresip.Baresip, configured for load (imported from the source tree like sipp's helpers)."""
    rising.sipp_peers()  # puts the source tree on sys.path when needed
    from tests.peers.baresip import Baresip
    from tests.peers.ports import free_port_range

    class LoadBaresip(Baresip):
        """baresip for many calls: 255 at once, a wide RTP port range, no per-call recording."""

        def _write_config(self) -> None:
            super()._write_config()
            config = self.run_dir / "config"
            text = config.read_text()
            low = free_port_range(1024, tcp=False)
            self.rtp_ports = (low, low + 1023)
            text = re.sub(r"(?m)^call_max_calls\s+\d+$", f"call_max_calls\t\t{BARESIP_MAX_CALLS}", text)
            text = re.sub(r"(?m)^rtp_ports\s+.*$", f"rtp_ports\t\t{low}-{low + 1023}", text)
            text = re.sub(r"(?m)^module\s+sndfile\.so\n", "", text)
            config.write_text(text)

    return LoadBaresip


def write_tone_wav(path: Path, seconds: float, frequency: float = 440.0, rate: int = 8000) -> Path:
    """A mono 16-bit WAV of a sine tone (baresip's source: short, since it is loaded per call)."""
    frames = bytearray()
    amplitude = 0.3 * 32767
    for i in range(int(rate * seconds)):
        frames += int(amplitude * math.sin(2 * math.pi * frequency * i / rate)).to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


class OurEndpoint(EndpointProcess):
    """Our endpoint: the child process with the SessionManager answering every call."""

    def __init__(self, port: int) -> None:
        super().__init__("sipsimple.bench.cps_endpoint", [str(port)])

    def settle(self, before: dict, expected: int, timeout: float = 15.0) -> dict:
        """Stats once ``expected`` more calls have ended and none is active (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self.stats()
            if (now["ended"] - before["ended"] >= expected and now["active"] == 0) or time.monotonic() > deadline:
                return now
            time.sleep(0.05)


class PeerBaresip:
    """The peer: baresip answering every call by itself."""

    name = "peer"

    def __init__(self, run_dir: Path) -> None:
        audio = write_tone_wav(run_dir.parent / "baresip-source.wav", seconds=CALL_MS / 1000 + 2.0)
        self.baresip = _baresip_class()(run_dir, user="bob", answermode="auto", audio_codecs="pcmu",
                                        audio_file=audio)
        self.baresip.start()
        # nobody reads its ctrl_tcp events during the load: close it so it never blocks on a full socket
        self.baresip.ctrl.close()
        self.baresip.ctrl = None
        self.pid = self.baresip.process.pid
        self.port = self.baresip.sip_port
        self.address = f"127.0.0.1:{self.port}"

    def stats(self) -> dict:
        status = read_status(self.pid)
        return {"cpu": proc_cpu(self.pid), "rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM")}

    def settle(self, before: dict, expected: int, timeout: float = 0.0) -> dict:
        time.sleep(0.5)  # its calls ended with sipp's BYEs; let it finish tearing them down
        return self.stats()

    def close(self) -> dict:
        self.baresip.stop()
        return {}


def _load(sipp_module, target, rate: int, count: int, call_ms: int, run_dir: Path) -> dict:
    """``count`` calls of ``call_ms`` at ``rate`` into ``target``; what happened there and at sipp."""
    def send():
        limit = max(10, int(rate * (call_ms / 1000 + 1) * 2))
        return sipp_module.run_sipp("uac", target.address, builtin=True, run_dir=run_dir, service="bob",
                                    calls=count, rate=rate, timeout=count / rate * 3 + call_ms / 1000 + 30,
                                    trace=False, extra=["-d", str(call_ms), "-l", str(limit)])

    def achieved(result, wall: float) -> float:
        # sipp's CallRate(C) counts the last calls' hold time too: take the rate calls were placed at
        return result.created / max(wall - call_ms / 1000, 0.001) if result.created else 0.0

    step, before, after = rising.measure(target, rate, count, send, achieved)
    if "started" in after:
        step["python_seen"] = after["started"] - before["started"]
        step["sessions_ended"] = after["ended"] - before["ended"]
        step["sessions_failed"] = after["failed"] - before["failed"]
        step["still_active"] = after["active"]
        problems = step["problems"]
        if step["python_seen"] < step["successful"]:
            problems.append(f"{step['python_seen']} of {step['successful']} sessions started")
        if step["sessions_failed"]:
            problems.append(f"{step['sessions_failed']} sessions failed: {after.get('errors')}")
        if after["active"]:
            problems.append(f"{after['active']} sessions still active")
    return rising.judge(step)


def run(duration: float = 4.0, rates: list[int] | None = None, full: bool = False, call_ms: int = CALL_MS,
        full_calls: int = FULL_CALLS, **_options) -> dict:
    """Run the rate sweep (and with ``full`` the 20,000-call RSS check); see the module docstring."""
    sipp_module, free_port = rising.sipp_peers()
    rates = list(rates or DEFAULT_RATES)
    base_dir = Path(tempfile.mkdtemp(prefix="sipsimple-bench-cps-"))
    sides = rising.SIDES
    targets = {"ours": OurEndpoint(free_port())}
    try:
        targets["peer"] = PeerBaresip(base_dir / "baresip")
    except BaseException:
        targets["ours"].close()
        raise
    rss: dict = {}
    full_run: dict | None = None
    final: dict = {}
    try:
        time.sleep(0.5)
        rss["start"] = {side: targets[side].stats()["rss_kb"] for side in sides}
        sweep = rising.sweep(
            rates, duration, lambda side, rate, count: _load(sipp_module, targets[side], rate, count, call_ms,
                                                             base_dir / f"uac-{side}-{rate}"))
        rss["after_sweep"] = {side: targets[side].stats()["rss_kb"] for side in sides}
        if full:
            common = sweep.highest_common_rate()
            rate = min(common, 200) if common else rates[0]
            full_run = {"calls": full_calls, "rate": rate}
            for side in sides:
                step = _load(sipp_module, targets[side], rate, full_calls, call_ms, base_dir / f"full-{side}")
                full_run[side] = {k: step.get(k) for k in ("successful", "failed", "retransmissions", "clean",
                                                           "cpu_s_per_1000", "rss_kb", "problems")}
            time.sleep(2.0)
            rss["after_full"] = {side: targets[side].stats()["rss_kb"] for side in sides}
            rss["ours_after_malloc_trim"] = targets["ours"].trim().get("rss_kb")
        threads = targets["ours"].stats().get("threads")
    finally:
        final = targets["ours"].close()
        targets["peer"].close()

    steps, best, stopped = sweep.steps, sweep.best, sweep.stopped
    cpu_at, cpu_over_clean, ratio = sweep.cpu_at, sweep.cpu_over_clean, rising.ratio

    def growth(side, point):
        a, b = rss.get(point, {}).get(side), rss["start"].get(side)
        return a - b if a is not None and b is not None else None

    at_rate = sweep.highest_common_rate()
    results = {
        "highest_clean_rate": {
            "unit": "calls/s", "better": "higher", "ours": best["ours"], "peer": best["peer"],
            "ratio": ratio(best["ours"], best["peer"]),
            "note": f"{call_ms} ms calls; highest rate tried with every call successful, no retransmission"
                    + ("" if stopped["ours"] else "; ours never failed: a lower bound")
                    + ("" if stopped["peer"] else "; the peer never failed: a lower bound")
                    + f"; baresip is capped at {BARESIP_MAX_CALLS} simultaneous calls"},
        "cpu_s_per_1000_calls_at_highest_common_rate": {
            "unit": "CPU-s per 1000 calls", "better": "lower", "rate": at_rate,
            "ours": cpu_at("ours", at_rate), "peer": cpu_at("peer", at_rate),
            "ratio": ratio(cpu_at("ours", at_rate), cpu_at("peer", at_rate))},
        "cpu_s_per_1000_calls_over_clean_steps": {
            "unit": "CPU-s per 1000 calls", "better": "lower",
            "ours": cpu_over_clean("ours"), "peer": cpu_over_clean("peer"),
            "ratio": ratio(cpu_over_clean("ours"), cpu_over_clean("peer"))},
        "rss_kb_start": {
            "unit": "kB", "better": "lower", "ours": rss["start"]["ours"], "peer": rss["start"]["peer"],
            "ratio": ratio(rss["start"]["ours"], rss["start"]["peer"])},
        "rss_kb_after_sweep": {
            "unit": "kB", "better": "lower", "ours": rss["after_sweep"]["ours"], "peer": rss["after_sweep"]["peer"],
            "ratio": ratio(rss["after_sweep"]["ours"], rss["after_sweep"]["peer"])},
        "rss_growth_kb_over_sweep": {
            "unit": "kB", "better": "lower", "ours": growth("ours", "after_sweep"),
            "peer": growth("peer", "after_sweep"), "ratio": None,
            "note": "VmRSS after the sweep - VmRSS at start (the sweep's peak concurrency shows here too)"},
    }
    if full_run is not None:
        results["rss_kb_after_full_run"] = {
            "unit": "kB", "better": "lower", "ours": rss["after_full"]["ours"], "peer": rss["after_full"]["peer"],
            "ratio": ratio(rss["after_full"]["ours"], rss["after_full"]["peer"]),
            "note": f"after {full_calls} more calls at {full_run['rate']}/s"}
        results["rss_growth_kb_full_run"] = {
            "unit": "kB", "better": "lower",
            "ours": rss["after_full"]["ours"] - rss["after_sweep"]["ours"],
            "peer": rss["after_full"]["peer"] - rss["after_sweep"]["peer"], "ratio": None,
            "note": f"VmRSS after the {full_calls}-call run - after the sweep"}
    ours_cpu, peer_cpu = cpu_at("ours", at_rate), cpu_at("peer", at_rate)
    flat = None
    if full_run is not None:
        flat = results["rss_growth_kb_full_run"]["ours"] <= 2048
    return {
        "description": f"{call_ms} ms calls over UDP from sipp's built-in uac at rising rates: ours = "
                       "SessionManager in a child process accepting every session with audio (Session + "
                       "AudioStream on the media engine's null device); peer = baresip auto-answering "
                       "(aubridge sink, WAV source); same rates, alternating order, in the same run",
        "goal": {"rate": GOAL_RATE, "rate_met": bool(best["ours"] and best["ours"] >= GOAL_RATE),
                 "cpu_per_call_le_peer": (ours_cpu <= peer_cpu) if ours_cpu is not None and peer_cpu else None,
                 "rss_flat": flat,
                 "highest_rate_tried": sweep.highest_rate_tried()},
        "results": results,
        "details": {
            "parameters": {"duration_s": duration, "rates": rates, "call_ms": call_ms, "full": full,
                           "full_calls": full_calls if full else None},
            "steps": steps,
            "rising": rising.rising_series(
                steps, x_label="offered rate (calls/s)", group=f"{call_ms} ms calls with audio",
                metrics=[("achieved_rate", "achieved rate (calls/s)"),
                         ("cpu_s_per_1000", "CPU-s per 1000 calls"),
                         ("loss_fraction", "fraction of calls not completed")],
                sides={"ours": "SessionManager (child process)", "peer": "baresip"}),
            "rss_kb": rss,
            "full_run": full_run,
            "endpoint": {"threads": threads, "final": final},
            "peer": {"program": "baresip", "call_max_calls": BARESIP_MAX_CALLS},
        },
    }
