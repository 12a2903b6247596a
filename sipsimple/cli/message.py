"""``sipsimple message``: send one instant message (SIP MESSAGE, RFC 3428), or listen for them.

    sipsimple message TARGET TEXT            send TEXT ('-' reads it from stdin) to TARGET
    sipsimple message --listen [--count N]   print 'FROM: TEXT' for each message received

TARGET is ``user@domain[:port]``, a sip:/sips: URI, or a bare user of the
account's domain. With ``--proxy`` the message goes through it (with the
account's credentials when ``--password`` is given); without, it goes straight
to the target. The From header carries the account's display name when a
configured account has one (``sipsimple account add ... --display-name``).
Sending exits 0 on a 2xx answer and 1 otherwise, printing the code and reason.

Listening with ``--account``/``--password``/``--proxy`` registers first so
messages reach us through the proxy; without them messages are taken straight
from peers. The address to send to is printed on stderr as
``listening on sip:USER@IP:PORT``; each message is printed on stdout as one
line, ``sip:alice@example.com: TEXT``, or ``Alice <sip:alice@example.com>: TEXT``
when the sender gave a display name. It exits 0 after ``--count`` messages, or on Ctrl-C/SIGTERM (after
unregistering).
"""

from __future__ import annotations

import argparse
import sys

from sipsimple.cli.incoming import check_listening, start_listening, stop_listening
from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    describe_result,
    engine_running,
    err,
    out,
    parse_target,
    settings_from_args,
)

NAME = "message"
HELP = "send an instant message, or listen for incoming ones"
DESCRIPTION = __doc__

SEND_TIMEOUT = 32.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="TARGET", help="user@domain or sip: URI to send to")
    parser.add_argument("text", nargs="?", metavar="TEXT", help="the message ('-' reads it from stdin)")
    parser.add_argument("--content-type", default="text/plain", metavar="TYPE",
                        help="content type of the message (default text/plain)")
    parser.add_argument("--timeout", type=float, default=SEND_TIMEOUT, metavar="SECONDS",
                        help=f"give up sending after this long (default {SEND_TIMEOUT:g})")
    parser.add_argument("--listen", action="store_true", help="receive messages instead of sending one")
    parser.add_argument("--count", type=int, metavar="N", help="with --listen: exit after N messages")


def run(args: argparse.Namespace) -> int:
    if args.listen:
        if args.target is not None:
            raise CLIError("--listen takes no TARGET or TEXT")
        return listen(args)
    if args.count is not None:
        raise CLIError("--count only goes with --listen")
    if args.target is None or args.text is None:
        raise CLIError("message needs TARGET and TEXT (or --listen)")
    return send(args)


# -------------------------------------------------------------------- send


def send(args: argparse.Namespace) -> int:
    from sipsimple.core import FromHeader, Message, SIPCoreError, ToHeader

    settings = settings_from_args(args)
    target = parse_target(args.target, settings.account.host if settings.account else None)
    text = sys.stdin.read().rstrip("\r\n") if args.text == "-" else args.text
    if args.timeout <= 0:
        raise CLIError(f"invalid --timeout {args.timeout:g}")
    with engine_running(settings, target=target) as stop:
        try:
            message = Message(FromHeader(settings.from_uri(), settings.display_name), ToHeader(target), text,
                              content_type=args.content_type, credentials=settings.credentials,
                              route=settings.route)
        except ValueError as exc:
            raise CLIError(str(exc)) from None
        events = EventQueue().observe(("SCMessageDidSucceed", "SCMessageDidFail"), sender=message)
        try:
            message.send(timeout=args.timeout)
        except SIPCoreError as exc:
            raise CLIError(f"cannot send: {exc}") from None
        result = events.wait_for(lambda n: True, args.timeout + 5.0, stop)
        if result is None:
            out("interrupted" if stop else f"message to {target} failed: no response")
            return EXIT_FAILURE
        if result.name == "SCMessageDidSucceed":
            out(f"message to {target} delivered: {result.data.code} {result.data.reason}")
            return EXIT_OK
        out(f"message to {target} failed: {describe_result(result.data)}")
        return EXIT_FAILURE


# ------------------------------------------------------------------ listen


def format_message(data) -> str:
    """One line for a received message: ``sip:alice@example.com: hello``, or with the sender's display
    name ``Alice <sip:alice@example.com>: hello``."""
    header = data.from_header
    if header is None:
        sender = "(unknown)"
    else:
        sender = f"{header.display_name} <{header.uri}>" if header.display_name else str(header.uri)
    content_type = (data.content_type or "text/plain").split(";")[0].strip().lower()
    body = data.body or b""
    if content_type.startswith("text/"):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        text = text.rstrip("\r\n")
    else:
        text = f"[{content_type}, {len(body)} bytes]"
    return f"{sender}: {text}"


def listen(args: argparse.Namespace) -> int:
    from sipsimple.core import Engine

    settings = settings_from_args(args)
    check_listening(settings, args.count)
    received = 0

    def show(notification) -> None:
        """Print it if it is a message, counting it."""
        nonlocal received
        if notification.name == "SCEngineGotMessage":
            out(format_message(notification.data))
            received += 1

    def done() -> bool:
        return args.count is not None and received >= args.count

    with engine_running(settings, target=settings.account) as stop:
        events = EventQueue().observe(("SCEngineGotMessage",), sender=Engine())
        # messages may come before the registrar's answer did (straight from peers, or once it stored us)
        registration, contact = start_listening(settings, events, stop, on_other=show)
        if contact is None:
            return EXIT_OK if done() else EXIT_FAILURE
        if not done():  # --count may be reached while registering
            for notification in events.until_stopped(stop):
                show(notification)
                if done():
                    break
                if notification.name == "SCRegistrationDidFail":
                    err(f"registration refresh failed: {notification.data.code} {notification.data.reason}")
        stop_listening(registration, events)
        return EXIT_OK
