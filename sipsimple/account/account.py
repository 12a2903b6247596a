"""Account: a SIP account ``user@domain`` with its settings and its registration.

::

    account = Account('alice@example.com')
    account.auth.password = 'secret'
    account.sip.outbound_proxy = 'proxy.example.com:5060;transport=tcp'
    account.enabled = True
    account.save()        # the AccountManager picks it up and registers it

Registration. While the AccountManager runs and the Engine is up, an
account that is enabled, stored and has ``sip.register`` on keeps a
:class:`sipsimple.core.Registration`; the Registration retries failures with
back-off (``sip.register_retry_interval`` doubling up to
``sip.register_max_retry_interval``). Saving changes that matter to the
registration (credentials, proxy, interval, display name) unregisters and
registers again; disabling or deleting the account unregisters it.
``registration_state`` is one of 'unregistered', 'registering',
'registered', 'failed' (a retry is pending) and 'unregistering'.

Notifications (sender: the account), with the data of the Registration's
SC* notification they come from: ``SIPAccountRegistrationDidSucceed``
(code, reason, contact_header, contact_header_list, expires),
``SIPAccountRegistrationDidFail`` (code, reason, will_retry_in),
``SIPAccountRegistrationWillEnd`` and ``SIPAccountRegistrationDidEnd`` (code, reason);
each also carries ``registration`` (the Registration object).

Presence (publishing ``presence_state``, watching ``presence.buddies``, the
``watchers`` of the account) follows the same activation: see
:mod:`sipsimple.account.presence`.

Thread-safety: registration events arrive on the Engine thread, settings
changes on the application's; the registration state is kept under a lock,
and Registration methods are never called while holding it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sipsimple.account.presence import PresenceMixin, PresenceSettings
from sipsimple.configuration.base import Setting, SettingsGroup, SettingsObject
from sipsimple.configuration.datatypes import (
    AudioCodecList,
    Duration,
    MSRPRelayURI,
    NonEmptyString,
    RouteType,
    SIPAddress,
    SRTPMode,
    String,
)
from sipsimple.core import SIPURI, Credentials, Engine, Registration, Route
from sipsimple.notification import IObserver, NotificationCenter, NotificationData, implementer

__all__ = ["Account", "AccountBase", "REGISTRATION_STATES"]

log = logging.getLogger("sipsimple.account")

REGISTRATION_STATES = ("unregistered", "registering", "registered", "failed", "unregistering")

# settings whose change needs a new REGISTER (the others only decide whether to register)
_REREGISTER_KEYS = frozenset({
    "display_name", "auth.username", "auth.password", "sip.outbound_proxy", "sip.register_interval",
    "sip.register_retry_interval", "sip.register_max_retry_interval",
})
_ACTIVATION_KEYS = frozenset({"enabled", "sip.register"})
# how long an unregistration may take (a bit more than SIP timer F, 32 s) before it is given up
_END_GRACE = 35.0


class AccountRTPSettings(SettingsGroup):
    """Media overrides; None means: as in SIPSimpleSettings().rtp."""

    srtp_mode = Setting(type=SRTPMode, default=None, nillable=True)
    audio_codec_list = Setting(type=AudioCodecList, default=None, nillable=True)


class AccountBase(SettingsObject):
    """What every account offers: ``id``, ``uri``, ``credentials``, ``route``, media preferences."""

    enabled = Setting(type=bool, default=False)
    display_name = Setting(type=String, default=None, nillable=True)
    rtp = AccountRTPSettings

    @property
    def uri(self) -> SIPURI:  # pragma: no cover - every account overrides it
        raise NotImplementedError

    @property
    def credentials(self) -> Credentials | None:
        return None

    @property
    def route(self) -> Route | None:
        """The outbound proxy requests are sent through, or None (the URI's host decides)."""
        return None

    @property
    def registration_state(self) -> str | None:
        return None

    @property
    def msrp_relay(self) -> str | None:
        """The MSRP relay URI chat and file transfer go through, or None (direct)."""
        return None

    @property
    def msrp_use_tls(self) -> bool:
        """Whether chat and file transfer offer MSRP over TLS (msrps:) to the other party."""
        return False

    @property
    def srtp_mode(self) -> str:
        """The SRTP mode in effect: the account's, else the global one."""
        if self.rtp.srtp_mode is not None:
            return self.rtp.srtp_mode
        from sipsimple.configuration.settings import SIPSimpleSettings

        return SIPSimpleSettings().rtp.srtp_mode

    @property
    def audio_codec_list(self) -> tuple[str, ...]:
        """The codecs in effect, in order of preference: the account's, else the global list."""
        if self.rtp.audio_codec_list is not None:
            return self.rtp.audio_codec_list
        from sipsimple.configuration.settings import SIPSimpleSettings

        return SIPSimpleSettings().rtp.audio_codec_list


class AuthSettings(SettingsGroup):
    """Digest credentials; ``username`` None means the user part of the account id."""

    username = Setting(type=NonEmptyString, default=None, nillable=True)
    password = Setting(type=String, default="")


class AccountSIPSettings(SettingsGroup):
    """Signalling: outbound proxy and registration."""

    outbound_proxy = Setting(type=RouteType, default=None, nillable=True)
    register = Setting(type=bool, default=True)
    register_interval = Setting(type=Duration(minimum=10, maximum=7 * 86400, integer=True), default=600)
    register_retry_interval = Setting(type=Duration(minimum=0.1, maximum=3600), default=5.0)
    register_max_retry_interval = Setting(type=Duration(minimum=1, maximum=86400), default=300.0)


class AccountMSRPSettings(SettingsGroup):
    relay = Setting(type=MSRPRelayURI, default=None, nillable=True)
    use_tls = Setting(type=bool, default=False)  # offer msrps: (needs SIPSimpleSettings().tls.certificate)


@implementer(IObserver)
class Account(PresenceMixin, AccountBase):
    """A SIP account named ``user@domain`` (stored in section 'accounts')."""

    __section__ = "accounts"
    __id_type__ = SIPAddress()

    auth = AuthSettings
    sip = AccountSIPSettings
    msrp = AccountMSRPSettings
    presence = PresenceSettings

    def __init__(self, id: str) -> None:  # noqa: A002
        super().__init__(id)
        object.__setattr__(self, "_state_lock", threading.RLock())
        object.__setattr__(self, "_state_changed", threading.Condition(self._state_lock))
        object.__setattr__(self, "_active", False)  # managed by a running AccountManager
        object.__setattr__(self, "_engine_running", False)
        object.__setattr__(self, "_registration", None)
        object.__setattr__(self, "_ending", [])
        object.__setattr__(self, "_registration_state", "unregistered")

    _state_lock: threading.RLock
    _state_changed: threading.Condition
    _active: bool
    _engine_running: bool
    _registration: Registration | None
    _ending: list[Registration]
    _registration_state: str

    # ------------------------------------------------------------ identity

    @property
    def user(self) -> str:
        return self.id.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.id.rpartition("@")[2]

    @property
    def uri(self) -> SIPURI:
        """The address of record, ``sip:user@domain``."""
        return SIPURI(self.domain, user=self.user)

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.auth.username or self.user, self.auth.password)

    @property
    def route(self) -> Route | None:
        return self.sip.outbound_proxy

    @property
    def msrp_relay(self) -> str | None:
        return self.msrp.relay

    @property
    def msrp_use_tls(self) -> bool:
        return self.msrp.use_tls

    @property
    def registration_state(self) -> str:
        with self._state_lock:
            return self._registration_state

    @property
    def registration(self) -> Registration | None:
        """The Registration in use, if any (read-only: the account drives it)."""
        with self._state_lock:
            return self._registration

    # ---------------------------------------------------- settings hooks

    def _did_save(self, created: bool, modified: dict[str, tuple[Any, Any]]) -> None:
        keys = set(modified)
        if created:
            self._update_registration()  # (the AccountManager has usually started it already)
        elif keys & _REREGISTER_KEYS:
            self._update_registration(restart=True)
        elif keys & _ACTIVATION_KEYS:
            self._update_registration()
        self._presence_update(() if created else keys)  # publication, subscriptions: account/presence.py

    def _did_delete(self) -> None:
        self._set_active(False)

    # ------------------------------------------- driven by the AccountManager

    def _set_active(self, active: bool) -> None:
        with self._state_lock:
            self._active = active
        self._update_registration()
        self._presence_update()

    def _set_engine_running(self, running: bool) -> None:
        with self._state_lock:
            self._engine_running = running
        self._update_registration()
        self._presence_update()

    def _engine_gone(self) -> None:
        """The Engine thread has ended: whatever registration is left is over."""
        self._presence_engine_gone()
        with self._state_lock:
            self._engine_running = False
            leftover = ([self._registration] if self._registration else []) + list(self._ending)
        for registration in leftover:
            registration.end()  # a registration that lost its handle ends here at once
        with self._state_lock:
            stuck = ([self._registration] if self._registration else []) + list(self._ending)
            self._registration = None
            self._ending.clear()
            if stuck:
                self._set_state("unregistered")
        for registration in stuck:
            NotificationCenter().discard_observer(self, sender=registration)
            self._post("SIPAccountRegistrationDidEnd", code=0, reason="Engine stopped", registration=registration)

    def _wait_unregistered(self, deadline: float) -> bool:
        """Wait (until the monotonic ``deadline``) for every registration to have ended."""
        with self._state_changed:
            return self._state_changed.wait_for(
                lambda: self._registration is None and not self._ending, max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------ registration

    def _wants_registration(self) -> bool:
        return (self._active and self._engine_running and self._stored and self.enabled
                and self.sip.register)

    def _update_registration(self, restart: bool = False) -> None:
        """Start, keep, restart or end the registration to match the settings and the Engine."""
        to_end: Registration | None = None
        with self._state_lock:
            want = self._wants_registration()
            current = self._registration
            if current is not None and (not want or restart):
                to_end = current
                self._registration = None
                self._ending.append(current)
                self._set_state("unregistering")
            start = want and self._registration is None and not self._ending
            if start:
                registration = self._make_registration()
                self._registration = registration
                self._set_state("registering")
        if to_end is not None:
            to_end.end()  # its DidEnd starts the new registration, if one is wanted
            self._watch_end(to_end)
        if start:
            self._start(registration)

    def _watch_end(self, registration: Registration) -> None:
        # Registration.end() during a REGISTER that then fails is never answered by the core
        # (it stays 'unregistering' without SCRegistrationDidEnd): give up on it after a while
        core = Engine()._core
        if core is None:
            return
        try:
            core.call_later(_END_GRACE, lambda: self._end_overdue(registration))
        except Exception:  # the Engine is stopping: _engine_gone() cleans up
            pass

    def _end_overdue(self, registration: Registration) -> None:
        with self._state_lock:
            if registration not in self._ending:
                return
            self._ending.remove(registration)
            if self._registration is None:
                self._set_state("unregistered")
        log.warning("account %s: unregistration did not complete within %s s", self.id, _END_GRACE)
        NotificationCenter().discard_observer(self, sender=registration)
        self._post("SIPAccountRegistrationDidEnd", code=0, reason="Unregistration did not complete",
                   registration=registration)
        self._update_registration()

    def _make_registration(self) -> Registration:
        registration = Registration(
            self.uri, self.credentials, duration=self.sip.register_interval, route=self.sip.outbound_proxy,
            display_name=self.display_name, retry_interval=self.sip.register_retry_interval,
            max_retry_interval=max(self.sip.register_max_retry_interval, self.sip.register_retry_interval),
        )
        NotificationCenter().add_observer(self, sender=registration)
        return registration

    def _start(self, registration: Registration) -> None:
        try:
            registration.register()
        except Exception as exc:  # the Engine stopped meanwhile
            log.warning("account %s cannot register: %s", self.id, exc)
            with self._state_lock:
                if self._registration is registration:
                    self._registration = None
                if registration in self._ending:
                    self._ending.remove(registration)
                if self._registration is None:
                    self._set_state("unregistered")
            NotificationCenter().discard_observer(self, sender=registration)
            self._post("SIPAccountRegistrationDidFail", code=0, reason=str(exc), will_retry_in=None,
                       registration=registration)
            return
        with self._state_lock:
            # another thread may have ended it between its creation and register(), when end() had
            # nothing to do yet: end it now that there is something to end
            ended_meanwhile = registration in self._ending
        if ended_meanwhile:
            registration.end()

    def _set_state(self, state: str) -> None:
        # with _state_lock held
        if self._registration is None and not self._ending:
            state = "unregistered" if state == "unregistering" else state
        self._registration_state = state
        self._state_changed.notify_all()

    def handle_notification(self, notification: Any) -> None:
        """Events of our Registration (on the Engine thread, or the thread that ended it)."""
        registration = notification.sender
        name = notification.name
        data = dict(notification.data.__dict__) if notification.data is not None else {}
        data["registration"] = registration
        restart = False
        with self._state_lock:
            current = registration is self._registration
            ending = registration in self._ending
            if not (current or ending):
                return
            if name == "SCRegistrationDidSucceed":
                if not current:
                    return
                self._set_state("registered")
            elif name == "SCRegistrationDidFail":
                if not current:
                    return
                self._set_state("failed")
            elif name == "SCRegistrationWillEnd":
                pass
            elif name == "SCRegistrationDidEnd":
                if current:
                    self._registration = None
                else:
                    self._ending.remove(registration)
                if self._registration is None:
                    self._set_state("unregistered")
                restart = True
            else:
                return
        if name == "SCRegistrationDidEnd":
            NotificationCenter().discard_observer(self, sender=registration)
        self._post(name.replace("SCRegistration", "SIPAccountRegistration"), **data)
        if restart:
            self._update_registration()

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))
