"""Workload ``media``: N concurrent audio streams between two processes, rising N until frames are lost.

Two child processes (:mod:`sipsimple.bench.media_endpoint`), A and B, each with its
own media engine (clocked null device, 20 ms frames), on 127.0.0.1. For each N, A
creates N AudioTransports and offers them, B answers and starts, A starts: N
full-duplex streams. In each process a ToneGenerator feeds every stream but the first
(so every packet is really encoded, protected, sent, received, unprotected, jitter
buffered and decoded); the first carries the latency probe. Series:

- ``pcmu_srtp_8k``: PCMU with SDES-SRTP (our default suite, AEAD_AES_128_GCM), bridge
  at 8 kHz (no resampling); N = 50, 100, 200, 300, 400, 500, 600;
- ``pcmu_srtp_16k``: the same with a 16 kHz bridge (PCMU resampled both ways);
- ``opus_48k``: Opus (plain RTP), bridge and codec at 48 kHz; N = 25, 50, 100, 150, 200;
- ``opus_16k``: Opus coded at 16 kHz, bridge at 16 kHz (the engine opens Opus at the
  bridge rate).

Per step: 10 s of warm-up, then ``duration`` seconds between two readings of both
processes' counters. Right after N simultaneous starts the jitter buffers underrun
until they have grown to the start-up jitter, and shrink back only once a few
seconds show that delay unneeded, which the steady state of calls lasting minutes
does not show; that start-up phase is reported on its own (``warmup_loss_fraction``)
and does not decide cleanliness. Frames lost or late = RTP packets never received
(sequence gaps) + packets arriving after their play-out slot + audio packets the
jitter buffer discarded to shrink (silent ones it skips are not audio lost) +
jitter-buffer underruns (a frame concealed because its packet came late) + media
ticks the engine skipped (times N: frames never sent), over the frames both
receivers expected. A step is clean under 0.1 %, with every stream receiving audio and no SRTP
or decode error. A series stops at its first unclean N (each unclean N is tried a
second time to rule out a hiccup from other jobs; both attempts are reported). CPU
per stream is each process's CPU-seconds over the window per stream-second (each
process both sends and receives N streams).

One-way latency: A writes 60 ms 1 kHz clicks into a NumpyTap feeding its first
stream (and a monitor tap); B's first stream feeds a NumpyTap. Each click onset is
timed in CLOCK_MONOTONIC (shared by the processes) by the media clock itself: the
start of the media tick that delivered its frame to the tap plus the onset's offset
in the frame (``NumpyTap.read_stamped``), so the watcher thread in each process
reads its taps only every 10 ms and does not load the engines it measures.
Latency = onset at B - onset at A: packetisation, encoding, SRTP, loopback, jitter
buffer, decoding, resampling and the bridge, plus the phase between the two
processes' media clocks (0-20 ms, fixed per run, as between two real devices:
``clock_phase_ms``). The timestamps are exact, so every click counts as certain
(the certain/all split stays for the format).

The peer: there is no other media engine to run here (baresip caps at 255 calls and
loads a WAV per call), so the physical reference is the same datagram pattern on
plain sockets: two processes with N connected UDP socket pairs, a Python loop in
each sending one datagram of the same size (RTP header + payload + SRTP tag) per
socket every 20 ms and reading every datagram waiting (epoll). That is the kernel's
loopback UDP cost for the packet rate plus Python's per-call overhead (so an upper
bound of the pure-I/O cost): ``ratio`` says how much of our cost the codec, SRTP,
jitter buffer and bridge add on top of moving the packets.
"""

from __future__ import annotations

import json
import statistics as stats_module
import time

from sipsimple.bench.endpoint import EndpointProcess

__all__ = ["run", "SERIES", "GOAL"]

SERIES: dict[str, dict] = {
    "pcmu_srtp_8k": {"codec": "PCMU", "srtp": True, "sample_rate": 8000,
                     "counts": (50, 100, 200, 300, 400, 500, 600)},
    "pcmu_srtp_16k": {"codec": "PCMU", "srtp": True, "sample_rate": 16000,
                      "counts": (50, 100, 200, 300, 400, 500, 600)},
    "opus_48k": {"codec": "opus", "srtp": False, "sample_rate": 48000, "counts": (25, 50, 100, 150, 200)},
    "opus_16k": {"codec": "opus", "srtp": False, "sample_rate": 16000, "counts": (25, 50, 100, 150, 200)},
}
GOAL = {"pcmu_srtp_streams": 500, "opus_streams": 150, "loss_fraction": 0.001, "latency_ms": 60}
CLEAN_LOSS = 0.001
WARMUP_S = 10.0
PTIME_MS = 20
CLICKS = 10
CLICK_INTERVAL_S = 0.25
CERTAIN_NS = 2_000_000
START_BATCH = 20
SRTP_TAG = {"AEAD_AES_128_GCM": 16, "AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}


class Side(EndpointProcess):
    """One child process: a media endpoint (or the plain-socket reference), called with a command's
    name and arguments: ``side("offer", n=4, ...)`` is its answer, a RuntimeError if it reports an error."""

    quit_command = json.dumps({"cmd": "quit"})
    quit_timeout = 20.0  # it stops every transport first

    def __init__(self, label: str, sample_rate: int, port_range: tuple[int, int], udp: bool = False) -> None:
        args = ["--sample-rate", str(sample_rate), "--frame-ms", str(PTIME_MS),
                "--port-range", f"{port_range[0]}-{port_range[1]}"]
        if udp:
            args.append("--udp")
        self.label = label
        super().__init__("sipsimple.bench.media_endpoint", args, what=f"media endpoint {label}")

    def __call__(self, cmd: str, **kw) -> dict:
        doc = self._command(json.dumps({"cmd": cmd, **kw}))
        if "error" in doc:
            raise RuntimeError(f"{self.what}: {cmd}: {doc['error']}")
        return doc

    def stats(self) -> dict:
        return self("stats")


def _delta(after: dict, before: dict) -> dict:
    return {key: after["streams"][key] - before["streams"].get(key, 0) for key in after["streams"]}


def _latency(sent: list, received: list, interval_s: float) -> dict:
    """Pair each click sent with the first onset received after it (within the click interval)."""
    window = int(interval_s * 1e9)
    all_ms, certain_ms = [], []
    for s, s_unc in sent:
        match = next(((r, r_unc) for r, r_unc in received if s < r < s + window), None)
        if match is None:
            continue
        value = (match[0] - s) / 1e6
        all_ms.append(value)
        if s_unc <= CERTAIN_NS and match[1] <= CERTAIN_NS:
            certain_ms.append(value)

    def summary(values):
        if not values:
            return {"n": 0, "median": None, "min": None, "max": None}
        return {"n": len(values), "median": round(stats_module.median(values), 1), "min": round(min(values), 1),
                "max": round(max(values), 1)}

    return {"clicks_sent": len(sent), "clicks_received": len(all_ms), "certain": summary(certain_ms),
            "all": summary(all_ms)}


def _media_step(a: Side, b: Side, spec: dict, n: int, duration: float, warmup: float) -> dict:
    offers = a("offer", n=n, codec=spec["codec"], srtp=spec["srtp"], ptime=PTIME_MS)["media"]
    try:
        # batch by batch, so that no stream starts long after its peer began sending to it (packets
        # queued in its socket meanwhile would sit in its jitter buffer as extra delay)
        for first in range(0, n, START_BATCH):
            answers = b("answer", offers=offers[first:first + START_BATCH], codec=spec["codec"], srtp=spec["srtp"],
                        ptime=PTIME_MS, append=first > 0)["media"]
            a("start", answers=answers, offset=first)
        a("wire")
        b("wire")
        started = {"A": a("stats"), "B": b("stats")}
        time.sleep(warmup)
        before = {"A": a("stats"), "B": b("stats")}
        time.sleep(duration)
        after = {"A": a("stats"), "B": b("stats")}
        # latency probe (after the counting window, so its polling threads do not count as media CPU)
        listen_s = CLICKS * CLICK_INTERVAL_S + 0.5
        b("listen", seconds=listen_s)
        a("listen", seconds=listen_s)
        a("clicks", count=CLICKS, interval=CLICK_INTERVAL_S)
        onsets_a, onsets_b = a("onsets"), b("onsets")
    finally:
        a("clear")
        b("clear")
    step: dict = {"n": n}
    expected = bad = 0
    problems: list[str] = []
    for name in ("A", "B"):
        s0, s1 = before[name], after[name]
        dt = s1["t"] - s0["t"]
        d = _delta(s1, s0)
        late_ticks = s1["engine"]["late_ticks"] - s0["engine"]["late_ticks"]
        side = {
            "window_s": round(dt, 3),
            "cpu_s": round(s1["cpu"] - s0["cpu"], 3),
            "cpu_fraction_of_a_core": round((s1["cpu"] - s0["cpu"]) / dt, 3),
            "cpu_ms_per_stream_second": round((s1["cpu"] - s0["cpu"]) / (n * dt) * 1000, 4),
            "rx_expected": d["rx_expected"], "rx_packets": d["rx_packets"], "tx_packets": d["tx_packets"],
            "rx_lost": d["rx_lost"], "rx_late": d["rx_late"], "jb_dropped": d["jb_dropped"],
            "jb_underruns": d["jb_underruns"], "plc_frames": d["plc_frames"],
            "engine_late_ticks": late_ticks, "frames_not_sent": late_ticks * n,
            "srtp_errors": d["rx_srtp_errors"], "decode_errors": d["decode_errors"],
            "send_errors": d["send_errors"], "streams_with_audio": s1["with_audio"],
            "codec": s1["codec"], "srtp_suite": s1["srtp_active"], "rss_kb": s1["rss_kb"],
            "jb_buffered_mean": s1.get("jb_buffered_mean"),
            "jb_wait_ms_mean": s1.get("jb_wait_ms_mean"), "jb_margin_ms_mean": s1.get("jb_margin_ms_mean"),
            "probe_stream": s1.get("probe"),
            "mean_payload_bytes": round(d["tx_bytes"] / d["tx_packets"], 1) if d["tx_packets"] else None,
        }
        side_bad = d["rx_lost"] + d["rx_late"] + d["jb_dropped"] + d["jb_underruns"]
        expected += d["rx_expected"]
        bad += side_bad
        # frames this side never sent are lost at the other side (its counters cannot see them)
        bad += late_ticks * n
        expected += late_ticks * n
        side["frames_lost_or_late"] = side_bad
        if s1["with_audio"] < n:
            problems.append(f"{name}: {n - s1['with_audio']} streams without audio")
        if d["rx_srtp_errors"] or d["decode_errors"] or d["send_errors"]:
            problems.append(f"{name}: srtp/decode/send errors {d['rx_srtp_errors']}/{d['decode_errors']}/"
                            f"{d['send_errors']}")
        step[name] = side
    fraction = bad / expected if expected else 1.0
    # the same count over the warm-up: every jitter buffer adapting at once after N simultaneous starts
    warm_bad = warm_expected = 0
    for name in ("A", "B"):
        d = _delta(before[name], started[name])
        ticks = (before[name]["engine"]["late_ticks"] - started[name]["engine"]["late_ticks"]) * n
        warm_bad += d["rx_lost"] + d["rx_late"] + d["jb_dropped"] + d["jb_underruns"] + ticks
        warm_expected += d["rx_expected"] + ticks
    step["warmup_loss_fraction"] = round(warm_bad / warm_expected, 6) if warm_expected else None
    if fraction >= CLEAN_LOSS:
        problems.append(f"{fraction:.3%} frames lost or late")
    step["frames_expected"] = expected
    step["frames_lost_or_late"] = bad
    step["loss_fraction"] = round(fraction, 6)
    step["cpu_ms_per_stream_second"] = round((step["A"]["cpu_ms_per_stream_second"]
                                              + step["B"]["cpu_ms_per_stream_second"]) / 2, 4)
    step["latency_ms"] = _latency(onsets_a["sent"], onsets_b["received"], CLICK_INTERVAL_S)
    step["latency_ms"]["max_poll_gap_ms"] = {"A": onsets_a.get("max_poll_gap_ms"), "B": onsets_b.get("max_poll_gap_ms")}
    phase_a = (onsets_a.get("phase_ns") or {}).get("sent")
    phase_b = (onsets_b.get("phase_ns") or {}).get("received")
    if phase_a is not None and phase_b is not None:
        # how long after A's media tick B's comes: part of the latency between any two devices
        step["latency_ms"]["clock_phase_ms"] = round(((phase_b - phase_a) % onsets_a["period_ns"]) / 1e6, 1)
    step["clean"] = not problems
    step["problems"] = problems
    return step


def _udp_step(a: Side, b: Side, n: int, size: int, duration: float) -> dict:
    offers = a("offer", n=n)["media"]
    answers = b("answer", offers=offers)["media"]
    a("start", answers=answers)
    try:
        a("run", size=size, frame_ms=PTIME_MS)
        b("run", size=size, frame_ms=PTIME_MS)
        time.sleep(1.0)
        before = {"A": a("stats"), "B": b("stats")}
        time.sleep(duration)
        after = {"A": a("stats"), "B": b("stats")}
    finally:
        a("clear")
        b("clear")
    step: dict = {"n": n, "size": size}
    sent = received = 0
    for name in ("A", "B"):
        s0, s1 = before[name], after[name]
        dt = s1["t"] - s0["t"]
        d = _delta(s1, s0)
        sent += d["tx_packets"]
        received += d["rx_packets"]
        step[name] = {"cpu_fraction_of_a_core": round((s1["cpu"] - s0["cpu"]) / dt, 3),
                      "cpu_ms_per_stream_second": round((s1["cpu"] - s0["cpu"]) / (n * dt) * 1000, 4),
                      "tx_packets": d["tx_packets"], "rx_packets": d["rx_packets"],
                      "late_ticks": s1["engine"]["late_ticks"] - s0["engine"]["late_ticks"]}
    missing = max(0, sent - received) + sum(step[x]["late_ticks"] * n for x in ("A", "B"))
    # packets in flight at the two readings make |sent - received| differ by up to 2 n
    step["loss_fraction"] = round(max(0, missing - 2 * n) / sent, 6) if sent else 1.0
    step["clean"] = step["loss_fraction"] < CLEAN_LOSS
    step["cpu_ms_per_stream_second"] = round((step["A"]["cpu_ms_per_stream_second"]
                                              + step["B"]["cpu_ms_per_stream_second"]) / 2, 4)
    return step


def _packet_size(spec: dict, steps: list[dict]) -> int:
    """RTP datagram size of the series: header + mean payload + SRTP tag."""
    payloads = [s["A"]["mean_payload_bytes"] for s in steps if s.get("A", {}).get("mean_payload_bytes")]
    payload = payloads[-1] if payloads else (160 if spec["codec"] == "PCMU" else 80)
    suite = next((s["A"]["srtp_suite"] for s in steps if s.get("A", {}).get("srtp_suite")), None)
    return int(round(12 + payload + (SRTP_TAG.get(suite, 10) if spec["srtp"] else 0)))


def _run_series(name: str, spec: dict, counts: list[int], duration: float, warmup: float,
                reference: bool, ref_cache: dict) -> dict:
    a = Side("A", spec["sample_rate"], (14000, 21999))
    try:
        b = Side("B", spec["sample_rate"], (22000, 29999))
    except BaseException:
        a.close()
        raise
    steps: list[dict] = []
    best = None
    try:
        for n in counts:
            step = _media_step(a, b, spec, n, duration, warmup)
            if not step["clean"]:
                retry = _media_step(a, b, spec, n, duration, warmup)
                retry["first_attempt"] = step
                step = retry
            steps.append(step)
            if not step["clean"]:
                break
            best = n
    finally:
        a.close()
        b.close()
    ref_steps: list[dict] = []
    ref_best = None
    if reference:
        size = _packet_size(spec, steps)
        ra = Side("refA", spec["sample_rate"], (14000, 21999), udp=True)
        try:
            rb = Side("refB", spec["sample_rate"], (22000, 29999), udp=True)
        except BaseException:
            ra.close()
            raise
        try:
            for step in steps:
                key = (step["n"], size)
                if key not in ref_cache:
                    ref_cache[key] = _udp_step(ra, rb, step["n"], size, duration)
                ref_steps.append(ref_cache[key])
                if ref_cache[key]["clean"]:
                    ref_best = step["n"]
                else:
                    break
        finally:
            ra.close()
            rb.close()
    return {"name": name, "spec": dict(spec, counts=list(counts)), "steps": steps, "highest_clean": best,
            "reference_steps": ref_steps, "reference_highest_clean": ref_best,
            "stopped_by_loss": bool(steps) and not steps[-1]["clean"]}


def _ratio(ours, peer):
    if ours is None or peer is None or not peer:
        return None
    return round(ours / peer, 3)


def run(duration: float = 5.0, counts: list[int] | None = None, series: list[str] | None = None,
        reference: bool = True, warmup: float | None = None, **_options) -> dict:
    """Run every series (see the module docstring); ``counts`` replaces every series' stream counts."""
    names = list(series or SERIES)
    warmup = WARMUP_S if warmup is None else warmup
    ref_cache: dict = {}
    done = {}
    for name in names:
        spec = SERIES[name]
        done[name] = _run_series(name, spec, list(counts or spec["counts"]), duration, warmup, reference, ref_cache)

    results: dict = {}
    for name, result in done.items():
        best = result["highest_clean"]
        step = next((s for s in result["steps"] if s["n"] == best), None)
        ref_step = next((s for s in result["reference_steps"] if s["n"] == best), None)
        ours_cpu = step["cpu_ms_per_stream_second"] if step else None
        peer_cpu = ref_step["cpu_ms_per_stream_second"] if ref_step else None
        last = result["steps"][-1] if result["steps"] else None
        results[f"{name}_highest_clean_streams"] = {
            "unit": "streams", "better": "higher", "ours": best, "peer": result["reference_highest_clean"],
            "ratio": _ratio(best, result["reference_highest_clean"]),
            "note": ("highest N with < 0.1 % frames lost or late" if result["stopped_by_loss"]
                     else "never lost frames: a lower bound") + "; peer = plain UDP sockets, same packets, "
                    "tried only up to our first unclean N (a lower bound unless it lost)"}
        results[f"{name}_cpu_ms_per_stream_second"] = {
            "unit": "CPU-ms per stream-second, per process", "better": "lower", "at_streams": best,
            "ours": ours_cpu, "peer": peer_cpu, "ratio": _ratio(ours_cpu, peer_cpu)}
        results[f"{name}_loss_fraction"] = {
            "unit": "fraction of frames lost or late", "better": "lower", "at_streams": best,
            "ours": step["loss_fraction"] if step else None, "peer": ref_step["loss_fraction"] if ref_step else None,
            "ratio": None,
            "warmup_loss_fraction": step.get("warmup_loss_fraction") if step else None,
            "first_unclean": {"n": last["n"], "loss_fraction": last["loss_fraction"],
                              "problems": last["problems"]} if last and not last["clean"] else None}
        latency = step["latency_ms"] if step else None
        results[f"{name}_one_way_latency_ms"] = {
            "unit": "ms (median of clicks)", "better": "lower", "at_streams": best,
            "ours": (latency["certain"]["median"] if latency and latency["certain"]["n"]
                     else latency["all"]["median"] if latency else None),
            "peer": None, "ratio": None,
            "clicks": latency}
    pcmu = [done[n]["highest_clean"] or 0 for n in done if n.startswith("pcmu")]
    opus = [done[n]["highest_clean"] or 0 for n in done if n.startswith("opus")]
    latencies = [results[f"{n}_one_way_latency_ms"]["ours"] for n in done
                 if results[f"{n}_one_way_latency_ms"]["ours"] is not None]
    goal = dict(GOAL)
    goal.update({
        "pcmu_srtp_met": (max(pcmu) >= GOAL["pcmu_srtp_streams"]) if pcmu else None,
        "opus_met": (max(opus) >= GOAL["opus_streams"]) if opus else None,
        "latency_met": (max(latencies) < GOAL["latency_ms"]) if latencies else None,
    })
    return {
        "description": "N full-duplex audio streams between two processes on 127.0.0.1 (each with its own media "
                       "engine, clocked null device, 20 ms packets), rising N until > 0.1 % frames are lost or "
                       "late; peer = the same datagrams over plain UDP sockets from a Python loop (the physical "
                       "reference: there is no other media engine to run here)",
        "goal": goal,
        "results": results,
        "details": {
            "parameters": {"duration_s": duration, "warmup_s": warmup, "ptime_ms": PTIME_MS, "clicks": CLICKS,
                           "click_interval_s": CLICK_INTERVAL_S, "series": names,
                           "counts": counts},
            "series": done,
        },
    }
