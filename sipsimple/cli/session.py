"""``sipsimple session``: a terminal softphone, calls and chat on one screen, commands on stdin.

    sipsimple session [TARGET] [--chat] [--no-audio] [--auto-answer] [--audio-device NAME]
                      [--srtp off|optional|mandatory] [--codec NAME]... [--msrp-relay URI]

It runs as the configured default account, ``--account ID``, or the explicit
account options (see ``sipsimple account``); an account with a proxy or a
password is registered first (unless its ``sip.register`` is off), so calls
reach it. ``listening on sip:...`` tells the address to call directly.
TARGET, if given, is called at once (``--chat`` adds chat, ``--no-audio``
leaves audio out).

What happens is printed as it happens, one line each, prefixed by the number
of the session it concerns (``[1] ringing``, ``[1] established with
sip:bob@example.com: audio PCMU/8000 srtp=off, chat``, ``[2] incoming session
from sip:carol@...: audio``, ``[1] on hold``, ``[1] sip:bob@example.com: hi``);
mistakes get an ``error: ...`` line and change nothing. Lines read from stdin
are commands:

    /call URI [--chat] [--no-audio]   start a session (audio; --chat: with chat)
    /answer [N]      accept an incoming session, or the other party's proposal to add a stream
    /reject [N]      decline it
    /hang [N]        end the session (also /end)
    /hold, /unhold   put the other party on hold and back
    /record [FILE]   start recording the audio to a WAV file (a name is made up without FILE); again: stop
    /dtmf DIGITS     send DTMF digits (0-9 * # A-D), one after the other
    /chat, /nochat   add or remove a chat stream
    /audio, /noaudio add or remove the audio stream
    /switch N        make session N the one these commands and typed text go to
    /sessions        list the sessions ('*' marks the current one)
    /help, /quit

and any other line is a chat message to the current session (``//text``
sends ``/text``). One call at a time is live, as on a desk phone: when the
keyboard leaves an established audio session (``/switch``, ``/call``, or
answering another), that session is put on hold (``[1] putting on hold``,
then ``[1] on hold`` once the other party took it), and ``/switch`` back
resumes it -- unless it was held with ``/hold``, which only ``/unhold``
undoes. ``--auto-answer`` accepts incoming sessions and stream
proposals by itself, for scripts. There is no sound card unless
``--audio-device NAME`` (``default`` for the system's) is given: audio runs
on the media engine's clocked null device.

It reads stdin line by line, so a pipe works as well as a terminal. At the
end of input (after waiting for typed messages to be delivered), on ``/quit``,
Ctrl-C or SIGTERM it ends every session, unregisters and exits 0. Exit 2
for bad options, an unknown account or an unreachable proxy.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from typing import Any

from sipsimple.cli.call import SRTP_MODES, CLIAccount, _stop_media, check_media_arguments
from sipsimple.cli.chat import add_msrp_arguments, check_msrp_relay, format_message
from sipsimple.cli.options import (
    EXIT_OK,
    CLIError,
    StopSignal,
    out,
    parse_target,
    settings_from_args,
    start_engine,
    stop_engine,
)
from sipsimple.cli.session_commands import Entry, SoftphoneCommands

NAME = "session"
HELP = "terminal softphone: calls and chat on one screen, commands (/call, /hold, /dtmf, ...) on stdin"
DESCRIPTION = __doc__

END_TIMEOUT = 10.0  # for every session to end at exit
UNREGISTER_TIMEOUT = 5.0
DELIVERY_TIMEOUT = 30.0  # at the end of input, for typed messages still on their way

SESSION_EVENTS = (
    "SCSessionNewIncoming", "SCSessionGotRingIndication", "SCSessionDidStart", "SCSessionDidFail",
    "SCSessionDidEnd", "SCSessionDidChangeHoldState",
    "SCSessionDidStartRecordingAudio", "SCSessionDidStopRecordingAudio", "SCSessionGotDTMF",
    "SCSessionGotNoAudio", "SCSessionGotStreamProposal", "SCSessionAcceptedStreamProposal",
    "SCSessionRejectedStreamProposal", "SCSessionGotStreamUpdate", "SCSessionGotMessage",
    "SCSessionDidDeliverMessage", "SCSessionDidNotDeliverMessage", "SCSessionGotComposingIndication",
)
# what the answer to our re-INVITE means, by what it did (hold and unhold: SCSessionDidChangeHoldState says)
UPDATE_DONE = {"hold": None, "unhold": None, "chat removal": "chat removed", "audio removal": "audio removed"}
REGISTRATION_EVENTS = ("SCRegistrationDidSucceed", "SCRegistrationDidFail", "SCRegistrationDidEnd")



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="TARGET", help="user@domain or sip: URI to call at once")
    parser.add_argument("--chat", action="store_true", help="with TARGET: offer chat as well")
    parser.add_argument("--no-audio", action="store_true", help="with TARGET: no audio (chat only)")
    parser.add_argument("--auto-answer", action="store_true",
                        help="accept incoming sessions and the other party's stream proposals by itself")
    parser.add_argument("--audio-device", metavar="NAME",
                        help="sound device for input and output ('default': the system's; default: none)")
    parser.add_argument("--srtp", choices=SRTP_MODES, default=None,
                        help="SRTP (SDES) for audio (default: the account's, else optional)")
    parser.add_argument("--codec", action="append", metavar="NAME", dest="codecs",
                        help="allow this codec (repeat for more, in order of preference; default: all)")
    add_msrp_arguments(parser)


class SessionAccount(CLIAccount):
    """The account the sessions use: CLIAccount's, plus the MSRP relay chat needs."""

    def __init__(self, settings, srtp_mode: str | None, codecs: list[str] | None, msrp_relay: str | None) -> None:
        super().__init__(settings, srtp_mode, codecs)
        self.msrp_relay = msrp_relay


class _Inbox:
    """One queue for the main thread: notifications (posted on any thread) and lines from stdin."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()

    def __call__(self, notification) -> None:
        if notification.name == "SCInvitationChangedState":
            data = notification.data
            # only the answers to our re-INVITEs (hold, unhold, removals) are reported; queued through
            # the middleware loop, where the Session handles them too, so they come after what it posted
            # before (the hold request). Not necessarily after what the answer makes it post: a hold or
            # unhold is over when its SCSessionDidChangeHoldState comes
            if data.prev_sub_state == "sending_proposal" and data.sub_state == "normal":
                from sipsimple.middleware import MiddlewareLoop

                MiddlewareLoop().call_soon(self.items.put, ("notification", notification))
            return
        self.items.put(("notification", notification))

    def read_stdin(self) -> None:
        threading.Thread(target=self._read, name="session-stdin", daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                self.items.put(("line", line.rstrip("\r\n")))
        finally:
            self.items.put(("eof", None))

    def get(self, timeout: float):
        try:
            return self.items.get(timeout=timeout)
        except queue.Empty:
            return None


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    codecs = check_media_arguments(argparse.Namespace(duration=None, play=None, record=None, codecs=args.codecs))
    relay = check_msrp_relay(args.msrp_relay) or settings.msrp_relay
    if (args.chat or args.no_audio) and not args.target:
        raise CLIError("--chat and --no-audio go with TARGET")
    if args.no_audio and not args.chat:
        raise CLIError("--no-audio needs --chat (a session needs a stream)")
    domain = settings.account.host if settings.account else None
    target = parse_target(args.target, domain) if args.target else None
    with StopSignal() as stop:
        engine = start_engine(settings, target=target or settings.account)
        try:
            if args.audio_device:
                _open_audio_device(args.audio_device)
            from sipsimple.session import SessionManager

            SessionManager()
            account = SessionAccount(settings, args.srtp, codecs, relay)
            phone = Softphone(settings, account, args.auto_answer, stop)
            try:
                phone.start(engine)
                if target is not None:
                    phone.call(target, audio=not args.no_audio, chat=args.chat)
                phone.loop()
            finally:
                phone.close()
            return EXIT_OK
        finally:
            _stop_media()
            stop_engine()


def _open_audio_device(name: str) -> None:
    from sipsimple.core._media import MediaEngine, MediaError

    device = "system_default" if name == "default" else name
    try:
        MediaEngine().start(device=None, input_device=device, output_device=device)
    except (MediaError, ValueError, OSError) as exc:
        raise CLIError(f"cannot open audio device {name!r}: {exc}") from None


class Softphone(SoftphoneCommands):
    """The main loop: sessions, their notifications, and the commands typed (:class:`SoftphoneCommands`)."""

    def __init__(self, settings, account: SessionAccount, auto_answer: bool, stop: StopSignal) -> None:
        self.settings = settings
        self.account = account
        self.auto_answer = auto_answer
        self.stop = stop
        self.inbox = _Inbox()
        self.entries: list[Entry] = []
        self.current: Entry | None = None
        self.numbers = 0
        self.registration = None
        self.registered = False
        self.registration_ended = False
        account_uri = settings.account
        self.account_name = f"{account_uri.user}@{account_uri.host}" if account_uri is not None else None
        self.closing_at: float | None = None  # input ended: quit once typed messages are delivered
        self._observed: list[tuple[str, Any]] = []

    # ------------------------------------------------------------ lifecycle

    def start(self, engine) -> None:
        from sipsimple.core import Registration, SIPCoreError

        for name in SESSION_EVENTS + ("SCInvitationChangedState",):
            self._observe(name)
        settings = self.settings
        out(f"listening on {engine.contact_uri(self.account.uri.user)}")
        if settings.account is not None and not settings.peer_to_peer and settings.register:
            self.registration = Registration(settings.account, settings.credentials, route=settings.route,
                                             display_name=settings.display_name)
            for name in REGISTRATION_EVENTS:
                self._observe(name, self.registration)
            try:
                self.registration.register()
            except SIPCoreError as exc:
                raise CLIError(f"cannot register: {exc}") from None
            out(f"registering {self.account_name}" +
                (f" via {settings.route}" if settings.route is not None else ""))
        out("type /help for the commands")
        self.inbox.read_stdin()

    def _observe(self, name: str, sender: Any = None) -> None:
        from sipsimple.notification import NotificationCenter

        NotificationCenter().add_observer(self.inbox, name=name, sender=sender)
        self._observed.append((name, sender))

    def loop(self) -> None:
        while not self.stop:
            if self.closing_at is not None:
                if not any(entry.pending for entry in self.entries):
                    return
                if time.monotonic() > self.closing_at:
                    out(f"gave up waiting for messages to be delivered after {DELIVERY_TIMEOUT:g} s")
                    return
            item = self.inbox.get(self._wait())
            if item is not None:
                kind, payload = item
                if kind == "notification":
                    self.handle(payload)
                elif kind == "line":
                    if self.command(payload) == "quit":
                        return
                elif kind == "eof":
                    self.closing_at = time.monotonic() + DELIVERY_TIMEOUT
            self._send_dtmf()
            self._apply_holds()
        out("interrupted")

    def _wait(self) -> float:
        """How long the loop may sleep: until the next DTMF digit is due, 0.2 s at most (for signals)."""
        due = [entry.next_dtmf_at for entry in self.entries if entry.dtmf]
        return max(0.0, min([0.2] + [at - time.monotonic() for at in due]))

    def close(self) -> None:
        """End every session and the registration, waiting (bounded) for each to be over."""
        from sipsimple.notification import NotificationCenter

        for entry in list(self.entries):
            try:
                if entry.session.state == "INCOMING":
                    entry.session.reject()
                else:
                    entry.session.end()
            except Exception as exc:  # it ended meanwhile
                self.say(entry, f"cannot end: {exc}")
        deadline = time.monotonic() + END_TIMEOUT
        while self.entries and time.monotonic() < deadline:
            item = self.inbox.get(0.1)
            if item is not None and item[0] == "notification":
                self.handle(item[1])
        if self.registration is not None and self.registration.is_registered:
            self.registration.end()
            deadline = time.monotonic() + UNREGISTER_TIMEOUT
            while not self.registration_ended and time.monotonic() < deadline:
                item = self.inbox.get(0.1)
                if item is not None and item[0] == "notification":
                    self.handle(item[1])
        for name, sender in self._observed:
            NotificationCenter().discard_observer(self.inbox, name=name, sender=sender)
        self._observed.clear()

    # ------------------------------------------------------------ sessions

    def _add(self, session, offered: list[str] | None = None) -> Entry:
        self.numbers += 1
        entry = Entry(self.numbers, session, offered=list(offered or []))
        self.entries.append(entry)
        return entry

    def _entry_of(self, session) -> Entry | None:
        return next((entry for entry in self.entries if entry.session is session), None)

    def call(self, target, audio: bool = True, chat: bool = False) -> None:
        from sipsimple.core import SIPCoreError
        from sipsimple.session import Session

        session = Session(self.account)
        routes = [self.settings.route] if self.settings.route is not None else []
        entry = self._add(session)
        self.say(entry, f"calling {target}" + (" (chat)" if chat and not audio else " (audio, chat)" if chat else ""))
        try:
            session.connect(target, routes, audio=audio, chat=chat)
        except (SIPCoreError, ValueError, TypeError) as exc:
            self.entries.remove(entry)
            self.error(f"cannot call {target}: {exc}")
            return
        self._make_current(entry)

    def handle(self, notification) -> None:
        name, sender, data = notification.name, notification.sender, notification.data
        if name.startswith("SCRegistration"):
            self._registration_event(name, data)
            return
        if name == "SCInvitationChangedState":
            entry = next((e for e in self.entries if getattr(e.session, "_invitation", None) is sender), None)
            if entry is None or entry.update is None or data.code == 491:  # 491: the Session tries again
                return
            if data.code < 300 and entry.update in ("hold", "unhold"):
                return  # over once the Session applied the answer: SCSessionDidChangeHoldState
            label, entry.update = entry.update, None
            if data.code >= 300:
                if label == "hold":  # it is not on hold after all: nothing for /switch to resume
                    entry.held_by_user = entry.auto_held = False
                self.say(entry, f"{label} refused: {data.code} {data.reason}".rstrip())
            elif UPDATE_DONE.get(label):
                self.say(entry, UPDATE_DONE[label])
            return
        if name == "SCSessionNewIncoming":
            self._incoming(sender, data.streams)
            return
        entry = self._entry_of(sender)
        if entry is None:
            return
        handler = getattr(self, "_on_" + name.removeprefix("SCSession"), None)
        if handler is not None:
            handler(entry, data)

    def _registration_event(self, name: str, data) -> None:
        account = self.account_name
        if name == "SCRegistrationDidSucceed":
            if not self.registered:
                out(f"registered {account}: {data.code} {data.reason}")
            self.registered = True
        elif name == "SCRegistrationDidFail":
            self.registered = False
            why = f"{data.code} {data.reason}" if data.code else f"no response ({data.reason})"
            out(f"registration of {account} failed: {why}")
        elif name == "SCRegistrationDidEnd":
            self.registered = False
            self.registration_ended = True
            out(f"unregistered {account}")

    def _incoming(self, session, streams: list[str]) -> None:
        entry = self._add(session, streams)
        session.account = self.account  # the SessionManager's stand-in knows nothing of our media options
        if self.current is None:
            self.current = entry
        user_agent = f" [{session.remote_user_agent}]" if session.remote_user_agent else ""
        self.say(entry, f"incoming session from {session.remote_uri}{user_agent}: {', '.join(streams)}")
        if not self._acceptable(streams):
            self.say(entry, "declined: only audio and chat sessions are taken here")
            session.reject()
        elif self.auto_answer:
            self._answer(entry)
        else:
            self.say(entry, "/answer or /reject")

    @staticmethod
    def _acceptable(streams: list[str]) -> list[str]:
        return [kind for kind in streams if kind in ("audio", "chat")]

    def _answer(self, entry: Entry) -> None:
        from sipsimple.core import SIPCoreError

        session = entry.session
        try:
            if session.state == "INCOMING":
                wanted = self._acceptable(entry.offered)
                self.say(entry, "answering")
                session.accept(audio="audio" in wanted, chat="chat" in wanted)
                self._make_current(entry)
            else:
                wanted = self._acceptable(entry.proposal)
                entry.proposal = []
                session.accept_proposal(audio="audio" in wanted, chat="chat" in wanted)
        except (SIPCoreError, ValueError) as exc:
            self.error(f"[{entry.number}] cannot answer: {exc}")

    # notification handlers, by name without the SCSession prefix

    def _on_GotRingIndication(self, entry: Entry, data) -> None:
        self.say(entry, "ringing")

    def _on_DidStart(self, entry: Entry, data) -> None:
        session = entry.session
        parts = []
        for stream in session.streams:
            if stream.type == "audio":
                srtp = session.audio_transport.srtp_suite if session.audio_srtp_active else "off"
                parts.append(f"audio {session.audio_codec}/{session.audio_sample_rate} srtp={srtp}")
            else:
                parts.append(stream.type)
        entry.streams = [stream.type for stream in session.streams]
        self.say(entry, f"established with {session.remote_uri}: {', '.join(parts)}")

    def _on_DidFail(self, entry: Entry, data) -> None:
        self.say(entry, f"failed: {data.code} {data.reason}" if data.code else f"failed: {data.reason}")

    def _on_DidEnd(self, entry: Entry, data) -> None:
        self.say(entry, "ended by the other party" if data.originator == "remote" else "ended")
        self.entries.remove(entry)
        if self.current is entry:
            # the keyboard moves on, but a call left on hold stays so until /switch or /unhold says otherwise
            self.current = self.entries[-1] if self.entries else None
            if self.current is not None:
                self._say_current(self.current, stays_held=True)

    def _on_DidChangeHoldState(self, entry: Entry, data) -> None:
        if data.originator == "local":
            if entry.update in ("hold", "unhold"):
                entry.update = None
            self.say(entry, "on hold" if data.on_hold else "off hold")
        else:
            self.say(entry, "put on hold by the other party" if data.on_hold else "taken off hold by the other party")

    def _on_DidStartRecordingAudio(self, entry: Entry, data) -> None:
        self.say(entry, f"recording to {data.file_name}")

    def _on_DidStopRecordingAudio(self, entry: Entry, data) -> None:
        self.say(entry, f"recording stopped: {data.file_name}")

    def _on_GotDTMF(self, entry: Entry, data) -> None:
        self.say(entry, f"dtmf received: {data.digit}")

    def _on_GotNoAudio(self, entry: Entry, data) -> None:
        self.say(entry, "no audio received")

    def _on_GotStreamProposal(self, entry: Entry, data) -> None:
        if data.proposer == "local":
            self.say(entry, f"proposing {', '.join(data.streams)}")
            return
        entry.proposal = list(data.streams)
        self.say(entry, f"the other party proposes {', '.join(data.streams)}")
        if not self._acceptable(entry.proposal):
            entry.session.reject_proposal()
        elif self.auto_answer:
            self._answer(entry)
        else:
            self.say(entry, "/answer or /reject")

    def _on_AcceptedStreamProposal(self, entry: Entry, data) -> None:
        self.say(entry, "proposal accepted" + (" by the other party" if data.proposer == "local" else ""))

    def _on_RejectedStreamProposal(self, entry: Entry, data) -> None:
        entry.proposal = []
        self.say(entry, f"proposal rejected: {data.reason}")

    def _on_GotStreamUpdate(self, entry: Entry, data) -> None:
        if list(data.streams) != entry.streams and entry.session.state != "TERMINATED":
            entry.streams = list(data.streams)
            self.say(entry, f"streams: {', '.join(data.streams) or 'none'}")

    def _on_GotMessage(self, entry: Entry, data) -> None:
        self.say(entry, format_message(entry.session, data))

    def _on_DidDeliverMessage(self, entry: Entry, data) -> None:
        entry.pending.discard(data.message_id)
        self.say(entry, "message delivered")

    def _on_DidNotDeliverMessage(self, entry: Entry, data) -> None:
        entry.pending.discard(data.message_id)
        self.say(entry, f"message not delivered: {data.code} {data.reason}".rstrip())

    def _on_GotComposingIndication(self, entry: Entry, data) -> None:
        if data.state == "active":
            self.say(entry, f"{entry.session.remote_uri} is typing")
