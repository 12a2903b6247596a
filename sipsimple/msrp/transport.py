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
from .message import MSRPData, encode_response
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
_ROUTES_SIZE = 1024
_FLAG_LINES = {flag: f"{flag}\r\n".encode("ascii") for flag in "$+#"}


def read_large(transport: asyncio.BaseTransport) -> None:
    """Have ``transport`` read up to :data:`READ_SIZE` bytes at a time where it can be told so.

    asyncio's plain socket transport reads at most ``max_size`` (256 KiB) at a time; larger
    reads mean fewer loop turns and larger pieces for a sink's thread (less GIL traffic).
    """
    if isinstance(getattr(transport, "max_size", None), int):
        try:
            transport.max_size = max(transport.max_size, READ_SIZE)  # type: ignore[attr-defined]
        except (AttributeError, TypeError):  # another loop's transport: keep its size
            pass


ResponseCallback = Callable[[object, "MSRPData | None", "Exception | None"], None]
"""``callback(argument, response, error)``: exactly one of ``response`` and ``error`` is given."""


def _settle_future(future: asyncio.Future[MSRPData], response: MSRPData | None, error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(response)  # type: ignore[arg-type]
    else:
        future.set_exception(error)
        future.exception()  # mark retrieved: abandoned transactions must not warn


def _call_back(callback: ResponseCallback, argument: object, response: MSRPData | None,
               error: Exception | None) -> None:
    try:
        callback(argument, response, error)
    except Exception:  # a bug in one transaction's callback must not break the connection
        log.exception("MSRP response callback %r failed", callback)


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
        # transaction id -> (callback, its argument, deadline or None); one timer for them all
        self._pending: dict[str, tuple[ResponseCallback, object, float | None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
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
        read_large(transport)

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for callback, argument, _ in pending.values():
            _call_back(callback, argument, None, failure)
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
        future: asyncio.Future[MSRPData] = self._loop.create_future()
        self.on_response(transaction_id, timeout, _settle_future, future)
        return future

    def on_response(self, transaction_id: str, timeout: float | None, callback: ResponseCallback,
                    argument: object = None) -> None:
        """Call ``callback(argument, response, None)`` when the response to ``transaction_id``
        arrives, or ``callback(argument, None, error)`` after ``timeout`` seconds (None: never,
        :class:`MSRPTimeoutError`) or when the connection goes away (:class:`MSRPConnectError`).

        The cheap form of :meth:`expect_response` (no future, no timer per transaction), for
        a sender with many chunks in flight.  Raises at once if the connection is gone.
        """
        if self.error is not None:
            raise MSRPConnectError(f"connection closed: {self.error}")
        deadline = None
        if timeout:
            deadline = self._loop.time() + timeout
            if self._timer is None or deadline < self._timer_at:
                self._arm(deadline)
        self._pending[transaction_id] = (callback, argument, deadline)

    def forget(self, transaction_id: str) -> None:
        """Stop waiting for a response."""
        self._pending.pop(transaction_id, None)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """The timer of the earliest deadline: time out what is due, rearm for the next one.

        Deadlines mostly come in the order of the requests and responses long before them, so
        this runs about once per timeout period, and looks at the transactions then in flight.
        """
        self._timer = None
        now = self._loop.time() + 0.001  # a timer may fire a hair early: that is due too
        due = [tid for tid, (_, _, deadline) in self._pending.items() if deadline is not None and deadline <= now]
        for tid in due:
            callback, argument, _ = self._pending.pop(tid)
            _call_back(callback, argument, None, MSRPTimeoutError(f"no response to transaction {tid}"))
        upcoming = [deadline for _, _, deadline in self._pending.values() if deadline is not None]
        if upcoming and self._timer is None:
            self._arm(min(upcoming))

    def _resolve(self, frame: MSRPData) -> None:
        entry = self._pending.pop(frame.transaction_id, None)
        if entry is not None:
            _call_back(entry[0], entry[1], frame, None)

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
        self._added_out(len(data))

    def _write_parts(self, head: bytes, body: bytes | memoryview, tail: bytes) -> None:
        """``_write(head + body + tail)`` without that concatenation: the parts are joined once,
        with the other small frames of this loop iteration, or alone for a large frame."""
        if self.is_closing:
            raise MSRPConnectError(f"connection closed: {self.error}")
        size = len(head) + len(body) + len(tail)
        if size >= COALESCE_LIMIT:
            self._flush()
            assert self.transport is not None
            self.transport.write(b"".join((head, body, tail)))
            return
        if type(body) is not bytes and not (isinstance(body, memoryview) and body.readonly):
            body = bytes(body)  # kept until the flush: a writable buffer could change before
        out = self._out
        out.append(head)
        out.append(body)
        out.append(tail)
        self._added_out(size)

    def _added_out(self, size: int) -> None:
        """``size`` more bytes wait in ``_out``: send them once there are enough, else at the end
        of this loop iteration (with what else it writes)."""
        self._out_size += size
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
        self._write_nowait(frame.encode())

    def write_response(self, request: MSRPData, code: int, comment: str | None = None) -> None:
        """Queue the response to ``request`` (see :func:`~sipsimple.msrp.message.encode_response`);
        nothing if the connection is closing.  The receiver's path for every chunk: kept short."""
        transport = self.transport
        if transport is None or self.error is not None or transport.is_closing():
            return
        data = encode_response(request, code, comment)
        if self._busy:
            self._queued.append(data)
            return
        self._out.append(data)
        self._added_out(len(data))

    def _write_nowait(self, data: bytes) -> None:
        if self._busy:
            self._queued.append(data)
        else:
            self._write(data)

    @property
    def write_paused(self) -> bool:
        """True while the transport's write buffer is over its high-water mark: :meth:`drain`."""
        return self._paused

    def write_parts_nowait(self, head: bytes, body: bytes | memoryview, tail: bytes) -> bool:
        """Queue the frame ``head + body + tail`` at once if it can be: not while a long frame is
        being written in slices, and only with a body of at most :data:`WRITE_SLICE` bytes.

        Returns False if nothing was written (then use :meth:`write_parts`).  Does not wait for
        room: the caller awaits :meth:`drain` when :attr:`write_paused`.
        """
        if self._busy or len(body) > WRITE_SLICE:
            return False
        self._write_parts(head, body, tail)
        return True

    async def write_parts(
        self,
        head: bytes,
        body: bytes | memoryview,
        end_line: bytes,
        flag: str,
        abort: Callable[[], bool] | None = None,
    ) -> str:
        """Write a frame given as its encoded head, body and end-line without the flag and CRLF
        (``end_line``), waiting for room.

        Bodies over :data:`WRITE_SLICE` go out in slices; between slices ``abort()`` is polled
        and, if it returns true, the frame is ended with ``#``.  Returns the flag written.
        """
        if not self._busy and len(body) <= WRITE_SLICE:
            self._write_parts(head, body, end_line + _FLAG_LINES[flag])
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
                self._write(end_line + _FLAG_LINES[flag])
            finally:
                self._busy = False
                queued, self._queued = self._queued, []
                if queued and not self.is_closing:
                    self._write(b"".join(queued))
        if self._paused:
            await self._drain()
        return flag

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
        lead = b"\r\n" if frame.has_content_section else b""
        end_line = lead + b"-------" + frame.transaction_id.encode("ascii")
        return await self.write_parts(frame.encode_head(), body, end_line, frame.contflag or "$", abort)

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
        self._routes: dict[str, MSRPSession] = {}  # To-Path header as received -> its session
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
        self._routes.clear()

    def unregister(self, session: MSRPSession) -> None:
        sid = session.local_uri.session_id if session.local_uri is not None else None
        if sid is not None and self.sessions.get(sid) is session:
            del self.sessions[sid]
        self._routes.clear()

    def release(self, connection: MSRPConnection, session: MSRPSession) -> None:
        """A session stopped using ``connection``; close it when nobody uses it any more."""
        connection.sessions.discard(session)
        if not connection.sessions:
            connection.close()

    # ------------------------------------------------------------------ ConnectionHandler
    def handle_request(self, connection: MSRPConnection, frame: MSRPData) -> None:
        # every chunk of a session carries the same To-Path: route by the text once checked
        raw_to_path = frame.headers["To-Path"]
        session = self._routes.get(raw_to_path)
        if session is None:
            target = frame.to_path[-1]
            session = self.sessions.get(target.session_id) if target.session_id else None
            if session is None or session.local_uri != target:
                respond(connection, frame, 481)
                return
            if len(self._routes) >= _ROUTES_SIZE:
                self._routes.clear()
            self._routes[raw_to_path] = session
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
        self._routes.clear()
        await asyncio.sleep(0)


def respond(connection: MSRPConnection, request: MSRPData, code: int, comment: str | None = None) -> None:
    """Answer ``request`` unless it is a REPORT or its Failure-Report forbids it (RFC 4975 7.2)."""
    if request.method == "REPORT" or request.contflag is None:
        return
    if "Failure-Report" in request.headers:  # absent (the default, yes) on nearly every chunk
        policy = request.failure_report
        if policy == "no" or (policy == "partial" and code == 200):
            return
    connection.write_response(request, code, comment)
