"""The global settings of the SDK: ``SIPSimpleSettings()``, a singleton SettingsObject.

::

    ConfigurationManager().start()
    settings = SIPSimpleSettings()
    settings.sip.transports = ('udp', 'tls')
    settings.rtp.audio_codec_list = ('opus', 'PCMA')
    settings.save()
    Engine().start_cfg()          # uses settings.engine_options()
"""

from __future__ import annotations

from typing import Any

from sipsimple.configuration.base import Setting, SettingsGroup, SettingsObject
from sipsimple.configuration.datatypes import (
    AUDIO_CODECS,
    AudioCodecList,
    AudioDevice,
    IPAddress,
    Path,
    Port,
    PortRange,
    SampleRate,
    SRTPMode,
    Transports,
    UserAgent,
)

__all__ = ["SIPSimpleSettings"]


class SIPSettings(SettingsGroup):
    """SIP transports and where they listen."""

    transports = Setting(type=Transports, default=("udp", "tcp"))
    udp_port = Setting(type=Port, default=0)  # 0: pick a free port
    tcp_port = Setting(type=Port, default=None, nillable=True)  # None: the UDP port
    tls_port = Setting(type=Port, default=0)
    local_ip = Setting(type=IPAddress, default=None, nillable=True)  # None: the host's main address


class RTPSettings(SettingsGroup):
    """Media transport and codecs."""

    port_range = Setting(type=PortRange, default=(50000, 50500))
    audio_codec_list = Setting(type=AudioCodecList, default=AUDIO_CODECS)  # order of preference
    srtp_mode = Setting(type=SRTPMode, default="optional")


class AudioSettings(SettingsGroup):
    """Sound devices: 'system_default', a device name, or None for no device."""

    input_device = Setting(type=AudioDevice, default="system_default", nillable=True)
    output_device = Setting(type=AudioDevice, default="system_default", nillable=True)
    sample_rate = Setting(type=SampleRate, default=48000)


class TLSSettings(SettingsGroup):
    """TLS material: ``ca_file`` to check servers with, our ``certificate`` (PEM with key)."""

    ca_file = Setting(type=Path, default=None, nillable=True)
    certificate = Setting(type=Path, default=None, nillable=True)
    verify_server = Setting(type=bool, default=True)


class LogsSettings(SettingsGroup):
    trace_sip = Setting(type=bool, default=False)


class SIPSimpleSettings(SettingsObject):
    """The SDK's global settings (stored as section 'settings', id 'SIPSimpleSettings')."""

    __section__ = "settings"
    __id__ = "SIPSimpleSettings"

    user_agent = Setting(type=UserAgent, default="sipsimple")
    recording_directory = Setting(type=Path, default="~/.local/share/sipsimple/recordings")

    sip = SIPSettings
    rtp = RTPSettings
    audio = AudioSettings
    tls = TLSSettings
    logs = LogsSettings

    def engine_options(self) -> dict[str, Any]:
        """The keyword arguments of ``Engine.start()`` these settings give."""
        with self._lock:
            return {
                "local_ip": self.sip.local_ip,
                "transports": self.sip.transports,
                "udp_port": self.sip.udp_port,
                "tcp_port": self.sip.tcp_port,
                "tls_port": self.sip.tls_port,
                "user_agent": self.user_agent,
                "tls_ca_file": Path.normalize(self.tls.ca_file) if self.tls.ca_file else None,
                "tls_certificate": Path.normalize(self.tls.certificate) if self.tls.certificate else None,
                "tls_verify_server": self.tls.verify_server,
                "trace_sip": self.logs.trace_sip,
            }
