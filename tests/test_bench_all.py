"""``sipsimple bench all``: one report and a plot per workload, failures recorded, profiles written.

Runs real workloads in their --quick form (parse and msrp: ratio bar charts;
presence: a rising-rate plot), never asserting speed.
"""

from __future__ import annotations

import json
import pstats
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sipsimple.bench import profile as profiling
from sipsimple.bench.report import REPORT_NAME
from sipsimple.bench.runner import WORKLOADS, main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: Path) -> None:
    """A PNG that matplotlib drew: right signature, a real size, and more than a blank canvas."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 400 and height >= 150, (width, height)
    import matplotlib.image

    pixels = matplotlib.image.imread(str(path))[..., :3]
    ink = (pixels < 0.9).any(axis=-1).mean()     # axes, text, bars and lines
    colours = {tuple(p) for p in (pixels[::4, ::4] * 255).astype(int).reshape(-1, 3)}
    assert ink > 0.01, f"{path} is nearly blank ({ink:.2%} non-white)"
    assert len(colours) > 20, f"{path} has only {len(colours)} colours"


def test_bench_all_quick_writes_report_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    assert main(["all", "--quick", "--json", "--out", str(out), "--only", "parse,msrp,presence"]) == 0
    printed = json.loads(capsys.readouterr().out)
    report = json.loads((out / REPORT_NAME).read_text())
    assert printed == report
    assert list(report["workloads"]) == ["parse", "msrp", "presence"]
    assert report["summary"] == {"ok": ["parse", "msrp", "presence"], "failed": []}
    assert report["options"]["quick"] is True
    assert report["machine"]["cpu_count"] >= 1 and report["version"]
    if (Path(__file__).resolve().parents[1] / ".git").exists():
        assert len(report["git"]["revision"]) == 40
    assert report["plots"] == {"status": "written"}
    for name, entry in report["workloads"].items():
        assert entry["status"] == "ok", entry
        assert entry["duration_s"] > 0
        figures = [f for f in entry["results"].values() if f.get("ratio") is not None]
        assert figures, name
        for figure in figures:
            assert figure["ours"] > 0 and figure["peer"] > 0
        assert entry["plot"] == f"{name}.png"
        check_png(out / entry["plot"])
    assert report["workloads"]["parse"]["plot_kind"] == "ratios"
    assert report["workloads"]["msrp"]["plot_kind"] == "ratios"
    # presence's rising series: every step of both sides, in the uniform shape the plot read
    presence = report["workloads"]["presence"]
    assert presence["plot_kind"] == "rising"
    rising = presence["details"]["rising"]
    [group] = rising["groups"]
    rates = [step["rate"] for step in presence["details"]["steps"]]
    assert [p["x"] for p in group["ours"]] == rates == [p["x"] for p in group["peer"]]
    keys = {m["key"] for m in rising["metrics"]}
    assert {"achieved_rate", "cpu_s_per_1000", "loss_fraction"} <= keys
    assert group["ours"][0]["achieved_rate"] > 0


def _exploding(args) -> dict:
    raise RuntimeError("the test workload fails on purpose")


def test_failed_workload_is_recorded_and_others_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(WORKLOADS, "exploding", _exploding)
    out = tmp_path / "out"
    assert main(["all", "--quick", "--json", "--out", str(out), "--only", "exploding,parse"]) == 1
    report = json.loads((out / REPORT_NAME).read_text())
    failed = report["workloads"]["exploding"]
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: the test workload fails on purpose"
    assert "_exploding" in failed["traceback"]
    assert "plot" not in failed
    assert report["workloads"]["parse"]["status"] == "ok"
    assert report["workloads"]["parse"]["results"]["messages_per_s"]["ours"] > 0
    assert report["summary"] == {"ok": ["parse"], "failed": ["exploding"]}
    assert "exploding: failed" in capsys.readouterr().err


def _hanging(args) -> dict:
    # blocks on a child process, as a workload blocks on an endpoint that stopped answering
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    raise RuntimeError(f"the child ended with {child.wait()}")


def test_hung_workload_times_out_and_the_next_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(WORKLOADS, "hanging", _hanging)
    out = tmp_path / "out"
    assert main(["all", "--quick", "--out", str(out), "--only", "hanging,parse", "--timeout", "1"]) == 1
    report = json.loads((out / REPORT_NAME).read_text())
    hung = report["workloads"]["hanging"]
    assert hung["status"] == "failed"
    assert hung["error"].startswith("timed out after 1 s"), hung["error"]
    assert hung["duration_s"] < 30
    assert report["workloads"]["parse"]["status"] == "ok"
    assert "FAILED: hanging" in capsys.readouterr().out


def test_bad_options_for_all(tmp_path, capsys):
    assert main(["all", "--only", "parse,nosuch", "--out", str(tmp_path)]) == 2
    assert "nosuch" in capsys.readouterr().err
    assert main(["all", "--rates", "1,2", "--out", str(tmp_path)]) == 2
    assert "--rates" in capsys.readouterr().err
    assert not (tmp_path / REPORT_NAME).exists()


def test_without_matplotlib_the_report_says_why(tmp_path):
    # a separate interpreter in which matplotlib cannot be imported, as on a machine without it
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from sipsimple.bench.runner import main\n"
            f"sys.exit(main(['all', '--quick', '--only', 'parse', '--out', {str(tmp_path)!r}]))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / REPORT_NAME).read_text())
    assert report["plots"]["status"] == "skipped"
    assert "matplotlib" in report["plots"]["reason"]
    assert report["workloads"]["parse"]["status"] == "ok"
    assert not list(tmp_path.glob("*.png"))
    assert "plots skipped" in done.stderr


def _own_functions(path: Path) -> set[tuple[str, str]]:
    stats = pstats.Stats(str(path))
    return {(Path(file).name, name) for file, _line, name in stats.stats if "sipsimple" in file}


def test_profile_in_process_writes_loadable_pstats(tmp_path, capsys):
    path = tmp_path / "parse.prof"
    assert main(["parse", "--json", "--duration", "0.5", "--profile", str(path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert ("pyparser.py", "parse") in _own_functions(path)
    summary = Path(document["profile"]["summary"])
    assert summary == tmp_path / "parse.txt"
    text = summary.read_text()
    assert "by own time" in text and "pyparser.py" in text
    assert document["profile"]["path"] == str(path)
    assert any("pyparser.py" in row["function"] for row in document["profile"]["top"])


@pytest.mark.interop
@pytest.mark.skipif(shutil.which("sipp") is None or profiling.py_spy() is None,
                    reason="sipp and py-spy are needed")
def test_profile_samples_the_endpoint_child(tmp_path, capsys):
    assert main(["message", "--json", "--duration", "1", "--rates", "1000", "--leak-count", "300",
                 "--idle-wait", "0.2", "--profile", "--out", str(tmp_path)]) == 0
    document = json.loads(capsys.readouterr().out)
    profile = document["profile"]
    assert profile["path"] == str(tmp_path / "message.prof"), profile
    [sweep_endpoint, leak_endpoint] = profile["processes"]
    assert "sipsimple.bench.endpoint" in sweep_endpoint["command"]
    assert sweep_endpoint["samples"] > 0
    # the endpoint's own code, Python or Cython, is named in the statistics
    files = {file for file, _name in _own_functions(tmp_path / "message.prof")}
    assert files & {"endpoint.py", "notification.py", "engine.py", "core_engine.pxi"}, files
    assert (tmp_path / "message.txt").read_text().startswith(f"profile: {tmp_path / 'message.prof'}")
    assert (tmp_path / "message.json").exists()


@pytest.mark.skipif(shutil.which("perf") is None, reason="perf is needed")
def test_perf_sampler_sees_a_native_thread_started_late():
    # the media endpoints' work is in a native thread started after the process: perf must see such threads
    code = ("import time, zlib, threading\n"
            "time.sleep(0.5)\n"
            "def work():\n"
            "    end = time.monotonic() + 1.5\n"
            "    while time.monotonic() < end:\n"
            "        zlib.compress(bytes(range(256)) * 4000, 9)\n"
            "t = threading.Thread(target=work); t.start(); t.join()\n")
    sampler = profiling.ChildSampler(lambda argv: "-c" in argv and code in argv, tool="perf").start()
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    finally:
        stats = sampler.stop()
    [child] = sampler.describe()
    assert child["samples"] > 50, child      # ~1.5 s of one busy thread at 100 Hz
    # most of the time in zlib (a C library), in the thread that started after the sampling began
    in_zlib = sum(tt for (file, _line, _name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items()
                  if "libz." in file)
    assert in_zlib > 0.5 * stats.total_tt, sorted(stats.stats)[:20]
    assert not list(sampler.directory.parent.glob(sampler.directory.name)), "its temporary files were left"


def test_cython_symbol_names():
    assert profiling.cython_name("__pyx_f_9sipsimple_4core_6_media_engine_thread") == \
        "sipsimple.core._media.engine_thread"
    assert profiling.cython_name("__pyx_pw_9sipsimple_4core_5_core_6Engine_3start") == \
        "sipsimple.core._core.Engine.start"
    assert profiling.cython_name("opus_encode") == "opus_encode"


def test_collapsed_stacks_to_pstats():
    lines = ["main (app.py:1);work (app.py:10);helper (app.py:20) 30",
             "main (app.py:1);work (app.py:10) 10",
             "main (app.py:1);wait (app.py:30);epoll_wait (libc.so.6) 50",
             "main (app.py:1);read_stdin (app.py:40);read (libc.so.6) 5",
             "main (app.py:1);work (app.py:10);parse (libsofia.so);read (libc.so.6) 2"]
    stats, kept, waiting = profiling.collapsed_to_stats(lines, 0.01)
    assert (kept, waiting) == (42, 55)
    cc, nc, tt, ct, callers = stats[("app.py", 10, "work")]
    assert (nc, round(tt, 3), round(ct, 3)) == (42, 0.1, 0.42)
    assert set(callers) == {("app.py", 1, "main")}
    assert round(stats[("app.py", 20, "helper")][2], 3) == 0.3
    # a read inside a C library is work; one straight from Python is a blocking read, left out
    assert stats[("libc.so.6", 0, "read")][1] == 2
    assert ("app.py", 40, "read_stdin") not in stats
