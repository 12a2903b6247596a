"""Offer/answer helpers for the Session (RFC 3264): m-line bookkeeping and hold directions."""

from __future__ import annotations

import random

from sipsimple.core.sdp import SDPConnection, SDPMediaStream, SDPSession

__all__ = ["stream_type", "proposed_streams", "rejected_line", "new_local_sdp", "hold_direction",
           "answer_direction", "glare_delay"]


def stream_type(media: SDPMediaStream) -> str | None:
    """'audio', 'chat' or None for an m-line we do not handle."""
    transport = media.transport.upper()
    if media.media == "audio" and transport.startswith("RTP/"):
        return "audio"
    if media.media == "message" and "MSRP" in transport:
        if any(a.name == "file-selector" for a in media.attributes):
            return "file-transfer"
        return "chat"
    return None


def proposed_streams(sdp: SDPSession | None, known: int = 0) -> list[str]:
    """The stream types offered (port != 0) in m-lines from index ``known`` on."""
    if sdp is None:
        return []
    out = []
    for media in sdp.media[known:]:
        kind = stream_type(media)
        if media.port != 0 and kind is not None:
            out.append(kind)
    return out


def rejected_line(media: SDPMediaStream) -> SDPMediaStream:
    """The answer to an m-line we refuse: same media and transport, port 0 (RFC 3264 6).

    RTP lines keep one static payload type: a dynamic one would need its rtpmap.
    """
    if media.transport.upper().startswith("RTP/"):
        return SDPMediaStream(media.media, 0, media.transport, ["0"])
    return SDPMediaStream(media.media, 0, media.transport, list(media.formats) or ["*"])


def new_local_sdp(local_ip: str, session_id: int, version: int, media: list[SDPMediaStream]) -> SDPSession:
    return SDPSession(local_ip, id=session_id, version=version, user="-", name="sipsimple",
                      connection=SDPConnection(local_ip), media=media)


def hold_direction(on_hold_by_local: bool, on_hold_by_remote: bool) -> str:
    """What we offer: sendonly when we hold, inactive when both do."""
    if on_hold_by_local:
        return "inactive" if on_hold_by_remote else "sendonly"
    return "recvonly" if on_hold_by_remote else "sendrecv"


def answer_direction(remote: str, on_hold_by_local: bool) -> str:
    """Our answer's direction to a remote offer's direction (RFC 3264 6.1)."""
    ours = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}[remote]
    if on_hold_by_local:
        ours = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(ours, ours)
    return ours


def glare_delay(owner_of_call_id: bool) -> float:
    """RFC 3261 14.1: the Call-ID owner waits 2.1-4 s, the other party 0-2 s."""
    return random.uniform(2.1, 4.0) if owner_of_call_id else random.uniform(0.0, 2.0)
