"""``sipsimple bench all``: every workload in turn, one JSON report, a plot per workload.

    sipsimple bench all [--json] [--out DIR] [--quick] [--only parse,msrp] [--profile]

Writes into DIR (default ``./bench-results``):

- ``bench-report.json``: the machine, the sipsimple version and git revision,
  the options, and per workload its status (``ok`` or ``failed`` with the
  error and traceback), duration, results and details. It is rewritten after
  each workload, so an interrupted run leaves what it measured;
- ``WORKLOAD.png`` (:mod:`sipsimple.bench.plot`): the rising-rate series for
  message, cps, presence and media, a ratio bar chart for parse and msrp.
  Without matplotlib the report says the plots were skipped and why;
- with ``--profile``: ``WORKLOAD.prof`` and ``WORKLOAD.txt`` per workload.

A workload that fails is recorded and the next one runs; the exit status is 1
if any failed. A workload still running after ``--timeout`` seconds (default
600 with ``--quick``, 3600 otherwise) has its child processes (endpoints,
sipp, baresip) stopped: waiting on them, it then fails like any other, and is
recorded as timed out.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from sipsimple.bench import runner

__all__ = ["main", "run_all", "write_single", "git_info", "REPORT_NAME", "DEFAULT_OUT"]

REPORT_NAME = "bench-report.json"
DEFAULT_OUT = "bench-results"
FORMAT = 1
TIMEOUT_QUICK = 600.0
TIMEOUT_FULL = 3600.0
# per-workload options whose meaning differs from workload to workload: not for a run of them all
PER_WORKLOAD_OPTIONS = ("duration", "rates", "leak_count", "idle_wait", "output")


def git_info(root: Path | None = None) -> dict | None:
    """Revision of the source checkout this package runs from (None outside a git checkout)."""
    root = root or Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None

    def git(*arguments: str) -> str | None:
        try:
            # --no-optional-locks: a status must not refresh (write) the index
            done = subprocess.run(["git", "--no-optional-locks", "-C", str(root), *arguments],
                                  capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    revision = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"revision": revision, "dirty": bool(status) if status is not None else None,
            "subject": git("log", "-1", "--format=%s")}


def _selected(only: str | None) -> list[str]:
    if not only:
        return list(runner.WORKLOADS)
    names = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in names if name not in runner.WORKLOADS]
    if unknown:
        raise ValueError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(runner.WORKLOADS)}")
    return names


def _write_json(path: Path, document: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)   # a reader never sees half a report


def _descendants(pid: int) -> list[int]:
    from sipsimple.bench.profile import child_pids

    found, todo = [], [pid]
    while todo:
        for child in child_pids(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


class _Watchdog:
    """After ``seconds``, stops the processes started under it, so a workload blocked on one of them fails.

    Processes this one already had (a caller's own servers) are left alone.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._before: set[int] = set()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._before = set(_descendants(os.getpid()))
        self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        self.fired = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [pid for pid in _descendants(os.getpid()) if pid not in self._before]
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5.0
            while pids and time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
                time.sleep(0.1)


def _plot(name: str, document: dict, out: Path, entry: dict) -> None:
    from sipsimple.bench import plot

    path = out / f"{name}.png"
    try:
        kind = plot.plot_document(name, document, path)
    except Exception as exc:   # a plot that fails must not lose the measurement
        entry["plot_error"] = f"{type(exc).__name__}: {exc}"
        return
    if kind:
        entry["plot"] = path.name
        entry["plot_kind"] = kind


def run_all(args: argparse.Namespace, out: Path, log=None) -> dict:
    """Run the selected workloads; the report (also written to ``out/bench-report.json`` as it grows).

    Progress goes to ``log`` (default: standard error).
    """
    from sipsimple.bench import plot

    log = log or sys.stderr
    names = _selected(getattr(args, "only", None))
    timeout = getattr(args, "timeout", None) or (TIMEOUT_QUICK if getattr(args, "quick", False) else TIMEOUT_FULL)
    out.mkdir(parents=True, exist_ok=True)
    missing = plot.matplotlib_missing()
    profiling = getattr(args, "profile", None) is not None
    report: dict = {
        "format": FORMAT,
        "command": "sipsimple bench all" + "".join(
            f" --{flag}" for flag in ("quick", "json") if getattr(args, flag, False))
        + (f" --only {args.only}" if getattr(args, "only", None) else "") + (" --profile" if profiling else ""),
        "version": None, "git": git_info(), "machine": runner.machine_info(),
        "options": {"quick": bool(getattr(args, "quick", False)), "only": names, "profile": profiling,
                    "timeout_s": timeout,
                    "full": bool(getattr(args, "full", False)), "out": str(out)},
        "plots": ({"status": "skipped", "reason": missing} if missing else {"status": "written"}),
        "workloads": {},
    }
    report["version"] = report["machine"].get("sipsimple")
    started = time.monotonic()
    path = out / REPORT_NAME
    if missing:
        print(f"sipsimple bench: plots skipped: {missing}", file=log)
    for index, name in enumerate(names, 1):
        print(f"[{index}/{len(names)}] {name} ...", file=log, flush=True)
        entry: dict = {"status": "running"}
        report["workloads"][name] = entry
        _write_json(path, report)
        t0 = time.monotonic()
        watchdog = _Watchdog(timeout)
        try:
            with watchdog:
                document = runner.run_workload(name, args, profile=out / f"{name}.prof" if profiling else None)
        except Exception as exc:
            entry.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
            if watchdog.fired:
                entry["error"] = f"timed out after {timeout:g} s (its child processes were stopped): {entry['error']}"
        else:
            entry["status"] = "ok"
            entry.update({key: value for key, value in document.items() if key not in ("workload", "machine")})
            entry["loadavg"] = {"start": document["machine"].get("loadavg_at_start"),
                                "end": document["machine"].get("loadavg_at_end")}
            if not missing:
                _plot(name, document, out, entry)
        entry["duration_s"] = round(time.monotonic() - t0, 1)
        print(f"[{index}/{len(names)}] {name}: {entry['status']} in {entry['duration_s']} s"
              + (f": {entry['error']}" if "error" in entry else ""), file=log, flush=True)
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        _write_json(path, report)
    report["summary"] = {"ok": [n for n, e in report["workloads"].items() if e["status"] == "ok"],
                         "failed": [n for n, e in report["workloads"].items() if e["status"] != "ok"]}
    try:
        report["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    report["finished_at"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    _write_json(path, report)
    return report


def write_single(document: dict, out: Path) -> None:
    """A single workload's ``--out DIR``: ``DIR/WORKLOAD.json`` and its plot (if matplotlib is there)."""
    from sipsimple.bench import plot

    out.mkdir(parents=True, exist_ok=True)
    name = document["workload"]
    entry: dict = {}
    missing = plot.matplotlib_missing()
    if missing:
        print(f"sipsimple bench: plot skipped: {missing}", file=sys.stderr)
    else:
        _plot(name, document, out, entry)
        if "plot_error" in entry:
            print(f"sipsimple bench: plot failed: {entry['plot_error']}", file=sys.stderr)
    _write_json(out / f"{name}.json", document)


def format_report(report: dict) -> str:
    """Each workload's table, then where the files are."""
    parts = []
    for name, entry in report["workloads"].items():
        if entry["status"] == "ok":
            parts.append(runner.format_table({"workload": name, "machine": report["machine"],
                                              "elapsed_s": entry.get("duration_s"), **entry}))
        else:
            parts.append(f"workload: {name}  FAILED after {entry.get('duration_s')} s: {entry.get('error')}")
    out = Path(report["options"]["out"])
    lines = [f"report: {out / REPORT_NAME}"]
    plots = [str(out / e["plot"]) for e in report["workloads"].values() if e.get("plot")]
    if report["plots"]["status"] == "skipped":
        lines.append(f"plots skipped: {report['plots']['reason']}")
    elif plots:
        lines.append("plots: " + ", ".join(plots))
    git = report.get("git") or {}
    lines.append(f"sipsimple {report.get('version')}, revision {git.get('revision')}"
                 + (" (modified)" if git.get("dirty") else ""))
    if report["summary"]["failed"]:
        lines.append("FAILED: " + ", ".join(report["summary"]["failed"]))
    return "\n\n".join(parts + ["\n".join(lines)])


def main(args: argparse.Namespace) -> int:
    """``sipsimple bench all``: 0 when every workload ran, 1 if any failed, 2 for bad options."""
    given = [f"--{option.replace('_', '-')}" for option in PER_WORKLOAD_OPTIONS
             if getattr(args, option, None) not in (None, False)]
    if given:
        print(f"sipsimple bench all: {', '.join(given)} apply to one workload; run it alone "
              "(sipsimple bench WORKLOAD ...)", file=sys.stderr)
        return 2
    if getattr(args, "profile", None):
        print("sipsimple bench all: --profile takes no FILE here; the profiles go to DIR/WORKLOAD.prof",
              file=sys.stderr)
        return 2
    try:
        _selected(getattr(args, "only", None))
    except ValueError as exc:
        print(f"sipsimple bench all: {exc}", file=sys.stderr)
        return 2
    out = Path(getattr(args, "out", None) or DEFAULT_OUT)
    # with --json, stdout carries the report alone: whatever a workload prints goes to stderr
    redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with redirect:
        report = run_all(args, out)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 1 if report["summary"]["failed"] else 0
