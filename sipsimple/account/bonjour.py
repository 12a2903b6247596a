"""BonjourAccount: the local account, for direct calls to SIP URIs without any server.

It has the id ``bonjour@local``, never registers, and its ``uri`` is the
Engine's own address (``sip:user@local_ip:port``). It is what
``AccountManager().default_account`` gives when no other account is
configured. (Discovery of peers on the local network is not done here.)
"""

from __future__ import annotations

import getpass
import re

from sipsimple.account.account import AccountBase
from sipsimple.configuration.base import Setting
from sipsimple.configuration.datatypes import NonEmptyString
from sipsimple.core import SIPURI, Engine
from sipsimple.core.engine import default_local_ip

__all__ = ["BonjourAccount", "BONJOUR_ID"]

BONJOUR_ID = "bonjour@local"


def _login_name() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no login name in some containers
        name = ""
    name = re.sub(r"[^A-Za-z0-9\-_.!~*'()]", "", name)
    return name or "sipsimple"


class BonjourAccount(AccountBase):
    """The local, serverless account (a singleton; stored in section 'bonjour')."""

    __section__ = "bonjour"
    __id__ = BONJOUR_ID

    enabled = Setting(type=bool, default=True)
    username = Setting(type=NonEmptyString, default=None, nillable=True)  # None: the login name

    @property
    def user(self) -> str:
        return self.username or _login_name()

    @property
    def uri(self) -> SIPURI:
        """Our address at the Engine (its first transport), or at the host's address when it is not running."""
        engine = Engine()
        if engine.is_running and engine.transports:
            return engine.contact_uri(self.user, engine.transports[0])
        return SIPURI(default_local_ip(), user=self.user)

    @property
    def registration_state(self) -> None:
        """Always None: the local account does not register."""
        return None
