"""The scenario of ``sipsimple demo``: set-up, presence, the call, a file transfer, tear-down.

Built the way an application uses the SDK: the configuration (in memory) holds
the global settings (SRTP mandatory, Opus first) and the accounts; the
AccountManager runs them, the Engine starts from the configuration, the
SessionManager makes bob's sessions, and every wait is for a notification.

Direct (no server): one Engine on the loopback address stands for both parties.
alice is the BonjourAccount (the local, serverless account, user ``alice``), bob
a local Account ``bob@<ip>`` that does not register; alice calls bob's contact
address. Presence goes peer to peer: bob is his own notifier
(``IncomingSubscription``) and alice subscribes to him directly.

With the server (``--with-server``): a throw-away Kamailio is registrar, proxy
and presence server; alice and bob are Accounts at its domain that register with
digest authentication, bob PUBLISHes his presence and alice watches him as a
buddy (SUBSCRIBE through Kamailio); calls and the file transfer go through it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sipsimple.cli.demo_call import CallSteps
from sipsimple.cli.demo_timeline import Report, StepFailed, Timeline, named

__all__ = ["Scenario", "FILE_SIZE"]

log = logging.getLogger("sipsimple.cli.demo")

MB = 1024 * 1024
FILE_SIZE = 4 * MB
FILE_TIMEOUT = 30.0
PIDF = "application/pidf+xml"
AVAILABLE = ("available", None)
IN_A_CALL = ("in a call", "on-the-phone")


def _sha1_of(path: Path) -> str:
    sha = hashlib.sha1()
    with open(path, "rb") as f:
        while block := f.read(MB):
            sha.update(block)
    return sha.hexdigest()


def _hex_of(announced: str | None) -> str:
    """``sha-1:AB:CD:...`` (RFC 5547's hash attribute) -> ``abcd...``."""
    if not announced or not announced.lower().startswith("sha-1:"):
        return ""
    return announced[6:].replace(":", "").lower()


class Scenario(CallSteps):
    """alice and bob, one Engine; ``run()`` does every step and always tears down."""

    def __init__(self, timeline: Timeline, report: Report, *, with_server: bool = False,
                 local_ip: str = "127.0.0.1", output_dir: str | os.PathLike[str] | None = None) -> None:
        self.timeline = timeline
        self.report = report
        self.with_server = with_server
        self.local_ip = local_ip
        self.keep = output_dir is not None
        if output_dir is not None:
            self.workdir = Path(output_dir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="sipsimple-demo-"))
        self.server: Any = None
        self.alice: Any = None
        self.bob: Any = None
        self.engine_started = False
        self.watcher: Any = None     # direct: alice's PresenceSubscriber
        self.notifier: Any = None    # direct: bob's IncomingSubscription
        self.file_bytes = 0

    # ------------------------------------------------------------ driving

    def step(self, name: str, action: Callable[..., str], *args: Any) -> bool:
        """Run one step and record its check: OK with the detail it returns, FAIL with the reason."""
        try:
            detail = action(*args)
        except StepFailed as exc:
            return self.report.record(name, False, str(exc))
        except Exception as exc:  # a bug or an unexpected error: a failed check, not a traceback
            log.debug("step %r failed", name, exc_info=True)
            return self.report.record(name, False, f"{type(exc).__name__}: {exc}")
        return self.report.record(name, True, detail)

    def run(self) -> None:
        try:
            if self.with_server and not self.step("local Kamailio started", self.start_server):
                return
            if not self.step("engine started", self.start_engine):
                return
            self.step("accounts", self.check_accounts)
            if self.with_server:
                self.step("alice registers", self.registered, self.alice)
                self.step("bob registers", self.registered, self.bob)
                self.step("presence: bob publishes", self.bob_publishes)
            self.step("presence: alice watches bob", self.alice_watches)
            # without the call, the steps that need it fail at once as skipped: every item stays listed
            self.step("call: alice calls bob", self.call)
            self.step("codec", self.codec)
            self.step("SRTP", self.srtp)
            self.step("presence: bob is in a call", self.bob_changes, IN_A_CALL)
            self.step("recording started", self.start_recording)
            self.step("tone", self.tone)
            self.step("DTMF", self.dtmf)
            self.step("hold", self.hold)
            self.step("resume", self.resume)
            self.step("chat alice -> bob", self.chat, "alice")
            self.step("chat bob -> alice", self.chat, "bob")
            self.step("recording", self.recording)
            self.step("hang up", self.hang_up)
            self.step("RTP alice -> bob", self.rtp, "alice -> bob")
            self.step("RTP bob -> alice", self.rtp, "bob -> alice")
            self.step("presence: bob is available again", self.bob_changes, AVAILABLE)
            self.step("file transfer", self.file_transfer)
            self.step("MSRP bytes", self.msrp_bytes)
        finally:
            self.teardown()

    # ------------------------------------------------------------- set-up

    def start_server(self) -> str:
        from sipsimple.cli.kamailio_local import KamailioError, LocalKamailio

        server = LocalKamailio()
        try:
            server.start()
        except KamailioError as exc:
            raise StepFailed(str(exc).replace("\n", " | ")) from None
        self.server = server
        return f"{server.host}:{server.port} (UDP, TCP): registrar, proxy with digest auth, presence server"

    def start_engine(self) -> str:
        from sipsimple.account import AccountManager
        from sipsimple.configuration import ConfigurationManager, MemoryBackend
        from sipsimple.configuration.settings import SIPSimpleSettings
        from sipsimple.core import Engine
        from sipsimple.core._media import MediaEngine
        from sipsimple.core.incoming_subscription import IncomingSubscription
        from sipsimple.session import SessionManager

        ConfigurationManager().start(MemoryBackend())
        settings = SIPSimpleSettings()
        settings.sip.local_ip = self.local_ip
        settings.sip.transports = ("udp", "tcp")
        settings.user_agent = "sipsimple-demo"
        settings.logs.trace_sip = self.timeline.trace
        settings.rtp.srtp_mode = "mandatory"
        settings.rtp.audio_codec_list = ("opus", "G722", "PCMU")
        settings.save()
        AccountManager().start()
        self._make_accounts()
        media = MediaEngine()
        if not media.running:
            media.start(sample_rate=48000, frame_ms=20, device="null")  # no sound card: the clocked null device
        tl = self.timeline
        engine = tl.label(Engine(), "engine")
        mark = tl.mark()
        # bob is his own presence notifier when there is no server
        Engine().start_cfg(allow_events=() if self.with_server else ("presence",))
        self.engine_started = True
        tl.expect(named("SCEngineDidStart", engine), "SCEngineDidStart", since=mark)
        if not self.with_server:
            engine.incoming_subscription_handler = IncomingSubscription.handle_incoming
        SessionManager()  # from now on incoming INVITEs become Sessions
        return (f"{engine.local_ip}, UDP and TCP port {engine.udp_port}; media engine at {media.sample_rate} Hz "
                f"on the null device; configuration in memory")

    def _make_accounts(self) -> None:
        from sipsimple.account import Account, AccountManager, BonjourAccount
        from sipsimple.core import Route

        tl = self.timeline
        if not self.with_server:
            alice = BonjourAccount()
            alice.username = "alice"
            alice.display_name = "Alice"
            alice.save()
            bob = Account(f"bob@{self.local_ip}")
            bob.display_name = "Bob"
            bob.sip.register = False  # nobody to register with: bob is reached at the Engine's address
            bob.enabled = True
            bob.save()
            self.alice, self.bob = tl.label(alice, "alice"), tl.label(bob, "bob")
            AccountManager().default_account = alice
            return
        server = self.server
        accounts = {}
        for user in ("alice", "bob"):
            account = Account(f"{user}@{server.domain}")
            account.display_name = user.title()
            account.auth.password = server.users[user]
            account.sip.outbound_proxy = Route(server.host, server.port, "udp")
            account.sip.register_interval = 600
            account.presence.enabled = True
            account.presence.subscribe_winfo = False
            # Kamailio keeps presence in SQLite and may answer 500 "database is locked": retry soon
            account.presence.retry_interval = 0.2
            account.presence.max_retry_interval = 1.0
            account.enabled = True
            accounts[user] = tl.label(account, user)
        accounts["alice"].presence.buddies = [accounts["bob"].id]
        accounts["bob"].presence_state = self._state(*AVAILABLE)
        for account in accounts.values():
            account.save()
        self.alice, self.bob = accounts["alice"], accounts["bob"]
        AccountManager().default_account = self.alice

    def check_accounts(self) -> str:
        from sipsimple.account import AccountManager
        from sipsimple.core import Engine

        manager = AccountManager()
        found = manager.find_account(self.bob_target())
        if found is not self.bob:
            raise StepFailed(f"a request to {self.bob_target()} would go to {getattr(found, 'id', found)}")
        if manager.default_account is not self.alice:
            raise StepFailed(f"the default account is {getattr(manager.default_account, 'id', None)}, not alice's")
        kinds = (f"alice = {type(self.alice).__name__} {self.alice.uri} (the default account), "
                 f"bob = {type(self.bob).__name__} {self.bob.id}")
        if self.with_server:
            return kinds + f" (register at {self.server.host}:{self.server.port}, presence on)"
        if self.alice.uri != Engine().contact_uri("alice"):
            raise StepFailed(f"alice's URI {self.alice.uri} is not her contact address")
        return kinds + " (no registration); SRTP mandatory, codecs opus, G722, PCMU"

    def registered(self, account: Any) -> str:
        done = self.timeline.expect(
            lambda n: n.sender is account and n.name in ("SIPAccountRegistrationDidSucceed",
                                                         "SIPAccountRegistrationDidFail"),
            f"registration result for {account.id}")
        if done.name != "SIPAccountRegistrationDidSucceed":
            raise StepFailed(f"{done.data.code} {done.data.reason}")
        contact = getattr(done.data.contact_header, "uri", "?")
        return f"{done.data.code} {done.data.reason} with digest auth, contact {contact}, expires {done.data.expires} s"

    def bob_target(self) -> Any:
        from sipsimple.core import SIPURI, Engine

        if self.with_server:
            return SIPURI(self.server.domain, user="bob")  # his address of record: Kamailio knows where he is
        return SIPURI(self.local_ip, user="bob", port=Engine().udp_port)

    def routes(self) -> list[Any]:
        return [self.alice.route] if self.alice.route is not None else []

    # ----------------------------------------------------------- presence

    @staticmethod
    def _state(note: str, activity: str | None) -> Any:
        from sipsimple.payloads import PresenceState

        return PresenceState("open", note=note, activity=activity)

    def bob_publishes(self) -> str:
        done = self.timeline.expect(
            lambda n: n.sender is self.bob and n.name in ("SIPAccountPresenceDidPublish", "SIPAccountPresenceDidFail")
            and (n.name == "SIPAccountPresenceDidPublish" or n.data.will_retry_in is None),
            "PUBLISH result for bob")
        if done.name != "SIPAccountPresenceDidPublish":
            raise StepFailed(f"{done.data.code} {done.data.reason}")
        return (f"PUBLISH {done.data.code} {done.data.reason}{self._retries('')}, expires {done.data.expires} s: "
                f"open \"available\"")

    def _retries(self, kind: str) -> str:
        """' (after N retries: 500 ...)' when the account had to retry a presence request so far."""
        name = f"SIPAccountPresence{kind}DidFail"
        failed = [n for n in self.timeline.history if n.name == name and n.data.will_retry_in is not None]
        if not failed:
            return ""
        return f" (after {len(failed)} retr{'y' if len(failed) == 1 else 'ies'}: {failed[0].data.code} " \
               f"{failed[0].data.reason})"

    def _alice_sees(self, note: str, since: int) -> Any:
        """Wait until alice learns that bob's note is ``note``; the PresenceState she saw."""
        from sipsimple.account.presence import state_from_notify

        tl = self.timeline
        if self.with_server:
            seen = tl.expect(lambda n: n.name == "SIPAccountGotPresenceState" and n.sender is self.alice
                             and n.data.uri == self.bob.id and n.data.state.note == note,
                             f'bob\'s state "{note}" at alice', since=since)
            return seen.data.state

        def notified(n: Any) -> bool:
            if n.name != "SCSubscriptionGotNotify" or not n.data.body:
                return False
            state = state_from_notify(n.data.content_type, n.data.body)
            return state is not None and state.note == note

        seen = tl.expect(notified, f'NOTIFY with bob\'s state "{note}" at alice', since=since)
        return state_from_notify(seen.data.content_type, seen.data.body)

    def alice_watches(self) -> str:
        from sipsimple.account.presence import PresenceSubscriber

        tl = self.timeline
        if self.with_server:
            # alice subscribed as soon as the Engine was up; a failure the account retries is not the end
            done = tl.expect(lambda n: n.sender is self.alice and (
                n.name == "SIPAccountPresenceSubscriptionDidSucceed"
                or n.name == "SIPAccountPresenceSubscriptionDidFail" and n.data.will_retry_in is None),
                "subscription result for alice")
            if done.name != "SIPAccountPresenceSubscriptionDidSucceed":
                raise StepFailed(f"{done.data.code} {done.data.reason}")
            state = self._alice_sees(AVAILABLE[0], 0)
            return (f"SUBSCRIBE via Kamailio {done.data.code} {done.data.reason}{self._retries('Subscription')}; "
                    f"alice sees bob {state.status} \"{state.note}\"")
        mark = tl.mark()
        watcher = PresenceSubscriber(self.alice.uri, self.bob_target(), retry_interval=None)
        self.watcher = tl.label(watcher, "alice watches bob")
        watcher.start()
        asked = tl.expect(named("SCIncomingSubscriptionGotSubscribe"), "SUBSCRIBE at bob", since=mark)
        notifier = tl.label(asked.sender, "bob's presence")
        if asked.data.event != "presence" or PIDF not in asked.data.accept:
            notifier.reject(489)
            raise StepFailed(f"bob was asked for {asked.data.event} in {asked.data.accept}")
        self.notifier = notifier
        notifier.accept(PIDF, self._state(*AVAILABLE).toxml(str(self.bob.uri)))
        done = tl.expect(lambda n: n.sender is watcher and n.name.startswith("SIPAccountPresenceSubscription"),
                         "subscription result for alice", since=mark)
        if done.name != "SIPAccountPresenceSubscriptionDidSucceed":
            raise StepFailed(f"{done.data.code} {done.data.reason}")
        state = self._alice_sees(AVAILABLE[0], mark)
        return (f"SUBSCRIBE {done.data.code} {done.data.reason} straight to bob, who notifies himself; "
                f"alice sees bob {state.status} \"{state.note}\"")

    def bob_changes(self, state: tuple[str, str | None]) -> str:
        tl = self.timeline
        mark = tl.mark()
        new = self._state(*state)
        if self.with_server:
            self.bob.presence_state = new  # the account PUBLISHes it
        else:
            if self.notifier is None or self.notifier.state != "active":
                raise StepFailed("skipped: alice does not watch bob")
            self.notifier.push_content(new.toxml(str(self.bob.uri)))
        seen = self._alice_sees(new.note, mark)
        how = "PUBLISH, Kamailio NOTIFYs alice" if self.with_server else "NOTIFY from bob to alice"
        return f"{how}: alice sees {seen.status} \"{seen.note}\"" + (f" ({seen.activity})" if seen.activity else "")

    def _end_direct_presence(self) -> None:
        """alice unsubscribes; both ends must see it over (a check when it was up)."""
        tl = self.timeline
        watcher, notifier = self.watcher, self.notifier
        self.watcher = self.notifier = None
        if watcher is None:
            return
        mark = tl.mark()
        if not watcher.stop() or notifier is None:
            return

        def ended() -> str:
            found = tl.expect_all({
                "end of alice's subscription": named("SIPAccountPresenceSubscriptionDidEnd", watcher),
                "end at bob's notifier": named("SCIncomingSubscriptionDidEnd", notifier),
            }, since=mark)
            mine, his = found["end of alice's subscription"], found["end at bob's notifier"]
            if his.data.originator != "remote":
                raise StepFailed(f"bob's side ended with originator {his.data.originator}")
            return f"alice unSUBSCRIBEd ({mine.data.code} {mine.data.reason}); bob's notifier saw it end"

        self.step("presence: alice stops watching bob", ended)

    # -------------------------------------------------------- file transfer

    def _make_file(self) -> tuple[Path, str]:
        path = self.workdir / "demo-file.bin"
        sha = hashlib.sha1()
        with open(path, "wb") as f:
            for _ in range(FILE_SIZE // MB):
                block = os.urandom(MB)
                sha.update(block)
                f.write(block)
        return path, sha.hexdigest()

    def file_transfer(self) -> str:
        from sipsimple.session import Session

        if not self.engine_started:
            raise StepFailed("skipped: the Engine is not running")
        tl = self.timeline
        source, digest = self._make_file()
        inbox = self.workdir / "inbox"
        (inbox / source.name).unlink(missing_ok=True)  # an earlier run's copy (--output-dir) is not this one
        mark = tl.mark()
        sender = tl.label(Session(self.alice), "alice's file transfer")
        sender.connect(self.bob_target(), self.routes(), file=source)
        incoming = tl.expect(lambda n: n.name == "SCSessionNewIncoming" and n.sender is not self.incoming,
                             "incoming file transfer at bob", since=mark)
        receiver = tl.label(incoming.sender, "bob's file transfer")
        offered = receiver.proposed_file
        if incoming.data.streams != ["file-transfer"] or offered is None:
            receiver.reject()
            raise StepFailed(f"bob was offered {incoming.data.streams}")
        if offered.name != source.name or offered.size != FILE_SIZE or _hex_of(offered.hash) != digest:
            receiver.reject()
            raise StepFailed(f"the offer names {offered.name}, {offered.size} bytes, {offered.hash}")
        started = time.monotonic()
        receiver.accept(file_transfer=True, directory=inbox)
        found = tl.expect_all({
            "SCSessionGotFile at bob": named("SCSessionGotFile", receiver),
            "SCSessionDidDeliverFile at alice": named("SCSessionDidDeliverFile", sender),
        }, timeout=FILE_TIMEOUT, since=mark)
        elapsed = time.monotonic() - started
        tl.expect_all({  # the sender ends the session once the file is delivered
            "SCSessionDidEnd at alice": named("SCSessionDidEnd", sender),
            "SCSessionDidEnd at bob": named("SCSessionDidEnd", receiver),
        }, since=mark)
        received = Path(found["SCSessionGotFile at bob"].data.file_name)
        got = _sha1_of(received) if received.is_file() else "(no file)"
        detail = (f"{FILE_SIZE // MB} MB of random bytes, {received.name} in {received.parent}, "
                  f"SHA-1 sent {digest[:12]}..., received {got[:12]}...")
        if got != digest:
            raise StepFailed(detail)
        self.file_bytes = received.stat().st_size
        return f"{detail} -- identical, as announced in the offer; {elapsed:.2f} s ({FILE_SIZE / MB / elapsed:.0f} MB/s)"

    def msrp_bytes(self) -> str:
        detail = (f"chat {self.chat_bytes} bytes in {self.chat_messages} messages, "
                  f"file {self.file_bytes} bytes, total {self.chat_bytes + self.file_bytes} bytes of payload")
        if not (self.chat_messages == 2 and self.file_bytes == FILE_SIZE):
            raise StepFailed(detail)
        return detail

    # ------------------------------------------------------------ tear-down

    def teardown(self) -> None:
        """End what is left, stop the accounts, the Engine, the media engine and the server; never hangs."""
        try:
            if self.engine_started:
                self._end_sessions()
                self._end_direct_presence()
            self._stop_accounts()
            if self.engine_started:
                self.step("engine stopped", self._stop_engine)
        finally:
            self._stop_rest()

    def _end_sessions(self) -> None:
        from sipsimple.session import SessionManager

        tl = self.timeline
        live = SessionManager().sessions
        if not live:
            return
        mark = tl.mark()
        for session in live:
            try:
                session.end()
            except Exception as exc:  # already ending
                log.debug("ending %r: %s", session, exc)
        for session in live:
            tl.wait(named("SCSessionDidEnd", session), timeout=3.0, since=mark)

    def _stop_accounts(self) -> None:
        from sipsimple.account import AccountManager

        tl = self.timeline
        manager = AccountManager()
        if not manager.started:
            return
        mark = tl.mark()
        manager.stop(timeout=5.0)  # unregisters, removes bob's publication, unsubscribes alice; waits for it
        if not (self.with_server and self.engine_started):
            return

        def unregistered(account: Any) -> str:
            ended = tl.expect(named("SIPAccountRegistrationDidEnd", account), "unregistration", since=mark)
            if not 200 <= ended.data.code < 300:
                raise StepFailed(f"{ended.data.code} {ended.data.reason}")
            return f"{ended.data.code} {ended.data.reason}"

        def unpublished() -> str:
            found = tl.expect_all({
                "removal of bob's publication": named("SIPAccountPresenceDidUnpublish", self.bob),
                "end of alice's subscription": named("SIPAccountPresenceSubscriptionDidEnd", self.alice),
            }, since=mark)
            codes = [found[key].data.code for key in found]
            if not all(200 <= code < 300 for code in codes):
                raise StepFailed(f"answered {codes}")
            return f"bob's PUBLISH removed ({codes[0]}), alice unSUBSCRIBEd ({codes[1]})"

        self.step("alice unregisters", unregistered, self.alice)
        self.step("bob unregisters", unregistered, self.bob)
        self.step("presence: removed at the server", unpublished)

    def _stop_engine(self) -> str:
        from sipsimple.core import Engine
        from sipsimple.core._media import MediaEngine
        from sipsimple.session import SessionManager

        tl = self.timeline
        left = SessionManager().sessions
        engine = Engine()
        engine.incoming_subscription_handler = None
        mark = tl.mark()
        engine.stop(5.0)
        self.engine_started = False
        tl.expect(named("SCEngineDidEnd", engine), "SCEngineDidEnd", since=mark)
        media = MediaEngine()
        media.stop()
        if left or media.running:
            raise StepFailed(f"sessions left: {len(left)}, media engine running: {media.running}")
        return "SCEngineDidEnd; media engine stopped; no session left"

    def _stop_rest(self) -> None:
        from sipsimple.configuration import ConfigurationManager
        from sipsimple.core._media import MediaEngine

        media = MediaEngine()
        if media.running:
            media.stop()
        if ConfigurationManager().started:
            ConfigurationManager().stop()
        if self.server is not None:
            self.server.stop()
            self.server = None
            self.timeline.note("local Kamailio stopped")
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            self.timeline.note(f"the recording and the files are in {self.workdir}")
