"""AudioStream: an RTP audio stream of a Session, on the media engine's AudioTransport.

It turns the media engine's plain media descriptions into SDP m-lines and back,
so offer/answer stays in the middleware while codecs, SRTP keys and the
negotiation of payload types are the media engine's.
"""

from __future__ import annotations

import logging
from typing import Any

from sipsimple.core.sdp import DIRECTIONS, SDPAttribute, SDPConnection, SDPMediaStream, SDPSession

__all__ = ["AudioStream", "media_to_sdp", "sdp_to_media", "is_audio", "STATIC_PAYLOAD_TYPES"]

log = logging.getLogger("sipsimple.streams.audio")

# RFC 3551 static payload types the engine may see without an rtpmap
STATIC_PAYLOAD_TYPES = {0: ("PCMU", 8000, 1), 3: ("GSM", 8000, 1), 8: ("PCMA", 8000, 1), 9: ("G722", 8000, 1)}
DTMF_DIGITS = frozenset("0123456789*#ABCD")


def is_audio(media: SDPMediaStream) -> bool:
    return media.media == "audio" and media.transport.upper().startswith("RTP/")


def media_to_sdp(description: dict[str, Any]) -> SDPMediaStream:
    """An m=audio line from the media engine's description of our side."""
    attrs: list[SDPAttribute] = []
    for pt, name, rate, channels, fmtp in description["codecs"]:
        attrs.append(SDPAttribute("rtpmap", f"{pt} {name}/{rate}" + (f"/{channels}" if channels > 1 else "")))
        if fmtp:
            attrs.append(SDPAttribute("fmtp", f"{pt} {fmtp}"))
    rtcp_port = description.get("rtcp_port")
    if rtcp_port and rtcp_port != description["port"] + 1:
        attrs.append(SDPAttribute("rtcp", str(rtcp_port)))
    if description.get("rtcp_mux"):
        attrs.append(SDPAttribute("rtcp-mux"))
    attrs.append(SDPAttribute("ptime", str(description.get("ptime", 20))))
    attrs.extend(SDPAttribute("crypto", line) for line in description.get("crypto", ()))
    attrs.append(SDPAttribute(description.get("direction", "sendrecv")))
    return SDPMediaStream("audio", description["port"], description["transport"],
                          [str(codec[0]) for codec in description["codecs"]],
                          connection=SDPConnection(description["address"]), attributes=attrs)


def sdp_to_media(session: SDPSession, media: SDPMediaStream) -> dict[str, Any]:
    """The media engine's description of the other side, from its SDP."""
    connection = media.connection or session.connection
    if connection is None:
        raise ValueError("the audio stream has no c= line")
    rtpmap, fmtp = media.rtpmap, media.fmtp
    codecs = []
    for fmt in media.formats:
        if fmt in rtpmap:
            name, rate, params = rtpmap[fmt]
            channels = int(params) if params and params.isdigit() else 1
        elif fmt.isdigit() and int(fmt) in STATIC_PAYLOAD_TYPES:
            name, rate, channels = STATIC_PAYLOAD_TYPES[int(fmt)]
        else:
            continue
        if fmt.isdigit():
            codecs.append((int(fmt), name, rate, channels, fmtp.get(fmt, "")))
    direction = media.direction
    if not any(a.name in DIRECTIONS for a in media.attributes):
        direction = next((a.name for a in session.attributes if a.name in DIRECTIONS), "sendrecv")
    if connection.address in ("0.0.0.0", "::"):  # RFC 2543 style hold
        direction = "inactive" if direction in ("recvonly", "inactive") else "sendonly"
    rtcp = media.attributes.getfirst("rtcp")  # type: ignore[attr-defined]
    ptime = media.attributes.getfirst("ptime")  # type: ignore[attr-defined]
    description: dict[str, Any] = {
        "address": connection.address,
        "port": media.port,
        "transport": media.transport,
        "codecs": codecs,
        "crypto": [c for c in media.attributes.getall("crypto") if c],  # type: ignore[attr-defined]
        "direction": direction,
        "rtcp_mux": any(a.name == "rtcp-mux" for a in media.attributes),
    }
    if rtcp and rtcp.split()[0].isdigit():
        description["rtcp_port"] = int(rtcp.split()[0])
    if ptime and ptime.isdigit():
        description["ptime"] = int(ptime)
    return description


def _media():
    from sipsimple.core import _media

    return _media


class AudioStream:
    """One audio stream: an AudioTransport connected to the sound device of the bridge."""

    type = "audio"

    def __init__(self, local_ip: str, srtp_mode: str = "optional", codecs: list[str] | None = None,
                 port_range: tuple[int, int] = (50000, 60000), connect_device: bool = True) -> None:
        media = _media()
        engine = media.MediaEngine()
        if not engine.running:
            engine.start()
        self.transport = media.AudioTransport(local_ip=local_ip, port_range=port_range, srtp=srtp_mode,
                                              codecs=codecs)
        self.connect_device = connect_device
        self.recorder = None
        self.local_direction = "sendrecv"
        self.remote_direction = "sendrecv"
        self._device_connected = False
        self.final_statistics: dict[str, Any] | None = None

    # ---------------------------------------------------------- SDP

    def offer(self, direction: str = "sendrecv") -> SDPMediaStream:
        return media_to_sdp(self.transport.local_media(direction=direction))

    def answer(self, remote_sdp: SDPSession, remote_media: SDPMediaStream, direction: str = "sendrecv") -> SDPMediaStream:
        """Our answer to the other side's m-line; MediaError when nothing matches."""
        remote = sdp_to_media(remote_sdp, remote_media)
        return media_to_sdp(self.transport.local_media(remote=remote, direction=direction))

    # ------------------------------------------------------- media

    def start(self, remote_sdp: SDPSession, remote_media: SDPMediaStream, direction: str) -> None:
        remote = sdp_to_media(remote_sdp, remote_media)
        self.local_direction, self.remote_direction = direction, remote["direction"]
        if self.transport.is_started:
            self.transport.update(remote, direction=direction)
        else:
            self.transport.start(remote, direction=direction)
        if self.connect_device and not self._device_connected:
            engine = _media().MediaEngine()
            engine.connect(self.transport, engine.device_port)
            engine.connect(engine.device_port, self.transport)
            self._device_connected = True

    def stop(self) -> None:
        self.stop_recording()
        # the engine frees the stream's counters with it: keep the last reading
        if self.transport.is_started:
            self.final_statistics = dict(self.transport.statistics)
            codec = self.transport.codec
            self.final_statistics.setdefault("codec", codec.name if codec is not None else None)
        self.transport.stop()

    def send_dtmf(self, digit: str) -> None:
        if not isinstance(digit, str) or len(digit) != 1 or digit.upper() not in DTMF_DIGITS:
            raise ValueError(f"invalid DTMF digit {digit!r}; expected one of 0-9 * # A-D")
        self.transport.send_dtmf(digit.upper())

    def start_recording(self, path: str) -> None:
        media = _media()
        engine = media.MediaEngine()
        recorder = media.WaveRecorder(path)
        recorder.start()
        engine.connect(self.transport, recorder)        # what the other side says
        engine.connect(engine.device_port, recorder)    # and what we say
        self.recorder = recorder

    def stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.stop()
