"""Typed stub of sipsimple.core._media, the media engine.

Threads: ``MediaEngine.start()`` spawns one media thread (C, no GIL) that polls
every RTP/RTCP socket with epoll and runs the conference bridge on a 20 ms
timerfd clock, and one Python "event pump" thread that turns media events
into calls of ``MediaEngine().event_handler(name, sender, data)``; the default
handler posts ``sipsimple.notification`` notifications:

    AudioStreamGotDTMF              sender AudioTransport, data: digit
    AudioStreamGotNoAudio           no RTP within no_audio_timeout of start()
    AudioStreamDidTimeout           no RTP for rtp_timeout after some arrived
    RTPStreamDidChangeRemoteAddress symmetric RTP latched, data: address, port
    WavePlayerDidEnd                sender WavePlayer

Media descriptions (``AudioTransport.local_media()`` and the ``remote``
argument of ``start``/``update``) are plain dicts::

    {"address": "192.0.2.1", "port": 50000, "rtcp_port": 50001,   # rtcp_port optional
     "rtcp_mux": True,          # offered by us; echoed in answers; optional in remote
     "transport": "RTP/AVP" | "RTP/SAVP",
     "codecs": [(pt, name, clock_rate, channels, fmtp), ...],      # preference order,
                                                                   # telephone-event included
     "ptime": 20, "crypto": ["1 AES_CM_128_HMAC_SHA1_80 inline:...", ...],
     "direction": "sendrecv" | "sendonly" | "recvonly" | "inactive"}

``sdp_from_media()`` / ``media_from_sdp()`` convert to and from
``sipsimple.core.sdp.SDPMediaStream``. The media engine's sample rate and
frame size are fixed while any port exists: start the engine first. For many
streams prefer ``start(sample_rate=16000)`` (or 8000): at 48 kHz resampling
G.711/G.722 dominates the CPU cost; Opus runs natively at the bridge rate.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
SRTPMode = Literal["off", "optional", "mandatory"]
PortLike = "int | BridgePort"
CodecEntry = tuple[int, str, int, int, str]
MediaDescription = dict[str, Any]

DEFAULT_CODECS: tuple[str, ...]
SRTP_SUITES: dict[str, int]
DEFAULT_SRTP_SUITES: tuple[str, ...]

class MediaError(Exception): ...

class AudioCodec:
    name: str
    clock_rate: int
    channels: int
    sample_rate: int
    static_pt: int | None
    fmtp: str

def available_codecs() -> list[AudioCodec]: ...
def generate_srtp_key(suite: str) -> bytes: ...
def build_crypto_line(tag: int, suite: str, key: bytes) -> str: ...
def parse_crypto_line(line: str) -> tuple[int, str, bytes]: ...
def list_devices() -> list[dict[str, Any]]: ...

class MediaEngine:
    """Process-wide singleton: ``MediaEngine() is MediaEngine()``."""

    event_handler: Callable[[str, Any, dict[str, Any]], None]
    list_devices: ClassVar[Callable[[], list[dict[str, Any]]]]
    def __new__(cls) -> MediaEngine: ...
    @property
    def running(self) -> bool: ...
    @property
    def sample_rate(self) -> int: ...
    @property
    def frame_ms(self) -> int: ...
    @property
    def frame_samples(self) -> int: ...
    @property
    def device_port(self) -> int: ...
    @property
    def devices(self) -> tuple[str | None, str | None, bool]: ...
    @property
    def statistics(self) -> dict[str, int]: ...
    def start(
        self,
        sample_rate: Literal[8000, 16000, 32000, 48000] = 48000,
        frame_ms: Literal[10, 20, 40] = 20,
        device: str | None = "null",
        input_device: str | None = None,
        output_device: str | None = None,
        echo_cancellation: bool = False,
    ) -> None: ...
    def stop(self) -> None: ...
    def set_devices(
        self, input: str | None = "system_default", output: str | None = "system_default",
        echo_cancellation: bool | None = None,
    ) -> None: ...
    def connect(self, src: PortLike, dst: PortLike) -> None: ...
    def disconnect(self, src: PortLike, dst: PortLike) -> None: ...
    def connections(self) -> list[tuple[int, int]]: ...
    def mute(self, port: PortLike, muted: bool = True) -> None: ...
    def is_muted(self, port: PortLike) -> bool: ...
    def level(self, port: PortLike) -> float: ...
    def input_level(self, port: PortLike) -> float: ...

AudioMixer = MediaEngine

class BridgePort:
    @property
    def port(self) -> int: ...

class AudioTransport(BridgePort):
    local_ip: str
    local_port: int
    local_rtcp_port: int
    srtp_mode: SRTPMode
    codecs: tuple[str, ...]
    srtp_suites: tuple[str, ...]
    ptime: int
    dtmf_received: list[str]
    def __init__(
        self,
        local_ip: str = "127.0.0.1",
        port_range: tuple[int, int] = (50000, 60000),
        srtp: SRTPMode = "off",
        codecs: Sequence[str] | None = None,
        ptime: int = 20,
        srtp_suites: Sequence[str] | None = None,
        no_audio_timeout: float = 5.0,
        rtp_timeout: float = 30.0,
        rtcp_interval: float = 5.0,
        opus_dtx: bool = False,
        opus_bitrate: int = 0,
        opus_complexity: int = 5,
        dtmf_local_tone: bool = False,
        jitter_min_ms: int = 0,
        jitter_max_ms: int = 300,
    ) -> None: ...
    def local_media(self, remote: MediaDescription | None = None,
                    direction: Direction | None = None) -> MediaDescription: ...
    def start(self, remote: MediaDescription, direction: Direction | None = None) -> None: ...
    def update(self, remote: MediaDescription, direction: Direction | None = None) -> None: ...
    def stop(self) -> None: ...
    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None: ...
    @property
    def is_started(self) -> bool: ...
    @property
    def codec(self) -> AudioCodec | None: ...
    @property
    def sample_rate(self) -> int | None: ...
    @property
    def srtp_active(self) -> bool: ...
    @property
    def srtp_suite(self) -> str | None: ...
    @property
    def direction(self) -> Direction: ...
    @property
    def remote_address_sdp(self) -> tuple[str, int] | None: ...
    @property
    def remote_address_received(self) -> tuple[str, int] | None: ...
    @property
    def statistics(self) -> dict[str, Any]: ...

class ToneGenerator(BridgePort):
    level: float
    frequencies: tuple[float, ...]
    active: bool
    def __init__(self, frequencies: float | Iterable[float] = 1000, level: float = -12.0) -> None: ...
    def stop(self) -> None: ...

class WavePlayer(BridgePort):
    path: str
    loop: bool
    ended: bool
    def __init__(self, path: str, loop: bool = False) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def playing(self) -> bool: ...
    @property
    def duration(self) -> float: ...

class WaveRecorder(BridgePort):
    path: str
    def __init__(self, path: str, sync_interval: float = 1.0) -> None: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def duration(self) -> float: ...

class NumpyTap(BridgePort):
    def __init__(self, capacity_ms: int = 5000) -> None: ...
    @property
    def frame_size(self) -> int: ...
    @property
    def available(self) -> int: ...
    def read(self, max_samples: int | None = None) -> npt.NDArray[np.int16]: ...
    def read_stamped(self) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int64]]: ...
    def read_frames(self) -> npt.NDArray[np.int16]: ...
    def write(self, samples: npt.ArrayLike) -> int: ...
    def clear(self) -> None: ...
    def stop(self) -> None: ...

# conversion to/from sipsimple.core.sdp (the m=audio line)
def sdp_from_media(desc: MediaDescription) -> Any: ...  # -> SDPMediaStream
def media_from_sdp(stream: Any, session: Any = None) -> MediaDescription: ...
