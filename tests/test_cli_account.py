"""``sipsimple account`` in a temporary configuration directory, and the other commands running as a
configured account: registration and a call through the test Kamailio with only ``--config-dir``.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.peers.ports import free_port


@pytest.fixture
def config(tmp_path):
    """``--config-dir`` of an empty configuration, and a runner of ``sipsimple ...`` with it."""
    directory = tmp_path / "config"

    def sipsimple(*args: str, **kwargs):
        return run_cli("--config-dir", str(directory), *args, **kwargs)

    sipsimple.dir = directory
    sipsimple.file = directory / "config.json"
    return sipsimple


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def settings_of(config, account_id: str, *extra: str) -> dict[str, str]:
    lines = ok(config("account", "show", account_id, *extra)).splitlines()
    return dict(line.split(" = ", 1) for line in lines)


def test_add_list_show_set_default_delete_round_trip(config):
    assert ok(config("account", "list")) == ""
    assert ok(config("account", "add", "alice@example.com", "--password", "secret", "--proxy",
                     "127.0.0.1:5070;transport=tcp", "--display-name", "Alice Liddell")) == \
        "added alice@example.com (the default account)\n"
    assert ok(config("account", "add", "sip:Bob@Example.COM", "--no-register")) == "added Bob@example.com\n"
    assert ok(config("account", "list")).splitlines() == [
        "* alice@example.com  enabled   proxy 127.0.0.1:5070;transport=tcp",
        "  Bob@example.com    enabled   no proxy  (does not register)",
    ]

    shown = settings_of(config, "alice")  # the user part alone names it
    assert shown["id"] == "alice@example.com" and shown["default"] == "yes"
    assert shown["auth.password"] == "********"
    assert shown["display_name"] == "Alice Liddell" and shown["enabled"] == "true"
    assert shown["sip.outbound_proxy"] == "127.0.0.1:5070;transport=tcp" and shown["sip.register"] == "true"
    assert shown["rtp.srtp_mode"] == "none" and shown["presence.buddies"] == ""
    assert settings_of(config, "alice@example.com", "--show-password")["auth.password"] == "secret"

    assert ok(config("account", "set", "alice", "rtp.srtp_mode=mandatory", "rtp.audio_codec_list=pcmu,g722",
                     "sip.register_interval=5m", "presence.buddies=bob@example.com,carol@example.com",
                     "display_name=none")) == \
        "updated alice@example.com: display_name, presence.buddies, rtp.audio_codec_list, rtp.srtp_mode, " \
        "sip.register_interval\n"
    shown = settings_of(config, "alice")
    assert shown["rtp.srtp_mode"] == "mandatory" and shown["rtp.audio_codec_list"] == "PCMU,G722"
    assert shown["sip.register_interval"] == "300" and shown["display_name"] == "none"
    assert shown["presence.buddies"] == "bob@example.com,carol@example.com"
    # what show prints, set reads back unchanged
    assert ok(config("account", "set", "alice", f"sip.outbound_proxy={shown['sip.outbound_proxy']}")) == \
        "alice@example.com: nothing changed\n"

    assert ok(config("account", "default", "Bob@example.com")) == "default account: Bob@example.com\n"
    assert ok(config("account", "default")) == "Bob@example.com\n"
    assert ok(config("account", "list")).splitlines()[1].startswith("* Bob@example.com")
    assert ok(config("account", "delete", "Bob")) == "deleted Bob@example.com\n"
    assert ok(config("account", "default")) == "alice@example.com\n"  # the first enabled one again

    stored = json.loads(config.file.read_text())
    assert list(stored["accounts"]) == ["alice@example.com"]
    assert stored["accounts"]["alice@example.com"]["auth"]["password"] == "secret"
    assert stat.S_IMODE(os.stat(config.file).st_mode) == 0o600  # it holds passwords


@pytest.mark.parametrize("assignment, words", [
    ("rtp.srtp_mode=sometimes", ["rtp.srtp_mode", "off, optional, mandatory"]),
    ("sip.register=maybe", ["sip.register", "true or false"]),
    ("sip.outbound_proxy=proxy.example.com;transport=sctp", ["sip.outbound_proxy", "sctp"]),
    ("sip.register_interval=5", ["sip.register_interval", "minimum"]),
    ("rtp.audio_codec_list=pcmu,speex", ["rtp.audio_codec_list", "speex"]),
    ("msrp.relay=http://relay", ["msrp.relay"]),
    ("auth.nonesuch=1", ["unknown setting 'auth.nonesuch'", "auth.password"]),
    ("enabled", ["KEY=VALUE"]),
])
def test_set_refuses_invalid_values_and_writes_nothing(config, assignment, words):
    ok(config("account", "add", "alice@example.com", "--password", "secret"))
    before = config.file.read_bytes()
    # a valid change first: all or nothing
    result = config("account", "set", "alice@example.com", "auth.password=changed", assignment)
    assert_one_line_error(result, *words)
    assert config.file.read_bytes() == before
    assert settings_of(config, "alice", "--show-password")["auth.password"] == "secret"


def test_account_command_errors(config):
    ok(config("account", "add", "alice@example.com"))
    assert_one_line_error(config("account", "add", "alice@example.com"), "exists already")
    assert_one_line_error(config("account", "add", "al ice@example.com"), "invalid", "al ice@example.com")
    assert_one_line_error(config("account", "add", "carol@example.com", "--srtp", "always"), "rtp.srtp_mode")
    assert_one_line_error(config("account", "show", "nobody@example.com"), "unknown account 'nobody@example.com'",
                          str(config.file))
    assert_one_line_error(config("account", "delete", "nobody"), "unknown account 'nobody'")
    assert_one_line_error(config("account"), "add, list, show, set, delete or default")
    ok(config("account", "set", "alice", "enabled=false"))
    assert_one_line_error(config("account", "default", "alice"), "disabled")
    result = config("account", "default")
    assert result.returncode == 1 and "no default account" in result.stderr
    assert list(json.loads(config.file.read_text())["accounts"]) == ["alice@example.com"]


def test_corrupt_configuration_is_one_clear_line(config):
    config.dir.mkdir()
    config.file.write_text("{not json")
    assert_one_line_error(config("account", "list"), str(config.file), "corrupt")
    assert_one_line_error(config("message", "bob@example.com", "hi"), str(config.file), "corrupt")


# ------------------------------------------------- commands running as a configured account


def test_register_and_call_as_the_configured_default_account(config, kamailio, baresip_factory):
    ok(config("account", "add", f"alice@{kamailio.domain}", "--password", kamailio.users["alice"],
              "--proxy", f"{kamailio.host}:{kamailio.port};transport=tcp", "--display-name", "Alice"))
    registered = ok(config("register", "--once"))
    assert registered.startswith("registration succeeded: 200 OK contact=sip:alice@127.0.0.1:"), registered
    assert "transport=tcp" in registered.splitlines()[0]

    bob = baresip_factory(user="bob", password=kamailio.users["bob"], registrar=f"{kamailio.host}:{kamailio.port}")
    bob.wait_registered()
    called = ok(config("call", "bob", "--duration", "1"))  # bob of the account's domain, through its proxy
    assert f"calling sip:bob@{kamailio.domain} via {kamailio.host}:{kamailio.port};transport=tcp" in called
    assert "state: ESTABLISHED" in called and "codec: PCMU/8000" in called
    established = bob.ctrl.wait_event("CALL_ESTABLISHED")
    assert established["peeruri"] == f"sip:alice@{kamailio.domain}", established
    assert established["peerdisplayname"] == "Alice", established  # the configured display name


def test_options_override_the_configured_account(config, kamailio):
    unused = free_port()
    ok(config("account", "add", f"alice@{kamailio.domain}", "--password", kamailio.users["alice"],
              "--proxy", f"127.0.0.1:{unused}"))
    # --config-dir works after the command as well
    assert_one_line_error(run_cli("register", "--once", "--config-dir", str(config.dir)), "unreachable",
                          f"127.0.0.1:{unused}")
    # --proxy replaces the configured one; the password still comes from the configuration
    result = config("register", "--once", "--account", "alice", "--proxy", f"{kamailio.host}:{kamailio.port}")
    assert ok(result).startswith("registration succeeded: 200 OK")
    wrong = config("register", "--once", "--account", "alice", "--password", "wrong",
                   "--proxy", f"{kamailio.host}:{kamailio.port}")
    assert wrong.returncode == 1 and "registration failed: 40" in wrong.stdout


@pytest.mark.parametrize("args, words", [
    (["call", "bob@example.com", "--account", "nobody@example.com"], ["unknown account 'nobody@example.com'"]),
    (["message", "bob@example.com", "hi", "--account", "nobody"], ["unknown account 'nobody'"]),
    (["call", "tel:+15551234"], ["invalid target"]),
    (["call", "bob@", "--account", "alice"], ["invalid target"]),
])
def test_clear_errors_with_a_configured_account(config, args, words):
    ok(config("account", "add", "alice@example.com", "--password", "x", "--proxy", "127.0.0.1:5060"))
    assert_one_line_error(config(*args, timeout=30), *words)


def test_cli_tests_run_without_the_developers_accounts(config, monkeypatch):
    # a developer's default account, where SIPSIMPLE_CONFIG_DIR points when the tests start
    ok(config("account", "add", "dev@example.com", "--password", "x", "--proxy", "127.0.0.1:5060"))
    monkeypatch.setenv("SIPSIMPLE_CONFIG_DIR", str(config.dir))
    # cli_env() gives every command an empty configuration directory of its own instead
    result = run_cli("account", "list")
    assert result.returncode == 0 and "dev@example.com" not in result.stdout + result.stderr
    assert "no accounts" in result.stderr
    assert_one_line_error(run_cli("register", "--once"), "--account")
