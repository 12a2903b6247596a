"""``sipsimple presence``: publish our presence, or watch someone's.

    sipsimple presence publish --status open|closed [--note TEXT] [--activity A] [--expires N] [--once]
    sipsimple presence watch TARGET [--count N] [--expires N]

Both take the common account options (``--account``, ``--password``, ``--proxy``...).

``publish`` sends PUBLISH (RFC 3903) with a PIDF document for the account and
prints the result (``published: 200 OK expires=600``). With ``--once`` it then
removes the publication (``unpublished: 200 OK``) and exits 0; without, it
keeps the publication fresh, printing each refresh and failure (a failure is
retried with back-off), until Ctrl-C or SIGTERM, when it removes it and exits 0.
Exit 1 when the first PUBLISH failed (``publish failed: 401 Unauthorized``) or
got no answer.

``watch`` subscribes to TARGET's presence (``user@domain``, a sip: URI, or a
bare user of the account's domain); once the subscription is accepted it says
``watching sip:...`` on stderr, then prints each change of state on stdout as
``sip:bob@example.com: open "note" (activity)``. It subscribes again (with
back-off) when the subscription ends, and exits 0 after ``--count`` changes
or on Ctrl-C/SIGTERM (after unsubscribing); 1 when the first SUBSCRIBE failed.
"""

from __future__ import annotations

import argparse

from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    add_common_options,
    check_count,
    describe_result,
    engine_running,
    err,
    format_uri,
    out,
    parse_target,
    settings_from_args,
)

NAME = "presence"
HELP = "publish our presence (PUBLISH) or watch someone's (SUBSCRIBE)"
DESCRIPTION = __doc__
COMMON_OPTIONS = False  # added to each action: they follow the action on the command line

NO_RESPONSE_TIMEOUT = 35.0  # Sofia gives up on a transaction after 32 s
END_TIMEOUT = 5.0
RETRY_INTERVAL = 5.0
MAX_RETRY_INTERVAL = 300.0

PUBLISH_EVENTS = ("SIPAccountPresenceDidPublish", "SIPAccountPresenceDidFail", "SIPAccountPresenceDidUnpublish")
WATCH_EVENTS = ("SIPAccountPresenceSubscriptionDidSucceed", "SIPAccountPresenceSubscriptionDidFail",
                "SIPAccountPresenceSubscriptionDidEnd")
NOTIFY = "PresenceCLIGotNotify"  # what the watch callback queues


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    publish = actions.add_parser("publish", help="publish our presence state",
                                 description="Publish the account's presence (PUBLISH with a PIDF document).")
    publish.add_argument("--status", required=True, choices=("open", "closed"), help="basic status")
    publish.add_argument("--note", metavar="TEXT", help="a note, e.g. 'at lunch'")
    publish.add_argument("--activity", metavar="A", help="an RPID activity, e.g. busy, meal, away")
    publish.add_argument("--expires", metavar="N", type=int, default=600,
                         help="publication lifetime to ask for, in seconds (default 600)")
    publish.add_argument("--once", action="store_true", help="remove the publication and exit once it succeeded")
    publish.add_argument("--timeout", metavar="SECONDS", type=float, default=NO_RESPONSE_TIMEOUT,
                         help=f"give up when no answer came in this time (default {NO_RESPONSE_TIMEOUT:g})")
    add_common_options(publish)
    watch = actions.add_parser("watch", help="print the presence of TARGET as it changes",
                               description="Subscribe to TARGET's presence and print each change.")
    watch.add_argument("target", metavar="TARGET", help="user@domain, a sip: URI, or a user of our domain")
    watch.add_argument("--count", metavar="N", type=int, help="exit after N changes of state")
    watch.add_argument("--expires", metavar="N", type=int, default=600,
                       help="subscription lifetime to ask for, in seconds (default 600)")
    watch.add_argument("--timeout", metavar="SECONDS", type=float, default=NO_RESPONSE_TIMEOUT,
                       help=f"give up when the first SUBSCRIBE got no answer in this time "
                            f"(default {NO_RESPONSE_TIMEOUT:g})")
    add_common_options(watch)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.expires <= 2**31 - 1:
        raise CLIError(f"invalid --expires {args.expires}: expected a positive number of seconds")
    if args.timeout <= 0:
        raise CLIError(f"invalid --timeout {args.timeout:g}")
    if args.action == "publish":
        return publish(args)
    check_count(args.count)
    return watch(args)


def format_state(target: str, state) -> str:
    """``sip:bob@example.com: open "at lunch" (meal)``."""
    text = f"{target}: {state.status}"
    if state.note:
        text += ' "' + state.note.replace("\n", " ") + '"'
    if state.activity:
        text += f" ({state.activity})"
    return text


# ------------------------------------------------------------------- publish


def publish(args: argparse.Namespace) -> int:
    from sipsimple.account.presence import PresencePublisher
    from sipsimple.payloads import PayloadError, PresenceState

    settings = settings_from_args(args)
    if settings.account is None:
        raise CLIError("presence publish needs --account USER@DOMAIN")
    try:
        state = PresenceState(args.status, note=args.note or None, activity=args.activity or None)
    except PayloadError as exc:
        raise CLIError(str(exc)) from None
    with engine_running(settings, target=settings.account) as stop:
        publisher = PresencePublisher(
            settings.account, settings.credentials, settings.route, duration=args.expires,
            retry_interval=None if args.once else RETRY_INTERVAL, max_retry_interval=MAX_RETRY_INTERVAL)
        events = EventQueue().observe(PUBLISH_EVENTS, sender=publisher)
        err(f"publishing presence of {settings.account} at {settings.where(settings.account)}")
        publisher.publish(state)
        first = events.wait_for(lambda n: n.name != "SIPAccountPresenceDidUnpublish", args.timeout, stop)
        if first is None or first.name == "SIPAccountPresenceDidFail":
            if first is not None:
                out(f"publish failed: {describe_result(first.data)}")
            else:
                out("interrupted before the server answered" if stop else
                    f"publish failed: no response within {args.timeout:g} s")
            _unpublish(publisher, events, quiet=True)
            return EXIT_FAILURE
        out(f"published: {first.data.code} {first.data.reason} expires={first.data.expires}")
        if args.once:
            return EXIT_OK if _unpublish(publisher, events) else EXIT_FAILURE
        for notification in events.until_stopped(stop):
            data = notification.data
            if notification.name == "SIPAccountPresenceDidPublish":
                out(f"publish refreshed: {data.code} {data.reason} expires={data.expires}")
            elif notification.name == "SIPAccountPresenceDidFail":
                retry = f" (retrying in {data.will_retry_in:g} s)" if data.will_retry_in is not None else ""
                out(f"publish failed: {describe_result(data)}{retry}")
        return EXIT_OK if _unpublish(publisher, events) else EXIT_FAILURE


def _unpublish(publisher, events: EventQueue, quiet: bool = False) -> bool:
    """Remove the publication; prints the result unless ``quiet``. True when it was removed in time."""
    was_published = publisher.published
    publisher.stop()
    if not was_published:
        return True
    ended = events.wait_for(lambda n: n.name == "SIPAccountPresenceDidUnpublish", END_TIMEOUT)
    if ended is None:
        if not quiet:
            out(f"unpublish: no response within {END_TIMEOUT:g} s")
        return False
    if not quiet:
        out(f"unpublished: {describe_result(ended.data)}")
    return 200 <= ended.data.code < 300 or ended.data.code == 0


# --------------------------------------------------------------------- watch


def watch(args: argparse.Namespace) -> int:
    from sipsimple.account.presence import PresenceSubscriber, state_from_notify
    from sipsimple.notification import Notification

    settings = settings_from_args(args)
    target = parse_target(args.target, settings.account.host if settings.account else None)
    name = format_uri(target)
    with engine_running(settings, target=target) as stop:
        events = EventQueue()

        def got_notify(subscriber, data) -> None:  # on the Engine thread
            events(Notification(NOTIFY, sender=subscriber, data=state_from_notify(data.content_type, data.body)))

        subscriber = PresenceSubscriber(
            settings.from_uri(), target, settings.credentials, settings.route, duration=args.expires,
            retry_interval=RETRY_INTERVAL, max_retry_interval=MAX_RETRY_INTERVAL, on_notify=got_notify)
        events.observe(WATCH_EVENTS, sender=subscriber)
        err(f"subscribing to the presence of {name} at {settings.where(target)}")
        subscriber.start()
        pending: list = []
        first = events.wait_for(lambda n: n.name in WATCH_EVENTS, args.timeout, stop, pending.append)
        if first is None or first.name != "SIPAccountPresenceSubscriptionDidSucceed":
            if first is not None:
                out(f"subscription to {name} failed: {describe_result(first.data)}")
            else:
                out("interrupted before the server answered" if stop else
                    f"subscription to {name} failed: no response within {args.timeout:g} s")
            _unsubscribe(subscriber, events)
            return EXIT_FAILURE
        err(f"watching {name}")
        last = None
        changes = 0
        while not stop:
            notification = pending.pop(0) if pending else events.get(None, stop)
            if notification is None:
                break
            data = notification.data
            if notification.name == NOTIFY:
                if data is None or data == last:
                    continue
                last = data
                out(format_state(name, data))
                changes += 1
                if args.count is not None and changes >= args.count:
                    break
            elif notification.name == "SIPAccountPresenceSubscriptionDidFail":
                retry = f" (subscribing again in {data.will_retry_in:g} s)" \
                    if data.will_retry_in is not None else ""
                err(f"subscription to {name} ended: {describe_result(data)}{retry}")
            elif notification.name == "SIPAccountPresenceSubscriptionDidSucceed":
                err(f"watching {name} again")
        _unsubscribe(subscriber, events)
        return EXIT_OK


def _unsubscribe(subscriber, events: EventQueue) -> None:
    if subscriber.stop():
        events.wait_for(lambda n: n.name == "SIPAccountPresenceSubscriptionDidEnd", END_TIMEOUT)
