"""Smoke tests of the benchmark harness (sipsimple.bench): each workload runs in
a short mode and returns well-formed results with our and the peer's figure.
Speed is measured by ``sipsimple bench``, never asserted here."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from sipsimple.bench import pyparser
from sipsimple.bench.messages import MESSAGES
from sipsimple.bench.runner import WORKLOADS, add_arguments, format_table, main


def _check_document(document: dict, workload: str) -> None:
    assert document["workload"] == workload
    machine = document["machine"]
    for key in ("cpu_count", "python", "timestamp", "sipsimple", "sofia_sip"):
        assert key in machine, key
    assert machine["cpu_count"] >= 1
    results = document["results"]
    assert results
    for name, figure in results.items():
        assert {"ours", "peer", "ratio", "unit"} <= figure.keys(), name
    json.dumps(document)  # serialisable
    assert format_table(document)


# ------------------------------------------------------------------ pyparser


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_pyparser_roundtrip(name):
    data = MESSAGES[name]
    printed = pyparser.serialize(pyparser.parse(data))
    assert pyparser.normalize(printed) == pyparser.normalize(data)
    assert pyparser.serialize(pyparser.parse(printed)) == printed


def test_pyparser_details():
    msg = pyparser.parse(MESSAGES["compact"])
    assert msg.method == "MESSAGE"
    assert msg.get("from") == ["<sip:sender@example.org>;tag=aa01"]
    assert msg.get("supported") == ["timer", "path"]
    assert msg.body == b"compact forms are valid\r\n"
    msg = pyparser.parse(MESSAGES["multi_via"])
    assert len(msg.get("via")) == 4
    msg = pyparser.parse(MESSAGES["folded"])
    assert msg.get("subject") == ["a subject that was folded over three lines"]
    assert msg.get("cseq") == ["63104 OPTIONS"]
    msg = pyparser.parse(MESSAGES["ok_200"])
    assert (msg.status, msg.reason) == (200, "OK")
    text = pyparser.serialize(msg)
    assert text.startswith(b"SIP/2.0 200 OK\r\nVia: ")
    assert b"\r\nCall-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n" in text


@pytest.mark.parametrize("bad", [
    b"",
    b"INVITE sip:a@b SIP/2.0\r\nVia SIP/2.0/UDP x\r\n\r\n",
    b"SIP/2.0 2000 OK\r\n\r\n",
    b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
    b"no end of headers",
])
def test_pyparser_rejects(bad):
    with pytest.raises(pyparser.ParseError):
        pyparser.parse(bad)


# ------------------------------------------------------------------ workloads


def test_workloads_registered():
    assert set(WORKLOADS) == {"parse", "message", "msrp", "presence", "cps", "media"}
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["parse", "--json", "--duration", "1", "--profile", "x"])
    assert (args.workload, args.json, args.duration, args.profile) == ("parse", True, 1.0, "x")
    args = parser.parse_args(["all", "--quick", "--profile", "--out", "d", "--only", "parse,msrp"])
    assert (args.workload, args.quick, args.profile, args.out, args.only) == ("all", True, "", "d", "parse,msrp")


def test_parse_workload(capsys, tmp_path):
    profile = tmp_path / "parse.prof"
    assert main(["parse", "--json", "--duration", "1", "--profile", str(profile)]) == 0
    document = json.loads(capsys.readouterr().out)
    _check_document(document, "parse")
    rate = document["results"]["messages_per_s"]
    assert rate["ours"] > 0 and rate["peer"] > 0
    assert rate["ratio"] == pytest.approx(rate["ours"] / rate["peer"], rel=0.01)
    assert document["details"]["roundtrip_check"] == "passed"
    assert {row["message"] for row in document["details"]["per_message"]} == set(MESSAGES)
    assert profile.stat().st_size > 0


def test_parse_roundtrip_failure_is_loud(monkeypatch):
    from sipsimple.bench import parse

    monkeypatch.setattr(parse, "_python_parse", lambda data: data.replace(b"SIP/2.0\r\n", b"SIP/2.0\r\nX: y\r\n", 1))
    with pytest.raises(parse.RoundTripError):
        parse.check_roundtrip()


needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) is not installed")


@needs_sipp
@pytest.mark.interop
def test_message_workload(capsys):
    assert main(["message", "--json", "--duration", "1", "--rates", "200,400",
                 "--leak-count", "200", "--idle-wait", "0.2"]) == 0
    document = json.loads(capsys.readouterr().out)
    _check_document(document, "message")
    steps = document["details"]["steps"]
    assert steps and steps[0]["rate"] == 200
    first = steps[0]
    for side in ("ours", "peer"):
        step = first[side]
        assert step["sent"] == 200
        assert step["cpu_s_per_1000"] >= 0
        assert step["rss_kb"] > 0
    # every message sipp got an answer for reached Python (a functional check, not a speed one)
    assert first["ours"]["python_seen"] == first["ours"]["successful"] > 0
    rss = document["details"]["rss_kb"]
    for point in ("sweep_start", "after_sweep", "leak_start", "after_first_batch_idle", "after_second_batch_idle"):
        assert rss[point]["ours"] > 0 and rss[point]["peer"] > 0
    assert "Timer J" in document["details"]["idle_note"]
    # the per-step series the plots read: one point per step and side, the same figures as the steps
    [group] = document["details"]["rising"]["groups"]
    for side in ("ours", "peer"):
        assert [p["x"] for p in group[side]] == [s["rate"] for s in steps if side in s]
        assert group[side][0]["achieved_rate"] == first[side]["achieved_rate"]
        assert group[side][0]["loss_fraction"] == pytest.approx(1 - first[side]["successful"] / first[side]["sent"],
                                                                abs=1e-6)
    assert document["results"]["highest_clean_rate"]["unit"] == "MESSAGE/s"


def test_module_entry_point_table():
    done = subprocess.run([sys.executable, "-m", "sipsimple.bench", "parse", "--duration", "0.5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "messages_per_s" in done.stdout and "ours/peer" in done.stdout
