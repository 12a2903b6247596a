"""SessionManager: the seed's singleton; instantiate it to receive calls."""

from __future__ import annotations

import threading
from typing import Any

from sipsimple.notification import NotificationCenter
from sipsimple.session.session import Session

__all__ = ["SessionManager"]


class SessionManager:
    """Creates a Session for every incoming INVITE and keeps track of the active sessions.

    ``sessions`` is a copy of the list of sessions not in NULL or TERMINATED. The
    account of an incoming session is the configured account whose address the
    INVITE was sent to, else the default account (a local account when none is set).
    """

    _instance: SessionManager | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> SessionManager:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._sessions = []
                instance._lock = threading.Lock()
                NotificationCenter().add_observer(instance, name="SCInvitationChangedState")
                NotificationCenter().add_observer(instance, name="SCSessionNewOutgoing")
                NotificationCenter().add_observer(instance, name="SCSessionDidEnd")
                cls._instance = instance
            return cls._instance

    @property
    def sessions(self) -> list[Session]:
        with self._lock:
            return [s for s in self._sessions if s.state not in ("NULL", "TERMINATED")]

    def handle_notification(self, notification) -> None:
        name = notification.name
        if name == "SCInvitationChangedState":
            if notification.data.state == "incoming" and notification.data.prev_state == "null":
                invitation = notification.sender
                session = Session._incoming(self._account_for(invitation), invitation)
                with self._lock:
                    self._sessions.append(session)
        elif name == "SCSessionNewOutgoing":
            with self._lock:
                if notification.sender not in self._sessions:
                    self._sessions.append(notification.sender)
        elif name == "SCSessionDidEnd":
            with self._lock:
                if notification.sender in self._sessions:
                    self._sessions.remove(notification.sender)

    @staticmethod
    def _account_for(invitation) -> Any:
        try:
            from sipsimple.account import AccountManager
        except ImportError:
            return _LocalAccount(invitation.to_header.uri if invitation.to_header else None)
        manager = AccountManager()
        uri = invitation.to_header.uri if invitation.to_header else None
        if uri is not None:
            for account in getattr(manager, "accounts", []):
                account_uri = getattr(account, "uri", None)
                if account_uri is not None and account_uri.user == uri.user and account_uri.host == uri.host:
                    return account
        return getattr(manager, "default_account", None) or _LocalAccount(uri)


class _LocalAccount:
    """Stands in when no account layer is configured: the address the call was sent to."""

    def __init__(self, uri) -> None:
        self.uri = uri
        self.credentials = None
        self.display_name = None
