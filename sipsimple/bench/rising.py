"""Rising-rate load shared by the ``message`` and ``cps`` workloads.

Both drive a target process (ours, or the peer) with sipp at rates that rise
step by step, alternating at each step which side goes first, and stop a side
at its first unclean step. This module holds what they share:

- :func:`measure`: one step against one target -- the target's CPU time, RSS
  and UDP drops around one sipp run, and the problems that make it unclean;
- :func:`sweep`: the rate loop over both sides (:class:`Sweep` holds the
  steps and answers the summary questions: highest clean rate, CPU at a rate);
- :func:`rising_series`: the steps in the uniform shape the plots read
  (``details["rising"]``, see :mod:`sipsimple.bench.plot`);
- the /proc readers (:func:`proc_cpu`, :func:`udp_drops`, :func:`children_cpu`)
  and :func:`sipp_peers`, the sipp helpers of the test rig.

A target is any object with ``port`` (its UDP port), ``stats() -> dict`` (at
least ``cpu``, seconds, and ``rss_kb``) and ``settle(before, expected) -> dict``
(its stats once it has finished handling the step).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Target", "Sweep", "measure", "judge", "sweep", "rising_series", "ratio", "proc_cpu", "udp_drops",
           "children_cpu", "sipp_peers", "SIDES"]

SIDES = ("ours", "peer")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIN_ACHIEVED = 0.9   # a step is unclean below 90 % of the asked rate


class Target(Protocol):
    port: int

    def stats(self) -> dict: ...

    def settle(self, before: dict, expected: int) -> dict: ...


def sipp_peers():
    """The sipp helpers of the test rig (tests/peers): ``(sipp module, free_port)``, from a source checkout."""
    try:
        from tests.peers import sipp as sipp_module
        from tests.peers.ports import free_port
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "tests" / "peers" / "sipp.py").exists():
            raise RuntimeError("this workload needs the sipp helpers of the source tree "
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
    """CPU seconds of this process's waited-for children (the load generator, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ratio(ours, peer) -> float | None:
    """ours / peer, or None when either is missing or the peer's figure is 0."""
    if ours is None or peer is None or not peer:
        return None
    return round(ours / peer, 3)


def measure(target: Target, rate: int, count: int, send: Callable[[], Any],
            achieved: Callable[[Any, float], float]) -> tuple[dict, dict, dict]:
    """One step: ``send()`` runs sipp against ``target`` (``count`` requests at ``rate``).

    ``achieved(result, wall_seconds)`` is the rate sipp reached. Returns
    ``(step, before, after)``: the step's figures with its sipp-side problems
    (``step["problems"]``, a list the caller may extend before :func:`judge`),
    and the target's stats before and after.
    """
    before = target.stats()
    drops0 = udp_drops(target.port)
    load_cpu0 = children_cpu()
    t0 = time.monotonic()
    result = send()
    wall = time.monotonic() - t0
    load_cpu = children_cpu() - load_cpu0
    after = target.settle(before, result.successful)
    drops1 = udp_drops(target.port)
    rate_reached = achieved(result, wall)
    cpu = after["cpu"] - before["cpu"]
    step = {
        "sent": count, "successful": result.successful, "failed": result.failed,
        "retransmissions": result.retransmissions, "sipp_rc": result.returncode,
        "achieved_rate": round(rate_reached, 1), "wall_s": round(wall, 2), "cpu_s": round(cpu, 3),
        "cpu_s_per_1000": round(cpu / max(result.successful, 1) * 1000, 4),
        # what did not complete: the loss the plots show beside the achieved rate
        "loss_fraction": round(1 - min(result.successful, count) / count, 6) if count else None,
        "load_generator_cpu_s": round(load_cpu, 3),
        "rss_kb": after.get("rss_kb"), "hwm_kb": after.get("hwm_kb"),
        "udp_drops": drops1 - drops0 if drops0 is not None and drops1 is not None else None,
    }
    problems = []
    if result.returncode != 0:
        problems.append(f"sipp rc={result.returncode}")
    if result.failed:
        problems.append(f"{result.failed} failed")
    if result.retransmissions:
        problems.append(f"{result.retransmissions} retransmissions")
    if result.successful < count:
        problems.append(f"{result.successful}/{count} successful")
    if rate_reached < MIN_ACHIEVED * rate:
        problems.append(f"achieved {rate_reached:.0f}/s of {rate}/s")
    step["problems"] = problems
    return step, before, after


def judge(step: dict) -> dict:
    """Set ``clean`` from the step's problems (dropping the empty list)."""
    step["clean"] = not step["problems"]
    if step["clean"]:
        del step["problems"]
    return step


@dataclass
class Sweep:
    """The steps of a rate sweep: ``[{"rate", "order", "ours": step, "peer": step}, ...]``."""

    steps: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: dict.fromkeys(SIDES))
    stopped: dict = field(default_factory=lambda: dict.fromkeys(SIDES, False))

    def clean_rates(self, side: str) -> list[int]:
        return [s["rate"] for s in self.steps if s.get(side, {}).get("clean")]

    def highest_common_rate(self) -> int | None:
        """The highest rate at which both sides were clean."""
        common = set(self.clean_rates("ours")) & set(self.clean_rates("peer"))
        return max(common) if common else None

    def highest_rate_tried(self) -> int | None:
        return max((s["rate"] for s in self.steps), default=None)

    def cpu_at(self, side: str, rate: int | None) -> float | None:
        for step in self.steps:
            if step["rate"] == rate and side in step:
                return step[side]["cpu_s_per_1000"]
        return None

    def cpu_over_clean(self, side: str) -> float | None:
        """CPU-s per 1000 over all the side's clean steps together."""
        chosen = [s[side] for s in self.steps if s.get(side, {}).get("clean")]
        n = sum(c["successful"] for c in chosen)
        return round(sum(c["cpu_s"] for c in chosen) / n * 1000, 4) if n else None


def sweep(rates: Iterable[int], duration: float, load: Callable[[str, int, int], dict],
          keep_going: bool = True) -> Sweep:
    """Run ``load(side, rate, count)`` for both sides at each rate (``count = rate * duration``).

    The side going first alternates from step to step, so neither always
    meets a machine warmed (or loaded) by the other. A side stops at its first
    unclean step; the sweep ends when ours stopped and, unless ``keep_going``,
    without waiting for the peer to fail too.
    """
    result = Sweep()
    for index, rate in enumerate(rates):
        count = max(int(rate * duration), 1)
        order = SIDES if index % 2 == 0 else SIDES[::-1]
        step: dict = {"rate": rate, "order": list(order)}
        for side in order:
            if result.stopped[side]:
                continue
            step[side] = load(side, rate, count)
            if step[side]["clean"]:
                result.best[side] = rate
            else:
                result.stopped[side] = True
        result.steps.append(step)
        if result.stopped["ours"] and (result.stopped["peer"] or not keep_going):
            break
    return result


def rising_series(steps: list[dict], *, x_label: str, metrics: list[tuple[str, str]], sides: dict[str, str],
                  group: str, x_key: str = "rate") -> dict:
    """The steps in the uniform shape of ``details["rising"]`` (one group), for the plots.

    ``metrics`` are ``(key, label)`` pairs read from each side's step;
    ``sides`` names what ``ours`` and ``peer`` are.
    """
    def points(side: str) -> list[dict]:
        out = []
        for step in steps:
            s = step.get(side)
            if s:
                out.append({"x": step[x_key], "clean": bool(s.get("clean")),
                            **{key: s.get(key) for key, _ in metrics}})
        return out

    return {"x_label": x_label, "metrics": [{"key": k, "label": label} for k, label in metrics],
            "sides": dict(sides), "groups": [{"name": group, "ours": points("ours"), "peer": points("peer")}]}
