"""Workload ``message``: MESSAGE requests from sipp into our endpoint, beside a sipp UAS.

Between processes, all on 127.0.0.1 over UDP:

- ours: a child process (:mod:`sipsimple.bench.endpoint`) running the Engine,
  whose Python observer counts every ``SCEngineGotMessage``; it reports its
  count, CPU time and RSS over a control pipe;
- peer: a ``sipp`` UAS (``uas_message.xml``, answering 200), its CPU time and
  RSS read from /proc/PID;
- load: a ``sipp`` UAC (``uac_message.xml``) with ``-r RATE -m RATE*DURATION``,
  run against each target in turn, alternating which goes first, at rising rates.

A step is clean when sipp exits 0 with every call successful, no failed call,
no retransmission, an achieved rate of at least 90 % of the asked one, and (for
ours) Python saw as many messages as sipp got answers for. The sweep stops at
our first unclean step. Then two batches of ``leak_count`` transactions show
whether RSS stays flat; Sofia keeps finished transactions for Timer J (32 s on
UDP), so RSS is read once idle after waiting that long (``--full``), or after a
short wait that the output names.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sipsimple.bench import rising
from sipsimple.bench.endpoint import EndpointProcess, read_status
from sipsimple.bench.rising import proc_cpu

__all__ = ["run", "DEFAULT_RATES", "GOAL_RATE"]

DEFAULT_RATES = (500, 1000, 2000, 3000, 4000, 5000, 6000)
GOAL_RATE = 4000
TIMER_J = 32.0


class Endpoint(EndpointProcess):
    """Our endpoint: the child process running the Engine."""

    def __init__(self, port: int, profile: str | None = None, rcvbuf: int | None = None) -> None:
        args = [str(port)]
        if profile:
            args += ["--profile", profile]
        if rcvbuf:
            args += ["--rcvbuf", str(rcvbuf)]
        super().__init__("sipsimple.bench.endpoint", args)
        self.rcvbuf = self.ready.get("rcvbuf")

    def settle(self, before: dict, expected: int, timeout: float = 10.0, quiet: float = 2.0) -> dict:
        """Stats once the count rose by ``expected`` since ``before``, or stopped moving for ``quiet`` seconds.

        ``lag_s`` is how long after the call Python was still catching up.
        """
        t0 = time.monotonic()
        last = self.stats()
        changed = t0
        expected += before["count"]
        while last["count"] < expected and time.monotonic() - t0 < timeout and time.monotonic() - changed < quiet:
            time.sleep(0.05)
            now = self.stats()
            if now["count"] != last["count"]:
                changed = time.monotonic()
            last = now
        last["lag_s"] = round(time.monotonic() - t0, 2) if last["count"] >= expected else None
        return last


class SippUAS:
    """The peer: sipp answering every MESSAGE with 200."""

    name = "peer"

    def __init__(self, sipp_module, run_dir: Path) -> None:
        self.sipp = sipp_module.SippProcess("uas_message.xml", run_dir=run_dir, calls=None, timeout=None,
                                            trace=False)
        self.sipp.start()
        self.pid = self.sipp.process.pid
        self.address = self.sipp.address
        self.port = self.sipp.local_port

    def stats(self) -> dict:
        status = read_status(self.pid)
        return {"cpu": proc_cpu(self.pid), "rss_kb": status.get("VmRSS"), "hwm_kb": status.get("VmHWM"),
                "count": None}

    def settle(self, before: dict, expected: int) -> dict:
        time.sleep(0.2)  # sipp answered before its UAC finished: only its CPU accounting is settling
        return self.stats()

    def close(self) -> dict:
        self.sipp.stop()
        return {}


def _load(sipp_module, target, rate: int, count: int, duration: float, run_dir: Path) -> dict:
    """Send ``count`` MESSAGEs at ``rate`` to ``target``; what happened there and at sipp."""
    def send():
        return sipp_module.run_sipp("uac_message.xml", target.address, run_dir=run_dir, service="bench",
                                    keys={"from_user": "sipp", "body": "benchmark message"}, calls=count,
                                    rate=rate, timeout=duration * 4 + 20, trace=False)

    def achieved(result, wall: float) -> float:
        try:
            value = float(result.stats.get("CallRate(C)", "") or 0)
        except ValueError:
            value = 0.0
        return value or count / wall

    step, before, after = rising.measure(target, rate, count, send, achieved)
    if after.get("count") is not None:
        step["python_seen"] = after["count"] - before["count"]
        step["python_lag_s"] = after.get("lag_s")
        if step["python_seen"] < step["successful"]:
            step["problems"].append(f"python saw {step['python_seen']} of {step['successful']}")
    return rising.judge(step)


class _Targets:
    """Our endpoint and the sipp UAS, started together and stopped together."""

    def __init__(self, sipp_module, free_port, run_dir: Path, profile: str | None = None,
                 rcvbuf: int | None = None) -> None:
        self.ours = Endpoint(free_port(), profile=profile, rcvbuf=rcvbuf)
        try:
            self.peer = SippUAS(sipp_module, run_dir)
        except BaseException:
            self.ours.close()
            raise
        self.final: dict = {}
        time.sleep(0.5)

    def __getitem__(self, side: str):
        return self.ours if side == "ours" else self.peer

    def rss(self) -> dict:
        return {"ours": self.ours.stats()["rss_kb"], "peer": self.peer.stats()["rss_kb"]}

    def close(self) -> None:
        try:
            self.final = self.ours.close()
        finally:
            self.peer.close()


def _leak_check(sipp_module, targets: _Targets, count: int, rate: int, idle_wait: float,
                base_dir: Path) -> dict:
    """Two batches of ``count`` transactions into fresh processes, RSS read right after and once idle."""
    out: dict = {"start": targets.rss(), "batches": []}
    for batch in (1, 2):
        entry: dict = {"batch": batch, "transactions": count}
        for side in ("ours", "peer"):
            step = _load(sipp_module, targets[side], rate, count, count / rate, base_dir / f"leak-{side}-{batch}")
            entry[side] = {"clean": step["clean"], "rss_kb_right_after": step["rss_kb"],
                           "cpu_s_per_1000": step["cpu_s_per_1000"]}
            if "python_seen" in step:
                entry[side]["python_seen"] = step["python_seen"]
            if not step["clean"]:
                entry[side]["problems"] = step.get("problems")
        time.sleep(idle_wait)
        for side, value in targets.rss().items():
            entry[side]["rss_kb_idle"] = value
        out["batches"].append(entry)
    # how much of what stays is free memory the allocator keeps (returned by malloc_trim) rather than live
    out["ours_rss_kb_after_malloc_trim"] = targets.ours.trim().get("rss_kb")
    return out


def run(duration: float = 5.0, rates: list[int] | None = None, full: bool = False,
        leak_count: int = 10000, leak_rate: int = 2000, idle_wait: float | None = None,
        profile: str | None = None, keep_going: bool = False, endpoint_rcvbuf: int | None = None,
        **_options) -> dict:
    """Run the rate sweep, then the RSS check in fresh processes; see the module docstring."""
    sipp_module, free_port = rising.sipp_peers()
    rates = list(rates or DEFAULT_RATES)
    if idle_wait is None:
        idle_wait = TIMER_J + 2 if full else 2.0
    base_dir = Path(tempfile.mkdtemp(prefix="sipsimple-bench-"))
    sides = ("ours", "peer")

    # 1. the rate sweep
    targets = _Targets(sipp_module, free_port, base_dir / "uas-sweep", profile=profile, rcvbuf=endpoint_rcvbuf)
    rcvbuf = targets.ours.rcvbuf
    try:
        rss = {"sweep_start": targets.rss()}
        sweep = rising.sweep(
            rates, duration, lambda side, rate, count: _load(sipp_module, targets[side], rate, count, duration,
                                                             base_dir / f"uac-{side}-{rate}"),
            keep_going=keep_going)
        rss["after_sweep"] = targets.rss()
        threads = targets.ours.stats().get("threads")
    finally:
        targets.close()
    seen_total = targets.final.get("count")

    # 2. RSS over leak_count transactions, in fresh processes so the sweep's peak does not hide growth
    targets = _Targets(sipp_module, free_port, base_dir / "uas-leak", rcvbuf=endpoint_rcvbuf)
    try:
        leak = _leak_check(sipp_module, targets, leak_count, leak_rate, idle_wait, base_dir)
    finally:
        targets.close()
    first, second = leak["batches"]

    def diff(a, b):
        return a - b if a is not None and b is not None else None

    steps, best, stopped = sweep.steps, sweep.best, sweep.stopped
    cpu_at, cpu_over_clean, ratio = sweep.cpu_at, sweep.cpu_over_clean, rising.ratio
    at_rate = sweep.highest_common_rate()
    growth = {s: diff(second[s]["rss_kb_idle"], first[s]["rss_kb_idle"]) for s in sides}
    held = {s: diff(first[s]["rss_kb_right_after"], leak["start"][s]) for s in sides}
    per_held = {s: round(held[s] / leak_count, 2) if held[s] is not None else None for s in sides}
    kept = {s: diff(first[s]["rss_kb_idle"], leak["start"][s]) for s in sides}
    waited = idle_wait >= TIMER_J
    results = {
        "highest_clean_rate": {
            "unit": "MESSAGE/s", "better": "higher", "ours": best["ours"], "peer": best["peer"],
            "ratio": ratio(best["ours"], best["peer"]),
            "note": "highest rate tried with no failure, no retransmission, every message seen"
                    + ("" if stopped["peer"] else "; the peer never failed, so its figure is a lower bound")},
        "cpu_s_per_1000_at_highest_common_rate": {
            "unit": "CPU-s per 1000 requests", "better": "lower", "rate": at_rate,
            "ours": cpu_at("ours", at_rate), "peer": cpu_at("peer", at_rate),
            "ratio": ratio(cpu_at("ours", at_rate), cpu_at("peer", at_rate))},
        "cpu_s_per_1000_over_clean_steps": {
            "unit": "CPU-s per 1000 requests", "better": "lower",
            "ours": cpu_over_clean("ours"), "peer": cpu_over_clean("peer"),
            "ratio": ratio(cpu_over_clean("ours"), cpu_over_clean("peer"))},
        "rss_kb_after_sweep": {
            "unit": "kB", "better": "lower", "ours": rss["after_sweep"]["ours"], "peer": rss["after_sweep"]["peer"],
            "ratio": ratio(rss["after_sweep"]["ours"], rss["after_sweep"]["peer"])},
        "rss_kb_per_held_transaction": {
            "unit": "kB", "better": "lower", "ours": per_held["ours"], "peer": per_held["peer"],
            "ratio": ratio(per_held["ours"], per_held["peer"]),
            "note": f"(VmRSS right after {leak_count} transactions at {leak_rate}/s - VmRSS at start) / "
                    f"{leak_count}, fresh processes"},
        "rss_kb_kept_after_idle": {
            "unit": "kB", "better": "lower", "ours": kept["ours"], "peer": kept["peer"],
            "ratio": ratio(kept["ours"], kept["peer"]),
            "note": "VmRSS once idle after the first batch - VmRSS at start"
                    + ("" if waited else " (not idle: Timer J not waited for)")},
        "rss_growth_kb_second_batch": {
            "unit": "kB", "better": "lower", "ours": growth["ours"], "peer": growth["peer"], "ratio": None,
            "note": f"VmRSS once idle after batch 2 - after batch 1 ({leak_count} transactions each)"},
    }
    return {
        "description": "MESSAGE over UDP from a sipp UAC at rising rates: ours = Engine in a child process "
                       "with a Python observer counting SCEngineGotMessage; peer = sipp UAS (uas_message.xml) "
                       "answering 200; same rates, alternating order, in the same run",
        "goal": {"rate": GOAL_RATE, "rate_met": bool(best["ours"] and best["ours"] >= GOAL_RATE),
                 "highest_rate_tried": sweep.highest_rate_tried(),
                 "rss_flat": (growth["ours"] is not None and growth["ours"] <= 1024) if waited else None},
        "results": results,
        "details": {
            "parameters": {"duration_s": duration, "rates": rates, "full": full, "leak_count": leak_count,
                           "leak_rate": leak_rate, "idle_wait_s": idle_wait, "keep_going": keep_going,
                           "endpoint_rcvbuf_asked": endpoint_rcvbuf, "endpoint_rcvbuf": rcvbuf},
            "idle_note": ("RSS read after waiting for Timer J (32 s) so finished transactions are freed"
                          if waited else
                          f"RSS read only {idle_wait:g} s after each batch: Sofia still holds finished "
                          f"transactions for Timer J (32 s); use --full for the idle figures"),
            "steps": steps,
            "rising": rising.rising_series(
                steps, x_label="offered rate (MESSAGE/s)", group="MESSAGE over UDP",
                metrics=[("achieved_rate", "achieved rate (MESSAGE/s)"),
                         ("cpu_s_per_1000", "CPU-s per 1000 MESSAGEs"),
                         ("loss_fraction", "fraction not answered 200")],
                sides={"ours": "sipsimple Engine (child process)", "peer": "sipp UAS"}),
            "rss_kb": {"sweep_start": rss["sweep_start"], "after_sweep": rss["after_sweep"],
                       "leak_start": leak["start"],
                       "after_first_batch_idle": {s: first[s]["rss_kb_idle"] for s in sides},
                       "after_second_batch_idle": {s: second[s]["rss_kb_idle"] for s in sides},
                       "ours_after_malloc_trim": leak["ours_rss_kb_after_malloc_trim"]},
            "leak_batches": leak["batches"],
            "endpoint": {"messages_seen_in_sweep": seen_total, "threads": threads},
            "profile": profile,
        },
    }
