"""The benchmark harness: ``sipsimple bench WORKLOAD|all [--json] [--quick] [--out DIR] [--profile [FILE]]``.

Every workload measures ours beside a peer in the same run, under the same
conditions, and returns a dict whose ``results`` map a figure's name to
``{"ours", "peer", "ratio" (ours/peer), "unit", "better"}``; ``details`` holds
the rest, and for rising-rate runs ``details["rising"]``, the per-step series
the plots read (:mod:`sipsimple.bench.plot`). ``--json`` prints one JSON
document with the workload, machine information and results; otherwise a table.

Workloads:

- ``parse``: SIP messages parsed and printed back, core (Sofia-SIP) vs a
  pure-Python parser (:mod:`sipsimple.bench.parse`), in one process;
- ``message``: MESSAGE requests from sipp into an Engine in a child process vs
  a sipp UAS, at rising rates (:mod:`sipsimple.bench.message`);
- ``presence``: in-dialog NOTIFYs into Python presence state vs MESSAGEs to the
  same Engine, at rising rates (:mod:`sipsimple.bench.presence`);
- ``msrp``: MSRP file transfer vs raw loopback TCP and vs a plain verified file copy, and chat messages/s
  (:mod:`sipsimple.bench.msrp`);
- ``cps``: calls/s from sipp into a SessionManager in a child process vs baresip,
  at rising rates (:mod:`sipsimple.bench.cps`);
- ``media``: N audio streams between two processes vs the same datagrams on
  plain sockets, rising N (:mod:`sipsimple.bench.media`).

``all`` runs every workload (or ``--only`` some) in turn and writes
``DIR/bench-report.json`` and a plot per workload (:mod:`sipsimple.bench.report`).
``--quick`` shortens every workload (few steps, short durations). ``--profile``
runs a workload under a profiler (:mod:`sipsimple.bench.profile`): cProfile of
this process, or sampling (py-spy; perf for media) of the child processes that
carry the load.

This module is a subcommand module of :mod:`sipsimple.cli.main` (``NAME``,
``HELP``, ``add_arguments``, ``run``) and also runs alone:
``python -m sipsimple.bench WORKLOAD ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["NAME", "HELP", "COMMON_OPTIONS", "WORKLOADS", "PROFILE_CHILDREN", "add_arguments", "run",
           "run_workload", "register_cli", "main", "machine_info", "format_table"]

NAME = "bench"
HELP = "measure performance against a peer (parse, message, presence, msrp, cps, media, all)"
DESCRIPTION = __doc__.split("\n\n")[1] if __doc__ else HELP
COMMON_OPTIONS = False


def _rates(args: argparse.Namespace) -> list[int] | None:
    return [int(r) for r in args.rates.split(",") if r.strip()] if getattr(args, "rates", None) else None


def _duration(args: argparse.Namespace, full: float, quick: float) -> float:
    if getattr(args, "duration", None) is not None:
        return args.duration
    return quick if getattr(args, "quick", False) else full


def _quick(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quick", False))


def _parse_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import parse

    return parse.run(duration=_duration(args, 10.0, 1.0))


def _message_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import message

    options: dict = {}
    rates = _rates(args) or ([500, 2000, 4000] if _quick(args) else None)
    if rates:
        options["rates"] = rates
    leak_count = getattr(args, "leak_count", None)
    if leak_count is None and _quick(args):
        leak_count = 1000
    if leak_count is not None:
        options["leak_count"] = leak_count
    idle_wait = getattr(args, "idle_wait", None)
    if idle_wait is None and _quick(args):
        idle_wait = 0.5
    if idle_wait is not None:
        options["idle_wait"] = idle_wait
    return message.run(duration=_duration(args, 5.0, 1.0), full=getattr(args, "full", False),
                       keep_going=getattr(args, "keep_going", False),
                       endpoint_rcvbuf=getattr(args, "endpoint_rcvbuf", None), **options)


def _presence_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import presence

    return presence.run(duration=_duration(args, 3.0, 1.0),
                        rates=_rates(args) or ([500, 2000, 4000] if _quick(args) else None))


# --quick for msrp: smaller files, one run of each, fewer chat messages
MSRP_QUICK = {"file_size": 8 << 20, "small_chunk_file_size": 2 << 20, "chat_messages": 1000, "repeats": 1}


def _mbps(ours: float, peer: float, ratio: float, note: str) -> dict:
    return {"unit": "MB/s", "better": "higher", "ours": ours, "peer": peer, "ratio": ratio, "note": note}


def _msrp_document(raw: dict) -> dict:
    """msrp.run's own result (``file_transfer`` rows, ``chat``) in the shape of every workload's document."""
    if "results" in raw:
        return raw
    results: dict = {}
    for row in raw.get("file_transfer", []):
        chunk = row["chunk_size"]
        label = f"{chunk >> 20}MiB" if chunk >= 1 << 20 else f"{chunk >> 10}KiB"
        raw_tcp = row["raw_tcp_MBps"]
        results[f"file_to_disk_{label}_chunks_MBps"] = _mbps(
            row["msrp_MBps"], raw_tcp, row["ratio"],
            f"{row['bytes'] >> 20} MiB; receiver writes to disk and checks SHA-1")
        if "plain_copy_MBps" in row:
            results[f"file_to_disk_{label}_chunks_vs_plain_copy_MBps"] = _mbps(
                row["msrp_MBps"], row["plain_copy_MBps"], row["copy_ratio"],
                "peer: the same bytes through a plain socket into a file, written and SHA-1 checked "
                "by two threads (no protocol)")
        if "sha1_one_core_MBps" in row:
            results[f"sha1_one_core_{label}_chunks_MBps"] = _mbps(
                row["sha1_one_core_MBps"], raw_tcp, row["sha1_ratio"],
                "not a transfer: one core hashing the same bytes in memory; no receiver that checks "
                "the SHA-1 can go faster (the bound for file_to_disk)")
        results[f"protocol_only_{label}_chunks_MBps"] = _mbps(
            row["msrp_discard_MBps"], raw_tcp, row["discard_ratio"], "receiver discards the bytes")
    chat = raw.get("chat") or {}
    if chat:
        results["chat_messages_per_s"] = {
            "unit": "messages/s", "better": "higher", "ours": chat.get("messages_per_s"), "peer": None,
            "ratio": None, "note": f"{chat.get('messages')} messages with success reports (no peer to compare)"}
    return {"description": "MSRP between two processes on loopback: ours = MSRP file transfer (2 KiB, 64 KiB, "
                           "1 MiB chunks) and chat; peer = the same bytes through a raw asyncio TCP socket "
                           "(and, for the *_vs_plain_copy rows, through a plain socket into a SHA-1 checked file)",
            "results": results, "details": raw}


def _msrp_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import msrp

    sizes = MSRP_QUICK if _quick(args) else {}
    # msrp.run prints its own table: keep it out of our output (--json must stay one document)
    with contextlib.redirect_stdout(io.StringIO()):
        raw = msrp.run(json_output=False, **sizes)
    return _msrp_document(raw)


def _cps_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import cps

    return cps.run(duration=_duration(args, 4.0, 1.5),
                   rates=_rates(args) or ([20, 50, 100] if _quick(args) else None),
                   full=getattr(args, "full", False))


MEDIA_QUICK = {"series": ["pcmu_srtp_8k", "opus_48k"], "counts": [20, 60, 120], "warmup": 2.0}


def media_rising(details: dict) -> dict:
    """``details["rising"]`` from the media workload's per-series steps (the plots' uniform shape)."""
    def latency(step: dict):
        clicks = step.get("latency_ms") or {}
        for kind in ("certain", "all"):
            if (clicks.get(kind) or {}).get("median") is not None:
                return clicks[kind]["median"]
        return None

    groups = []
    for name, series in (details.get("series") or {}).items():
        ours = [{"x": s["n"], "clean": bool(s.get("clean")), "loss_fraction": s.get("loss_fraction"),
                 "cpu_ms_per_stream_second": s.get("cpu_ms_per_stream_second"), "latency_ms": latency(s)}
                for s in series.get("steps", [])]
        peer = [{"x": s["n"], "clean": bool(s.get("clean")), "loss_fraction": s.get("loss_fraction"),
                 "cpu_ms_per_stream_second": s.get("cpu_ms_per_stream_second")}
                for s in series.get("reference_steps", [])]
        groups.append({"name": name, "ours": ours, "peer": peer})
    return {"x_label": "concurrent streams (N)",
            "metrics": [{"key": "loss_fraction", "label": "fraction of frames lost or late"},
                        {"key": "cpu_ms_per_stream_second", "label": "CPU-ms per stream-second"},
                        {"key": "latency_ms", "label": "one-way latency (ms, median)"}],
            "sides": {"ours": "media engine (2 processes)", "peer": "plain UDP sockets"},
            "groups": groups}


def _media_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import media

    options: dict = dict(MEDIA_QUICK) if _quick(args) else {}
    if _rates(args):
        options["counts"] = _rates(args)
    document = media.run(duration=_duration(args, 5.0, 2.0), **options)
    details = document.setdefault("details", {})
    if "rising" not in details:
        details["rising"] = media_rising(details)
    return document


WORKLOADS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "parse": _parse_workload,
    "message": _message_workload,
    "presence": _presence_workload,
    "msrp": _msrp_workload,
    "cps": _cps_workload,
    "media": _media_workload,
}


def _module_child(module: str, unless: str | None = None) -> Callable[[list[str]], bool]:
    def match(argv: list[str]) -> bool:
        return module in argv and (unless is None or unless not in argv)
    return match


# workloads whose load lands on child processes: --profile samples those children (matched by their argv),
# with py-spy (whole Python and native stacks of the interpreter's threads), or with perf for media, whose
# work is in the media engine's own native thread, which py-spy cannot see and whose pace its pauses would
# upset; every other workload (parse, presence, msrp, any registered later) is profiled in this process
PROFILE_CHILDREN: dict[str, tuple[Callable[[list[str]], bool], str]] = {
    "message": (_module_child("sipsimple.bench.endpoint"), "py-spy"),
    "cps": (_module_child("sipsimple.bench.cps_endpoint"), "py-spy"),
    # --udp children are the plain-socket reference (the peer), not ours
    "media": (_module_child("sipsimple.bench.media_endpoint", unless="--udp"), "perf"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload", choices=[*sorted(WORKLOADS), "all"],
                        help="what to measure; all: every workload in turn, one report and plots")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true",
                        help="few steps and short durations (bench all --quick: a few minutes)")
    parser.add_argument("--out", metavar="DIR",
                        help="directory for the report, plots and profiles (bench all: default ./bench-results)")
    parser.add_argument("--only", metavar="W1,W2,...", help="all: run only these workloads")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="all: stop a workload's child processes after S seconds, recording it as timed out "
                             "(default 600 with --quick, else 3600)")
    parser.add_argument("--profile", metavar="FILE", nargs="?", const="",
                        help="run under a profiler and write FILE (pstats, default DIR/WORKLOAD.prof) and a "
                             "text summary beside it: cProfile of this process (parse, presence, msrp) or "
                             "sampling of the endpoint children (message, cps: py-spy; media: perf); with "
                             "all, one per workload in DIR")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="seconds of measurement (parse: total, default 10; others: per step)")
    parser.add_argument("--full", action="store_true",
                        help="message: wait for Sofia's Timer J (32 s) before reading idle RSS; "
                             "cps: a further 20,000-call RSS check")
    parser.add_argument("--rates", metavar="R1,R2,...",
                        help="message, presence, cps: the rates to try, per second; media: the stream counts")
    parser.add_argument("--leak-count", type=int, metavar="N",
                        help="message: transactions per RSS batch (default 10000)")
    parser.add_argument("--idle-wait", type=float, metavar="S",
                        help="message: seconds to wait before reading idle RSS (default 34 with --full, else 2)")
    parser.add_argument("--keep-going", action="store_true",
                        help="message: go on with the peer after our first unclean rate")
    parser.add_argument("--endpoint-rcvbuf", type=int, metavar="BYTES",
                        help="message: diagnostic, set SO_RCVBUF of our endpoint's UDP socket (default: the "
                             "kernel's, as the Engine leaves it)")
    parser.add_argument("--output", metavar="FILE", help="also write the JSON document to FILE")


def _version(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (done.stdout + done.stderr).strip()
    return text.splitlines()[0].strip() if text else None


def machine_info() -> dict:
    info: dict = {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        from sipsimple import __version__

        info["sipsimple"] = __version__
    except Exception:
        info["sipsimple"] = None
    info["sofia_sip"] = _version(["pkg-config", "--modversion", "sofia-sip-ua"])
    sipp = _version(["sipp", "-v"])
    info["sipp"] = sipp.replace("SIPp", "").strip(" ,.") if sipp else None
    return info


def _profile_method(name: str, tool: str | None) -> str:
    if tool == "py-spy":
        return (f"py-spy sampling at {{rate}} Hz, native frames included, of the {name} workload's endpoint "
                "child process(es); calls = samples")
    if tool == "perf":
        return (f"perf sampling at {{rate}} Hz of every thread of the {name} workload's endpoint child "
                "process(es): own time per function (C and Cython symbols), no call stacks; calls = samples")
    return ("cProfile of this process's threads, CPU time per thread (time.thread_time); it slows the "
            "Python code, so this run's figures are not comparable with an unprofiled run")


def run_workload(name: str, args: argparse.Namespace, profile: str | os.PathLike | None = None) -> dict:
    """Run one workload and wrap its result into the JSON document.

    With ``profile`` (a path), the workload runs under a profiler (see
    :mod:`sipsimple.bench.profile`) and the document's ``profile`` says what was
    written. The profile is written even when the workload fails.
    """
    machine = machine_info()
    profiler = tool = None
    if profile:
        from sipsimple.bench import profile as profiling

        match, tool = PROFILE_CHILDREN.get(name, (None, None))
        if tool == "perf" and shutil.which("perf") is None:
            tool = "py-spy"   # without perf, py-spy still sees the Python side of the media endpoints
        profiler = profiling.ChildSampler(match, tool=tool) if match else profiling.ThreadProfiler()
        profiler.start()
    t0 = time.monotonic()
    profile_info: dict | None = None
    try:
        result = WORKLOADS[name](args)
    finally:
        if profiler is not None:
            profile_info = _finish_profile(name, profiler, profile, tool)
    try:
        machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    document = {"workload": name, "machine": machine, "elapsed_s": round(time.monotonic() - t0, 1)}
    document.update(result)
    if profile_info is not None:
        document["profile"] = profile_info
    return document


def _finish_profile(name: str, profiler, path, tool: str | None) -> dict:
    from sipsimple.bench import profile as profiling

    try:
        stats = profiler.stop()
        processes = profiler.describe() if isinstance(profiler, profiling.ChildSampler) else None
        method = _profile_method(name, tool).format(rate=profiling.SAMPLE_RATE)
        if stats is None:
            return {"path": None, "method": method, "processes": processes,
                    "error": "nothing was profiled (no matching child process, or no Python code ran)"}
        info = profiling.write(stats, path, method)
        if processes is not None:
            info["processes"] = processes
        return info
    except Exception as exc:  # a profile that cannot be written must not hide the workload's result
        return {"path": None, "error": f"{type(exc).__name__}: {exc}"}


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(document: dict) -> str:
    """A readable rendering of a workload's document."""
    machine = document.get("machine", {})
    lines = [f"workload: {document.get('workload')}  ({document.get('elapsed_s')} s)",
             f"machine: {machine.get('cpu_count')} CPU {machine.get('cpu_model', '')}, Python "
             f"{machine.get('python')}, sofia-sip {machine.get('sofia_sip')}, sipp {machine.get('sipp')}, "
             f"load {machine.get('loadavg_at_start')}"]
    if document.get("description"):
        lines.append(document["description"])
    rows = [("figure", "unit", "ours", "peer", "ours/peer")]
    for name, figure in document.get("results", {}).items():
        rows.append((name, figure.get("unit", ""), _fmt(figure.get("ours")), _fmt(figure.get("peer")),
                     _fmt(figure.get("ratio"))))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines.append("")
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[j]) if j < 2 else cell.rjust(widths[j])
                               for j, cell in enumerate(row)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    details = document.get("details", {})
    if "per_message" in details:
        lines.append("")
        lines.append(f"{'message':14} {'bytes':>6} {'ours us':>9} {'peer us':>9} {'speedup':>8}")
        for row in details["per_message"]:
            lines.append(f"{row['message']:14} {row['bytes']:>6} {row['ours_us']:>9} {row['peer_us']:>9} "
                         f"{row['speedup']:>8}")
    if "steps" in details:
        lines.append("")
        lines.append(f"{'rate/s':>7} {'side':5} {'ok':>7} {'fail':>5} {'retr':>5} {'seen':>7} "
                     f"{'achieved':>9} {'CPU-s/1000':>10} {'RSS kB':>8} {'drops':>6}  clean")
        for step in details["steps"]:
            for side in step.get("order", ("ours", "peer")):
                s = step.get(side)
                if not s:
                    continue
                lines.append(f"{step['rate']:>7} {side:5} {s['successful']:>7} {s['failed']:>5} "
                             f"{s['retransmissions']:>5} {_fmt(s.get('python_seen')):>7} "
                             f"{s['achieved_rate']:>9} {s['cpu_s_per_1000']:>10} {_fmt(s.get('rss_kb')):>8} "
                             f"{_fmt(s.get('udp_drops')):>6}  "
                             f"{'yes' if s['clean'] else 'NO: ' + '; '.join(s.get('problems', []))}")
    if "rss_kb" in details:
        lines.append("")
        lines.append("RSS kB: " + ", ".join(
            f"{k} ours={_fmt(v.get('ours'))} peer={_fmt(v.get('peer'))}" if isinstance(v, dict) else f"{k}={_fmt(v)}"
            for k, v in details["rss_kb"].items()))
    if details.get("idle_note"):
        lines.append(details["idle_note"])
    if "goal" in document:
        lines.append(f"goal: {document['goal']}")
    profile = document.get("profile")
    if profile:
        lines.append(f"profile: {profile.get('path')} (summary {profile.get('summary')})"
                     if profile.get("path") else f"profile: not written: {profile.get('error')}")
    return "\n".join(lines)


def _profile_path(args: argparse.Namespace, name: str) -> Path | None:
    """Where ``--profile`` writes: FILE if given, else DIR/WORKLOAD.prof (DIR: --out, or here)."""
    if args.profile is None:
        return None
    if args.profile:
        return Path(args.profile)
    return Path(args.out or ".") / f"{name}.prof"


def run(args: argparse.Namespace) -> int:
    """Entry point of the ``bench`` subcommand."""
    if args.workload == "all":
        from sipsimple.bench import report

        return report.main(args)
    if getattr(args, "only", None) or getattr(args, "timeout", None):
        print("sipsimple bench: --only and --timeout go with all", file=sys.stderr)
        return 2
    document = run_workload(args.workload, args, profile=_profile_path(args, args.workload))
    text = json.dumps(document, indent=2)
    if getattr(args, "output", None):
        with open(args.output, "w") as f:
            f.write(text + "\n")
    if getattr(args, "out", None):
        from sipsimple.bench import report

        report.write_single(document, Path(args.out))
    print(text if args.json else format_table(document))
    return 0


def register_cli(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(NAME, help=HELP, description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sipsimple bench", description=DESCRIPTION)
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
