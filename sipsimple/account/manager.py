"""AccountManager: the accounts of the configuration, their registrations, the default account.

::

    ConfigurationManager().start()
    am = AccountManager()
    am.start()                  # loads the accounts; they register once the Engine runs
    Engine().start_cfg()
    session = Session(am.default_account)
    ...
    am.stop()                   # unregisters (waits a bounded time)

Notifications (sender: the AccountManager): ``SIPAccountManagerDidAddAccount``
(data ``account``; for every account loaded at start and every new account
saved), ``SIPAccountManagerDidRemoveAccount`` (``account``; deleted),
``SIPAccountManagerDidChangeDefaultAccount`` (``old_account``, ``account``).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sipsimple.account.account import Account, AccountBase
from sipsimple.account.bonjour import BONJOUR_ID, BonjourAccount
from sipsimple.configuration.base import Setting, SettingsObject
from sipsimple.configuration.datatypes import SIPAddress
from sipsimple.configuration.errors import ConfigurationError
from sipsimple.configuration.manager import ConfigurationManager
from sipsimple.core import SIPURI, Engine
from sipsimple.notification import IObserver, NotificationCenter, NotificationData, implementer

__all__ = ["AccountManager"]

log = logging.getLogger("sipsimple.account")

_ENGINE_EVENTS = ("SCEngineDidStart", "SCEngineWillEnd", "SCEngineDidEnd")
_CONFIG_EVENTS = ("CFGSettingsObjectWasCreated", "CFGSettingsObjectWasDeleted", "CFGSettingsObjectDidChange")


class AccountManagerSettings(SettingsObject):
    """What the AccountManager keeps: the chosen default account."""

    __section__ = "settings"
    __id__ = "AccountManager"

    default_account = Setting(type=SIPAddress, default=None, nillable=True)


@implementer(IObserver)
class AccountManager:
    """Singleton owning the Account objects while it runs."""

    _instance: AccountManager | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> AccountManager:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._lock = threading.RLock()
                instance._accounts = {}
                instance._bonjour = None
                instance._started = False
                instance._last_default = None
                cls._instance = instance
            return cls._instance

    _lock: threading.RLock
    _accounts: dict[str, Account]
    _bonjour: BonjourAccount | None
    _started: bool
    _last_default: AccountBase | None

    # ------------------------------------------------------------ lifecycle

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Load the accounts of the configuration (ConfigurationManager must be started)."""
        if not ConfigurationManager().started:
            raise ConfigurationError("start the ConfigurationManager before the AccountManager")
        with self._lock:
            if self._started:
                return
            bonjour = BonjourAccount()
            accounts = {account_id: Account(account_id) for account_id in ConfigurationManager().ids("accounts")}
            self._bonjour = bonjour
            self._accounts = accounts
            self._started = True
            center = NotificationCenter()
            for name in _CONFIG_EVENTS:
                center.add_observer(self, name=name)
            engine = Engine()
            for name in _ENGINE_EVENTS:
                center.add_observer(self, name=name, sender=engine)
            self._last_default = self._resolve_default()
        for account in [bonjour, *accounts.values()]:
            self._post("SIPAccountManagerDidAddAccount", account=account)
        running = engine.is_running
        for account in accounts.values():
            account._engine_running = running
            account._set_active(True)

    def stop(self, timeout: float = 5.0) -> None:
        """Unregister every account (and remove its presence) and wait for it, at most ``timeout`` seconds,
        then let go of them.

        Called on the Engine thread (from a notification handler) it does not wait,
        since the answers would arrive on that very thread.
        """
        with self._lock:
            if not self._started:
                return
            self._started = False
            accounts = list(self._accounts.values())
            center = NotificationCenter()
            for name in _CONFIG_EVENTS:
                center.discard_observer(self, name=name)
            for name in _ENGINE_EVENTS:
                center.discard_observer(self, name=name, sender=Engine())
        for account in accounts:
            account._set_active(False)
        if not _on_engine_thread():
            deadline = time.monotonic() + timeout
            for account in accounts:
                if not account._wait_unregistered(deadline):
                    log.warning("account %s did not unregister within %s s", account.id, timeout)
                if not account.presence_watcher.wait_ended(deadline):
                    log.warning("account %s did not remove its presence within %s s", account.id, timeout)
        with self._lock:
            self._accounts = {}
            self._bonjour = None
            self._last_default = None

    # ------------------------------------------------------------ accounts

    @property
    def accounts(self) -> list[AccountBase]:
        """Every account, the BonjourAccount first, then the others by id."""
        with self._lock:
            result: list[AccountBase] = [self._bonjour] if self._bonjour is not None else []
            return result + [self._accounts[key] for key in sorted(self._accounts)]

    def has_account(self, account_id: str) -> bool:
        with self._lock:
            return account_id in self._accounts or (account_id == BONJOUR_ID and self._bonjour is not None)

    def get_account(self, account_id: str) -> AccountBase:
        """The account with this id; KeyError when there is none."""
        with self._lock:
            if account_id == BONJOUR_ID and self._bonjour is not None:
                return self._bonjour
            try:
                return self._accounts[account_id]
            except KeyError:
                raise KeyError(f"no account {account_id!r}") from None

    def find_account(self, uri: SIPURI) -> AccountBase | None:
        """The enabled account a request for ``uri`` is meant for.

        First the account named ``user@host`` of the URI, then an enabled account
        whose user part is the URI's user (a request to our contact address),
        then the BonjourAccount if it is enabled.
        """
        with self._lock:
            account = self._accounts.get(f"{uri.user}@{uri.host.lower()}") if uri.user else None
            if account is not None and account.enabled:
                return account
            for account_id in sorted(self._accounts):
                account = self._accounts[account_id]
                if account.enabled and uri.user and account.user == uri.user:
                    return account
            if self._bonjour is not None and self._bonjour.enabled:
                return self._bonjour
            return None

    # ------------------------------------------------------ default account

    @property
    def default_account(self) -> AccountBase | None:
        """The account to use when none is chosen.

        The one set (and stored) here if it is still there and enabled, else the
        first enabled account by id, else the BonjourAccount (when it is enabled).
        """
        with self._lock:
            return self._resolve_default()

    @default_account.setter
    def default_account(self, account: AccountBase | None) -> None:
        with self._lock:
            if not self._started:
                raise ConfigurationError("the AccountManager is not started")
            if account is not None:
                if not isinstance(account, AccountBase) or self._known(account.id) is not account:
                    raise ValueError(f"{account!r} is not an account of the AccountManager")
                if not account.enabled:
                    raise ValueError(f"account {account.id!r} is disabled and cannot be the default")
            settings = AccountManagerSettings()
            settings.default_account = account.id if account is not None else None
            settings.save()
        self._check_default()

    def _known(self, account_id: str) -> AccountBase | None:
        if account_id == BONJOUR_ID:
            return self._bonjour
        return self._accounts.get(account_id)

    def _resolve_default(self) -> AccountBase | None:
        if not self._started:
            return None
        chosen = AccountManagerSettings().default_account
        if chosen is not None:
            account = self._known(chosen)
            if account is not None and account.enabled:
                return account
        for account_id in sorted(self._accounts):
            if self._accounts[account_id].enabled:
                return self._accounts[account_id]
        if self._bonjour is not None and self._bonjour.enabled:
            return self._bonjour
        return None

    def _check_default(self) -> None:
        with self._lock:
            old, new = self._last_default, self._resolve_default()
            if old is new:
                return
            self._last_default = new
        self._post("SIPAccountManagerDidChangeDefaultAccount", old_account=old, account=new)

    # --------------------------------------------------------- notifications

    def handle_notification(self, notification: Any) -> None:
        name, sender = notification.name, notification.sender
        if name == "SCEngineDidStart":
            for account in self._snapshot():
                account._set_engine_running(True)
        elif name == "SCEngineWillEnd":
            for account in self._snapshot():
                account._set_engine_running(False)
        elif name == "SCEngineDidEnd":
            for account in self._snapshot():
                account._engine_gone()
        elif name == "CFGSettingsObjectWasCreated" and isinstance(sender, Account):
            with self._lock:
                if not self._started or self._accounts.get(sender.id) is sender:
                    return
                self._accounts[sender.id] = sender
                account_running = Engine().is_running
            self._post("SIPAccountManagerDidAddAccount", account=sender)
            sender._engine_running = account_running
            sender._set_active(True)
            self._check_default()
        elif name == "CFGSettingsObjectWasDeleted" and isinstance(sender, Account):
            with self._lock:
                if self._accounts.get(sender.id) is not sender:
                    return
                del self._accounts[sender.id]
            sender._set_active(False)
            self._post("SIPAccountManagerDidRemoveAccount", account=sender)
            self._check_default()
        elif name == "CFGSettingsObjectDidChange" and isinstance(sender, AccountBase | AccountManagerSettings):
            if "enabled" in notification.data.modified or isinstance(sender, AccountManagerSettings):
                self._check_default()

    def _snapshot(self) -> list[Account]:
        with self._lock:
            return list(self._accounts.values())

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))


def _on_engine_thread() -> bool:
    core = Engine()._core
    return core is not None and core.is_engine_thread()
