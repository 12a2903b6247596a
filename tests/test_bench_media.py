"""Smoke test of the ``media`` benchmark: a short run at tiny N returns every figure.

Capacity and latency are measured by ``sipsimple bench media``, never asserted here
(beyond "the clicks made it through with a plausible delay").
"""

from __future__ import annotations

import json

import pytest

from sipsimple.bench import media
from sipsimple.bench.runner import WORKLOADS, format_table, main


def test_media_registered():
    assert "media" in WORKLOADS


@pytest.fixture
def short_series(monkeypatch):
    monkeypatch.setattr(media, "SERIES", {name: media.SERIES[name] for name in ("pcmu_srtp_16k", "opus_48k")})
    monkeypatch.setattr(media, "WARMUP_S", 1.0)
    monkeypatch.setattr(media, "CLICKS", 5)


def test_media_smoke(capsys, short_series):
    assert main(["media", "--json", "--duration", "1", "--rates", "2,4"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["workload"] == "media"
    results = document["results"]
    for series in ("pcmu_srtp_16k", "opus_48k"):
        for figure in ("highest_clean_streams", "cpu_ms_per_stream_second", "loss_fraction", "one_way_latency_ms"):
            entry = results[f"{series}_{figure}"]
            assert {"ours", "peer", "ratio", "unit"} <= entry.keys(), (series, figure)
        assert results[f"{series}_highest_clean_streams"]["ours"] == 4
        assert results[f"{series}_highest_clean_streams"]["peer"] == 4
        assert results[f"{series}_cpu_ms_per_stream_second"]["ours"] > 0
        assert results[f"{series}_cpu_ms_per_stream_second"]["peer"] > 0
        assert results[f"{series}_loss_fraction"]["ours"] < media.CLEAN_LOSS
        assert 0 < results[f"{series}_one_way_latency_ms"]["ours"] < 200
        detail = document["details"]["series"][series]
        assert [step["n"] for step in detail["steps"]] == [2, 4]
        for step in detail["steps"]:
            assert step["clean"], step["problems"]
            assert step["latency_ms"]["clicks_received"] == step["latency_ms"]["clicks_sent"] == 5
            for side in ("A", "B"):
                assert step[side]["streams_with_audio"] == step["n"]
                assert step[side]["rx_packets"] > 0 and step[side]["cpu_ms_per_stream_second"] > 0
        assert [step["n"] for step in detail["reference_steps"]] == [2, 4]
    pcmu = document["details"]["series"]["pcmu_srtp_16k"]["steps"][0]
    assert pcmu["A"]["codec"] == "PCMU" and pcmu["A"]["srtp_suite"]
    opus = document["details"]["series"]["opus_48k"]["steps"][0]
    assert opus["A"]["codec"] == "opus" and not opus["A"]["srtp_suite"]
    assert {"pcmu_srtp_met", "opus_met", "latency_met"} <= document["goal"].keys()
    assert "streams" in format_table(document)
