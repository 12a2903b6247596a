"""SIP URIs, routes and credentials."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import quote, unquote

from sipsimple.core import _core

__all__ = ["SIPURI", "FrozenSIPURI", "Route", "Credentials", "TRANSPORTS", "is_ip_address"]

TRANSPORTS = ("udp", "tcp", "tls")

# characters RFC 3261 allows unescaped in the user part, parameters and headers
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PARAM_SAFE = "-_.!~*'()[]/:&+$"
_HEADER_SAFE = "-_.!~*'()[]/?:+$"


def _split_params(text: str | None) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    if not text:
        return params
    for item in text.split(";"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        params[unquote(name)] = unquote(value) if sep else None
    return params


def _split_headers(text: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not text:
        return headers
    for item in text.split("&"):
        name, _, value = item.partition("=")
        headers[unquote(name)] = unquote(value)
    return headers


class SIPURI:
    """A SIP or SIPS URI: ``sip:user:password@host:port;params?headers``.

    ``SIPURI.parse(text)`` reads one with Sofia-SIP's URL parser (ValueError
    names the text when it is not a SIP URI); ``str(uri)`` formats it back.
    Two URIs are equal when scheme, user, password, host (any case), port,
    parameters (names in any case) and headers are equal. SIPURI is mutable
    and so unhashable; ``FrozenSIPURI`` is the hashable, read-only variant.
    """

    __slots__ = ("host", "user", "password", "port", "secure", "parameters", "headers")

    def __init__(
        self,
        host: str,
        user: str | None = None,
        port: int | None = None,
        parameters: dict[str, str | None] | None = None,
        headers: dict[str, str] | None = None,
        secure: bool = False,
        password: str | None = None,
    ) -> None:
        if not host or not isinstance(host, str):
            raise ValueError(f"a SIP URI needs a host, got {host!r}")
        if any(ch in host for ch in " \t\r\n<>@;?\"") :
            raise ValueError(f"invalid host in SIP URI: {host!r}")
        if port is not None and not (isinstance(port, int) and 0 < port < 65536):
            raise ValueError(f"invalid port in SIP URI: {port!r}")
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "user", user)
        object.__setattr__(self, "password", password)
        object.__setattr__(self, "port", port)
        object.__setattr__(self, "secure", bool(secure))
        object.__setattr__(self, "parameters", dict(parameters or {}))
        object.__setattr__(self, "headers", dict(headers or {}))

    @classmethod
    def parse(cls, text: str | bytes) -> SIPURI:
        """Parse ``sip:...`` or ``sips:...``, with or without enclosing ``<>``."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        if not isinstance(text, str):
            raise TypeError(f"a SIP URI must be str or bytes, not {type(text).__name__}")
        body = text.strip()
        if body.startswith("<") and body.endswith(">"):
            body = body[1:-1]
        scheme, user, password, host, port, params, headers = _core.parse_uri(body)
        if port is not None:
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"invalid SIP URI: {text!r} (bad port)")
        return cls(
            host=host,
            user=unquote(user) if user is not None else None,
            password=unquote(password) if password is not None else None,
            port=int(port) if port else None,
            parameters=_split_params(params),
            headers=_split_headers(headers),
            secure=scheme == "sips",
        )

    @property
    def transport(self) -> str:
        """The transport the URI asks for: its transport parameter, else tls for sips, else udp."""
        value = self.parameters.get("transport")
        if value:
            return value.lower()
        return "tls" if self.secure else "udp"

    def __str__(self) -> str:
        out = ["sips:" if self.secure else "sip:"]
        if self.user is not None:
            out.append(quote(self.user, safe=_USER_SAFE))
            if self.password is not None:
                out.append(":" + quote(self.password, safe=_USER_SAFE))
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.parameters.items():
            out.append(";" + quote(name, safe=_PARAM_SAFE))
            if value is not None:
                out.append("=" + quote(value, safe=_PARAM_SAFE))
        if self.headers:
            out.append("?" + "&".join(
                f"{quote(k, safe=_HEADER_SAFE)}={quote(v, safe=_HEADER_SAFE)}" for k, v in self.headers.items()
            ))
        return "".join(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.parse({str(self)!r})"

    def _key(self) -> tuple:
        return (
            self.secure, self.user, self.password, self.host.lower(), self.port,
            frozenset((k.lower(), v) for k, v in self.parameters.items()),
            frozenset(self.headers.items()),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SIPURI):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]

    def freeze(self) -> FrozenSIPURI:
        return FrozenSIPURI(self.host, self.user, self.port, self.parameters, self.headers,
                            self.secure, self.password)

    def copy(self) -> SIPURI:
        return SIPURI(self.host, self.user, self.port, self.parameters, self.headers,
                      self.secure, self.password)

    @property
    def address(self) -> str:
        """user@host (or host), the form accounts are named by."""
        return f"{self.user}@{self.host}" if self.user else self.host


class FrozenSIPURI(SIPURI):
    """A read-only, hashable SIPURI (usable as a dict key)."""

    __slots__ = ()

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "parameters", _FrozenDict(self.parameters))
        object.__setattr__(self, "headers", _FrozenDict(self.headers))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"FrozenSIPURI is read-only (cannot set {name})")

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(self._key())

    def freeze(self) -> FrozenSIPURI:
        return self


class _FrozenDict(dict):
    def _readonly(self, *args, **kwargs):
        raise TypeError("the parameters of a FrozenSIPURI are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]


@dataclass(frozen=True)
class Route:
    """Where to send requests first (an outbound proxy): address, port and transport."""

    address: str
    port: int = 5060
    transport: str = "udp"

    def __post_init__(self) -> None:
        if not self.address or any(ch in self.address for ch in " <>@;"):
            raise ValueError(f"invalid route address: {self.address!r}")
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ValueError(f"invalid route port: {self.port!r}")
        transport = self.transport.lower()
        if transport not in TRANSPORTS:
            raise ValueError(f"invalid route transport {self.transport!r}; expected one of {TRANSPORTS}")
        object.__setattr__(self, "transport", transport)

    @classmethod
    def parse(cls, text: str) -> Route:
        """``host[:port][;transport=udp|tcp|tls]``; the port defaults to 5061 for tls, else 5060."""
        hostport, _, params = text.strip().partition(";")
        transport = "udp"
        for item in params.split(";"):
            name, _, value = item.partition("=")
            if name.strip().lower() == "transport":
                transport = value.strip().lower()
        host, sep, port = hostport.rpartition(":")
        if not sep or host.endswith("]") is False and ":" in host:
            host, port = hostport, ""
        if port and not port.isdigit():
            raise ValueError(f"invalid route: {text!r}")
        return cls(host or hostport, int(port) if port else (5061 if transport == "tls" else 5060), transport)

    @property
    def uri(self) -> SIPURI:
        params: dict[str, str | None] = {"lr": None}
        if self.transport != "udp":
            params["transport"] = self.transport
        return SIPURI(self.address, port=self.port, parameters=params)

    def __str__(self) -> str:
        return f"{self.address}:{self.port};transport={self.transport}"


@dataclass(frozen=True)
class Credentials:
    """A username and password for digest authentication."""

    username: str
    password: str = ""

    def __post_init__(self) -> None:
        for name in ("username", "password"):
            value = getattr(self, name)
            if not isinstance(value, str) or any(ch in value for ch in "\0\r\n"):
                raise ValueError(f"invalid {name} in credentials")
        if not self.username:
            raise ValueError("credentials need a username")

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def is_ip_address(host: str) -> bool:
    """Whether ``host`` is an IPv4 or IPv6 address literal (without brackets), not a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
