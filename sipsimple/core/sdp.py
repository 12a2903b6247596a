"""The SDP model (RFC 4566): sessions, media streams, connections and attributes.

Parsing goes through Sofia-SIP's SDP parser; ``str()`` writes the text and runs
it through Sofia's parser and printer, so what leaves the SDK is SDP that Sofia
accepts (an SDPSession that cannot be printed raises ValueError).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sipsimple.core import _core

__all__ = ["SDPSession", "SDPMediaStream", "SDPAttribute", "SDPConnection", "SDPBandwidth"]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass
class SDPConnection:
    """``c=IN IP4 address``."""

    address: str
    address_type: str = "IP4"
    network_type: str = "IN"

    def __str__(self) -> str:
        return f"{self.network_type} {self.address_type} {self.address}"


@dataclass
class SDPAttribute:
    """``a=name:value`` (value None for a property attribute such as ``a=sendonly``)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass
class SDPBandwidth:
    """``b=modifier:kbps``."""

    modifier: str
    value: int

    def __str__(self) -> str:
        return f"{self.modifier}:{self.value}"


class _Attributes(list):
    def getfirst(self, name: str, default: str | None = None) -> str | None:
        for attr in self:
            if attr.name == name:
                return attr.value
        return default

    def getall(self, name: str) -> list[str | None]:
        return [attr.value for attr in self if attr.name == name]

    def remove_all(self, name: str) -> None:
        self[:] = [attr for attr in self if attr.name != name]


def _attributes(items) -> _Attributes:
    return _Attributes(item if isinstance(item, SDPAttribute) else SDPAttribute(*item) for item in items)


@dataclass
class SDPMediaStream:
    """One ``m=`` line with its connection, bandwidths and attributes."""

    media: str
    port: int
    transport: str
    formats: list[str]
    connection: SDPConnection | None = None
    attributes: list[SDPAttribute] = field(default_factory=list)
    bandwidths: list[SDPBandwidth] = field(default_factory=list)
    info: str | None = None
    port_count: int = 1

    def __post_init__(self) -> None:
        self.attributes = _attributes(self.attributes)

    @property
    def direction(self) -> str:
        """sendrecv, sendonly, recvonly or inactive (sendrecv when absent)."""
        for attr in self.attributes:
            if attr.name in DIRECTIONS:
                return attr.name
        return "sendrecv"

    @direction.setter
    def direction(self, value: str) -> None:
        if value not in DIRECTIONS:
            raise ValueError(f"invalid SDP direction {value!r}; expected one of {DIRECTIONS}")
        self.attributes[:] = [a for a in self.attributes if a.name not in DIRECTIONS]
        self.attributes.append(SDPAttribute(value))

    @property
    def rejected(self) -> bool:
        return self.port == 0

    @property
    def rtpmap(self) -> dict[str, tuple[str, int, str | None]]:
        """payload type -> (encoding, clock rate, channels/params) from a=rtpmap."""
        out = {}
        for value in self.attributes.getall("rtpmap"):  # type: ignore[attr-defined]
            if not value:
                continue
            pt, _, spec = value.partition(" ")
            parts = spec.split("/")
            if len(parts) >= 2 and parts[1].isdigit():
                out[pt] = (parts[0], int(parts[1]), parts[2] if len(parts) > 2 else None)
        return out

    @property
    def fmtp(self) -> dict[str, str]:
        out = {}
        for value in self.attributes.getall("fmtp"):  # type: ignore[attr-defined]
            if value:
                pt, _, params = value.partition(" ")
                out[pt] = params
        return out

    def lines(self) -> list[str]:
        port = f"{self.port}/{self.port_count}" if self.port_count > 1 else str(self.port)
        out = [f"m={self.media} {port} {self.transport} {' '.join(self.formats)}"]
        if self.info:
            out.append(f"i={self.info}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        out.extend(f"a={a}" for a in self.attributes)
        return out


@dataclass
class SDPSession:
    """A session description: origin, connection, timing, attributes and media."""

    address: str
    id: int = 0
    version: int = 0
    user: str = "-"
    name: str = "-"
    connection: SDPConnection | None = None
    media: list[SDPMediaStream] = field(default_factory=list)
    attributes: list[SDPAttribute] = field(default_factory=list)
    bandwidths: list[SDPBandwidth] = field(default_factory=list)
    start_time: int = 0
    stop_time: int = 0
    info: str | None = None
    address_type: str = "IP4"

    def __post_init__(self) -> None:
        self.attributes = _attributes(self.attributes)

    @classmethod
    def parse(cls, data: str | bytes) -> SDPSession:
        """Parse SDP text with Sofia's parser; ValueError says what is wrong."""
        d = _core.parse_sdp(data)
        origin = d["origin"]
        if origin is None:
            raise ValueError("invalid SDP: no o= line")
        user, sid, version, o_conn = origin
        media = []
        for m in d["media"]:
            attrs: list[SDPAttribute] = []
            for pt, enc, rate, params, fmtp in m["rtpmaps"]:
                attrs.append(SDPAttribute("rtpmap", f"{pt} {enc}/{rate}" + (f"/{params}" if params else "")))
                if fmtp:
                    attrs.append(SDPAttribute("fmtp", f"{pt} {fmtp}"))
            attrs.extend(SDPAttribute(n, v) for n, v in m["attributes"])
            conn = m["connection"]
            # for RTP media Sofia keeps the payload types in its rtpmap list only
            formats = m["formats"] or [str(rtpmap[0]) for rtpmap in m["rtpmaps"]]
            media.append(SDPMediaStream(
                media=m["media"], port=m["port"], transport=m["transport"], formats=formats,
                connection=SDPConnection(conn[1], conn[0]) if conn else None, attributes=attrs,
                bandwidths=[SDPBandwidth(mod, val) for mod, val in m["bandwidths"]],
                info=m["info"], port_count=max(1, m["port_count"]),
            ))
        conn = d["connection"]
        return cls(
            address=o_conn[1] if o_conn else "0.0.0.0", address_type=o_conn[0] if o_conn else "IP4",
            id=sid, version=version, user=user or "-", name=d["name"] or "-",
            connection=SDPConnection(conn[1], conn[0]) if conn else None,
            media=media, attributes=[SDPAttribute(n, v) for n, v in d["attributes"]],
            bandwidths=[SDPBandwidth(mod, val) for mod, val in d["bandwidths"]],
            start_time=d["time"][0], stop_time=d["time"][1], info=d["info"],
        )

    def text(self) -> str:
        """The SDP as written by this model, before Sofia's printer."""
        out = [
            "v=0",
            f"o={self.user} {self.id} {self.version} IN {self.address_type} {self.address}",
            f"s={self.name}",
        ]
        if self.info:
            out.append(f"i={self.info}")
        if self.connection is not None:
            out.append(f"c={self.connection}")
        out.extend(f"b={b}" for b in self.bandwidths)
        out.append(f"t={self.start_time} {self.stop_time}")
        out.extend(f"a={a}" for a in self.attributes)
        for m in self.media:
            out.extend(m.lines())
        return "\r\n".join(out) + "\r\n"

    def __str__(self) -> str:
        return _core.print_sdp(self.text()).decode("utf-8")

    def __bytes__(self) -> bytes:
        return _core.print_sdp(self.text())
