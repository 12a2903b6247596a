"""Configuration: setting types, declaration, validation, persistence (file and memory), notifications."""

from __future__ import annotations

import json
import os

import pytest

from sipsimple.configuration import (
    ConfigurationError,
    ConfigurationManager,
    FileBackend,
    MemoryBackend,
    Setting,
    SettingsGroup,
    SettingsObject,
)
from sipsimple.configuration import backend as backend_module
from sipsimple.configuration.datatypes import (
    AudioCodecList,
    Duration,
    IPAddress,
    MSRPRelayURI,
    Port,
    PortRange,
    PortRangeValue,
    RouteType,
    SIPAddress,
    SIPURIType,
    SRTPMode,
    Transports,
)
from sipsimple.configuration.settings import SIPSimpleSettings
from sipsimple.core import SIPURI, Engine, Route
from tests.peers.ports import free_port


@pytest.fixture
def config_dir(tmp_path):
    return tmp_path / "config"


@pytest.fixture
def config(config_dir):
    """The ConfigurationManager on a FileBackend in a temporary directory."""
    manager = ConfigurationManager()
    manager.start(FileBackend(config_dir))
    try:
        yield manager
    finally:
        manager.stop()


def stored(config_dir):
    return json.loads((config_dir / "config.json").read_text())


class DemoGroup(SettingsGroup):
    port = Setting(type=Port, default=5060)
    codecs = Setting(type=AudioCodecList, default=("opus", "PCMU"))

    class Inner(SettingsGroup):
        timeout = Setting(type=Duration(minimum=1), default=30)

    inner = Inner


class Demo(SettingsObject):
    __section__ = "demos"
    name = Setting(type=str, default="demo")
    note = Setting(type=str, default=None, nillable=True)
    group = DemoGroup


# ----------------------------------------------------------------- setting types


@pytest.mark.parametrize("datatype, value, expected", [
    (Port(), 0, 0),
    (Port(), 65535, 65535),
    (PortRange(), (50000, 50100), PortRangeValue(50000, 50100)),
    (PortRange(), "40000-40010", PortRangeValue(40000, 40010)),
    (Transports(), ["UDP", "tls"], ("udp", "tls")),
    (AudioCodecList(), ["pcma", "OPUS", "g722"], ("PCMA", "opus", "G722")),
    (SRTPMode(), "Mandatory", "mandatory"),
    (IPAddress(), "127.0.0.1", "127.0.0.1"),
    (SIPAddress(), "sip:Alice@Example.COM", "Alice@example.com"),
    (Duration(), "5m", 300.0),
    (Duration(), "250ms", 0.25),
    (Duration(integer=True), 600, 600),
    (RouteType(), "10.0.0.1:5080;transport=tcp", Route("10.0.0.1", 5080, "tcp")),
    (RouteType(), "proxy.example.com;transport=tls", Route("proxy.example.com", 5061, "tls")),
    (MSRPRelayURI(), "msrps://relay.example.com:2855;tcp", "msrps://relay.example.com:2855;tcp"),
])
def test_types_accept_and_normalise(datatype, value, expected):
    assert datatype.validate(value) == expected
    # and survive the trip through JSON
    assert datatype.load(json.loads(json.dumps(datatype.dump(datatype.validate(value))))) == expected


def test_sip_uri_type_is_frozen():
    uri = SIPURIType().validate("sip:bob@example.com;transport=tcp")
    assert uri == SIPURI("example.com", user="bob", parameters={"transport": "tcp"})
    hash(uri)  # frozen: usable as a key, cannot be changed behind the setting's back
    assert SIPURIType().load(SIPURIType().dump(uri)) == uri


@pytest.mark.parametrize("datatype, value", [
    (Port(), 65536), (Port(), -1), (Port(), "5060"), (Port(), True), (Port(), 5060.0),
    (PortRange(), (50001, 50100)), (PortRange(), (50100, 50000)), (PortRange(), (0, 10)), (PortRange(), "a-b"),
    (Transports(), []), (Transports(), ["udp", "udp"]), (Transports(), ["sctp"]), (Transports(), "udp"),
    (AudioCodecList(), []), (AudioCodecList(), ["speex"]), (AudioCodecList(), ["opus", "OPUS"]),
    (SRTPMode(), "sometimes"), (SRTPMode(), None),
    (IPAddress(), "::1"), (IPAddress(), "300.1.1.1"),
    (SIPAddress(), "alice"), (SIPAddress(), "@example.com"), (SIPAddress(), "alice@exa mple.com"),
    (Duration(), -1), (Duration(), "soon"), (Duration(integer=True), 1.5), (Duration(), float("nan")),
    (RouteType(), "host:port"), (RouteType(), "host;transport=sctp"),
    (MSRPRelayURI(), "http://relay.example.com"), (MSRPRelayURI(), "msrp://relay:99999;tcp"),
])
def test_types_refuse(datatype, value):
    with pytest.raises((ValueError, TypeError)):
        datatype.validate(value)


# ----------------------------------------------------------------- declaration


def test_declaration_needs_valid_default():
    with pytest.raises(TypeError):
        Setting(type=Port)  # not nillable, no default
    with pytest.raises(ValueError, match="default"):
        Setting(type=Port, default=70000)
    with pytest.raises(TypeError):
        Setting(type=list, default=[])


def test_invalid_values_are_refused_naming_the_setting(config):
    demo = Demo("one")
    with pytest.raises(ValueError, match=r"Demo 'one': group\.port"):
        demo.group.port = 70000
    with pytest.raises(TypeError, match=r"group\.inner\.timeout"):
        demo.group.inner.timeout = [1]
    with pytest.raises(ValueError, match="may not be None"):
        demo.name = None
    with pytest.raises(AttributeError, match="no such setting"):
        demo.group.prot = 5061
    with pytest.raises(AttributeError):
        demo.group = None
    assert demo.group.port == 5060 and demo.get_modified() == {}
    demo.note = None  # nillable
    demo.group.codecs = ["g722"]
    assert demo.group.codecs == ("G722",)


def test_nested_group_classes_are_declarations_only():
    assert set(DemoGroup.__groups__) == {"inner"}
    assert set(Demo.__groups__) == {"group"} and set(Demo.__settings__) == {"name", "note"}


def test_objects_by_id_and_singletons(config):
    assert Demo("one") is Demo("one")
    assert Demo("one") is not Demo("two")
    assert SIPSimpleSettings() is SIPSimpleSettings()
    with pytest.raises(TypeError):
        Demo()


# ----------------------------------------------------------------- persistence


def test_round_trip_through_the_file(config, config_dir, recorder):
    settings = SIPSimpleSettings()
    settings.sip.transports = ["tls", "udp"]
    settings.sip.udp_port = 5070
    settings.rtp.audio_codec_list = ["PCMA", "opus"]
    settings.rtp.port_range = (40000, 40100)
    settings.rtp.srtp_mode = "mandatory"
    settings.audio.output_device = None
    settings.tls.verify_server = False
    settings.save()
    created = recorder.wait("CFGSettingsObjectWasCreated", sender=settings)
    assert created.data.modified["sip.udp_port"] == (0, 5070)
    assert stored(config_dir)["settings"]["SIPSimpleSettings"]["rtp"]["audio_codec_list"] == ["PCMA", "opus"]
    assert os.stat(config_dir / "config.json").st_mode & 0o777 == 0o600

    config.stop()
    config.start(FileBackend(config_dir))
    again = SIPSimpleSettings()
    assert again is not settings  # the restart made the old object stale
    assert again.sip.transports == ("tls", "udp") and again.sip.udp_port == 5070
    assert again.rtp.audio_codec_list == ("PCMA", "opus")  # order kept
    assert again.rtp.port_range == PortRangeValue(40000, 40100)
    assert again.rtp.srtp_mode == "mandatory" and again.audio.output_device is None
    assert again.tls.verify_server is False and again.user_agent == "sipsimple"  # default, never stored
    with pytest.raises(ConfigurationError, match="stale"):
        settings.save()


def test_change_notification_lists_what_changed(config, recorder):
    settings = SIPSimpleSettings()
    settings.save()
    settings.save()  # nothing changed: no notification
    settings.rtp.srtp_mode = "off"
    settings.user_agent = "phone/2"
    settings.save()
    changed = recorder.wait("CFGSettingsObjectDidChange", sender=settings)
    assert changed.data.modified == {"rtp.srtp_mode": ("optional", "off"), "user_agent": ("sipsimple", "phone/2")}
    assert len(recorder.of("CFGSettingsObjectDidChange")) == 1
    del settings.user_agent  # back to the default
    settings.save()
    assert recorder.wait("CFGSettingsObjectDidChange", sender=settings, count=2).data.modified == {
        "user_agent": ("phone/2", "sipsimple")}


def test_delete(config, config_dir, recorder):
    demo = Demo("gone")
    demo.name = "x"
    demo.save()
    assert "gone" in stored(config_dir)["demos"]
    demo.delete()
    recorder.wait("CFGSettingsObjectWasDeleted", sender=demo)
    assert "demos" not in stored(config_dir)
    fresh = Demo("gone")
    assert fresh is not demo and fresh.name == "demo" and not fresh.is_stored


def test_unknown_stored_keys_are_kept(config_dir):
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(
        {"demos": {"one": {"name": "x", "future": 1, "group": {"port": 5070, "later": True}}}, "other": {}}))
    manager = ConfigurationManager()
    manager.start(config_dir)
    try:
        demo = Demo("one")
        assert demo.name == "x" and demo.group.port == 5070
        demo.group.port = 5080
        demo.save()
        data = stored(config_dir)
        assert data["demos"]["one"] == {"name": "x", "future": 1, "group": {"port": 5080, "later": True}}
        assert "other" in data
    finally:
        manager.stop()


def test_memory_backend_touches_no_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPSIMPLE_CONFIG_DIR", str(tmp_path / "never"))
    manager = ConfigurationManager()
    backend = MemoryBackend()
    manager.start(backend)
    try:
        settings = SIPSimpleSettings()
        settings.user_agent = "mem"
        settings.save()
        assert backend.load()["settings"]["SIPSimpleSettings"] == {"user_agent": "mem"}
    finally:
        manager.stop()
    assert not (tmp_path / "never").exists()


def test_default_directory_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SIPSIMPLE_CONFIG_DIR", str(tmp_path / "env"))
    assert FileBackend().path == tmp_path / "env" / "config.json"
    monkeypatch.delenv("SIPSIMPLE_CONFIG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert FileBackend().path == tmp_path / "home" / ".config" / "sipsimple" / "config.json"


def test_manager_must_be_started():
    with pytest.raises(ConfigurationError, match="not started"):
        Demo("x")
    manager = ConfigurationManager()
    manager.start(MemoryBackend())
    try:
        with pytest.raises(ConfigurationError, match="already started"):
            manager.start(MemoryBackend())
    finally:
        manager.stop()


# ----------------------------------------------------------------- failures


@pytest.mark.parametrize("broken", ["fsync", "replace"])
def test_failed_write_leaves_the_old_file(config, config_dir, monkeypatch, broken):
    settings = SIPSimpleSettings()
    settings.user_agent = "first"
    settings.save()
    before = (config_dir / "config.json").read_bytes()

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backend_module.os, broken, fail)
    settings.user_agent = "second"
    with pytest.raises(ConfigurationError, match="No space left"):
        settings.save()
    monkeypatch.undo()
    assert (config_dir / "config.json").read_bytes() == before
    assert os.listdir(config_dir) == ["config.json"]  # no temporary file left behind
    assert settings.get_modified() == {"user_agent": ("first", "second")}  # still pending
    assert config.get("settings", "SIPSimpleSettings") == {"user_agent": "first"}  # memory rolled back
    settings.save()  # and it goes through once the disk works again
    assert stored(config_dir)["settings"]["SIPSimpleSettings"] == {"user_agent": "second"}


def test_invalid_value_never_reaches_the_file(config, config_dir):
    settings = SIPSimpleSettings()
    settings.sip.tls_port = 5061
    settings.save()
    before = (config_dir / "config.json").read_bytes()
    for group, name, value in [("sip", "tls_port", 99999), ("rtp", "srtp_mode", "maybe"),
                               ("sip", "transports", ["udp", "smoke"]), ("audio", "sample_rate", 44)]:
        with pytest.raises((ValueError, TypeError), match=f"{group}.{name}"):
            setattr(getattr(settings, group), name, value)
    settings.save()
    assert (config_dir / "config.json").read_bytes() == before


@pytest.mark.parametrize("content, message", [
    ("{not json", "corrupt.*line 1"),
    ("[1, 2]", "expected a JSON object"),
    ('{"settings": 5}', "not JSON objects"),
    (b"\xff\xfe\x00garbage", "cannot read"),
])
def test_corrupt_file_gives_a_clear_error_at_start(config_dir, content, message):
    config_dir.mkdir()
    path = config_dir / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    manager = ConfigurationManager()
    with pytest.raises(ConfigurationError, match=message):
        manager.start(FileBackend(config_dir))
    assert not manager.started


def test_invalid_stored_value_names_the_setting(config_dir):
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(
        {"settings": {"SIPSimpleSettings": {"rtp": {"srtp_mode": "sometimes"}}}}))
    manager = ConfigurationManager()
    manager.start(FileBackend(config_dir))
    try:
        with pytest.raises(ConfigurationError, match=r"SIPSimpleSettings: rtp\.srtp_mode: invalid SRTP mode"):
            SIPSimpleSettings()
    finally:
        manager.stop()


# ----------------------------------------------------------------- the Engine


def test_engine_options_from_settings(config, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    settings = SIPSimpleSettings()
    settings.sip.local_ip = "127.0.0.1"
    settings.sip.transports = ("udp",)
    settings.tls.ca_file = str(ca)
    settings.logs.trace_sip = True
    options = settings.engine_options()
    assert options == {
        "local_ip": "127.0.0.1", "transports": ("udp",), "udp_port": 0, "tcp_port": None, "tls_port": 0,
        "user_agent": "sipsimple", "tls_ca_file": str(ca), "tls_certificate": None,
        "tls_verify_server": True, "trace_sip": True,
    }


def test_engine_start_cfg_uses_the_configuration(config, recorder):
    port = free_port()
    settings = SIPSimpleSettings()
    settings.sip.local_ip = "127.0.0.1"
    settings.sip.transports = ("udp", "tcp")
    settings.sip.udp_port = port
    settings.user_agent = "configured/1.0"
    settings.save()
    engine = Engine()
    engine.start_cfg()
    try:
        started = recorder.wait("SCEngineDidStart", sender=engine)
        assert started.data.udp_port == port and started.data.tcp_port == port and started.data.tls_port is None
        assert engine.local_ip == "127.0.0.1" and engine.transports == ("udp", "tcp")
        assert engine.user_agent == "configured/1.0"
    finally:
        engine.stop()
    engine.start_cfg(transports=("tcp",), udp_port=0)  # overrides win
    try:
        assert engine.transports == ("tcp",)
    finally:
        engine.stop()


def test_concurrent_saves_from_threads(config, config_dir):
    import threading

    errors = []

    def work(n):
        try:
            for i in range(20):
                demo = Demo(f"t{n}")
                demo.group.port = 5000 + i
                demo.save()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    data = stored(config_dir)["demos"]
    assert data == {f"t{n}": {"group": {"port": 5019}} for n in range(6)}
