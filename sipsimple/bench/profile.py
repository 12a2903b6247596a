"""Profiling for ``sipsimple bench --profile``: one ``.prof`` file (pstats) and a text summary per workload.

Where the work of a workload happens decides how it is profiled:

- in this process (``parse``, ``presence``, ``msrp``): :class:`ThreadProfiler`,
  cProfile of this thread and of every thread started while it runs (the
  Engine's, the middleware's), each timed by its own CPU clock
  (``time.thread_time``) so threads blocked waiting do not hide the ones
  working;
- in child processes (``message``, ``cps``, ``media``: the endpoint under
  load): :class:`ChildSampler`, which samples each child whose command line
  matches, with ``py-spy`` (the interpreter's threads, whole stacks down into
  C) or ``perf`` (every thread, including the media engine's native one that
  py-spy cannot see; the function on top only). Sampling leaves the child's
  speed nearly untouched (cProfile would halve it, and the load sweep would
  measure the profiler). The samples are converted to pstats: time is samples
  x interval, and "calls" count samples.

Either way :func:`write` leaves ``PATH`` (load it with ``pstats.Stats(PATH)`` or
snakeviz) and ``PATH`` with suffix ``.txt``: the top functions by own time and
by cumulative time.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["ThreadProfiler", "ChildSampler", "collapsed_to_stats", "write", "summary_path", "top_functions",
           "child_pids", "py_spy", "cython_name", "SAMPLE_RATE"]

SAMPLE_RATE = 100     # py-spy samples per second
ATTACH_AFTER = 0.2    # seconds: let a new child's interpreter start before py-spy looks for it
TOP = 25


class ThreadProfiler:
    """cProfile of the calling thread and of every ``threading`` thread started until :meth:`stop`.

    One ``cProfile.Profile`` per thread (a profiler follows one thread's call
    stack), merged when written.
    """

    def __init__(self, timer: Callable[[], float] = time.thread_time) -> None:
        self._timer = timer
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []
        self._own: cProfile.Profile | None = None

    def _new(self) -> cProfile.Profile:
        profile = cProfile.Profile(self._timer)
        with self._lock:
            self._profiles.append(profile)
        return profile

    def _thread_started(self, *_args) -> None:
        # threading.setprofile's hook runs once in each new thread: replace it by that thread's own profiler
        sys.setprofile(None)
        self._new().enable()

    def start(self) -> ThreadProfiler:
        threading.setprofile(self._thread_started)
        self._own = self._new()
        self._own.enable()
        return self

    def stop(self) -> pstats.Stats | None:
        """Stop and merge: the statistics of every thread that ran Python code (None if none did)."""
        threading.setprofile(None)
        if self._own is not None:
            self._own.disable()
        merged = None
        with self._lock:
            profiles = list(self._profiles)
        for profile in profiles:
            # the other threads' profilers cannot be switched off from here; their threads have ended or
            # idle by now, and create_stats reads what they gathered
            profile.create_stats()
            if not profile.stats:
                continue
            if merged is None:
                merged = pstats.Stats(profile)
            else:
                merged.add(profile)
        return merged


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid`` (each thread's list: a child belongs to the thread that forked it)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        return []


def py_spy() -> str | None:
    """The py-spy executable: on PATH or beside this Python (a venv)."""
    found = shutil.which("py-spy")
    if found:
        return found
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else None


class ChildSampler:
    """Samples every child process of this one whose argv satisfies ``match``, with py-spy or perf.

    A watcher thread looks for new children every 50 ms; each matching child
    gets its own sampler, which ends when the child exits; :meth:`stop` waits
    for them and merges what they saw.

    ``tool="py-spy"`` (raw collapsed stacks, aggregated by function) sees the
    threads the interpreter knows, with their whole stacks; with ``native``
    (the default) the stacks go down into C: the Cython core, Sofia-SIP,
    instead of one opaque Python frame calling into them. It pauses the
    process for each sample.

    ``tool="perf"`` (``perf record``, no call graph) sees every thread,
    including the media engine's native ones that py-spy cannot, without
    pausing them (timing-sensitive media keeps its pace), but gives only the
    function each sample was in: own time, no callers, C symbols only.
    """

    def __init__(self, match: Callable[[list[str]], bool], rate: int = SAMPLE_RATE, native: bool = True,
                 tool: str = "py-spy") -> None:
        if tool not in ("py-spy", "perf"):
            raise ValueError(f"unknown sampling tool {tool!r}")
        self.tool = tool
        self.exe = py_spy() if tool == "py-spy" else shutil.which("perf")
        if self.exe is None:
            raise RuntimeError(f"profiling a child process needs {tool}"
                               + (" (pip install py-spy)" if tool == "py-spy" else " (apt install linux-perf)"))
        self.match = match
        self.rate = rate
        self.extra = ["--native"] if native and tool == "py-spy" else []
        self.directory = Path(tempfile.mkdtemp(prefix="sipsimple-bench-spy-"))
        self.sampled: list[dict] = []        # {"pid", "argv"} (py-spy: + "raw", "log")
        self._perf_data = self._perf_log = self.directory / "-"
        self._spies: list[subprocess.Popen] = []
        self._first_seen: dict[int, float] = {}
        self._decided: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="bench-profile-watch", daemon=True)

    def start(self) -> ChildSampler:
        if self.tool == "perf":
            # system-wide, filtered by process afterwards: perf -p misses the threads a process starts
            # after it attached (the media engine's), and this needs no attach at all
            self._perf_data = self.directory / "perf.data"
            self._perf_log = self.directory / "perf.log"
            with open(self._perf_log, "w") as log_file:
                self._spies.append(subprocess.Popen(
                    [self.exe, "record", "-a", "-F", str(self.rate), "-o", str(self._perf_data)],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT))
        self._thread.start()
        return self

    def _watch(self) -> None:
        me = os.getpid()
        while not self._done.wait(0.05):
            now = time.monotonic()
            for pid in child_pids(me):
                # right after fork a child still shows its parent's command line: decide once it has run a bit
                if pid in self._decided or now - self._first_seen.setdefault(pid, now) < ATTACH_AFTER:
                    continue
                self._decided.add(pid)
                argv = _cmdline(pid)
                if argv and self.match(argv):
                    self._attach(pid, argv)

    def _attach(self, pid: int, argv: list[str]) -> None:
        child = {"pid": pid, "argv": argv}
        self.sampled.append(child)
        if self.tool == "perf":
            return   # already recorded
        child["raw"] = self.directory / f"{pid}.txt"
        child["log"] = self.directory / f"{pid}.log"
        with open(child["log"], "w") as log_file:
            self._spies.append(subprocess.Popen(
                [self.exe, "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw", "--function",
                 "--full-filenames", "--output", str(child["raw"]), *self.extra],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT))

    def _perf_collapsed(self) -> dict[int, list[str]]:
        """perf's samples of the matched children, as collapsed one-frame stacks per process."""
        wanted = {child["pid"] for child in self.sampled}
        done = subprocess.run([self.exe, "script", "-i", str(self._perf_data), "-F", "pid,ip,sym,dso"],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise OSError(f"perf script failed: {done.stderr[-300:]}")
        counts: dict[int, dict[str, int]] = {pid: {} for pid in wanted}
        for line in done.stdout.splitlines():
            m = _PERF_SAMPLE.match(line)
            if not m or int(m.group("pid")) not in wanted:
                continue
            symbol = m.group("sym")
            symbol = "0x" + m.group("ip") if symbol == "[unknown]" else cython_name(symbol)
            frame = f"{symbol} ({m.group('dso')})"
            per_process = counts[int(m.group("pid"))]
            per_process[frame] = per_process.get(frame, 0) + 1
        return {pid: [f"{frame} {n}" for frame, n in frames.items()] for pid, frames in counts.items()}

    def stop(self, timeout: float = 20.0) -> pstats.Stats | None:
        """Stop watching, wait for the samplers (interrupting those still running), merge."""
        self._done.set()
        self._thread.join()
        if self.tool == "perf":
            self._spies[0].send_signal(signal.SIGINT)   # the system-wide recording ends only when told
        deadline = time.monotonic() + timeout
        for spy in self._spies:
            try:
                spy.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                spy.send_signal(signal.SIGINT)   # py-spy and perf write what they have on Ctrl-C
                try:
                    spy.wait(10)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait()
        try:
            stats = self._merge_samples()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
        return _stats_from_dict(stats, f"{self.tool} samples") if stats else None

    def _merge_samples(self) -> dict:
        stats: dict = {}
        if self.tool == "perf":
            try:
                per_process = self._perf_collapsed()
            except (OSError, subprocess.SubprocessError) as exc:
                log = self._perf_log.read_text()[-300:] if self._perf_log.exists() else ""
                for child in self.sampled:
                    child["error"] = f"{exc} {log}".strip()
                return stats
        for child in self.sampled:
            try:
                lines = (per_process[child["pid"]] if self.tool == "perf"
                         else child["raw"].read_text().splitlines())
            except OSError:
                child["error"] = child["log"].read_text()[-500:] if child["log"].exists() else "no output"
                continue
            child_stats, child["samples"], child["waiting_samples"] = collapsed_to_stats(lines, 1.0 / self.rate)
            _merge(stats, child_stats)
        return stats

    def describe(self) -> list[dict]:
        return [{"pid": c["pid"], "command": " ".join(c["argv"][1:4]), "samples": c.get("samples"),
                 "waiting_samples_left_out": c.get("waiting_samples"),
                 **({"error": c["error"]} if "error" in c else {})} for c in self.sampled]


_PERF_SAMPLE = re.compile(r"^\s*(?P<pid>\d+)\s+(?P<ip>[0-9a-f]+)\s+(?P<sym>.*?)\s+\((?P<dso>[^()]*)\)\s*$")
_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")

# innermost native frames that mean a thread waits, not works: py-spy's idle detection lets some through
# when it samples native stacks, and on a lightly loaded endpoint they would outweigh the work
WAITS = frozenset({
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect", "pselect64",
    "nanosleep", "clock_nanosleep", "__clock_nanosleep", "pthread_cond_wait", "pthread_cond_timedwait",
    "pthread_cond_clockwait", "___pthread_cond_wait", "___pthread_cond_timedwait", "sem_wait", "sem_timedwait",
    "sem_clockwait", "__futex_abstimed_wait_common", "__futex_abstimed_wait_common64", "futex_wait",
    "syscall", "pause", "sigwait", "sigtimedwait",
})
# a read() called straight from Python or Cython code is a blocking read of a pipe (the control pipe on
# stdin, the media engine's event pipe); inside a C library it may be work, and stays
READS = frozenset({"read", "__libc_read", "__read"})
SOURCE_SUFFIXES = (".py", ".pyx", ".pxi", ".pxd")


def cython_name(symbol: str) -> str:
    """``__pyx_f_9sipsimple_4core_6_media_engine_thread`` -> ``sipsimple.core._media.engine_thread``.

    Cython names a C function after its module path (and class), each part
    preceded by its length and joined by ``_``; other symbols come back unchanged.
    """
    start = re.match(r"__pyx_[a-z_]*?_(?=\d)", symbol)
    if not start:
        return symbol
    rest, parts = symbol[start.end():], []
    while m := re.match(r"\d+", rest):
        end = m.end() + int(m.group())
        if int(m.group()) == 0 or end > len(rest) or rest[end:end + 1] not in ("", "_"):
            break   # not a length: a method's number (``_2start``), which Cython puts before its name
        parts.append(rest[m.end():end])
        rest = rest[end + 1:]
    if len(parts) < 2:
        return symbol
    rest = rest.lstrip("0123456789")
    return ".".join(parts + ([rest] if rest else []))


def _frame_key(frame: str) -> tuple[str, int, str]:
    m = _FRAME.match(frame)
    if not m:
        return ("~", 0, frame)
    name, file = m.group("name"), m.group("file")
    # an unnamed native address differs from process to process (ASLR): one entry per library instead
    if name.startswith("0x"):
        name = "?"
    # Python frames carry their function's first line (--function); native and Cython ones the line
    # being run, which would split one function into many entries
    line = int(m.group("line") or 0) if file.endswith(".py") else 0
    return (file, line, name)


def collapsed_to_stats(lines: Iterable[str], interval: float) -> tuple[dict, int, int]:
    """pstats' dict from collapsed stacks (``root;...;leaf COUNT`` per line) sampled every ``interval`` s.

    A function's own time is the samples with it on top; its cumulative time
    the samples with it anywhere on the stack (once per sample, recursion or
    not); its "calls" are those samples too. Samples waiting in a blocking
    call (:data:`WAITS`) are left out. Returns ``(stats, samples kept, samples
    left out as waiting)``.
    """
    stats: dict = {}
    kept = waiting = 0
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        if not stack or count <= 0:
            continue
        keys = [_frame_key(frame) for frame in stack.split(";")]
        if keys[-1][2] in WAITS or (keys[-1][2] in READS and len(keys) > 1
                                    and keys[-2][0].endswith(SOURCE_SUFFIXES)):
            waiting += count
            continue
        kept += count
        spent = count * interval
        for key in set(keys):
            entry = stats.setdefault(key, [0, 0, 0.0, 0.0, {}])
            entry[0] += count
            entry[1] += count
            entry[3] += spent
        stats[keys[-1]][2] += spent
        for caller, callee in set(zip(keys, keys[1:], strict=False)):
            if caller == callee:
                continue   # a native frame merged with itself ("?" in the same library)
            callers = stats[callee][4]
            nc, cc, tt, ct = callers.get(caller, (0, 0, 0.0, 0.0))
            callers[caller] = (nc + count, cc + count, tt + (spent if callee == keys[-1] else 0.0), ct + spent)
    return {key: (cc, nc, tt, ct, callers) for key, (cc, nc, tt, ct, callers) in stats.items()}, kept, waiting


def _merge(into: dict, stats: dict) -> None:
    """Add ``stats`` into ``into`` (both pstats dicts)."""
    for key, (cc, nc, tt, ct, callers) in stats.items():
        if key in into:
            a = into[key]
            merged_callers = dict(a[4])
            for caller, value in callers.items():
                old = merged_callers.get(caller, (0, 0, 0.0, 0.0))
                merged_callers[caller] = tuple(x + y for x, y in zip(old, value, strict=True))
            into[key] = (a[0] + cc, a[1] + nc, a[2] + tt, a[3] + ct, merged_callers)
        else:
            into[key] = (cc, nc, tt, ct, dict(callers))


def _stats_from_dict(stats: dict, label: str) -> pstats.Stats:
    result = pstats.Stats()
    result.stats = stats
    result.files = [label]
    result.get_top_level_stats()
    return result


def summary_path(path: str | Path) -> Path:
    """Where the text summary of the profile at ``path`` goes: the same name with ``.txt``."""
    path = Path(path)
    return path.with_name(path.name + ".summary.txt") if path.suffix == ".txt" else path.with_suffix(".txt")


def top_functions(stats: pstats.Stats, n: int = 10) -> list[dict]:
    """The ``n`` functions with the most own time: ``{"function", "own_s", "cumulative_s", "calls"}``."""
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:n]
    return [{"function": pstats.func_std_string(key), "own_s": round(tt, 4), "cumulative_s": round(ct, 4),
             "calls": nc} for key, (_cc, nc, tt, ct, _callers) in rows]


def write(stats: pstats.Stats, path: str | Path, method: str, top: int = TOP) -> dict:
    """Write ``path`` (pstats) and its text summary; what was written, for the report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats.dump_stats(str(path))
    text = io.StringIO()
    text.write(f"profile: {path}\nmethod: {method}\n")
    for order, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        text.write(f"\n=== top {top} by {title} ===\n")
        stats.stream = text
        stats.sort_stats(order).print_stats(top)
    summary = summary_path(path)
    summary.write_text(text.getvalue())
    return {"path": str(path), "summary": str(summary), "method": method, "top": top_functions(stats)}
