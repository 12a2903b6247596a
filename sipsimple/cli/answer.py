"""``sipsimple answer``: wait for audio calls and answer them.

    sipsimple answer [--auto-answer] [--play WAV] [--record WAV] [--count N] [--duration S]
                     [--srtp off|optional|mandatory] [--codec NAME]...

With ``--account``/``--password``/``--proxy`` it registers first, so calls reach
it through the proxy; without, calls are taken straight from peers. The
address to call is printed on stderr as ``listening on sip:USER@IP:PORT``.

For each incoming call it prints ``incoming call from URI`` and, with
``--auto-answer``, accepts it; otherwise it asks ``answer? [y/n]`` on stdout
and reads the reply from stdin (``n`` declines with 603). One call at a time:
a call that comes while another is up is declined. Once established,
``--play`` plays a WAV file into the call, ``--record`` records it (with more
than one call, the second recording is ``NAME-2.wav`` and so on); the call is
hung up after ``--duration`` seconds, or when the other party hangs up. State
changes and, at the end of each call, codec, SRTP suite, duration and RTP
statistics are printed as ``call`` does.

It exits 0 after ``--count`` calls (answered or declined), or on
Ctrl-C/SIGTERM (after unregistering); 1 when the registration failed or an
answered call did not get established; 2 for usage errors.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time

from sipsimple.cli.call import (
    SESSION_EVENTS,
    CallMonitor,
    CLIAccount,
    _stop_media,
    add_media_arguments,
    check_media_arguments,
    end_session,
)
from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    StopSignal,
    err,
    out,
    settings_from_args,
    start_engine,
    stop_engine,
)

NAME = "answer"
HELP = "wait for audio calls and answer them (auto-answer, play/record WAV files)"
DESCRIPTION = __doc__

REGISTER_TIMEOUT = 35.0
UNREGISTER_TIMEOUT = 5.0
REGISTRATION_EVENTS = ("SCRegistrationDidSucceed", "SCRegistrationDidFail", "SCRegistrationDidEnd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--auto-answer", action="store_true", help="accept every call without asking")
    add_media_arguments(parser)
    parser.add_argument("--count", type=int, metavar="N", help="exit after N calls")


def recording_path(base: str | None, number: int) -> str | None:
    """``base`` for the first call, ``base-N.ext`` for the N-th."""
    if base is None or number <= 1:
        return base
    root, ext = os.path.splitext(base)
    return f"{root}-{number}{ext or '.wav'}"


class _Answers:
    """Lines typed on stdin, read by a daemon thread so the main loop stays responsive."""

    def __init__(self) -> None:
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name="answer-stdin", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self.lines.put(line.strip().lower())
        self.lines.put(None)

    def get(self) -> str | None | bool:
        """The next reply, None at end of input, False when nothing was typed yet."""
        try:
            return self.lines.get_nowait()
        except queue.Empty:
            return False


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    codecs = check_media_arguments(args)
    if args.count is not None and args.count < 1:
        raise CLIError(f"invalid --count {args.count}: expected 1 or more")
    if settings.account is None and (settings.route is not None or settings.password is not None):
        raise CLIError("answering through a proxy needs --account USER@DOMAIN")
    must_register = settings.account is not None and not settings.peer_to_peer
    with StopSignal() as stop:
        engine = start_engine(settings, target=settings.account)
        try:
            from sipsimple.session import SessionManager

            SessionManager()
            account = CLIAccount(settings, args.srtp, codecs)
            events = EventQueue().observe(("SCSessionNewIncoming",) + SESSION_EVENTS)
            events.observe(("WavePlayerDidEnd",))
            registration = None
            user = settings.account.user if settings.account else None
            try:
                if must_register:
                    registration, contact = _register(settings, events, stop)
                    if registration is None:
                        return EXIT_FAILURE
                else:
                    contact = engine.contact_uri(user)
                err(f"listening on {contact}")
                status = _answer_loop(events, stop, args, account)
            finally:
                if registration is not None:
                    _unregister(registration, events)
                events.close()
            return status
        finally:
            _stop_media()
            stop_engine()


def _register(settings, events: EventQueue, stop: StopSignal):
    """Register; (registration, contact) on success, (None, None) after printing the failure."""
    from sipsimple.core import Engine, Registration, SIPCoreError

    registration = Registration(settings.account, settings.credentials, route=settings.route)
    events.observe(REGISTRATION_EVENTS, sender=registration)
    try:
        registration.register()
    except SIPCoreError as exc:
        raise CLIError(f"cannot register: {exc}") from None
    result = events.wait_for(lambda n: n.name in REGISTRATION_EVENTS, REGISTER_TIMEOUT, stop)
    if result is None or result.name != "SCRegistrationDidSucceed":
        why = ("interrupted" if stop else "no response") if result is None else \
            f"{result.data.code} {result.data.reason}"
        err(f"registration of {settings.account} failed: {why}")
        _unregister(registration, events)
        return None, None
    contact = result.data.contact_header.uri if result.data.contact_header is not None else \
        Engine().contact_uri(settings.account.user, registration.contact_transport)
    err(f"registered {settings.account}: {result.data.code} {result.data.reason}")
    return registration, contact


def _unregister(registration, events: EventQueue) -> None:
    if registration.is_registered:
        registration.end()
        events.wait_for(lambda n: n.name == "SCRegistrationDidEnd" and n.sender is registration,
                        UNREGISTER_TIMEOUT)


def _answer_loop(events: EventQueue, stop: StopSignal, args: argparse.Namespace, account: CLIAccount) -> int:
    answers = None if args.auto_answer else _Answers()
    handled = 0
    failed = False
    current = None  # the call being handled
    monitor: CallMonitor | None = None
    asking = False
    hangup_at: float | None = None
    while not stop:
        notification = events.get(0.05)
        if notification is not None:
            name, sender = notification.name, notification.sender
            if name == "SCSessionNewIncoming":
                if current is not None:
                    out(f"declined call from {sender.remote_uri}: busy with another call")
                    sender.reject()
                    continue
                current = sender
                # the SessionManager's stand-in account knows nothing of our media options
                current.account = account
                monitor = CallMonitor(current, play=args.play, record=recording_path(args.record, handled + 1))
                hangup_at = None
                out(f"incoming call from {current.remote_uri}" +
                    (f" ({current.remote_user_agent})" if current.remote_user_agent else ""))
                if answers is None:
                    _accept(current)
                else:
                    out("answer? [y/n]")
                    asking = True
            elif current is not None and (sender is current or
                                          (name == "WavePlayerDidEnd" and sender is monitor.player)):
                if monitor.handle(notification):
                    if monitor.established_at is not None and monitor.ended_by == "remote":
                        out("call ended by the other party")
                    monitor.print_summary()
                    if monitor.failure is not None and not monitor.declined:
                        failed = True
                    monitor.close()
                    current, monitor, asking = None, None, False
                    handled += 1
                    if args.count is not None and handled >= args.count:
                        break
                    continue
                if monitor.established_at is not None and hangup_at is None and args.duration is not None:
                    hangup_at = monitor.established_at + args.duration
        if current is None:
            continue
        if asking:
            reply = answers.get()
            if reply is not False:
                asking = False
                if reply in ("y", "yes"):
                    _accept(current)
                else:
                    out("declining")
                    monitor.declined = True
                    current.reject()
            continue
        if monitor.established_at is not None and current.state == "ESTABLISHED":
            monitor.read_stats()
            if hangup_at is not None and time.monotonic() >= hangup_at:
                out("hanging up")
                end_session(current, events, monitor)
                monitor.print_summary()
                monitor.close()
                current, monitor = None, None
                handled += 1
                if args.count is not None and handled >= args.count:
                    break
    if current is not None:  # interrupted during a call
        out("interrupted: hanging up")
        end_session(current, events, monitor)
        monitor.print_summary()
        monitor.close()
    return EXIT_FAILURE if failed else EXIT_OK


def _accept(session) -> None:
    from sipsimple.core import SIPCoreError

    out("answering")
    try:
        session.accept(audio=True)
    except (SIPCoreError, ValueError) as exc:
        out(f"cannot answer: {exc}")
