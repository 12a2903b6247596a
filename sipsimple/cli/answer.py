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
from sipsimple.cli.incoming import check_listening, start_listening, stop_listening
from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    EventQueue,
    StdinLines,
    StopSignal,
    engine_running,
    out,
    settings_from_args,
)

NAME = "answer"
HELP = "wait for audio calls and answer them (auto-answer, play/record WAV files)"
DESCRIPTION = __doc__


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


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    codecs = check_media_arguments(args)
    check_listening(settings, args.count, doing="answering")
    with engine_running(settings, target=settings.account) as stop:
        try:
            from sipsimple.session import SessionManager

            SessionManager()
            account = CLIAccount(settings, args.srtp, codecs)
            events = EventQueue().observe(("SCSessionNewIncoming",) + SESSION_EVENTS)
            events.observe(("WavePlayerDidEnd",))
            registration = None
            try:
                registration, contact = start_listening(settings, events, stop)
                if contact is None:
                    return EXIT_FAILURE
                return _answer_loop(events, stop, args, account)
            finally:
                stop_listening(registration, events)
                events.close()
        finally:
            _stop_media()


def _answer_loop(events: EventQueue, stop: StopSignal, args: argparse.Namespace, account: CLIAccount) -> int:
    answers = None if args.auto_answer else StdinLines("answer-stdin")
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
                if reply is not None and reply.strip().lower() in ("y", "yes"):
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
