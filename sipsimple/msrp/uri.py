"""``msrp://`` and ``msrps://`` URIs (RFC 4975 section 6 and 9).

``MSRPURI.parse("msrp://alice@10.0.0.1:2855/s3ss10n;tcp")`` gives a frozen value object;
``str()`` formats it back.  Equality and hashing follow RFC 4975 section 6.1: scheme, host
and transport compare case-insensitively, the session id case-sensitively, the port exactly
(an absent port only equals an absent port), and the user part and parameters are ignored.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field

from .errors import MSRPURIError

__all__ = ["MSRPURI", "parse_path", "format_path", "new_session_id", "DEFAULT_PORT"]

DEFAULT_PORT = 2855

_SESSION_ID_RE = re.compile(r"^[A-Za-z0-9\-._~+=/%!$&'()*,:@]+$")
_TRANSPORT_RE = re.compile(r"^[A-Za-z0-9]+$")
_HOST_RE = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,;=]+$")
_USER_RE = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,;=:]+$")
_PARAM_RE = re.compile(r"^[A-Za-z0-9\-._~%!$&'()*+,:@/\[\]]+(=[A-Za-z0-9\-._~%!$&'()*+,:@/\[\]]*)?$")


def new_session_id(nbytes: int = 12) -> str:
    """Return a fresh random session id (URL-safe, at least 80 bits of randomness)."""
    return secrets.token_urlsafe(nbytes)


@dataclass(frozen=True, eq=False, slots=True)
class MSRPURI:
    """One MSRP URI.  ``port`` is None when the URI carries no port."""

    host: str
    port: int | None = None
    session_id: str | None = None
    transport: str = "tcp"
    use_tls: bool = False
    user: str | None = None
    parameters: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.host:
            raise MSRPURIError("MSRP URI without host")
        if self.port is not None and not 0 < self.port < 65536:
            raise MSRPURIError(f"bad port {self.port}")
        if self.session_id is not None and not _SESSION_ID_RE.match(self.session_id):
            raise MSRPURIError(f"bad session id {self.session_id!r}")
        if not _TRANSPORT_RE.match(self.transport):
            raise MSRPURIError(f"bad transport {self.transport!r}")

    @property
    def scheme(self) -> str:
        return "msrps" if self.use_tls else "msrp"

    @property
    def effective_port(self) -> int:
        """The port to connect to (2855 when the URI has none)."""
        return DEFAULT_PORT if self.port is None else self.port

    @property
    def _key(self) -> tuple:
        return (self.use_tls, self.host.lower(), self.port, self.session_id, self.transport.lower())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MSRPURI):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __str__(self) -> str:
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        out = [self.scheme, "://"]
        if self.user:
            out += [self.user, "@"]
        out.append(host)
        if self.port is not None:
            out += [":", str(self.port)]
        if self.session_id is not None:
            out += ["/", self.session_id]
        out += [";", self.transport]
        for param in self.parameters:
            out += [";", param]
        return "".join(out)

    def __repr__(self) -> str:
        return f"MSRPURI({str(self)!r})"

    @classmethod
    def parse(cls, value: str) -> MSRPURI:
        """Parse an MSRP URI; raise :class:`MSRPURIError` if it is not one."""
        if not isinstance(value, str):
            raise MSRPURIError(f"MSRP URI must be str, not {type(value).__name__}")
        scheme, sep, rest = value.partition("://")
        scheme_l = scheme.lower()
        if not sep or scheme_l not in ("msrp", "msrps"):
            raise MSRPURIError(f"not an MSRP URI: {value!r}")
        head, sep, params_s = rest.partition(";")
        if not sep:
            raise MSRPURIError(f"MSRP URI without transport: {value!r}")
        params = params_s.split(";")
        transport = params[0]
        extra = tuple(params[1:])
        for param in extra:
            if not _PARAM_RE.match(param):
                raise MSRPURIError(f"bad URI parameter {param!r} in {value!r}")
        authority, slash, session_id = head.partition("/")
        if slash and not session_id:
            raise MSRPURIError(f"empty session id in {value!r}")
        user, at, hostport = authority.rpartition("@")
        if at:
            if not user or not _USER_RE.match(user):
                raise MSRPURIError(f"bad user part in {value!r}")
        else:
            user = ""
        host, port = _split_hostport(hostport, value)
        try:
            return cls(
                host=host,
                port=port,
                session_id=session_id if slash else None,
                transport=transport,
                use_tls=scheme_l == "msrps",
                user=user or None,
                parameters=extra,
            )
        except MSRPURIError as exc:
            raise MSRPURIError(f"{exc} in {value!r}") from None

    def replace(self, **changes) -> MSRPURI:
        """Return a copy with the given fields changed."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update(changes)
        return MSRPURI(**values)


def _split_hostport(hostport: str, value: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise MSRPURIError(f"unterminated IPv6 reference in {value!r}")
        host = hostport[1:end]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise MSRPURIError(f"bad IPv6 address in {value!r}") from None
        rest = hostport[end + 1 :]
        if rest and not rest.startswith(":"):
            raise MSRPURIError(f"garbage after IPv6 reference in {value!r}")
        port_s = rest[1:] if rest else None
    else:
        host, colon, port_s = hostport.partition(":")
        if not colon:
            port_s = None
        if not host or not _HOST_RE.match(host):
            raise MSRPURIError(f"bad host in {value!r}")
    port: int | None = None
    if port_s is not None:
        if not port_s.isdigit() or not port_s.isascii() or len(port_s) > 5:
            raise MSRPURIError(f"bad port in {value!r}")
        port = int(port_s)
        if not 0 < port < 65536:
            raise MSRPURIError(f"port out of range in {value!r}")
    return host, port


_PATH_CACHE: dict[str, tuple[MSRPURI, ...]] = {}
_PATH_CACHE_SIZE = 4096


def parse_path(value: str) -> list[MSRPURI]:
    """Parse a space separated list of MSRP URIs (To-Path, From-Path, SDP ``a=path``).

    Results are cached (URIs are immutable; paths repeat on every frame of a session).
    """
    cached = _PATH_CACHE.get(value)
    if cached is not None:
        return list(cached)
    parts = value.split()
    if not parts:
        raise MSRPURIError("empty MSRP path")
    uris = tuple(MSRPURI.parse(part) for part in parts)
    if len(_PATH_CACHE) >= _PATH_CACHE_SIZE:
        _PATH_CACHE.clear()
    _PATH_CACHE[value] = uris
    return list(uris)


def format_path(uris) -> str:
    """Format a sequence of URIs as a space separated path."""
    return " ".join(str(uri) for uri in uris)
