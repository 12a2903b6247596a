"""MSRP connections over TCP and TLS (RFC 4975 section 5.4, 6.2).

:class:`MSRPConnection` is the asyncio protocol of one connection: it parses frames,
matches responses to pending transactions (with timeouts), hands requests to its handler
and writes frames with backpressure (large bodies are written in slices, waiting for the
transport to drain, and can be cut short with the ``#`` flag).

:class:`MSRPTransport` owns a listening socket, the table of local sessions (incoming
requests are routed by the session id of the last To-Path URI, 481 if unknown) and a pool
of outgoing connections, reused by sessions that talk to the same host, port and scheme.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .errors import MSRPConnectError, MSRPError, MSRPProtocolError, MSRPTimeoutError
from .message import MSRPData
from .parser import MSRPParser
from .uri import MSRPURI, new_session_id

if TYPE_CHECKING:
    from .session import MSRPSession

__all__ = ["MSRPConnection", "MSRPTransport", "ConnectionHandler", "DEFAULT_TRANSACTION_TIMEOUT"]

log = logging.getLogger(__name__)

DEFAULT_TRANSACTION_TIMEOUT = 30.0
WRITE_SLICE = 256 * 1024
COALESCE_LIMIT = 64 * 1024
DEFAULT_MAX_BODY_BUFFER = 4 * 1024 * 1024
READ_SIZE = 1024 * 1024


class ConnectionHandler(Protocol):
    """What an :class:`MSRPConnection` reports to."""

    def handle_request(self, connection: MSRPConnection, frame: MSRPData) -> None: ...

    def connection_lost(self, connection: MSRPConnection, exc: Exception | None) -> None: ...


class MSRPConnection(asyncio.Protocol):
    """One MSRP connection (TCP or TLS), shared by the sessions in ``sessions``."""

    def __init__(
        self,
        handler: ConnectionHandler,
        *,
        outgoing: bool,
        use_tls: bool = False,
        max_body_buffer: int | None = DEFAULT_MAX_BODY_BUFFER,
    ) -> None:
        self._handler = handler
        self.outgoing = outgoing
        self.use_tls = use_tls
        self.transport: asyncio.Transport | None = None
        self.local_address: tuple[str, int] | None = None
        self.peer_address: tuple[str, int] | None = None
        self.sessions: set[MSRPSession] = set()
        self.error: Exception | None = None
        self.bytes_received = 0
        self._parser = MSRPParser(max_body_buffer=max_body_buffer)
        self._pending: dict[str, tuple[asyncio.Future[MSRPData], asyncio.TimerHandle | None]] = {}
        self._paused = False
        self._read_pauses = 0
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._write_lock = asyncio.Lock()
        self._busy = False
        self._queued: list[bytes] = []
        self._out: list[bytes] = []
        self._out_size = 0
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[Exception | None] = self._loop.create_future()

    def __repr__(self) -> str:
        kind = "out" if self.outgoing else "in"
        return (
            f"<MSRPConnection {kind} {self.local_address}->{self.peer_address} sessions={len(self.sessions)}>"
        )

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        self.local_address = (sockname[0], sockname[1]) if sockname else None
        self.peer_address = (peername[0], peername[1]) if peername else None
        # asyncio's plain socket transport reads at most max_size (256 KiB) at a time; larger
        # reads mean fewer loop turns and larger pieces for a sink's thread (less GIL traffic)
        if isinstance(getattr(transport, "max_size", None), int):
            try:
                transport.max_size = max(transport.max_size, READ_SIZE)  # type: ignore[attr-defined]
            except (AttributeError, TypeError):  # another loop's transport: keep its size
                pass

    def data_received(self, data: bytes) -> None:
        self.bytes_received += len(data)
        try:
            frames = self._parser.feed(data)
        except MSRPProtocolError as exc:
            log.warning("MSRP protocol error from %s: %s", self.peer_address, exc)
            self.abort(exc)
            return
        for frame in frames:
            if self.error is not None:
                return
            if frame.method is None:
                if frame.contflag is not None:
                    self._resolve(frame)
                continue
            try:
                self._handler.handle_request(self, frame)
            except MSRPProtocolError as exc:
                log.warning("bad MSRP request from %s: %s", self.peer_address, exc)
                self.abort(exc)
                return
            except Exception:  # a bug in a handler must not kill the connection
                log.exception("error handling MSRP request %r", frame)

    def connection_lost(self, exc: Exception | None) -> None:
        error = self.error or exc
        if error is None and self._parser.in_frame:
            error = MSRPConnectError("connection closed in the middle of a frame")
        self.error = error or MSRPConnectError("connection closed")
        failure = self.error if isinstance(self.error, MSRPError) else MSRPConnectError(str(self.error))
        pending, self._pending = self._pending, {}
        for future, timer in pending.values():
            if timer is not None:
                timer.cancel()
            if not future.done():
                future.set_exception(failure)
                future.exception()  # mark retrieved: abandoned transactions must not warn
        self._wake_drainers(failure)
        if not self.closed.done():
            self.closed.set_result(error)
        try:
            self._handler.connection_lost(self, error)
        except Exception:
            log.exception("error in MSRP connection_lost handler")

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_drainers(None)

    # ------------------------------------------------------------------ reading
    def pause_reading(self) -> None:
        """Stop reading from the socket (a sink is behind); calls nest, each needs a resume."""
        self._read_pauses += 1
        if self._read_pauses == 1 and self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        """Undo one :meth:`pause_reading`; reading goes on when none is left."""
        if not self._read_pauses:
            return
        self._read_pauses -= 1
        if not self._read_pauses and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    # ------------------------------------------------------------------ state
    @property
    def is_closing(self) -> bool:
        return self.transport is None or self.transport.is_closing() or self.error is not None

    def close(self) -> None:
        """Close after the queued data is written."""
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self, exc: Exception | None = None) -> None:
        """Close at once, dropping queued data; ``exc`` becomes the reported error."""
        if exc is not None and self.error is None:
            self.error = exc
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------------ transactions
    def expect_response(self, transaction_id: str, timeout: float | None) -> asyncio.Future[MSRPData]:
        """Register interest in the response to ``transaction_id`` (before sending the request).

        The future fails with :class:`MSRPTimeoutError` after ``timeout`` seconds (None: never)
        and with :class:`MSRPConnectError` if the connection goes away.
        """
        if self.error is not None:
            raise MSRPConnectError(f"connection closed: {self.error}")
        future: asyncio.Future[MSRPData] = self._loop.create_future()
        timer = self._loop.call_later(timeout, self._expire, transaction_id) if timeout else None
        self._pending[transaction_id] = (future, timer)
        return future

    def forget(self, transaction_id: str) -> None:
        """Stop waiting for a response."""
        entry = self._pending.pop(transaction_id, None)
        if entry is not None and entry[1] is not None:
            entry[1].cancel()

    def _expire(self, transaction_id: str) -> None:
        entry = self._pending.pop(transaction_id, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(MSRPTimeoutError(f"no response to transaction {transaction_id}"))

    def _resolve(self, frame: MSRPData) -> None:
        entry = self._pending.pop(frame.transaction_id, None)
        if entry is None:
            return
        future, timer = entry
        if timer is not None:
            timer.cancel()
        if not future.done():
            future.set_result(frame)

    async def request(self, frame: MSRPData, timeout: float | None = DEFAULT_TRANSACTION_TIMEOUT) -> MSRPData:
        """Send a request and return its response (whatever the code)."""
        future = self.expect_response(frame.transaction_id, timeout)
        try:
            await self.write_frame(frame)
            return await future
        finally:
            self.forget(frame.transaction_id)

    # ------------------------------------------------------------------ writing
    def _write(self, data: bytes | memoryview) -> None:
        """Write, coalescing small frames written in the same loop iteration into one send."""
        if self.is_closing:
            raise MSRPConnectError(f"connection closed: {self.error}")
        if len(data) >= COALESCE_LIMIT:
            self._flush()
            assert self.transport is not None
            self.transport.write(data)
            return
        self._out.append(bytes(data))
        self._out_size += len(data)
        if self._out_size >= COALESCE_LIMIT:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        out, self._out = self._out, []
        self._out_size = 0
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(out))

    def write_frame_nowait(self, frame: MSRPData) -> None:
        """Queue a whole (small) frame: responses, REPORTs, AUTH.  Never interleaves a frame."""
        data = frame.encode()
        if self._busy:
            self._queued.append(data)
        else:
            self._write(data)

    async def write_frame(
        self,
        frame: MSRPData,
        body: bytes | memoryview | None = None,
        abort: Callable[[], bool] | None = None,
    ) -> str:
        """Write ``frame`` (with ``body`` instead of ``frame.body`` if given), waiting for room.

        Bodies over 256 KiB go out in slices; between slices ``abort()`` is polled and, if
        it returns true, the frame is ended with ``#``.  Returns the flag written.
        """
        if body is None:
            body = frame.body
        flag = frame.contflag or "$"
        head = frame.encode_head()
        if not self._busy and len(body) <= WRITE_SLICE:
            self._write(head + body + frame.encode_tail(flag))
            if self._paused:
                await self._drain()
            return flag
        async with self._write_lock:
            self._busy = True
            try:
                self._write(head)
                with memoryview(body) as view:
                    for offset in range(0, len(view), WRITE_SLICE):
                        if abort is not None and abort():
                            flag = "#"
                            break
                        self._write(view[offset : offset + WRITE_SLICE])
                        if self._paused:
                            await self._drain()
                self._write(frame.encode_tail(flag))
            finally:
                self._busy = False
                queued, self._queued = self._queued, []
                if queued and not self.is_closing:
                    self._write(b"".join(queued))
        if self._paused:
            await self._drain()
        return flag

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self.error is not None:
            raise MSRPConnectError(f"connection closed: {self.error}")
        if self._paused:
            await self._drain()

    async def _drain(self) -> None:
        future: asyncio.Future[None] = self._loop.create_future()
        self._drain_waiters.append(future)
        await future

    def _wake_drainers(self, exc: Exception | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for future in waiters:
            if not future.done():
                if exc is None:
                    future.set_result(None)
                else:
                    future.set_exception(exc)


class MSRPTransport:
    """Listening socket, session table and connection pool of one local MSRP endpoint.

    ``host`` is the address bound and advertised in local URIs.  With ``server_ssl`` the
    listener speaks TLS and local URIs are ``msrps:``; ``client_ssl`` is used to connect to
    ``msrps:`` peers and relays.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
        transaction_timeout: float = DEFAULT_TRANSACTION_TIMEOUT,
        max_body_buffer: int | None = DEFAULT_MAX_BODY_BUFFER,
    ) -> None:
        self.host = host
        self.port = port
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.transaction_timeout = transaction_timeout
        self.max_body_buffer = max_body_buffer
        self.sessions: dict[str, MSRPSession] = {}
        self.connections: set[MSRPConnection] = set()
        self._pool: dict[tuple[str, int, bool], asyncio.Future[MSRPConnection]] = {}
        self._server: asyncio.Server | None = None
        self.on_connection_error: Callable[[MSRPConnection, Exception], None] | None = None
        """Called when a connection dies of a protocol error (garbage from the peer)."""

    @property
    def use_tls(self) -> bool:
        return self.server_ssl is not None

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def listen(self) -> None:
        """Start accepting connections (idempotent); ``port`` is then the bound port."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self._new_connection(outgoing=False, use_tls=self.use_tls),
            self.host,
            self.port,
            ssl=self.server_ssl,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def local_uri(self, session_id: str | None = None) -> MSRPURI:
        """A URI on our listener for a (new) session id."""
        if not self.port:
            raise MSRPError("transport is not listening")
        return MSRPURI(self.host, self.port, session_id or new_session_id(), "tcp", self.use_tls)

    def _new_connection(self, *, outgoing: bool, use_tls: bool) -> MSRPConnection:
        connection = MSRPConnection(
            self, outgoing=outgoing, use_tls=use_tls, max_body_buffer=self.max_body_buffer
        )
        self.connections.add(connection)
        return connection

    async def connect(self, uri: MSRPURI, *, reuse: bool = True, timeout: float = 10.0) -> MSRPConnection:
        """A connection to the authority of ``uri``; an open pooled one when ``reuse``."""
        key = (uri.host.lower(), uri.effective_port, uri.use_tls)
        if reuse:
            existing = self._pool.get(key)
            if existing is not None:
                if not existing.done():
                    return await asyncio.shield(existing)
                if existing.exception() is None and not existing.result().is_closing:
                    return existing.result()
        future: asyncio.Future[MSRPConnection] = asyncio.get_running_loop().create_future()
        if reuse:
            self._pool[key] = future
        try:
            connection = await asyncio.wait_for(self._open(uri), timeout)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            where = f"{uri.host}:{uri.effective_port}"
            if isinstance(exc, ssl.SSLCertVerificationError):
                error = MSRPConnectError(f"TLS certificate of {where} not accepted: {exc.verify_message}")
            else:
                error = MSRPConnectError(f"cannot connect to {where}: {exc or 'timeout'}")
            if self._pool.get(key) is future:
                del self._pool[key]
            future.set_exception(error)
            future.exception()  # mark retrieved
            raise error from None
        future.set_result(connection)
        return connection

    async def _open(self, uri: MSRPURI) -> MSRPConnection:
        loop = asyncio.get_running_loop()
        ssl_context = None
        if uri.use_tls:
            ssl_context = self.client_ssl or ssl.create_default_context()
        _, connection = await loop.create_connection(
            lambda: self._new_connection(outgoing=True, use_tls=uri.use_tls),
            uri.host,
            uri.effective_port,
            ssl=ssl_context,
            server_hostname=uri.host if ssl_context is not None else None,
        )
        return connection

    def register(self, session: MSRPSession) -> None:
        self.sessions[session.local_uri.session_id] = session  # type: ignore[index]

    def unregister(self, session: MSRPSession) -> None:
        sid = session.local_uri.session_id if session.local_uri is not None else None
        if sid is not None and self.sessions.get(sid) is session:
            del self.sessions[sid]

    def release(self, connection: MSRPConnection, session: MSRPSession) -> None:
        """A session stopped using ``connection``; close it when nobody uses it any more."""
        connection.sessions.discard(session)
        if not connection.sessions:
            connection.close()

    # ------------------------------------------------------------------ ConnectionHandler
    def handle_request(self, connection: MSRPConnection, frame: MSRPData) -> None:
        to_path = frame.to_path
        target = to_path[-1]
        session = self.sessions.get(target.session_id) if target.session_id else None
        if session is None or session.local_uri != target:
            respond(connection, frame, 481)
            return
        session.handle_request(connection, frame)

    def connection_lost(self, connection: MSRPConnection, exc: Exception | None) -> None:
        self.connections.discard(connection)
        for key, future in list(self._pool.items()):
            if future.done() and future.exception() is None and future.result() is connection:
                del self._pool[key]
        if isinstance(exc, MSRPProtocolError) and self.on_connection_error is not None:
            try:
                self.on_connection_error(connection, exc)
            except Exception:
                log.exception("on_connection_error callback failed")
        for session in list(connection.sessions):
            session.connection_lost(connection, exc)

    async def close(self) -> None:
        """Stop listening, close every session and connection."""
        for session in list(self.sessions.values()):
            await session.close()
        if self._server is not None:
            self._server.close()
            self._server = None
        for connection in list(self.connections):
            connection.abort()
        self.connections.clear()
        self._pool.clear()
        await asyncio.sleep(0)


def respond(connection: MSRPConnection, request: MSRPData, code: int, comment: str | None = None) -> None:
    """Answer ``request`` unless it is a REPORT or its Failure-Report forbids it (RFC 4975 7.2)."""
    if request.method == "REPORT" or request.contflag is None:
        return
    policy = request.failure_report
    if policy == "no" or (policy == "partial" and code == 200):
        return
    if connection.is_closing:
        return
    connection.write_frame_nowait(request.new_response(code, comment))
