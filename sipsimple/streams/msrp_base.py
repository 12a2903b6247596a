"""What the MSRP streams of a Session share: SDP m-line, setup role, relay, life cycle.

An MSRP stream (:class:`~sipsimple.streams.msrp_chat.MSRPChat`,
:class:`~sipsimple.streams.msrp_filetransfer.MSRPFileTransfer`) lives on the middleware
loop. The Session drives it in this order::

    await stream.prepare()                 # listen (own socket) or AUTH at the account's relay
    line = stream.offer() / stream.answer(remote_sdp, remote_line)
    stream.start(remote_sdp, remote_line)  # after the answer: connect or wait (RFC 6135 a=setup)
    stream.stop()                          # end (any thread)

``offer``/``answer`` are pure and may be called from any thread (the Session calls them
under its lock); ``start``/``stop`` hand their work to the loop. Each stream has its own
listening socket and connection, so a peer that sends garbage on one connection takes
only that stream down.

MSRP over TLS (``msrps:``, m-line ``TCP/TLS/MSRP``, RFC 4975 section 14): an offer uses it
when the account says so (``account.msrp_use_tls``, the setting ``msrp.use_tls``); an
answer uses what the offer uses (the Session calls :meth:`MSRPStreamBase.match_offer`
before ``prepare``). The TLS material is the Engine's (``Engine().options``, which
``Engine.start_cfg()`` takes from ``SIPSimpleSettings().tls``): a stream listening on TLS
presents ``tls_certificate`` (PEM with certificate and key; without one it fails to
initialize with a reason saying so); a stream connecting checks the peer's certificate
against ``tls_ca_file`` (else the system's CAs) unless ``tls_verify_server`` is False.
An msrps: relay (``account.msrp_relay``) is connected to the same way.

Notifications (sender: the stream; ``PREFIX`` is ``MSRPChat`` or ``MSRPFileTransfer``):

- ``PREFIXDidInitialize``: local_path (list of MSRPURI: relay hops, then ours).
- ``PREFIXDidStart``: local_path, remote_path.
- ``PREFIXDidFail``: code (MSRP code, 0 for a local error), reason.
- ``PREFIXWillEnd`` (a local stop, or the session ending: a connection lost from then on is
  no failure) and ``PREFIXDidEnd`` (always last, after a stop or a failure).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from sipsimple.core.sdp import SDPAttribute, SDPConnection, SDPMediaStream, SDPSession
from sipsimple.core.uri import is_ip_address
from sipsimple.middleware import MiddlewareLoop
from sipsimple.msrp.errors import MSRPError, MSRPTransactionError
from sipsimple.msrp.relay import RelaySettings
from sipsimple.msrp.session import MSRPSession
from sipsimple.msrp.transport import MSRPTransport
from sipsimple.msrp.uri import MSRPURI
from sipsimple.notification import NotificationCenter, NotificationData
from sipsimple.streams.msrp_sdp import (
    SDPValueError,
    Setup,
    answer_setup,
    format_path_attr,
    is_active,
    media_line,
    parse_path_attr,
)

__all__ = ["MSRPStreamBase", "MSRPStreamError", "relay_settings", "error_code", "tls_contexts"]

log = logging.getLogger("sipsimple.streams.msrp")

CONNECT_TIMEOUT = 15.0
CLOSE_TIMEOUT = 2.0
RELAY_CHUNK_SIZE = 8192  # relays (Kamailio's) hold a whole frame in a ~16 KiB read buffer


class MSRPStreamError(Exception):
    """An MSRP m-line we cannot use (missing or bad a=path, wrong transport)."""


def relay_settings(account: Any) -> RelaySettings | None:
    """The account's MSRP relay (``account.msrp_relay``: an msrp(s):// URI string) with its credentials."""
    relay = getattr(account, "msrp_relay", None)
    if not relay:
        return None
    uri = relay if isinstance(relay, MSRPURI) else MSRPURI.parse(str(relay))
    credentials = getattr(account, "credentials", None)
    return RelaySettings(uri.host, uri.port or 2855, getattr(credentials, "username", "") or "",
                         getattr(credentials, "password", "") or "", uri.use_tls)


def tls_contexts(options: dict[str, Any], *, listen: bool) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
    """(server, client) TLS contexts from Engine start options; server is None unless ``listen``.

    Raises MSRPStreamError when ``listen`` and there is no usable ``tls_certificate``.
    """
    ca_file = options.get("tls_ca_file")
    try:
        client = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise MSRPStreamError(f"cannot load the TLS CA file {ca_file}: {exc}") from None
    if not options.get("tls_verify_server", True):
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
    if not listen:
        return None, client
    certificate = options.get("tls_certificate")
    if not certificate:
        raise MSRPStreamError("MSRP over TLS needs a certificate to listen with: set SIPSimpleSettings().tls."
                              "certificate (the Engine's tls_certificate: a PEM file with certificate and key)")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        server.load_cert_chain(certificate)
    except (OSError, ssl.SSLError) as exc:
        raise MSRPStreamError(f"cannot load the TLS certificate {certificate}: {exc}") from None
    return server, client


def error_code(exc: BaseException) -> int:
    """The MSRP code an error carries (0: a local error without one)."""
    return getattr(exc, "code", 0) if isinstance(exc, MSRPTransactionError) else 0


class MSRPStreamBase:
    """Life cycle and SDP of one MSRP stream; subclasses add the payload (chat, file)."""

    type = "msrp"
    prefix = "MSRP"
    chunk_size = 2048

    def __init__(self, account: Any, local_ip: str | None = None) -> None:
        from sipsimple.core import Engine

        self.account = account
        self.local_ip = local_ip or Engine().local_ip or "127.0.0.1"
        self.relay = relay_settings(account)
        self.use_tls = bool(getattr(account, "msrp_use_tls", False))
        """Listen on TLS (msrps:); from the account for offers, from the offer for answers."""
        self.state = "new"  # new, initializing, initialized, starting, started, ending, ended, failed
        self.transport: MSRPTransport | None = None
        self.msrp: MSRPSession | None = None
        self.local_path: list[MSRPURI] = []
        self.remote_path: list[MSRPURI] = []
        self.local_media: SDPMediaStream | None = None
        self.remote_media: SDPMediaStream | None = None
        self.offerer: bool | None = None
        self.failure: tuple[int, str] | None = None
        self._task: asyncio.Task | None = None
        self._finishing = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.state} {self.local_path[-1] if self.local_path else ''}>"

    # ------------------------------------------------------------ notifications

    def _post(self, name: str, **data: Any) -> None:
        NotificationCenter().post_notification(self.prefix + name, sender=self, data=NotificationData(**data))

    # ---------------------------------------------------------------- prepare

    @property
    def needs_prepare(self) -> bool:
        return self.state == "new"

    @property
    def is_started(self) -> bool:
        return self.state == "started"

    async def prepare(self) -> None:
        """Listen on a socket of our own, or connect and AUTH at the relay (on the middleware loop)."""
        if self.state != "new":
            return
        self.state = "initializing"
        try:
            from sipsimple.core import Engine

            server_ssl, client_ssl = tls_contexts(Engine().options, listen=self.use_tls and self.relay is None)
            self.transport = MSRPTransport(self.local_ip, server_ssl=server_ssl, client_ssl=client_ssl)
            chunk = min(self.chunk_size, RELAY_CHUNK_SIZE) if self.relay is not None else self.chunk_size
            self.msrp = MSRPSession(self.transport, relay=self.relay, chunk_size=chunk, on_closed=self._closed,
                                    **self._session_callbacks())
            await self._prepare_payload()
            self.local_path = await self.msrp.prepare()
        except Exception as exc:
            self.state = "failed"
            self.failure = (error_code(exc), str(exc) or type(exc).__name__)
            self._failed(*self.failure)
            self._post("DidFail", code=self.failure[0], reason=self.failure[1])
            await self._cleanup()
            self._post("DidEnd")
            raise
        if self.state != "initializing":  # stopped meanwhile
            await self._cleanup()
            return
        self.state = "initialized"
        self._post("DidInitialize", local_path=list(self.local_path))

    async def _prepare_payload(self) -> None:
        """Subclass hook run before the MSRP session is prepared (e.g. hashing the file)."""

    def _session_callbacks(self) -> dict[str, Any]:
        """Subclass hook: on_message, on_incoming, on_message_failed for the MSRPSession."""
        return {}

    # -------------------------------------------------------------------- SDP

    def _attributes(self, offer: bool) -> list[SDPAttribute]:
        """Subclass hook: the payload attributes of our m-line (accept-types, file-selector...)."""
        return []

    def _media(self, setup: Setup, extra: list[SDPAttribute]) -> SDPMediaStream:
        if not self.local_path:
            raise MSRPStreamError("the stream is not prepared")
        first = self.local_path[0]
        media, port, transport, fmt = media_line(first)
        attrs = [SDPAttribute("path", format_path_attr(self.local_path)), *extra, SDPAttribute("setup", str(setup))]
        return SDPMediaStream(media, port, transport, [fmt],
                              connection=SDPConnection(first.host) if is_ip_address(first.host) else None,
                              attributes=attrs)

    def offer(self, direction: str | None = None) -> SDPMediaStream:
        """Our m-line in an offer (the same line again in later offers of the session)."""
        if self.local_media is None:
            self.offerer = True
            self.local_media = self._media(Setup.ACTPASS, self._attributes(offer=True))
        return _copy(self.local_media)

    def match_offer(self, remote_media: SDPMediaStream) -> None:
        """Before :meth:`prepare` of a stream that will answer: use TLS when the offer does."""
        self.use_tls = _is_tls(remote_media)

    def answer(self, remote_sdp: SDPSession, remote_media: SDPMediaStream,
               direction: str | None = None) -> SDPMediaStream:
        """Our m-line answering the peer's (MSRPStreamError when it is unusable)."""
        if self.local_media is None:
            self._check_remote(remote_media)
            if self.relay is None and _is_tls(remote_media) != self.use_tls:
                ours = "TCP/TLS/MSRP" if self.use_tls else "TCP/MSRP"
                raise MSRPStreamError(f"the offer uses {remote_media.transport}, this stream was set up for {ours}")
            self.offerer = False
            self.remote_media = remote_media
            setup = answer_setup(_setup_of(remote_media))
            self.local_media = self._media(setup, self._attributes(offer=False))
        return _copy(self.local_media)

    def _check_remote(self, remote_media: SDPMediaStream) -> list[MSRPURI]:
        value = remote_media.attributes.getfirst("path")  # type: ignore[attr-defined]
        if not value:
            raise MSRPStreamError("the MSRP m-line has no a=path")
        try:
            path = parse_path_attr(value)
            _setup_of(remote_media)
        except SDPValueError as exc:
            raise MSRPStreamError(str(exc)) from None
        return path

    def _active(self, remote_media: SDPMediaStream) -> bool:
        """Whether we connect (RFC 6135), from our own line and the peer's."""
        ours = _setup_of(self.local_media) if self.local_media is not None else None
        if self.offerer:
            theirs = _setup_of(remote_media)
            if theirs is None:
                return True  # RFC 4975: the offerer connects
            return theirs is Setup.PASSIVE or theirs is Setup.ACTPASS
        return is_active(ours, offerer=False)

    # ------------------------------------------------------------------ start

    def start(self, remote_sdp: SDPSession, remote_media: SDPMediaStream, direction: str | None = None) -> None:
        """Connect to the peer (or wait for it) once the answer is known; from any thread."""
        MiddlewareLoop().call_soon(self._start, remote_media)

    def _start(self, remote_media: SDPMediaStream) -> None:
        if self.state != "initialized":
            return
        try:
            remote_path = self._check_remote(remote_media)
            active = self._active(remote_media)
        except MSRPStreamError as exc:
            self._fail(0, f"unusable MSRP m-line: {exc}")
            return
        self.remote_media = remote_media
        self.remote_path = remote_path
        self.state = "starting"
        self._task = asyncio.get_running_loop().create_task(self._connect(active))

    async def _connect(self, active: bool) -> None:
        assert self.msrp is not None
        try:
            await self.msrp.start(self.remote_path, active=active, timeout=CONNECT_TIMEOUT)
        except (MSRPError, OSError) as exc:
            if self.state == "starting":
                self._fail(error_code(exc), f"cannot connect: {exc}")
            return
        if self.state != "starting":
            return
        self.state = "started"
        self._post("DidStart", local_path=list(self.local_path), remote_path=list(self.remote_path))
        self._started()

    def _started(self) -> None:
        """Subclass hook: the connection is up (send what was queued)."""

    def _closed(self, exc: Exception | None) -> None:
        if exc is not None and self.state in ("initialized", "starting", "started"):
            self._fail(error_code(exc), f"connection lost: {exc}")

    # ------------------------------------------------------------------ ending

    def _fail(self, code: int, reason: str) -> None:
        if self.state in ("ending", "ended", "failed"):
            return
        log.info("%r failed: %s %s", self, code, reason)
        self.state = "failed"
        self.failure = (code, reason)
        self._failed(code, reason)
        self._post("DidFail", code=code, reason=reason)
        self._finishing = True
        asyncio.get_running_loop().create_task(self._finish())

    def _failed(self, code: int, reason: str) -> None:
        """Subclass hook: the stream failed (fail what is queued)."""

    def will_end(self) -> None:
        """The session is ending: WillEnd now, and a connection closing from here on is no failure."""
        MiddlewareLoop().call_soon(self._will_end)

    def _will_end(self) -> None:
        if self.state in ("ending", "ended", "failed"):
            return
        self.state = "ending"
        self._post("WillEnd")
        self._failed(0, "the stream was ended")

    def stop(self) -> None:
        """End the stream (WillEnd now, DidEnd once closed); from any thread, idempotent."""
        MiddlewareLoop().call_soon(self._stop)

    def _stop(self) -> None:
        if self.state in ("ended", "failed") or self._finishing:
            return
        self._will_end()
        self._finishing = True
        asyncio.get_running_loop().create_task(self._finish())

    async def _finish(self) -> None:
        if self._task is not None and not self._task.done() and self._task is not asyncio.current_task():
            self._task.cancel()
        await self._cleanup()
        if self.state == "ending":
            self.state = "ended"
        self._post("DidEnd")

    async def _cleanup(self) -> None:
        try:
            if self.msrp is not None:
                connection = self.msrp.connection
                await self.msrp.close()
                if connection is not None and not connection.closed.done():
                    # let what is queued (a failure REPORT, the last responses) go out first:
                    # closing the transport aborts whatever connection is still open
                    try:
                        await asyncio.wait_for(asyncio.shield(connection.closed), CLOSE_TIMEOUT)
                    except TimeoutError:
                        pass
            if self.transport is not None:
                await self.transport.close()
        except Exception:
            log.exception("closing %r failed", self)


def _is_tls(media: SDPMediaStream) -> bool:
    return str(media.transport).upper() == "TCP/TLS/MSRP"


def _setup_of(media: SDPMediaStream | None) -> Setup | None:
    if media is None:
        return None
    value = media.attributes.getfirst("setup")  # type: ignore[attr-defined]
    return Setup.parse(value) if value else None


def _copy(line: SDPMediaStream) -> SDPMediaStream:
    return SDPMediaStream(line.media, line.port, line.transport, list(line.formats), connection=line.connection,
                          attributes=list(line.attributes), bandwidths=list(line.bandwidths))
