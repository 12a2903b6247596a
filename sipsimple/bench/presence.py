"""Workload ``presence``: in-dialog NOTIFYs processed into Python state, beside plain MESSAGEs.

One subscriber, between processes, on 127.0.0.1 over UDP:

- ours (this process): an Engine and one :class:`~sipsimple.core.subscription.Subscription`
  (event ``presence``); an observer of ``SCSubscriptionGotNotify`` parses every
  PIDF body (``parse_payload`` + ``PresenceState.from_pidf``) into a dict;
- the notifier: a child process (this module with ``--notifier``) holding a UDP
  socket. It answers our SUBSCRIBE 200, then, when told, sends in-dialog NOTIFYs
  (a prebuilt PIDF, open and closed in turn, rising CSeq) paced at a rate, and
  reads Sofia-SIP's 200s back;
- the comparison ("peer" column): the same child sends out-of-dialog MESSAGEs
  at the same rate to the same Engine, counted through ``SCEngineGotMessage``.
  Same sender, same socket, same process: the difference is what a NOTIFY costs
  over a MESSAGE (dialog matching, subscription handling, PIDF parsing).

Why not sipp or Kamailio: sipp cannot easily send NOTIFYs inside a dialog it did
not set up with its own SUBSCRIBE, and NOTIFYs driven by PUBLISHes through
Kamailio's presence server measure Kamailio (its SQLite presentity table
answers concurrent writers "database is locked") more than us.

A step is clean when every request sent was answered 200 and seen by Python.
Figures: highest clean rate and CPU seconds of this process (Engine thread and
Python, the child excluded) per 1000 requests seen, for NOTIFY ("ours") and
MESSAGE ("peer"); ``details`` adds the PIDF parse time per NOTIFY, the part of
the NOTIFY cost that is the payloads package rather than the SIP path.
"""

from __future__ import annotations

import argparse
import json
import resource
import select
import socket
import subprocess
import sys
import threading
import time
import uuid

from sipsimple.bench.rising import rising_series

__all__ = ["run", "DEFAULT_RATES"]

DEFAULT_RATES = (500, 1000, 2000, 4000)
HOST = "127.0.0.1"


# ------------------------------------------------------------ the notifier (child)

def _header_map(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return headers


def _notifier_main() -> int:
    """Child: answer one SUBSCRIBE, then run the steps the parent writes on stdin."""
    from sipsimple.payloads import PresenceState

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    tag = uuid.uuid4().hex[:10]
    while True:
        data, peer = sock.recvfrom(65535)
        if data.startswith(b"SUBSCRIBE "):
            break
    text = data.decode()
    h = _header_map(text)
    keep = [line for line in text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
            if line.split(":", 1)[0].strip().lower() in ("via", "from", "call-id", "cseq")]
    sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep) + f"\r\nTo: {h['to']};tag={tag}\r\n"
                 f"Contact: <sip:notifier@{HOST}:{port}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n").encode(), peer)
    target = h["contact"].split("<", 1)[-1].split(">", 1)[0]
    entity = "sip:alice@127.0.0.1"
    bodies = [PresenceState(status, note=f"bench {status}").toxml(entity) for status in ("open", "closed")]
    notify_head = (f"NOTIFY {target} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK{{branch}}\r\n"
                   f"From: {h['to']};tag={tag}\r\nTo: {h['from']}\r\nCall-ID: {h['call-id']}\r\n"
                   f"CSeq: {{cseq}} NOTIFY\r\nContact: <sip:notifier@{HOST}:{port}>\r\nMax-Forwards: 70\r\n"
                   "Event: presence\r\nSubscription-State: active;expires=3600\r\n"
                   "Content-Type: application/pidf+xml\r\nContent-Length: {length}\r\n\r\n")
    message_head = (f"MESSAGE {target.split(';', 1)[0]} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK{{branch}}\r\n"
                    f"From: <sip:carol@{HOST}>;tag={tag}{{cseq}}\r\nTo: <sip:bob@{HOST}>\r\n"
                    f"Call-ID: m{{cseq}}-{tag}\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\n"
                    "Content-Type: text/plain\r\nContent-Length: {length}\r\n\r\n")
    cseq = 1
    sock.setblocking(False)

    def drain(counts: dict) -> None:
        while True:
            try:
                reply = sock.recv(65535)
            except BlockingIOError:
                return
            if reply.startswith(b"SIP/2.0 200 "):
                counts["answered"] += 1
            elif reply.startswith(b"SIP/2.0 "):
                counts["failed"] += 1

    for line in sys.stdin:
        step = json.loads(line)
        if step.get("quit"):
            break
        kind, rate, count = step["kind"], step["rate"], step["count"]
        counts = {"sent": 0, "answered": 0, "failed": 0}
        start = time.monotonic()
        for i in range(count):
            due = start + i / rate
            while True:
                now = time.monotonic()
                if now >= due:
                    break
                select.select([sock], [], [], due - now)
                drain(counts)
            cseq += 1
            if kind == "notify":
                body = bodies[i % 2]
                head = notify_head.format(branch=f"{cseq}x{tag}", cseq=cseq, length=len(body))
            else:
                body = b"bench message"
                head = message_head.format(branch=f"{cseq}x{tag}", cseq=cseq, length=len(body))
            sock.sendto(head.encode() + body, peer)
            counts["sent"] += 1
        sent_for = time.monotonic() - start
        deadline = time.monotonic() + 2.0
        while counts["answered"] + counts["failed"] < counts["sent"] and time.monotonic() < deadline:
            select.select([sock], [], [], 0.05)
            drain(counts)
        counts["send_seconds"] = round(sent_for, 3)
        print(json.dumps(counts), flush=True)
    return 0


# ------------------------------------------------------------- the subscriber (us)

class _Subscriber:
    """Counts NOTIFYs (parsed into a presence dict) and MESSAGEs."""

    def __init__(self) -> None:
        self.notifies = 0
        self.messages = 0
        self.parse_errors = 0
        self.parse_seconds = 0.0
        self.state: dict[str, object] = {}
        self._cond = threading.Condition()

    def handle_notification(self, notification) -> None:
        from sipsimple.payloads import PayloadError, PresenceState, parse_payload

        if notification.name == "SCSubscriptionGotNotify":
            data = notification.data
            if data.body:
                t0 = time.perf_counter()
                try:
                    self.state["alice"] = PresenceState.from_pidf(parse_payload(data.content_type, data.body))
                except PayloadError:
                    self.parse_errors += 1
                self.parse_seconds += time.perf_counter() - t0
            with self._cond:
                self.notifies += 1
                self._cond.notify_all()
        elif notification.name == "SCEngineGotMessage":
            with self._cond:
                self.messages += 1
                self._cond.notify_all()

    def wait(self, attribute: str, target: int, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(lambda: getattr(self, attribute) >= target, timeout)
            return getattr(self, attribute)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _ratio(ours, peer):
    return round(ours / peer, 3) if ours is not None and peer else None


def run(json_output: bool = False, duration: float = 3.0, rates: list[int] | None = None, **_options) -> dict:
    """Sweep ``rates`` (requests/s, ``duration`` s each), NOTIFY then MESSAGE at each; see the module doc."""
    from sipsimple.core import Engine
    from sipsimple.core.subscription import Subscription
    from sipsimple.core.uri import SIPURI
    from sipsimple.notification import NotificationCenter

    rates = list(rates or DEFAULT_RATES)
    child = subprocess.Popen([sys.executable, "-m", "sipsimple.bench.presence", "--notifier"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    engine = Engine()
    subscriber = _Subscriber()
    center = NotificationCenter()
    steps: list[dict] = []
    try:
        port = json.loads(child.stdout.readline())["port"]
        engine.start(local_ip=HOST, transports=("udp",))
        center.add_observer(subscriber, name="SCSubscriptionGotNotify")
        center.add_observer(subscriber, name="SCEngineGotMessage")
        subscription = Subscription(SIPURI(HOST, user="bob"), SIPURI(HOST, user="alice", port=port), duration=3600)
        ready = threading.Event()

        class _Ready:
            def handle_notification(self, notification) -> None:
                ready.set()

        observer = _Ready()
        center.add_observer(observer, name="SCSubscriptionDidSucceed", sender=subscription)
        subscription.subscribe()
        if not ready.wait(10):
            raise RuntimeError("the bench notifier did not answer the SUBSCRIBE")
        center.discard_observer(observer, name="SCSubscriptionDidSucceed", sender=subscription)
        for rate in rates:
            step: dict = {"rate": rate}
            count = max(1, int(rate * duration))
            for kind, side, attribute in (("notify", "ours", "notifies"), ("message", "peer", "messages")):
                before_seen = getattr(subscriber, attribute)
                cpu0, t0 = _cpu(), time.monotonic()
                child.stdin.write(json.dumps({"kind": kind, "rate": rate, "count": count}) + "\n")
                child.stdin.flush()
                report = json.loads(child.stdout.readline())
                seen = subscriber.wait(attribute, before_seen + count, 2.0) - before_seen
                cpu, elapsed = _cpu() - cpu0, time.monotonic() - t0
                problems = []
                if report["answered"] < count:
                    problems.append(f"{count - report['answered']} unanswered (dropped)")
                if report["failed"]:
                    problems.append(f"{report['failed']} failure responses")
                if seen < report["answered"]:
                    problems.append(f"Python saw {seen} of {report['answered']} answered")
                clean = not problems
                step[side] = {"kind": kind.upper(), "sent": report["sent"], "answered": report["answered"],
                              "failed": report["failed"], "python_seen": seen,
                              "achieved_rate": round(report["sent"] / max(report["send_seconds"], 1e-9), 1),
                              "cpu_s": round(cpu, 3), "cpu_s_per_1000": round(cpu / max(seen, 1) * 1000, 4),
                              # sent but not both answered 200 and seen by Python
                              "loss_fraction": round(1 - min(seen, report["answered"], count) / count, 6),
                              "elapsed_s": round(elapsed, 2), "clean": clean, "problems": problems}
            steps.append(step)
            if not step["ours"]["clean"] and not step["peer"]["clean"]:
                break
        subscription.end()
        child.stdin.write(json.dumps({"quit": True}) + "\n")
        child.stdin.flush()
    finally:
        center.discard_observer(subscriber, name="SCSubscriptionGotNotify")
        center.discard_observer(subscriber, name="SCEngineGotMessage")
        engine.stop()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def best(side):
        clean = [s["rate"] for s in steps if s.get(side, {}).get("clean")]
        return max(clean) if clean else None

    def cpu_over_clean(side):
        chosen = [s[side] for s in steps if s.get(side, {}).get("clean")]
        n = sum(c["python_seen"] for c in chosen)
        return round(sum(c["cpu_s"] for c in chosen) / n * 1000, 4) if n else None

    results = {
        "highest_clean_rate": {
            "unit": "requests/s", "better": "higher", "ours": best("ours"), "peer": best("peer"),
            "ratio": _ratio(best("ours"), best("peer")),
            "note": "ours: in-dialog NOTIFY parsed into presence state; peer: MESSAGE to the same Engine"},
        "cpu_s_per_1000_over_clean_steps": {
            "unit": "CPU-s per 1000 requests", "better": "lower",
            "ours": cpu_over_clean("ours"), "peer": cpu_over_clean("peer"),
            "ratio": _ratio(cpu_over_clean("ours"), cpu_over_clean("peer"))},
    }
    table_steps = [{"rate": s["rate"], "order": ("ours", "peer"), **{
        k: {**v, "successful": v["answered"], "retransmissions": 0} for k, v in s.items() if k != "rate"}}
        for s in steps]
    document = {
        "description": "NOTIFYs per second into Python presence state (ours) vs MESSAGEs (peer), one Engine",
        "results": results,
        "details": {
            "steps": table_steps,
            "rising": rising_series(
                table_steps, x_label="offered rate (requests/s)", group="in-dialog NOTIFY vs MESSAGE",
                metrics=[("achieved_rate", "achieved send rate (requests/s)"),
                         ("cpu_s_per_1000", "CPU-s per 1000 requests (this process)"),
                         ("loss_fraction", "fraction not answered or not seen")],
                sides={"ours": "NOTIFY parsed into presence state", "peer": "MESSAGE, same Engine"}),
            "parse_errors": subscriber.parse_errors,
            "pidf_parse_us_per_notify": round(subscriber.parse_seconds / max(subscriber.notifies, 1) * 1e6, 1),
            "last_state": repr(subscriber.state.get("alice")),
            "duration_per_step_s": duration},
    }
    if json_output:
        print(json.dumps(document, indent=2))
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sipsimple.bench.presence")
    parser.add_argument("--notifier", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rates", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.notifier:
        return _notifier_main()
    rates = [int(r) for r in args.rates.split(",")] if args.rates else None
    document = run(json_output=args.json, duration=args.duration, rates=rates)
    if not args.json:
        from sipsimple.bench.runner import format_table

        print(format_table({"workload": "presence", **document}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
