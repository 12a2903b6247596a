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

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sipsimple.bench.endpoint import read_status

__all__ = ["run", "DEFAULT_RATES", "GOAL_RATE"]

DEFAULT_RATES = (500, 1000, 2000, 3000, 4000, 5000, 6000)
GOAL_RATE = 4000
TIMER_J = 32.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _peers():
    """The sipp helpers of the test rig (tests/peers), importable from a source checkout."""
    try:
        from tests.peers import sipp as sipp_module
        from tests.peers.ports import free_port
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "tests" / "peers" / "sipp.py").exists():
            raise RuntimeError("the message workload needs the sipp helpers of the source tree "
                               "(tests/peers/sipp.py); run it from a checkout") from None
        sys.path.insert(0, str(root))
        from tests.peers import sipp as sipp_module
        from tests.peers.ports import free_port
    return sipp_module, free_port


def proc_cpu(pid: int) -> float:
    """utime + stime of a process in seconds, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def udp_drops(port: int) -> int | None:
    """Datagrams the kernel dropped for the UDP socket bound to 127.0.0.1:port (receive buffer full)."""
    needle = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/udp") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 12 and fields[1] == needle:
                    return int(fields[-1])
    except (OSError, ValueError):
        pass
    return None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Endpoint:
    """Our endpoint: the child process running the Engine."""

    name = "ours"

    def __init__(self, port: int, profile: str | None = None, rcvbuf: int | None = None) -> None:
        command = [sys.executable, "-m", "sipsimple.bench.endpoint", str(port)]
        if profile:
            command += ["--profile", profile]
        if rcvbuf:
            command += ["--rcvbuf", str(rcvbuf)]
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, env=env)
        ready = self._read()
        if not ready.get("ready"):
            self.process.kill()
            raise RuntimeError(f"the endpoint did not start: {ready}")
        self.port = ready["port"]
        self.pid = ready["pid"]
        self.rcvbuf = ready.get("rcvbuf")
        self.address = f"127.0.0.1:{self.port}"

    def _read(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the endpoint exited (rc={self.process.poll()})")
        return json.loads(line)

    def stats(self) -> dict:
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        return self._read()

    def settle(self, expected: int, timeout: float = 10.0, quiet: float = 2.0) -> dict:
        """Stats once the count reached ``expected``, or stopped moving for ``quiet`` seconds.

        ``lag_s`` is how long after the call Python was still catching up.
        """
        t0 = time.monotonic()
        last = self.stats()
        changed = t0
        while last["count"] < expected and time.monotonic() - t0 < timeout and time.monotonic() - changed < quiet:
            time.sleep(0.05)
            now = self.stats()
            if now["count"] != last["count"]:
                changed = time.monotonic()
            last = now
        last["lag_s"] = round(time.monotonic() - t0, 2) if last["count"] >= expected else None
        return last

    def trim(self) -> dict:
        self.process.stdin.write("trim\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> dict:
        try:
            self.process.stdin.write("quit\n")
            self.process.stdin.flush()
            final = self._read()
            self.process.wait(15)
            return final
        except Exception:
            self.process.kill()
            self.process.wait()
            return {}


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

    def settle(self, expected: int, timeout: float = 0.0) -> dict:
        time.sleep(0.2)
        return self.stats()

    def close(self) -> dict:
        self.sipp.stop()
        return {}


def _load(sipp_module, target, rate: int, count: int, duration: float, run_dir: Path) -> dict:
    """Send ``count`` MESSAGEs at ``rate`` to ``target``; what happened there and at sipp."""
    before = target.stats()
    drops0 = udp_drops(target.port)
    load_cpu0 = children_cpu()
    t0 = time.monotonic()
    result = sipp_module.run_sipp("uac_message.xml", target.address, run_dir=run_dir, service="bench",
                                  keys={"from_user": "sipp", "body": "benchmark message"}, calls=count,
                                  rate=rate, timeout=duration * 4 + 20, trace=False)
    wall = time.monotonic() - t0
    load_cpu = children_cpu() - load_cpu0
    after = target.settle(result.successful)
    drops1 = udp_drops(target.port)
    try:
        achieved = float(result.stats.get("CallRate(C)", "") or 0)
    except ValueError:
        achieved = 0.0
    if not achieved:
        achieved = count / wall
    cpu = after["cpu"] - before["cpu"]
    step = {
        "sent": count, "successful": result.successful, "failed": result.failed,
        "retransmissions": result.retransmissions, "sipp_rc": result.returncode,
        "achieved_rate": round(achieved, 1), "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_1000": round(cpu / max(result.successful, 1) * 1000, 4),
        "load_generator_cpu_s": round(load_cpu, 3),
        "rss_kb": after.get("rss_kb"),
        "udp_drops": drops1 - drops0 if drops0 is not None and drops1 is not None else None,
    }
    if after.get("count") is not None:
        step["python_seen"] = after["count"] - before["count"]
        step["python_lag_s"] = after.get("lag_s")
    problems = []
    if result.returncode != 0:
        problems.append(f"sipp rc={result.returncode}")
    if result.failed:
        problems.append(f"{result.failed} failed")
    if result.retransmissions:
        problems.append(f"{result.retransmissions} retransmissions")
    if result.successful < count:
        problems.append(f"{result.successful}/{count} successful")
    if "python_seen" in step and step["python_seen"] < result.successful:
        problems.append(f"python saw {step['python_seen']} of {result.successful}")
    if achieved < 0.9 * rate:
        problems.append(f"achieved {achieved:.0f}/s of {rate}/s")
    step["clean"] = not problems
    if problems:
        step["problems"] = problems
    return step


def _ratio(ours, peer):
    if ours is None or peer is None or not peer:
        return None
    return round(ours / peer, 3)


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


def _sweep(sipp_module, targets: _Targets, rates: list[int], duration: float, keep_going: bool,
           base_dir: Path) -> tuple[list[dict], dict, dict]:
    steps = []
    best = {"ours": None, "peer": None}
    stopped = {"ours": False, "peer": False}
    for index, rate in enumerate(rates):
        count = max(int(rate * duration), 1)
        order = ("ours", "peer") if index % 2 == 0 else ("peer", "ours")
        step = {"rate": rate, "order": list(order)}
        for side in order:
            if stopped[side]:
                continue
            step[side] = _load(sipp_module, targets[side], rate, count, duration,
                               base_dir / f"uac-{side}-{rate}")
            if step[side]["clean"]:
                best[side] = rate
            else:
                stopped[side] = True
        steps.append(step)
        if stopped["ours"] and (stopped["peer"] or not keep_going):
            break
    return steps, best, stopped


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
    sipp_module, free_port = _peers()
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
        steps, best, stopped = _sweep(sipp_module, targets, rates, duration, keep_going, base_dir)
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

    def cpu_at(side, rate):
        for step in steps:
            if step["rate"] == rate and side in step:
                return step[side]["cpu_s_per_1000"]
        return None

    def cpu_over_clean(side):
        cpu = sum(s[side]["cpu_s"] for s in steps if side in s and s[side]["clean"])
        n = sum(s[side]["successful"] for s in steps if side in s and s[side]["clean"])
        return round(cpu / n * 1000, 4) if n else None

    def diff(a, b):
        return a - b if a is not None and b is not None else None

    common = [s["rate"] for s in steps if s.get("ours", {}).get("clean") and s.get("peer", {}).get("clean")]
    at_rate = max(common) if common else None
    growth = {s: diff(second[s]["rss_kb_idle"], first[s]["rss_kb_idle"]) for s in sides}
    held = {s: diff(first[s]["rss_kb_right_after"], leak["start"][s]) for s in sides}
    per_held = {s: round(held[s] / leak_count, 2) if held[s] is not None else None for s in sides}
    kept = {s: diff(first[s]["rss_kb_idle"], leak["start"][s]) for s in sides}
    waited = idle_wait >= TIMER_J
    results = {
        "highest_clean_rate": {
            "unit": "MESSAGE/s", "better": "higher", "ours": best["ours"], "peer": best["peer"],
            "ratio": _ratio(best["ours"], best["peer"]),
            "note": "highest rate tried with no failure, no retransmission, every message seen"
                    + ("" if stopped["peer"] else "; the peer never failed, so its figure is a lower bound")},
        "cpu_s_per_1000_at_highest_common_rate": {
            "unit": "CPU-s per 1000 requests", "better": "lower", "rate": at_rate,
            "ours": cpu_at("ours", at_rate), "peer": cpu_at("peer", at_rate),
            "ratio": _ratio(cpu_at("ours", at_rate), cpu_at("peer", at_rate))},
        "cpu_s_per_1000_over_clean_steps": {
            "unit": "CPU-s per 1000 requests", "better": "lower",
            "ours": cpu_over_clean("ours"), "peer": cpu_over_clean("peer"),
            "ratio": _ratio(cpu_over_clean("ours"), cpu_over_clean("peer"))},
        "rss_kb_after_sweep": {
            "unit": "kB", "better": "lower", "ours": rss["after_sweep"]["ours"], "peer": rss["after_sweep"]["peer"],
            "ratio": _ratio(rss["after_sweep"]["ours"], rss["after_sweep"]["peer"])},
        "rss_kb_per_held_transaction": {
            "unit": "kB", "better": "lower", "ours": per_held["ours"], "peer": per_held["peer"],
            "ratio": _ratio(per_held["ours"], per_held["peer"]),
            "note": f"(VmRSS right after {leak_count} transactions at {leak_rate}/s - VmRSS at start) / "
                    f"{leak_count}, fresh processes"},
        "rss_kb_kept_after_idle": {
            "unit": "kB", "better": "lower", "ours": kept["ours"], "peer": kept["peer"],
            "ratio": _ratio(kept["ours"], kept["peer"]),
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
                 "highest_rate_tried": max(s["rate"] for s in steps) if steps else None,
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
