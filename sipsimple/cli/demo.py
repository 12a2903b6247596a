"""``sipsimple demo``: two endpoints, alice and bob, talking over loopback -- no account, no server.

One Engine on 127.0.0.1 stands for both: each party is a user at our own
contact address, so a MESSAGE from alice to ``sip:bob@127.0.0.1:PORT`` leaves
the stack and comes back in as bob's. The demo prints a timeline of every
notification (time since start, name, the data that matters) and a summary
with OK/FAIL per check; it exits 0 when every check is OK.

``--with-server`` starts a throw-away local Kamailio (registrar and proxy with
digest authentication; needs the ``kamailio`` program), shows a wrong password
being refused, registers alice and bob, has them message each other through
the proxy (which challenges each MESSAGE), and unregisters them.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sipsimple.cli.options import EXIT_FAILURE, EXIT_OK, CLIError, EventQueue, out, setup_logging

NAME = "demo"
HELP = "show alice and bob exchanging messages in-process (--with-server: via a local Kamailio)"
DESCRIPTION = __doc__
COMMON_OPTIONS = False

STEP_TIMEOUT = 5.0  # every step here takes milliseconds on loopback


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with-server", action="store_true",
                        help="start a local Kamailio and go through it with registration and digest auth")
    parser.add_argument("--local-ip", default="127.0.0.1", metavar="ADDR",
                        help="address the endpoints use (default 127.0.0.1)")
    parser.add_argument("--trace", action="store_true", help="show each SIP message sent and received in the timeline")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")


# ---------------------------------------------------------------- timeline


def _short(value: Any, limit: int = 60) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.replace("\r", "").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(notification) -> str:
    """The key data of a notification, in one line."""
    name, data = notification.name, notification.data
    get = data.get if data is not None and hasattr(data, "get") else (lambda key, default=None: default)
    if name == "SCEngineDidStart":
        ports = ", ".join(f"{t}={get(f'{t}_port')}" for t in ("udp", "tcp", "tls") if get(f"{t}_port"))
        return f"local_ip={get('local_ip')} {ports}"
    if name in ("SCEngineDidFail",):
        return str(get("reason"))
    if name == "SCEngineGotMessage":
        sender = getattr(get("from_header"), "uri", get("from_header"))
        return f'{sender} -> {get("request_uri")}: "{_short(get("body", b""))}" ({get("content_type")})'
    if name in ("SCMessageDidSucceed", "SCMessageDidFail", "SCRegistrationDidEnd"):
        return f"{get('code')} {get('reason')}"
    if name == "SCRegistrationDidSucceed":
        contact = getattr(get("contact_header"), "uri", None)
        return f"{get('code')} {get('reason')} contact={contact} expires={get('expires')}"
    if name == "SCRegistrationDidFail":
        retry = get("will_retry_in")
        return f"{get('code')} {get('reason')}" + (f" (would retry in {retry:g} s)" if retry else "")
    if name == "SCEngineSIPTrace":
        arrow = "<--" if get("direction") == "in" else "-->"
        first = _short((get("data") or b"").split(b"\r\n", 1)[0], 70)
        peer = (f"{get('source_ip')}:{get('source_port')}" if get("direction") == "in"
                else f"{get('destination_ip')}:{get('destination_port')}")
        return f"{arrow} {str(get('transport')).upper()} {peer} {first}"
    if data is None:
        return ""
    items = getattr(data, "__dict__", {})
    return " ".join(f"{k}={_short(v, 40)}" for k, v in items.items() if k != "timestamp")


class Timeline:
    """Every notification, printed by the main thread as it consumes them."""

    def __init__(self, trace: bool) -> None:
        self.events = EventQueue().observe(None)
        self.trace = trace
        self.start = time.monotonic()
        self.labels: dict[int, str] = {}

    def label(self, sender: Any, text: str) -> Any:
        self.labels[id(sender)] = text
        return sender

    def note(self, text: str) -> None:
        out(f"  +{time.monotonic() - self.start:7.3f}s  {'--':<26} {text}")

    def _print(self, when: float, notification) -> None:
        if notification.name == "SCEngineSIPTrace" and not self.trace:
            return
        who = self.labels.get(id(notification.sender))
        who = f"[{who}] " if who else ""
        out(f"  +{when - self.start:7.3f}s  {notification.name:<26} {who}{describe(notification)}")

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = STEP_TIMEOUT):
        """Print notifications until one matches ``predicate``; returns it, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.events.get_timed(max(0.0, deadline - time.monotonic()) or 0.001)
            if item is None:
                return None
            self._print(*item)
            if predicate(item[1]):
                return item[1]

    def wait_all(self, predicates: list[Callable[[Any], bool]], timeout: float = STEP_TIMEOUT) -> list:
        """Wait until each predicate matched one notification; the matches (None where none came)."""
        found: list[Any] = [None] * len(predicates)
        deadline = time.monotonic() + timeout

        def match(notification) -> bool:
            for i, predicate in enumerate(predicates):
                if found[i] is None and predicate(notification):
                    found[i] = notification
            return all(f is not None for f in found)

        while not all(f is not None for f in found):
            if self.wait_for(match, max(0.0, deadline - time.monotonic())) is None:
                break
        return found

    def drain(self) -> None:
        while True:
            item = self.events.get_timed(0.001)
            if item is None:
                return
            self._print(*item)

    def close(self) -> None:
        self.events.close()


# ------------------------------------------------------------------ checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Demo:
    timeline: Timeline
    local_ip: str
    checks: list[Check] = field(default_factory=list)

    def record(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(name, ok, detail))
        self.timeline.note(f"{'OK' if ok else 'FAIL'}: {name}" + (f" ({detail})" if detail else ""))
        return ok

    # -- steps

    def start_engine(self) -> bool:
        from sipsimple.core import Engine, SIPCoreError

        try:
            Engine().start(local_ip=self.local_ip, transports=("udp", "tcp"), trace_sip=self.timeline.trace,
                           user_agent="sipsimple-demo")
        except (SIPCoreError, ValueError) as exc:
            self.timeline.drain()
            return self.record("engine started", False, str(exc))
        self.timeline.label(Engine(), "engine")
        started = self.timeline.wait_for(lambda n: n.name == "SCEngineDidStart")
        engine = Engine()
        return self.record("engine started", started is not None,
                           f"{engine.local_ip}, UDP and TCP port {engine.udp_port}")

    def stop_engine(self) -> bool:
        from sipsimple.core import Engine, SIPCoreError

        try:
            Engine().stop(STEP_TIMEOUT)
        except SIPCoreError as exc:
            self.timeline.drain()
            return self.record("engine stopped", False, str(exc))
        ended = self.timeline.wait_for(lambda n: n.name == "SCEngineDidEnd")
        return self.record("engine stopped", ended is not None)

    def message(self, sender: str, recipient: str, text: str, *, transport: str = "udp",
                route=None, password: str | None = None) -> bool:
        """``sender`` messages ``recipient``: check both the 2xx and that the recipient got it."""
        from sipsimple.core import SIPURI, Credentials, Engine, FromHeader, Message, ToHeader

        engine = Engine()
        from_uri = SIPURI(engine.local_ip, user=sender)
        if route is None:
            to_uri = engine.contact_uri(recipient, transport)  # straight to the other party's contact
            how = f"directly over {transport.upper()}"
        else:
            to_uri = SIPURI(route.address, user=recipient)  # its address of record, via the proxy
            how = f"via the proxy over {route.transport.upper()}"
        credentials = Credentials(sender, password) if password else None
        message = Message(FromHeader(from_uri), ToHeader(to_uri), text, credentials=credentials, route=route)
        self.timeline.label(message, f"{sender}->{recipient} message")
        message.send(timeout=STEP_TIMEOUT)
        result, received = self.timeline.wait_all([
            lambda n: n.sender is message and n.name in ("SCMessageDidSucceed", "SCMessageDidFail"),
            lambda n: (n.name == "SCEngineGotMessage" and _user(n.data.request_uri) == recipient
                       and n.data.body == text.encode()),
        ])
        name = f"{sender} -> {recipient} {how}"
        if result is None:
            return self.record(name, False, "no answer")
        if result.name != "SCMessageDidSucceed":
            return self.record(name, False, f"{result.data.code} {result.data.reason}")
        if received is None:
            return self.record(name, False, f"{result.data.code} {result.data.reason} but {recipient} got nothing")
        return self.record(name, True, f'{result.data.code} {result.data.reason}, {recipient} got "{text}"')

    def message_to_nobody(self) -> bool:
        """A MESSAGE to a closed port must be reported as failed (here: at once, 503 on ICMP)."""
        from sipsimple.core import SIPURI, Engine, FromHeader, Message, ToHeader
        from sipsimple.core.engine import pick_free_port

        engine = Engine()
        port = pick_free_port(engine.local_ip, tcp=False)
        message = Message(FromHeader(SIPURI(engine.local_ip, user="alice")),
                          ToHeader(SIPURI(engine.local_ip, user="nobody", port=port)), "anyone there?")
        self.timeline.label(message, "alice->nobody message")
        message.send(timeout=2.0)
        result = self.timeline.wait_for(lambda n: n.sender is message and n.name.startswith("SCMessageDid"))
        name = "a message to a closed port is reported as failed"
        if result is None:
            return self.record(name, False, "no result")
        return self.record(name, result.name == "SCMessageDidFail", f"{result.data.code} {result.data.reason}")

    def register(self, user: str, password: str, route, *, expect_ok: bool = True):
        """Register ``user``; returns the Registration when it went as expected, else None."""
        from sipsimple.core import SIPURI, Credentials, Registration

        registration = Registration(SIPURI(route.address, user=user), Credentials(user, password),
                                    duration=300, route=route)
        self.timeline.label(registration, f"{user} registration" + ("" if expect_ok else " (wrong password)"))
        registration.register()
        result = self.timeline.wait_for(lambda n: n.sender is registration and n.name in (
            "SCRegistrationDidSucceed", "SCRegistrationDidFail"))
        if expect_ok:
            name = f"{user} registers with digest authentication"
            ok = result is not None and result.name == "SCRegistrationDidSucceed"
        else:
            name = f"{user} with a wrong password is refused"
            ok = result is not None and result.name == "SCRegistrationDidFail" and result.data.code in (401, 403)
        detail = "no answer" if result is None else f"{result.data.code} {result.data.reason}"
        if result is not None and ok and expect_ok:
            detail += f", contact {getattr(result.data.contact_header, 'uri', '?')}, expires {result.data.expires} s"
        self.record(name, ok, detail)
        if not expect_ok or not ok:
            self.unregister(registration, quiet=True)
            return None
        return registration

    def unregister(self, registration, *, quiet: bool = False) -> bool:
        registration.end()
        ended = self.timeline.wait_for(lambda n: n.sender is registration and n.name == "SCRegistrationDidEnd")
        if quiet:
            return ended is not None
        name = f"{registration.uri.user} unregisters"
        if ended is None:
            return self.record(name, False, "no answer")
        return self.record(name, 200 <= ended.data.code < 300, f"{ended.data.code} {ended.data.reason}")

    # -- scenarios

    def run_direct(self) -> None:
        out("alice and bob on one Engine, peer to peer over loopback (no account, no server)")
        if not self.start_engine():
            return
        try:
            self.message("alice", "bob", "Hello Bob, it's Alice.", transport="udp")
            self.message("bob", "alice", "Hi Alice! Bob here, over TCP.", transport="tcp")
            self.message_to_nobody()
        finally:
            self.stop_engine()

    def run_with_server(self) -> None:
        from sipsimple.cli.kamailio_local import KamailioError, LocalKamailio
        from sipsimple.core import Route

        out("alice and bob register at a local Kamailio and message each other through it")
        server = LocalKamailio()
        try:
            server.start()
        except KamailioError as exc:
            print(f"sipsimple demo: {exc}", file=sys.stderr)
            self.record("local Kamailio started", False, str(exc).splitlines()[0].rstrip(":"))
            return
        try:
            self.record("local Kamailio started", True, f"{server.host}:{server.port}, users alice, bob, carol")
            if not self.start_engine():
                return
            try:
                route = Route(server.host, server.port, "udp")
                self.register("alice", "not-the-password", route, expect_ok=False)
                alice = self.register("alice", server.users["alice"], route)
                bob = self.register("bob", server.users["bob"], route)
                if alice is not None and bob is not None:
                    self.message("alice", "bob", "Hello Bob, through the proxy.", route=route,
                                 password=server.users["alice"])
                    self.message("bob", "alice", "Hi Alice, got it!", route=route, password=server.users["bob"])
                for registration in (alice, bob):
                    if registration is not None:
                        self.unregister(registration)
            finally:
                self.stop_engine()
        finally:
            server.stop()
            self.timeline.note("local Kamailio stopped")

    def summary(self, elapsed: float) -> bool:
        out()
        out("Summary")
        for check in self.checks:
            out(f"  {'OK  ' if check.ok else 'FAIL'}  {check.name}" + (f": {check.detail}" if check.detail else ""))
        failed = sum(not c.ok for c in self.checks)
        ok = bool(self.checks) and failed == 0
        verdict = f"all {len(self.checks)} checks OK" if ok else f"{failed} of {len(self.checks)} checks FAILED"
        out(f"{verdict} in {elapsed:.1f} s")
        return ok


def _user(uri: Any) -> str | None:
    from sipsimple.core import SIPURI

    if isinstance(uri, SIPURI):
        return uri.user
    try:
        return SIPURI.parse(str(uri)).user
    except ValueError:
        return None


def run(args: argparse.Namespace) -> int:
    from sipsimple.core import Engine

    setup_logging(args.verbose)
    if Engine().is_running:
        raise CLIError("the Engine is already running in this process")
    timeline = Timeline(trace=args.trace)
    demo = Demo(timeline, args.local_ip)
    started = time.monotonic()
    try:
        if args.with_server:
            demo.run_with_server()
        else:
            demo.run_direct()
    except BrokenPipeError:
        raise
    except Exception as exc:  # a bug in a step: report it as a failed check, not a traceback
        demo.record("demo ran to the end", False, f"{type(exc).__name__}: {exc}")
        if args.verbose:
            raise
    finally:
        timeline.drain()
        timeline.close()
        sys.stdout.flush()
    return EXIT_OK if demo.summary(time.monotonic() - started) else EXIT_FAILURE
