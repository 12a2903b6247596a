"""Workload ``parse``: SIP messages parsed and printed back, core vs pure Python.

Ours is ``sipsimple.core._core.parse_message`` (Sofia-SIP's parser and
printer); the peer is :mod:`sipsimple.bench.pyparser`, a straightforward
pure-Python parser and printer doing the same job, measured in the same run
in alternating rounds (same process, same conditions). Before timing, both
outputs are checked to carry the same content as the input (start line,
header values, body); a mismatch stops the benchmark.
"""

from __future__ import annotations

import time

from sipsimple.bench import pyparser
from sipsimple.bench.messages import MESSAGES

__all__ = ["run", "check_roundtrip"]

BATCH = 50          # iterations of one message between clock reads
ROUNDS = 6          # alternating rounds per side


class RoundTripError(AssertionError):
    pass


def _core_parse():
    from sipsimple.core import _core

    return _core.parse_message


def _python_parse(data: bytes) -> bytes:
    return pyparser.serialize(pyparser.parse(data))


def check_roundtrip(messages: dict[str, bytes] | None = None) -> dict[str, dict[str, int]]:
    """Check both parsers print every message back with the same content; raise if not."""
    core_parse = _core_parse()
    sizes = {}
    for name, data in (messages or MESSAGES).items():
        expected = pyparser.normalize(data)
        outputs = {"core": core_parse(data), "python": _python_parse(data)}
        for side, printed in outputs.items():
            got = pyparser.normalize(printed)
            if got != expected:
                diff = _describe_difference(expected, got)
                raise RoundTripError(f"{side} parser did not round-trip message {name!r}: {diff}\n"
                                     f"--- printed\n{printed.decode(errors='replace')}")
            # printing what was printed must give the same text again (a fixed point)
            again = core_parse(printed) if side == "core" else _python_parse(printed)
            if again != printed:
                raise RoundTripError(f"{side} parser output of {name!r} is not stable when parsed again")
        sizes[name] = {"input": len(data), "core_output": len(outputs["core"]),
                       "python_output": len(outputs["python"])}
    return sizes


def _describe_difference(expected: tuple, got: tuple) -> str:
    if expected[0] != got[0]:
        return f"start line {expected[0]!r} != {got[0]!r}"
    if expected[2] != got[2]:
        return f"body differs ({len(expected[2])} vs {len(got[2])} bytes)"
    a, b = dict(expected[1]), dict(got[1])
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"header {key!r}: {a.get(key)!r} != {b.get(key)!r}"
    return "?"


def _round(func, messages: list[tuple[str, bytes]], budget: float, per_message: dict[str, list[float]]) -> tuple[int, float]:
    """Run ``func`` over the messages (BATCH at a time each) for about ``budget`` seconds."""
    count = 0
    elapsed = 0.0
    clock = time.perf_counter
    while elapsed < budget:
        for name, data in messages:
            t0 = clock()
            for _ in range(BATCH):
                func(data)
            dt = clock() - t0
            elapsed += dt
            count += BATCH
            slot = per_message[name]
            slot[0] += BATCH
            slot[1] += dt
    return count, elapsed


def run(duration: float = 10.0, **_options) -> dict:
    """Measure messages/s for both parsers over about ``duration`` seconds in total."""
    sizes = check_roundtrip()
    core_parse = _core_parse()
    messages = list(MESSAGES.items())
    # warm up both (imports, caches, allocator)
    for _name, data in messages:
        for _ in range(20):
            core_parse(data)
            _python_parse(data)

    budget = max(duration, 0.2) / (2 * ROUNDS)
    totals = {"core": [0, 0.0], "python": [0, 0.0]}
    per_message = {side: {name: [0, 0.0] for name, _ in messages} for side in totals}
    cpu0 = time.process_time()
    for i in range(ROUNDS):
        order = ("core", "python") if i % 2 == 0 else ("python", "core")
        for side in order:
            func = core_parse if side == "core" else _python_parse
            count, elapsed = _round(func, messages, budget, per_message[side])
            totals[side][0] += count
            totals[side][1] += elapsed
    cpu = time.process_time() - cpu0

    core_rate = totals["core"][0] / totals["core"][1]
    py_rate = totals["python"][0] / totals["python"][1]
    breakdown = []
    for name, data in messages:
        c_count, c_time = per_message["core"][name]
        p_count, p_time = per_message["python"][name]
        c_us = c_time / c_count * 1e6
        p_us = p_time / p_count * 1e6
        breakdown.append({"message": name, "bytes": len(data), "ours_us": round(c_us, 2),
                          "peer_us": round(p_us, 2), "speedup": round(p_us / c_us, 2)})
    wall = totals["core"][1] + totals["python"][1]
    return {
        "description": "SIP messages parsed and printed back per second: ours = core (_core.parse_message, "
                       "Sofia-SIP), peer = pure-Python parser+printer (sipsimple.bench.pyparser), "
                       "alternating rounds in one process; ratio = ours/peer",
        "results": {
            "messages_per_s": {"unit": "messages/s", "better": "higher", "ours": round(core_rate),
                               "peer": round(py_rate), "ratio": round(core_rate / py_rate, 2)},
            "us_per_message": {"unit": "us", "better": "lower", "ours": round(1e6 / core_rate, 2),
                               "peer": round(1e6 / py_rate, 2),
                               "ratio": round(py_rate / core_rate, 2)},
        },
        "details": {
            "messages": len(messages),
            "roundtrip_check": "passed",
            "sizes": sizes,
            "per_message": breakdown,
            "iterations": {"ours": totals["core"][0], "peer": totals["python"][0]},
            "measured_seconds": round(wall, 2),
            "cpu_utilisation": round(cpu / wall, 2) if wall else None,
            "rounds": ROUNDS,
        },
    }
