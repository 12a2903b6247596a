"""Smoke test of the ``cps`` benchmark: a short run at two low rates returns our and the peer's figures.

Speed is measured by ``sipsimple bench cps``, never asserted here.
"""

from __future__ import annotations

import json
import shutil

import pytest

from sipsimple.bench.runner import WORKLOADS, format_table, main

pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(shutil.which("sipp") is None or shutil.which("baresip") is None,
                                 reason="sipp and baresip are needed")]


def test_cps_registered():
    assert "cps" in WORKLOADS


def test_cps_smoke(capsys):
    assert main(["cps", "--json", "--duration", "1", "--rates", "10,20"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["workload"] == "cps"
    results = document["results"]
    for name in ("highest_clean_rate", "cpu_s_per_1000_calls_over_clean_steps", "rss_kb_start",
                 "rss_kb_after_sweep"):
        figure = results[name]
        assert {"ours", "peer", "ratio", "unit"} <= figure.keys(), name
        assert figure["ours"] is not None and figure["peer"] is not None, (name, figure)
    steps = document["details"]["steps"]
    assert [step["rate"] for step in steps] == [10, 20]
    for step in steps:
        for side in ("ours", "peer"):
            assert step[side]["sent"] == step["rate"]
            assert step[side]["successful"] > 0 and step[side]["cpu_s_per_1000"] >= 0
            assert step[side]["rss_kb"] > 0
        # every call sipp completed went through a Session that started and ended (functional, not speed)
        ours = step["ours"]
        assert ours["python_seen"] == ours["sessions_ended"] == ours["successful"]
        assert ours["sessions_failed"] == 0 and ours["still_active"] == 0
    [group] = document["details"]["rising"]["groups"]
    for side in ("ours", "peer"):
        assert [p["x"] for p in group[side]] == [10, 20]
        assert [p["cpu_s_per_1000"] for p in group[side]] == [s[side]["cpu_s_per_1000"] for s in steps]
    final = document["details"]["endpoint"]["final"]
    assert final["codecs"] == {"PCMU": final["started"]} and final["failed"] == 0
    assert "calls/s" in format_table(document)
