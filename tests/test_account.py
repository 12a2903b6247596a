"""Accounts: settings, persistence, the AccountManager, and registration against a real Kamailio."""

from __future__ import annotations

import json

import pytest

from sipsimple.account import Account, AccountManager, BonjourAccount
from sipsimple.configuration import ConfigurationError, ConfigurationManager, FileBackend, MemoryBackend
from sipsimple.configuration.settings import SIPSimpleSettings
from sipsimple.core import SIPURI, Credentials, Engine, Route


@pytest.fixture
def config(tmp_path):
    """Here on a file backend: what is saved must survive a restart."""
    manager = ConfigurationManager()
    manager.start(FileBackend(tmp_path / "config"))
    try:
        yield manager
    finally:
        AccountManager().stop()
        manager.stop()


def kamailio_account(kamailio, user="alice", password=None, **sip):
    account = Account(f"{user}@{kamailio.domain}")
    account.auth.password = kamailio.users[user] if password is None else password
    account.sip.outbound_proxy = Route(kamailio.host, kamailio.port, "udp")
    for name, value in sip.items():
        setattr(account.sip, name, value)
    account.enabled = True
    return account


def start_engine():
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp", "tcp"))
    return engine


# ----------------------------------------------------------------- Account objects


def test_account_identity_and_defaults(config):
    account = Account("sip:alice@Example.com")
    assert account.id == "alice@example.com" and account is Account("alice@example.com")
    assert account.uri == SIPURI("example.com", user="alice")
    assert account.credentials == Credentials("alice", "")
    account.auth.username = "alice-auth"
    account.auth.password = "pw"
    assert account.credentials == Credentials("alice-auth", "pw")
    assert not account.enabled and account.sip.register and account.sip.register_interval == 600
    assert account.route is None and account.registration_state == "unregistered"
    assert account.msrp.relay is None and account.presence.enabled is False


@pytest.mark.parametrize("bad_id", ["alice", "alice@", "@example.com", "al ice@example.com", "alice@exa_mple", ""])
def test_account_id_is_validated(config, bad_id):
    with pytest.raises(ValueError, match="invalid Account id"):
        Account(bad_id)


def test_account_settings_are_validated(config):
    account = Account("alice@example.com")
    with pytest.raises(ValueError, match=r"Account 'alice@example\.com': sip\.outbound_proxy"):
        account.sip.outbound_proxy = "proxy;transport=carrier-pigeon"
    with pytest.raises(ValueError, match=r"sip\.register_interval"):
        account.sip.register_interval = 1
    with pytest.raises(ValueError, match=r"rtp\.srtp_mode"):
        account.rtp.srtp_mode = "always"
    with pytest.raises(ValueError, match=r"msrp\.relay"):
        account.msrp.relay = "relay.example.com"
    with pytest.raises(TypeError, match="enabled"):
        account.enabled = "yes"


def test_account_media_falls_back_to_global_settings(config):
    account = Account("alice@example.com")
    assert account.srtp_mode == "optional" and account.audio_codec_list == SIPSimpleSettings().rtp.audio_codec_list
    account.rtp.srtp_mode = "mandatory"
    account.rtp.audio_codec_list = ["PCMU"]
    assert account.srtp_mode == "mandatory" and account.audio_codec_list == ("PCMU",)


def test_account_save_load_delete(config, tmp_path, recorder):
    account = Account("bob@example.com")
    account.display_name = "Bob"
    account.auth.password = "secret"
    account.sip.outbound_proxy = "proxy.example.com:5070;transport=tcp"
    account.msrp.relay = "msrps://relay.example.com:2855;tcp"
    account.save()
    recorder.wait("CFGSettingsObjectWasCreated", sender=account)
    data = json.loads((tmp_path / "config" / "config.json").read_text())
    assert data["accounts"]["bob@example.com"]["sip"] == {"outbound_proxy": "proxy.example.com:5070;transport=tcp"}

    config.stop()
    config.start(FileBackend(tmp_path / "config"))
    loaded = Account("bob@example.com")
    assert loaded is not account and loaded.is_stored
    assert loaded.display_name == "Bob" and loaded.auth.password == "secret"
    assert loaded.route == Route("proxy.example.com", 5070, "tcp")
    assert loaded.msrp.relay == loaded.msrp_relay == "msrps://relay.example.com:2855;tcp"
    loaded.delete()
    recorder.wait("CFGSettingsObjectWasDeleted", sender=loaded)
    assert config.ids("accounts") == []
    assert not Account("bob@example.com").is_stored


# ----------------------------------------------------------------- AccountManager without a server


def test_default_account_is_bonjour_when_none_configured(account_manager):
    default = account_manager.default_account
    assert isinstance(default, BonjourAccount) and default.id == "bonjour@local"
    assert default.registration_state is None and default.credentials is None and default.route is None
    assert default.msrp_relay is None and default.srtp_mode == "optional"
    assert default.uri.user and default.uri.host
    assert account_manager.accounts == [default]
    assert account_manager.get_account("bonjour@local") is default


def test_bonjour_uri_is_the_engines_address(account_manager):
    engine = start_engine()
    try:
        uri = account_manager.default_account.uri
        assert uri.host == "127.0.0.1" and uri.port == engine.udp_port
    finally:
        engine.stop()


def test_accounts_added_removed_and_default(account_manager, recorder):
    bonjour = account_manager.default_account
    carol = Account("carol@example.com")
    carol.sip.register = False
    carol.save()  # disabled: added, but not the default
    added = recorder.wait("SIPAccountManagerDidAddAccount", predicate=lambda n: n.data.account is carol)
    assert added.sender is account_manager and account_manager.has_account("carol@example.com")
    assert account_manager.default_account is bonjour
    with pytest.raises(ValueError, match="disabled"):
        account_manager.default_account = carol

    carol.enabled = True
    carol.save()
    changed = recorder.wait("SIPAccountManagerDidChangeDefaultAccount")
    assert changed.data.old_account is bonjour and changed.data.account is carol

    dave = Account("dave@example.com")
    dave.enabled = True
    dave.sip.register = False
    dave.save()
    assert account_manager.default_account is carol  # first enabled by id
    account_manager.default_account = dave
    assert recorder.wait("SIPAccountManagerDidChangeDefaultAccount", count=2).data.account is dave
    assert account_manager.find_account(SIPURI("127.0.0.1", user="dave", port=5060)) is dave

    dave.delete()
    removed = recorder.wait("SIPAccountManagerDidRemoveAccount")
    assert removed.data.account is dave and not account_manager.has_account("dave@example.com")
    with pytest.raises(KeyError):
        account_manager.get_account("dave@example.com")
    assert account_manager.default_account is carol
    assert recorder.wait("SIPAccountManagerDidChangeDefaultAccount", count=3).data.account is carol


def test_default_account_is_persisted(config, tmp_path):
    am = AccountManager()
    am.start()
    for user in ("erin", "frank"):
        account = Account(f"{user}@example.com")
        account.enabled = True
        account.sip.register = False
        account.save()
    am.default_account = am.get_account("frank@example.com")
    am.stop()
    config.stop()
    config.start(FileBackend(tmp_path / "config"))
    am.start()
    assert am.default_account.id == "frank@example.com"
    assert [account.id for account in am.accounts] == ["bonjour@local", "erin@example.com", "frank@example.com"]
    am.default_account = None  # back to the automatic choice
    assert am.default_account.id == "erin@example.com"


def test_account_manager_needs_the_configuration():
    with pytest.raises(ConfigurationError):
        AccountManager().start()


def test_corrupt_account_gives_a_clear_error(recorder):
    manager = ConfigurationManager()
    manager.start(MemoryBackend({"accounts": {"bob@example.com": {"sip": {"register_interval": "often"}}}}))
    try:
        with pytest.raises(ConfigurationError, match=r"Account 'bob@example\.com': sip\.register_interval"):
            AccountManager().start()
        assert not AccountManager().started
    finally:
        manager.stop()


# ----------------------------------------------------------------- registration with Kamailio


def test_enabled_account_registers_when_the_engine_starts(kamailio, account_manager, recorder):
    account = kamailio_account(kamailio)
    account.save()
    assert account.registration_state == "unregistered"  # no Engine yet
    engine = start_engine()
    try:
        ok = recorder.wait("SIPAccountRegistrationDidSucceed", sender=account)
        assert ok.data.code == 200 and ok.data.expires == 600
        assert ok.data.contact_header.uri.port == engine.udp_port
        assert account.registration_state == "registered"
        # disabling unregisters
        account.enabled = False
        account.save()
        ended = recorder.wait("SIPAccountRegistrationDidEnd", sender=account)
        assert ended.data.code == 200 and account.registration_state == "unregistered"
        assert account.registration is None
    finally:
        engine.stop()


def test_account_registers_at_once_when_the_engine_runs(kamailio, config, engine, recorder):
    account = kamailio_account(kamailio, "bob")
    account.save()  # before the AccountManager starts
    am = AccountManager()
    am.start()
    try:
        assert recorder.wait("SIPAccountRegistrationDidSucceed", sender=account).data.code == 200
        assert am.default_account is account
    finally:
        am.stop()  # unregisters and waits
    ended = recorder.wait("SIPAccountRegistrationDidEnd", sender=account, timeout=0)
    assert ended.data.code == 200 and account.registration_state == "unregistered"


def test_wrong_password_fails_and_retries_with_back_off(kamailio, account_manager, engine, recorder):
    account = kamailio_account(kamailio, "carol", password="wrong", register_retry_interval=0.2)
    account.save()
    first = recorder.wait("SIPAccountRegistrationDidFail", sender=account)
    second = recorder.wait("SIPAccountRegistrationDidFail", sender=account, count=2)
    assert first.data.code == second.data.code == 401
    assert first.data.will_retry_in == 0.2 and second.data.will_retry_in == 0.4
    assert account.registration_state == "failed"
    # fixing the password re-registers
    account.auth.password = kamailio.users["carol"]
    account.save()
    assert recorder.wait("SIPAccountRegistrationDidSucceed", sender=account).data.code == 200
    assert not recorder.of("SIPAccountRegistrationDidSucceed", sender=account)[1:]


def test_changed_settings_re_register(kamailio, account_manager, engine, recorder):
    account = kamailio_account(kamailio)
    account.save()
    assert recorder.wait("SIPAccountRegistrationDidSucceed", sender=account).data.expires == 600
    account.sip.register_interval = 300
    account.display_name = "Alice"
    account.save()
    recorder.wait("SIPAccountRegistrationDidEnd", sender=account)
    again = recorder.wait("SIPAccountRegistrationDidSucceed", sender=account, count=2)
    assert again.data.expires == 300 and account.registration_state == "registered"
    names = [n.name for n in recorder.notifications if n.sender is account and n.name.startswith("SIPAccountReg")]
    assert names == ["SIPAccountRegistrationDidSucceed", "SIPAccountRegistrationWillEnd",
                     "SIPAccountRegistrationDidEnd", "SIPAccountRegistrationDidSucceed"]
    # changes that do not matter to the registration leave it alone
    account.presence.enabled = True
    account.save()
    assert len(recorder.of("SIPAccountRegistrationDidEnd", sender=account)) == 1


def test_deleting_unregisters_and_removes(kamailio, account_manager, engine, recorder):
    account = kamailio_account(kamailio, "bob")
    account.save()
    recorder.wait("SIPAccountRegistrationDidSucceed", sender=account)
    account.delete()
    assert recorder.wait("SIPAccountRegistrationDidEnd", sender=account).data.code == 200
    assert recorder.wait("SIPAccountManagerDidRemoveAccount").data.account is account
    assert isinstance(account_manager.default_account, BonjourAccount)


def test_engine_restart_registers_again(kamailio, account_manager, recorder):
    account = kamailio_account(kamailio)
    account.save()
    engine = start_engine()
    try:
        recorder.wait("SIPAccountRegistrationDidSucceed", sender=account)
    finally:
        engine.stop()
    recorder.wait("SIPAccountRegistrationDidEnd", sender=account)
    assert account.registration_state == "unregistered"
    engine = start_engine()
    try:
        assert recorder.wait("SIPAccountRegistrationDidSucceed", sender=account, count=2).data.code == 200
    finally:
        engine.stop()
    recorder.wait("SIPAccountRegistrationDidEnd", sender=account, count=2)


def test_toggling_quickly_settles_registered(kamailio, account_manager, engine, recorder):
    """Settings changes on this thread race with registration events on the Engine thread."""
    account = kamailio_account(kamailio, "carol")
    account.save()
    for i in range(6):
        account.enabled = i % 2 == 1  # ends enabled
        account.save()
        account.sip.register_interval = 300 + i  # and a re-registration each time
        account.save()
    recorder.wait_for(lambda: account.registration_state == "registered"
                      and account.registration is not None and account.registration.is_registered)
    assert not account._ending
    expected = account.registration.duration
    assert recorder.wait("SIPAccountRegistrationDidSucceed", sender=account,
                         predicate=lambda n: n.data.registration is account.registration).data.expires == expected


def test_seed_example_flow(kamailio, tmp_path, monkeypatch, recorder):
    """The seed's program: ConfigurationManager().start(), AccountManager().start(), Engine().start_cfg()."""
    monkeypatch.setenv("SIPSIMPLE_CONFIG_DIR", str(tmp_path / "seed"))
    (tmp_path / "seed").mkdir()
    (tmp_path / "seed" / "config.json").write_text(json.dumps({
        "settings": {"SIPSimpleSettings": {"sip": {"local_ip": "127.0.0.1", "transports": ["udp"]}}},
        "accounts": {f"alice@{kamailio.domain}": {
            "enabled": True, "auth": {"password": "alicepw"},
            "sip": {"outbound_proxy": f"{kamailio.host}:{kamailio.port};transport=udp"}}},
    }))
    ConfigurationManager().start()
    am = AccountManager()
    try:
        am.start()
        Engine().start_cfg()
        try:
            account = am.default_account
            assert account.id == f"alice@{kamailio.domain}"
            assert recorder.wait("SIPAccountRegistrationDidSucceed", sender=account).data.code == 200
            assert Engine().transports == ("udp",)
            am.stop()
            assert account.registration_state == "unregistered"
        finally:
            Engine().stop()
    finally:
        am.stop()
        ConfigurationManager().stop()
