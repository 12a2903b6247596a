"""Waiting for incoming requests, what ``answer``, ``chat --listen``, ``receive-files`` and
``message --listen`` share: their option checks, registering first so that requests reach us
through the proxy (``listening on sip:USER@IP:PORT`` on stderr once they can come), and
unregistering at the end.

Without ``--account``/``--password``/``--proxy`` nothing registers: requests are taken
straight from peers, at the Engine's own contact address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sipsimple.cli.options import CLIError, EventQueue, Settings, StopSignal, check_count, err

__all__ = ["check_listening", "start_listening", "stop_listening"]

REGISTER_TIMEOUT = 35.0  # Sofia gives up on a transaction after 32 s
UNREGISTER_TIMEOUT = 5.0
REGISTRATION_EVENTS = ("SCRegistrationDidSucceed", "SCRegistrationDidFail", "SCRegistrationDidEnd")


def check_listening(settings: Settings, count: int | None = None, doing: str = "listening") -> None:
    """The usage errors of a command that waits: a proxy or password with no account to register,
    a ``--count`` below 1. ``doing`` names what it does in the message ("answering through a proxy ...")."""
    if settings.account is None and (settings.route is not None or settings.password is not None):
        raise CLIError(f"{doing} through a proxy needs --account USER@DOMAIN")
    check_count(count)


def start_listening(settings: Settings, events: EventQueue, stop: StopSignal,
                    on_other: Callable[[Any], None] | None = None) -> tuple[Any, Any]:
    """Make requests reach us: register when the options say so, then print ``listening on CONTACT``.

    Returns (the Registration or None, the contact URI); the contact is None when the
    registration failed or was interrupted (the reason is printed). The registration's
    notifications stay observed on ``events``; what else arrives while waiting for its answer
    goes to ``on_other``. CLIError when REGISTER cannot even be sent.
    """
    from sipsimple.core import Engine, Registration, SIPCoreError

    user = settings.account.user if settings.account else None
    if settings.account is None or settings.peer_to_peer:
        contact = Engine().contact_uri(user)
        err(f"listening on {contact}")
        return None, contact
    # the display name goes in the REGISTER's From, as 'register' and 'session' send it
    registration = Registration(settings.account, settings.credentials, route=settings.route,
                                display_name=settings.display_name)
    events.observe(REGISTRATION_EVENTS, sender=registration)
    try:
        registration.register()
    except SIPCoreError as exc:
        raise CLIError(f"cannot register: {exc}") from None
    result = events.wait_for(lambda n: n.name in REGISTRATION_EVENTS, REGISTER_TIMEOUT, stop, on_other)
    if result is None or result.name != "SCRegistrationDidSucceed":
        why = ("interrupted" if stop else "no response") if result is None else \
            f"{result.data.code} {result.data.reason}"
        err(f"registration of {settings.account} failed: {why}")
        stop_listening(registration, events)
        return None, None
    contact = result.data.contact_header.uri if result.data.contact_header is not None else \
        Engine().contact_uri(user, registration.contact_transport)
    err(f"registered {settings.account}: {result.data.code} {result.data.reason}")
    err(f"listening on {contact}")
    return registration, contact


def stop_listening(registration, events: EventQueue) -> None:
    """End what :func:`start_listening` registered (nothing for None): unregister, or stop a
    REGISTER still under way or waiting to be retried, and wait a moment for it to end."""
    if registration is None or registration.state == "unregistered":
        return
    registration.end()
    events.wait_for(lambda n: n.name == "SCRegistrationDidEnd" and n.sender is registration, UNREGISTER_TIMEOUT)
