"""The benchmark harness: ``sipsimple bench WORKLOAD [--json] [--duration S] [--profile FILE]``.

Every workload measures ours beside a peer in the same run, under the same
conditions, and returns a dict whose ``results`` map a figure's name to
``{"ours", "peer", "ratio" (ours/peer), "unit", "better"}``; ``details`` holds
the rest. ``--json`` prints one JSON document with the workload, machine
information and results; otherwise a table.

Workloads:

- ``parse``: SIP messages parsed and printed back, core (Sofia-SIP) vs a
  pure-Python parser (:mod:`sipsimple.bench.parse`), in one process;
- ``message``: MESSAGE requests from sipp into an Engine in a child process vs
  a sipp UAS, at rising rates (:mod:`sipsimple.bench.message`), between processes.

This module is a subcommand module of :mod:`sipsimple.cli.main` (``NAME``,
``HELP``, ``add_arguments``, ``run``) and also runs alone:
``python -m sipsimple.bench WORKLOAD ...``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable

__all__ = ["NAME", "HELP", "COMMON_OPTIONS", "WORKLOADS", "add_arguments", "run", "run_workload",
           "register_cli", "main", "machine_info", "format_table"]

NAME = "bench"
HELP = "measure performance against a peer (parse, message)"
DESCRIPTION = __doc__.split("\n\n")[1] if __doc__ else HELP
COMMON_OPTIONS = False


def _parse_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import parse

    return parse.run(duration=args.duration if args.duration is not None else 10.0)


def _message_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import message

    options = {}
    if args.rates:
        options["rates"] = [int(r) for r in args.rates.split(",") if r.strip()]
    if args.leak_count is not None:
        options["leak_count"] = args.leak_count
    if args.idle_wait is not None:
        options["idle_wait"] = args.idle_wait
    return message.run(duration=args.duration if args.duration is not None else 5.0, full=args.full,
                       profile=args.profile, keep_going=args.keep_going,
                       endpoint_rcvbuf=args.endpoint_rcvbuf, **options)


def _rates(args: argparse.Namespace) -> list[int] | None:
    return [int(r) for r in args.rates.split(",") if r.strip()] if args.rates else None


def _presence_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import presence

    return presence.run(duration=args.duration if args.duration is not None else 3.0, rates=_rates(args))


def _msrp_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import msrp

    return msrp.run(json_output=False)


def _cps_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import cps

    return cps.run(duration=args.duration if args.duration is not None else 4.0, rates=_rates(args),
                   full=args.full, profile=args.profile)


def _media_workload(args: argparse.Namespace) -> dict:
    from sipsimple.bench import media

    return media.run(duration=args.duration if args.duration is not None else 5.0, counts=_rates(args))


WORKLOADS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "parse": _parse_workload,
    "message": _message_workload,
    "presence": _presence_workload,
    "msrp": _msrp_workload,
    "cps": _cps_workload,
    "media": _media_workload,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload", choices=sorted(WORKLOADS), help="what to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="seconds of measurement (parse: total, default 10; message: per rate, default 5)")
    parser.add_argument("--profile", metavar="FILE",
                        help="write cProfile statistics (parse: this process; message: the endpoint's "
                             "Engine thread)")
    parser.add_argument("--full", action="store_true",
                        help="message: wait for Sofia's Timer J (32 s) before reading idle RSS")
    parser.add_argument("--rates", metavar="R1,R2,...",
                        help="message: the request rates to try, per second (default 500,...,6000)")
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


def run_workload(name: str, args: argparse.Namespace) -> dict:
    """Run one workload and wrap its result into the JSON document."""
    machine = machine_info()
    profiler = None
    if args.profile and name == "parse":
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    t0 = time.monotonic()
    try:
        result = WORKLOADS[name](args)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    try:
        machine["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    document = {"workload": name, "machine": machine, "elapsed_s": round(time.monotonic() - t0, 1)}
    document.update(result)
    return document


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
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point of the ``bench`` subcommand."""
    document = run_workload(args.workload, args)
    text = json.dumps(document, indent=2)
    if getattr(args, "output", None):
        with open(args.output, "w") as f:
            f.write(text + "\n")
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
