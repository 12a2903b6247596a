"""Accounts: SIP accounts with registration, the local BonjourAccount, and the AccountManager.

``from sipsimple.account import AccountManager, Account, BonjourAccount``
"""

from sipsimple.account.account import REGISTRATION_STATES, Account, AccountBase
from sipsimple.account.bonjour import BONJOUR_ID, BonjourAccount
from sipsimple.account.manager import AccountManager, AccountManagerSettings

__all__ = [
    "Account", "AccountBase", "BonjourAccount", "AccountManager", "AccountManagerSettings",
    "BONJOUR_ID", "REGISTRATION_STATES",
]
