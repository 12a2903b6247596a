"""MSRP relay client side (RFC 4976): AUTH with HTTP digest, Use-Path.

``await authenticate(connection, local_uri, settings)`` performs the AUTH exchange on a
connection to the relay (first unauthenticated, then answering the 401 challenge) and
returns the relay's Use-Path (the URIs to put in front of our own in SDP ``a=path``).

TLS to the relay: ``RelaySettings(..., use_tls=True)``, which an ``msrps:`` relay URI
gives (the account's ``msrp.relay``, e.g. ``msrps://relay.example.com:2856;tcp``). The
session then connects with its transport's ``client_ssl`` context, which checks the
relay's certificate and name (for Session streams: the Engine's ``tls_ca_file``, else
the system's CAs, unless ``tls_verify_server`` is False); a relay answering on TLS
gives an ``msrps:`` Use-Path, and the SDP m-line says ``TCP/TLS/MSRP``.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from .errors import MSRPAuthError, MSRPProtocolError
from .message import MSRPData
from .transport import DEFAULT_TRANSACTION_TIMEOUT, MSRPConnection
from .uri import MSRPURI

__all__ = ["RelaySettings", "RelayGrant", "authenticate", "digest_authorization"]


@dataclass(frozen=True)
class RelaySettings:
    """Where the relay is and who we are to it."""

    host: str
    port: int = 2855
    username: str = ""
    password: str = ""
    use_tls: bool = False

    @property
    def uri(self) -> MSRPURI:
        """The relay URI (no session id) used in To-Path and as digest ``uri``."""
        return MSRPURI(self.host, self.port, None, "tcp", self.use_tls)


@dataclass(frozen=True)
class RelayGrant:
    """Result of a successful AUTH."""

    use_path: list[MSRPURI]
    expires: int | None


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def digest_authorization(
    challenge: dict[str, str],
    username: str,
    password: str,
    uri: str,
    method: str = "AUTH",
    cnonce: str | None = None,
) -> str:
    """The ``Authorization`` value answering a Digest ``challenge`` (RFC 2617, MD5, qop auth)."""
    realm = challenge.get("realm", "")
    nonce = challenge.get("nonce")
    if nonce is None:
        raise MSRPProtocolError("digest challenge without nonce")
    algorithm = challenge.get("algorithm", "MD5")
    if algorithm.upper() not in ("MD5",):
        raise MSRPAuthError(401, f"unsupported digest algorithm {algorithm}")
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    qops = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        cnonce = cnonce or secrets.token_hex(8)
        nc = "00000001"
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    elif qops:
        raise MSRPAuthError(401, f"unsupported qop {challenge.get('qop')!r}")
    else:
        parts.append(f'response="{_md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "algorithm" in challenge:
        parts.append(f"algorithm={algorithm}")
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return "Digest " + ", ".join(parts)


def _auth_request(relay_uri: MSRPURI, local_uri: MSRPURI, authorization: str | None) -> MSRPData:
    frame = MSRPData(method="AUTH")
    frame.headers["To-Path"] = str(relay_uri)
    frame.headers["From-Path"] = str(local_uri)
    if authorization is not None:
        frame.headers["Authorization"] = authorization
    return frame


async def authenticate(
    connection: MSRPConnection,
    local_uri: MSRPURI,
    settings: RelaySettings,
    timeout: float = DEFAULT_TRANSACTION_TIMEOUT,
) -> RelayGrant:
    """AUTH against the relay on ``connection``; raise :class:`MSRPAuthError` if refused."""
    relay_uri = settings.uri
    authorization: str | None = None
    for _attempt in range(2):
        response = await connection.request(_auth_request(relay_uri, local_uri, authorization), timeout)
        if response.code == 200:
            use_path = response.use_path
            if not use_path:
                raise MSRPAuthError(500, "relay accepted AUTH but sent no Use-Path")
            return RelayGrant(use_path, response.expires)
        if response.code != 401 or authorization is not None:
            raise MSRPAuthError(response.code or 0, response.comment or "AUTH refused")
        challenge = response.www_authenticate
        if challenge is None:
            raise MSRPAuthError(401, "401 without WWW-Authenticate")
        authorization = digest_authorization(challenge, settings.username, settings.password, str(relay_uri))
    raise MSRPAuthError(401, "AUTH refused")
