"""``sipsimple register``: register an account and keep it registered.

    sipsimple register --account alice@example.com --password PW [--proxy HOST:PORT;transport=tcp]
                       [--expires N] [--once]

Prints each result on stdout (``registration succeeded: 200 OK contact=... expires=600``),
then keeps the registration refreshed, printing every refresh, until Ctrl-C or
SIGTERM, when it unregisters and exits 0. With ``--once`` it unregisters as
soon as the registration succeeded. Exit 1 when the registration failed (the
code and reason are printed) or nothing came back in time (``no response``).
A configured account's display name goes in the From and Contact headers.
"""

from __future__ import annotations

import argparse

from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    StopSignal,
    describe_result,
    engine_running,
    err,
    out,
    settings_from_args,
)

NAME = "register"
HELP = "register an account at its registrar and keep it registered"
DESCRIPTION = __doc__

NO_RESPONSE_TIMEOUT = 35.0  # Sofia gives up on a transaction after 32 s
UNREGISTER_TIMEOUT = 5.0

EVENTS = ("SCRegistrationDidSucceed", "SCRegistrationDidFail", "SCRegistrationWillEnd", "SCRegistrationDidEnd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--expires", metavar="N", type=int, default=600,
                        help="registration lifetime to ask for, in seconds (default 600)")
    parser.add_argument("--once", action="store_true",
                        help="unregister and exit as soon as the registration succeeded")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=NO_RESPONSE_TIMEOUT,
                        help=f"give up when no answer came in this time (default {NO_RESPONSE_TIMEOUT:g})")


def describe_success(data) -> str:
    contact = data.contact_header.uri if data.contact_header is not None else None
    text = f"{data.code} {data.reason} contact={contact} expires={data.expires}"
    others = [c for c in (data.contact_header_list or []) if c is not data.contact_header]
    if others:
        text += f" (+{len(others)} other contact{'s' if len(others) > 1 else ''})"
    return text


def run(args: argparse.Namespace) -> int:
    from sipsimple.core import Registration, SIPCoreError

    settings = settings_from_args(args)
    if settings.account is None:
        raise CLIError("register needs --account USER@DOMAIN")
    if not 0 < args.expires <= 2**31 - 1:
        raise CLIError(f"invalid --expires {args.expires}: expected a positive number of seconds")
    with engine_running(settings, target=settings.account) as stop:
        registration = Registration(settings.account, settings.credentials, duration=args.expires,
                                    route=settings.route, display_name=settings.display_name)
        events = EventQueue().observe(EVENTS, sender=registration)
        err(f"registering {settings.account} at {settings.where(settings.account)}")
        try:
            registration.register()
        except SIPCoreError as exc:
            raise CLIError(f"cannot register: {exc}") from None
        return _run_registered(registration, events, stop, args)


def _run_registered(registration, events: EventQueue, stop: StopSignal, args: argparse.Namespace) -> int:
    first = events.wait_for(lambda n: n.name in ("SCRegistrationDidSucceed", "SCRegistrationDidFail"),
                            args.timeout, stop)
    if first is None:
        if stop:
            out("interrupted before the registrar answered")
        else:
            out(f"registration failed: no response within {args.timeout:g} s")
        _unregister(registration, events)
        return EXIT_FAILURE
    if first.name == "SCRegistrationDidFail":
        out(f"registration failed: {describe_result(first.data)}")
        _unregister(registration, events)
        return EXIT_FAILURE
    out(f"registration succeeded: {describe_success(first.data)}")
    if args.once:
        return EXIT_OK if _unregister(registration, events) else EXIT_FAILURE
    for notification in events.until_stopped(stop):
        data = notification.data
        if notification.name == "SCRegistrationDidSucceed":
            out(f"registration refreshed: {describe_success(data)}")
        elif notification.name == "SCRegistrationDidFail":
            retry = f" (retrying in {data.will_retry_in:g} s)" if data.will_retry_in else ""
            out(f"registration failed: {describe_result(data)}{retry}")
        elif notification.name == "SCRegistrationDidEnd":
            out(f"registration ended: {data.code} {data.reason}")
            return EXIT_FAILURE
    _unregister(registration, events)
    return EXIT_OK


def _unregister(registration, events: EventQueue) -> bool:
    """End the registration; prints the result. True when it ended in time."""
    was_registered = registration.is_registered
    registration.end()
    ended = events.wait_for(lambda n: n.name == "SCRegistrationDidEnd", UNREGISTER_TIMEOUT)
    if not was_registered:
        return ended is not None
    if ended is None:
        out(f"unregister: no response within {UNREGISTER_TIMEOUT:g} s")
        return False
    out(f"unregistered: {ended.data.code} {ended.data.reason}")
    return True
