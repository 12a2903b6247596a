"""``sipsimple chat``: an MSRP chat session (RFC 4975), interactive or one message.

    sipsimple chat TARGET                 lines typed are sent, messages received are printed
    sipsimple chat TARGET --send TEXT     send one message, exit 0 once it is delivered
    sipsimple chat --listen [--count N]   wait for chat sessions and print what arrives

TARGET is ``user@domain[:port]``, a sip:/sips: URI, or a bare user of the
account's domain; with ``--proxy`` the session goes through it. ``--msrp-relay
msrp://HOST:PORT;tcp`` makes the chat go through an MSRP relay (RFC 4976), which
is authenticated with ``--account``/``--password``; an ``msrps://`` relay is
reached over TLS, its certificate checked against ``--tls-ca-file`` (else the
system's CAs) unless ``--no-verify-tls``. Both options apply to this run only,
over what a configured account says (its ``msrp.relay`` and ``msrp.use_tls``).

``--msrp-tls`` offers MSRP over TLS (``msrps:``, ``TCP/TLS/MSRP``) directly to the
other party; with a relay, TLS is asked for with an ``msrps:`` relay URI instead.
The side that listens (the one answering, or any with ``--msrp-tls``) shows
``--tls-certificate FILE``, else the configured ``tls.certificate``, else a
self-signed certificate made for the run, which a peer checking certificates does
not trust: it needs ``--no-verify-tls`` then.
An answer takes MSRP over TLS whenever the offer does.

Received messages are printed on stdout as ``SENDER: TEXT`` (non-text content as
``SENDER: [TYPE, N bytes]``); what happens to the session and to the messages we
send (``delivered``/``not delivered: CODE REASON``) goes to stderr. Interactive
mode ends at the end of input, Ctrl-C or when the other party hangs up.

Listening with ``--account``/``--password``/``--proxy`` registers first;
``listening on sip:USER@IP:PORT`` is printed on stderr. Every incoming session
offering chat is accepted (one at a time; lines typed on stdin go to it). With
``--count N`` it exits after N messages.

Exit status: 0 success (``--send``: the message was delivered), 1 the session
or the message failed, 2 usage errors.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from sipsimple.cli.incoming import check_listening, start_listening, stop_listening
from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    StdinLines,
    StopSignal,
    engine_running,
    err,
    out,
    parse_target,
    settings_from_args,
)

NAME = "chat"
HELP = "chat over MSRP: interactive, one message (--send), or wait for chats (--listen)"
DESCRIPTION = __doc__

CONNECT_TIMEOUT = 40.0
SEND_TIMEOUT = 30.0
END_TIMEOUT = 10.0
LINGER = 5.0  # after --count, how long the other party gets to hang up first

CHAT_EVENTS = ("SCSessionNewIncoming", "SCSessionDidStart", "SCSessionDidFail", "SCSessionDidEnd",
               "SCSessionGotMessage", "SCSessionDidDeliverMessage", "SCSessionDidNotDeliverMessage",
               "SCSessionGotComposingIndication")


# ------------------------------------------------------------- shared helpers


class MSRPAccount:
    """The least a Session with MSRP streams needs from an account, made from the options."""

    def __init__(self, settings, msrp_relay: str | None = None, msrp_use_tls: bool | None = None) -> None:
        self.uri = settings.from_uri()
        self.credentials = settings.credentials
        self.display_name = settings.display_name  # from a configured account, if any
        self.srtp_mode = "optional"
        self.audio_codecs = None
        self.outbound_proxy = settings.route
        self.msrp_relay = msrp_relay or settings.msrp_relay
        self.msrp_use_tls = settings.msrp_use_tls if msrp_use_tls is None else msrp_use_tls


def add_msrp_arguments(parser: argparse.ArgumentParser, *, tls: bool = False) -> None:
    """``--msrp-relay URI``, and with ``tls`` ``--msrp-tls`` (see :func:`msrp_options`)."""
    parser.add_argument("--msrp-relay", metavar="URI",
                        help="MSRP relay to use, e.g. msrp://relay.example.com:2855;tcp (AUTH with the account; "
                             "msrps:// for TLS to it)")
    if tls:
        parser.add_argument("--msrp-tls", action="store_true",
                            help="MSRP over TLS (msrps:) for this run; with a relay, give an msrps:// relay URI")


def msrp_options(args: argparse.Namespace, settings) -> tuple[str | None, bool]:
    """(relay URI or None, MSRP over TLS) for this run: the options over the configured account.

    With a relay, its URI decides how it is reached (as in the SDK): CLIError for
    ``--msrp-tls`` with a relay reached over TCP, and for a bad relay URI.
    """
    relay = check_msrp_relay(getattr(args, "msrp_relay", None)) or settings.msrp_relay
    asked = bool(getattr(args, "msrp_tls", False))
    if asked and relay is not None:
        from sipsimple.msrp.uri import MSRPURI

        uri = MSRPURI.parse(relay)
        if not uri.use_tls:
            raise CLIError(f"--msrp-tls with the MSRP relay {relay}, reached over TCP: for TLS to the relay "
                           f"give --msrp-relay msrps://{uri.host}:TLS-PORT;tcp")
    return relay, asked or settings.msrp_use_tls


def over_tls(stream) -> str:
    """`` over TLS`` when the MSRP ``stream``'s m-line says TCP/TLS/MSRP (to the peer or to our relay), else ''."""
    media = getattr(stream, "local_media", None)
    return " over TLS" if media is not None and str(media.transport).upper() == "TCP/TLS/MSRP" else ""


def check_msrp_relay(value: str | None) -> str | None:
    if value is None:
        return None
    from sipsimple.msrp.uri import MSRPURI

    try:
        MSRPURI.parse(value)
    except ValueError as exc:
        raise CLIError(f"invalid --msrp-relay {value!r}: {exc}") from None
    return value


def end_session(session, events: EventQueue, timeout: float = END_TIMEOUT) -> None:
    """Hang up ``session`` (if still up) and wait for its SCSessionDidEnd."""
    if session is None or session.state in ("NULL", "TERMINATED"):
        return
    session.end()
    events.wait_for(lambda n: n.name == "SCSessionDidEnd" and n.sender is session, timeout)


# ------------------------------------------------------------------- chat


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", metavar="TARGET", help="user@domain or sip: URI to chat with")
    parser.add_argument("--send", metavar="TEXT", help="send this one message and exit when it is delivered")
    parser.add_argument("--listen", action="store_true", help="wait for incoming chat sessions")
    parser.add_argument("--count", type=int, metavar="N", help="with --listen: exit after N messages")
    parser.add_argument("--timeout", type=float, default=SEND_TIMEOUT, metavar="SECONDS",
                        help=f"with --send: give up after this long (default {SEND_TIMEOUT:g})")
    add_msrp_arguments(parser, tls=True)


def format_message(session, data) -> str:
    sender = data.cpim_headers.get("From") if data.cpim_headers else None
    who = sender.uri if sender is not None else str(session.remote_uri)
    content = data.content
    if isinstance(content, str):
        return f"{who}: {content.rstrip(chr(10)).rstrip(chr(13))}"
    return f"{who}: [{data.content_type}, {len(content)} bytes]"


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    relay, use_tls = msrp_options(args, settings)
    if args.listen:
        if args.target is not None or args.send is not None:
            raise CLIError("--listen takes no TARGET or --send")
        check_listening(settings, args.count)
    else:
        if args.target is None:
            raise CLIError("chat needs TARGET (or --listen)")
        if args.count is not None:
            raise CLIError("--count only goes with --listen")
        if args.timeout <= 0:
            raise CLIError(f"invalid --timeout {args.timeout:g}")
    target = parse_target(args.target, settings.account.host if settings.account else None) \
        if args.target else None
    # without a relay we listen for MSRP: over TLS when we offer it, or when an offer we answer asks for it
    listens_on_tls = relay is None and (use_tls or args.listen)
    with engine_running(settings, target=target or settings.account, run_certificate=listens_on_tls) as stop:
        from sipsimple.session import Session, SessionManager

        SessionManager()
        account = MSRPAccount(settings, relay, use_tls)
        events = EventQueue().observe(CHAT_EVENTS)
        registration = None
        try:
            if args.listen:
                registration, contact = start_listening(settings, events, stop)
                if contact is None:
                    return EXIT_FAILURE
                return Chat(events, stop, account, count=args.count).run(None)
            session = Session(account)
            routes = [settings.route] if settings.route is not None else []
            session.connect(target, routes, chat=True)
            err(f"calling {target}")
            chat = Chat(events, stop, account, send=args.send, timeout=args.timeout)
            return chat.run(session)
        finally:
            stop_listening(registration, events)
            events.close()


class Chat:
    """The main loop: one chat session at a time, stdin lines out, messages in."""

    def __init__(self, events: EventQueue, stop: StopSignal, account: Any, *, send: str | None = None,
                 timeout: float = SEND_TIMEOUT, count: int | None = None) -> None:
        self.events, self.stop, self.account = events, stop, account
        self.send, self.timeout, self.count = send, timeout, count  # send "": the input ended
        self.received = 0
        self.session = None
        self.pending: set[str] = set()
        self.failed = False

    def run(self, session) -> int:
        self.session = session
        listening = session is None
        lines = StdinLines("chat-stdin") if self.send is None else None
        deadline = time.monotonic() + self.timeout if self.send is not None else None
        if self.send is not None:
            self.pending.add(session.send_message(self.send))  # queued until the chat is up
        linger_until: float | None = None
        while not self.stop:
            if deadline is not None and time.monotonic() > deadline:
                err("gave up: no delivery report in time")
                end_session(self.session, self.events)
                return EXIT_FAILURE
            if linger_until is not None and time.monotonic() > linger_until:
                end_session(self.session, self.events)
                return EXIT_OK
            notification = self.events.get(0.05)
            if notification is not None:
                result = self.handle(notification, listening)
                if result is not None:
                    if result == "linger":
                        linger_until = time.monotonic() + LINGER
                        continue
                    return result
            if lines is not None and self.session is not None and self.session.state not in ("TERMINATED",):
                line = lines.get()
                if line is None:
                    lines = None
                    if not listening:
                        # end of input: hang up once what was typed is delivered (or not)
                        deadline = time.monotonic() + self.timeout
                        self.send = "" if self.pending else None
                        if not self.pending:
                            end_session(self.session, self.events)
                            return EXIT_FAILURE if self.failed else EXIT_OK
                elif line is not False and line:
                    try:
                        self.pending.add(self.session.send_message(line))
                    except Exception as exc:
                        err(f"cannot send: {exc}")
        err("interrupted")
        end_session(self.session, self.events)
        return EXIT_FAILURE if self.failed else EXIT_OK

    def handle(self, notification, listening: bool) -> int | str | None:
        name, session, data = notification.name, notification.sender, notification.data
        if name == "SCSessionNewIncoming":
            if not listening or "chat" not in data.streams or self.session is not None:
                err(f"declined session from {session.remote_uri} ({', '.join(data.streams)})")
                session.reject()
                return None
            self.session = session
            session.account = self.account  # the SessionManager's stand-in knows nothing of our relay
            err(f"chat from {session.remote_uri}")
            try:
                session.accept(chat=True)
            except Exception as exc:
                err(f"cannot accept: {exc}")
                self.session = None
            return None
        if session is not self.session:
            return None
        if name == "SCSessionDidStart":
            err(f"chat with {session.remote_uri} established{over_tls(session.chat_transport)}")
        elif name == "SCSessionGotMessage":
            out(format_message(session, data))
            self.received += 1
            if self.count is not None and self.received >= self.count:
                return "linger"
        elif name == "SCSessionGotComposingIndication":
            err(f"{session.remote_uri} is {'typing' if data.state == 'active' else 'idle'}")
        elif name == "SCSessionDidDeliverMessage":
            self.pending.discard(data.message_id)
            err(f"delivered: {data.code} {data.reason}")
            if self.send is not None and not self.pending:
                end_session(session, self.events)
                return EXIT_FAILURE if self.failed else EXIT_OK
        elif name == "SCSessionDidNotDeliverMessage":
            self.pending.discard(data.message_id)
            self.failed = True
            err(f"not delivered: {data.code} {data.reason}".rstrip())
            if self.send is not None and not self.pending:
                end_session(session, self.events)
                return EXIT_FAILURE
        elif name == "SCSessionDidFail":
            err(f"chat with {session.remote_uri} failed: {data.code} {data.reason}".rstrip())
            self.failed = True
        elif name == "SCSessionDidEnd":
            err(f"chat with {session.remote_uri} ended by the {'other party' if data.originator == 'remote' else 'local party'}")
            self.session = None
            if not listening:
                return EXIT_FAILURE if self.failed or self.send is not None else EXIT_OK
            if self.count is not None and self.received >= self.count:
                return EXIT_FAILURE if self.failed else EXIT_OK
        return None
