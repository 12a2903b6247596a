"""Setting types: each one checks and normalises a value and converts it to and from JSON.

A setting type is an object with three methods (see :class:`DataType`):

- ``validate(value)`` returns the normalised value or raises ValueError/TypeError,
- ``dump(value)`` gives a JSON-compatible form of a validated value,
- ``load(data)`` reads the JSON form back (and validates it).

``Setting(type=...)`` accepts an instance, a class that can be built without
arguments (``Port`` and ``Port()`` are the same), or one of the builtins
``bool``, ``int``, ``float`` and ``str``, which are mapped to the types here.
Values are immutable (tuples, frozen URIs, frozen dataclasses) so that a
setting can only change through assignment, where it is validated.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from sipsimple.core import SIPURI, FrozenSIPURI, Route

__all__ = [
    "DataType", "as_datatype",
    "Boolean", "Integer", "Float", "String", "NonEmptyString", "UserAgent",
    "Port", "PortRange", "PortRangeValue", "Transports", "TRANSPORTS",
    "AudioCodecList", "AUDIO_CODECS", "SRTPMode", "SRTP_MODES", "SampleRate", "AudioDevice",
    "IPAddress", "SIPAddress", "SIPURIType", "RouteType", "MSRPRelayURI",
    "Path", "Duration",
]

TRANSPORTS = ("udp", "tcp", "tls")
AUDIO_CODECS = ("opus", "G722", "PCMU", "PCMA", "GSM")
SRTP_MODES = ("off", "optional", "mandatory")
SAMPLE_RATES = (8000, 16000, 32000, 48000)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DataType:
    """Base of setting types. Subclasses override :meth:`validate` and, when the
    JSON form differs from the value, :meth:`dump` and :meth:`load`."""

    name: ClassVar[str] = "value"

    def validate(self, value: Any) -> Any:
        return value

    def dump(self, value: Any) -> Any:
        return value

    def load(self, data: Any) -> Any:
        return self.validate(data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def as_datatype(kind: Any) -> DataType:
    """The DataType for what ``Setting(type=...)`` was given."""
    if isinstance(kind, DataType):
        return kind
    builtin = {bool: Boolean, int: Integer, float: Float, str: String}.get(kind)
    if builtin is not None:
        return builtin()
    if isinstance(kind, type) and issubclass(kind, DataType):
        return kind()
    raise TypeError(f"not a setting type: {kind!r}")


# ------------------------------------------------------------------ basics


class Boolean(DataType):
    """True or False (no truthy strings or numbers: a typo should not enable something)."""

    name = "boolean"

    def validate(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected True or False, not {value!r}")
        return value


class Integer(DataType):
    """An int, optionally bounded (inclusive)."""

    name = "integer"

    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, not {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{value} is below the minimum {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"{value} is above the maximum {self.maximum}")
        return value


class Float(DataType):
    """A number, stored as float."""

    name = "number"

    def validate(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, not {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"expected a finite number, not {value!r}")
        return float(value)


class String(DataType):
    """A str without control characters."""

    name = "string"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, not {value!r}")
        if _CONTROL.search(value):
            raise ValueError(f"control characters are not allowed: {value!r}")
        return value


class NonEmptyString(String):
    name = "non-empty string"

    def validate(self, value: Any) -> str:
        value = super().validate(value)
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class UserAgent(NonEmptyString):
    """The User-Agent header value."""

    name = "user agent"


# ------------------------------------------------------------------ network


class Port(Integer):
    """A TCP/UDP port, 0..65535 (0: let the system pick)."""

    name = "port"

    def __init__(self, allow_zero: bool = True) -> None:
        super().__init__(0 if allow_zero else 1, 65535)

    def validate(self, value: Any) -> int:
        try:
            return super().validate(value)
        except ValueError:
            raise ValueError(f"{value} is not a port number ({self.minimum}..65535)") from None


@dataclass(frozen=True)
class PortRangeValue:
    """An inclusive range of ports ``start..end``; RTP uses pairs from an even start."""

    start: int
    end: int

    def __iter__(self):
        return iter((self.start, self.end))

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


class PortRange(DataType):
    """A port range: ``PortRangeValue``, a ``(start, end)`` pair or ``"start-end"``.

    Ports 1..65535, start below end, start even (RTP takes even ports, RTCP the next odd one).
    """

    name = "port range"

    def validate(self, value: Any) -> PortRangeValue:
        if isinstance(value, PortRangeValue):
            start, end = value.start, value.end
        elif isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value)
            if match is None:
                raise ValueError(f"expected 'start-end', not {value!r}")
            start, end = int(match.group(1)), int(match.group(2))
        elif isinstance(value, tuple | list) and len(value) == 2:
            start, end = value
        else:
            raise TypeError(f"expected a (start, end) pair, not {value!r}")
        for port in (start, end):
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise ValueError(f"{port!r} is not a port number (1..65535)")
        if start >= end:
            raise ValueError(f"the range {start}-{end} is empty (start must be below end)")
        if start % 2:
            raise ValueError(f"the range must start on an even port, not {start}")
        return PortRangeValue(start, end)

    def dump(self, value: PortRangeValue) -> list[int]:
        return [value.start, value.end]


class Transports(DataType):
    """A non-empty tuple of distinct transports from udp, tcp, tls (case-insensitive)."""

    name = "transport list"

    def validate(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, tuple | list):
            raise TypeError(f"expected a list of transports, not {value!r}")
        result: list[str] = []
        for item in value:
            if not isinstance(item, str) or item.lower() not in TRANSPORTS:
                raise ValueError(f"unknown transport {item!r}; expected any of {', '.join(TRANSPORTS)}")
            if item.lower() in result:
                raise ValueError(f"transport {item!r} is listed twice")
            result.append(item.lower())
        if not result:
            raise ValueError("at least one transport is needed")
        return tuple(result)

    def dump(self, value: tuple[str, ...]) -> list[str]:
        return list(value)


class IPAddress(DataType):
    """An IPv4 address as a string (what the Engine binds to)."""

    name = "IPv4 address"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected an IPv4 address string, not {value!r}")
        try:
            address = ipaddress.IPv4Address(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None
        return str(address)


_USER_RE = re.compile(r"^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$")
_DOMAIN_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?$")


class SIPAddress(DataType):
    """``user@domain``: an address of record without scheme (how accounts are named).

    The domain is a host name or an IPv4 address (lower-cased); the user part
    takes what RFC 3261 allows unescaped in a user.
    """

    name = "SIP address"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected 'user@domain', not {value!r}")
        text = value.strip()
        if text.lower().startswith(("sip:", "sips:")):
            text = text.split(":", 1)[1]
        user, sep, domain = text.rpartition("@")
        if not sep or not user or not domain:
            raise ValueError(f"expected 'user@domain', not {value!r}")
        if not _USER_RE.match(user):
            raise ValueError(f"invalid user part in {value!r}")
        if not _DOMAIN_RE.match(domain):
            raise ValueError(f"invalid domain in {value!r}")
        return f"{user}@{domain.lower()}"


class SIPURIType(DataType):
    """A SIP URI (value: FrozenSIPURI; accepts a SIPURI or its text)."""

    name = "SIP URI"

    def validate(self, value: Any) -> FrozenSIPURI:
        if isinstance(value, SIPURI):
            return value.freeze()
        if not isinstance(value, str):
            raise TypeError(f"expected a SIP URI, not {value!r}")
        return SIPURI.parse(value).freeze()

    def dump(self, value: FrozenSIPURI) -> str:
        return str(value)


class RouteType(DataType):
    """An outbound proxy: a Route, or ``host[:port][;transport=...]`` text."""

    name = "route"

    def validate(self, value: Any) -> Route:
        if isinstance(value, Route):
            return value
        if not isinstance(value, str):
            raise TypeError(f"expected a Route or 'host[:port][;transport=udp|tcp|tls]', not {value!r}")
        text = value.strip()
        if text.lower().startswith("sip:"):
            text = text[4:]
        return Route.parse(text)

    def dump(self, value: Route) -> str:
        return str(value)


_MSRP_RELAY_RE = re.compile(r"^(msrps?)://(?:[^@/\s]+@)?([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?;tcp$")


class MSRPRelayURI(DataType):
    """An MSRP relay: ``msrp://host[:port];tcp`` or ``msrps://host[:port];tcp`` (RFC 4976)."""

    name = "MSRP relay URI"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected an msrp(s):// URI, not {value!r}")
        match = _MSRP_RELAY_RE.match(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not an MSRP relay URI such as 'msrps://relay.example.com:2855;tcp'")
        if match.group(3) is not None and not 0 < int(match.group(3)) < 65536:
            raise ValueError(f"invalid port in {value!r}")
        return value.strip()


# ------------------------------------------------------------------ media


class AudioCodecList(DataType):
    """A non-empty tuple of distinct codec names, in order of preference.

    Names are matched case-insensitively and given back in their usual
    spelling: opus, G722, PCMU, PCMA, GSM.
    """

    name = "audio codec list"

    def validate(self, value: Any) -> tuple[str, ...]:
        if isinstance(value, str) or not isinstance(value, tuple | list):
            raise TypeError(f"expected a list of codec names, not {value!r}")
        known = {codec.lower(): codec for codec in AUDIO_CODECS}
        result: list[str] = []
        for item in value:
            codec = known.get(item.lower()) if isinstance(item, str) else None
            if codec is None:
                raise ValueError(f"unknown codec {item!r}; expected any of {', '.join(AUDIO_CODECS)}")
            if codec in result:
                raise ValueError(f"codec {codec} is listed twice")
            result.append(codec)
        if not result:
            raise ValueError("at least one codec is needed")
        return tuple(result)

    def dump(self, value: tuple[str, ...]) -> list[str]:
        return list(value)


class SRTPMode(DataType):
    """SRTP use: 'off', 'optional' (offer, accept plain RTP) or 'mandatory'."""

    name = "SRTP mode"

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in SRTP_MODES:
            raise ValueError(f"invalid SRTP mode {value!r}; expected one of {', '.join(SRTP_MODES)}")
        return value.lower()


class SampleRate(DataType):
    """The audio sample rate in Hz: 8000, 16000, 32000 or 48000."""

    name = "sample rate"

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value not in SAMPLE_RATES:
            raise ValueError(f"invalid sample rate {value!r}; expected one of {', '.join(map(str, SAMPLE_RATES))}")
        return value


class AudioDevice(String):
    """A sound device: 'system_default' or the name of a device (None, when nillable: no device)."""

    name = "audio device"

    def validate(self, value: Any) -> str:
        value = super().validate(value)
        if not value.strip():
            raise ValueError("a device name must not be empty (use 'system_default' or None)")
        return value


# ------------------------------------------------------------------ files and time


class Path(String):
    """A filesystem path, kept as written; :meth:`normalize` expands ``~`` and makes it absolute."""

    name = "path"

    def validate(self, value: Any) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        value = super().validate(value)
        if not value:
            raise ValueError("a path must not be empty")
        return value

    @staticmethod
    def normalize(value: str) -> str:
        return os.path.abspath(os.path.expanduser(value))


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class Duration(DataType):
    """A duration in seconds: a number, or text such as ``"30s"``, ``"5m"``, ``"1h"``, ``"500ms"``.

    Bounds are inclusive; with ``integer=True`` the value must be whole seconds (an int).
    """

    name = "duration"

    def __init__(self, minimum: float = 0.0, maximum: float | None = None, integer: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.integer = integer

    def validate(self, value: Any) -> int | float:
        if isinstance(value, str):
            match = _DURATION_RE.match(value)
            if match is None:
                raise ValueError(f"invalid duration {value!r}; use seconds or e.g. '30s', '5m', '1h'")
            seconds: float = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a duration in seconds, not {value!r}")
        else:
            seconds = value
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise ValueError(f"invalid duration {value!r}")
        if seconds < self.minimum:
            raise ValueError(f"duration {value!r} is below the minimum of {self.minimum} s")
        if self.maximum is not None and seconds > self.maximum:
            raise ValueError(f"duration {value!r} is above the maximum of {self.maximum} s")
        if self.integer:
            if seconds != int(seconds):
                raise ValueError(f"duration {value!r} must be whole seconds")
            return int(seconds)
        return seconds
