"""One MSRP session (RFC 4975): setup, sending in chunks, reassembly, reports.

Life cycle::

    session = MSRPSession(transport, on_message=...)
    local_path = await session.prepare()          # listen, or AUTH at a relay -> SDP a=path
    ... exchange SDP, learn the remote a=path and who connects (a=setup) ...
    await session.start(remote_path, active=True) # connect (or wait for the peer)
    msg = session.send_message(b"hi", "text/plain", success_report=True)
    await msg.wait()
    await session.close()

Incoming SENDs are answered 200 (per Failure-Report), reassembled by Byte-Range into a
sink, and handed to ``on_message(IncomingMessage)``; a Success-Report is sent when asked
for.  Requests whose To-Path/From-Path do not belong to the session get 481.

A sink may store asynchronously (:class:`~sipsimple.msrp.filetransfer.FileSink` writes and
hashes in a worker thread): a chunk is then answered only once its bytes, and all bytes
before them, are stored, the Success-Report only once ``complete`` is done, and the
connection stops reading while more than :data:`MAX_WRITE_BACKLOG` bytes wait for the sink.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from typing import IO

from .errors import (
    MSRPAbortedError,
    MSRPConnectError,
    MSRPError,
    MSRPReportError,
    MSRPSessionError,
    MSRPTimeoutError,
    MSRPTransactionError,
)
from .message import MSRPData, Status, new_message_id
from .messages import IncomingMessage, MessageSink, OutgoingMessage, ProgressCallback
from .relay import RelaySettings, authenticate
from .transport import MSRPConnection, MSRPTransport, respond
from .uri import MSRPURI, format_path, new_session_id

__all__ = ["MSRPSession"]

log = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 2048
MAX_EARLY_FRAMES = 64
MAX_WRITE_BACKLOG = 8 * 1024 * 1024
"""Bytes an asynchronous sink may have pending before the connection stops reading."""


class MSRPSession:
    """An MSRP session on an :class:`MSRPTransport`, directly or through a relay.

    Callbacks (all optional, called on the loop):

    * ``on_incoming(message) -> MessageSink | None`` on the first chunk of a new message;
      return a sink (else memory is used) or raise :class:`MSRPTransactionError` to refuse.
    * ``on_message(message)`` when a message is complete.
    * ``on_message_failed(message, exc)`` when an incoming message is aborted or fails.
    * ``on_closed(exc)`` once, when the session ends (``exc`` None for a local close).
    """

    def __init__(
        self,
        transport: MSRPTransport,
        *,
        relay: RelaySettings | None = None,
        on_message: Callable[[IncomingMessage], None] | None = None,
        on_incoming: Callable[[IncomingMessage], MessageSink | None] | None = None,
        on_message_failed: Callable[[IncomingMessage, BaseException], None] | None = None,
        on_closed: Callable[[Exception | None], None] | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        transaction_timeout: float | None = None,
        report_timeout: float | None = None,
        window: int = 64,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.transport = transport
        self.relay = relay
        self.on_message = on_message
        self.on_incoming = on_incoming
        self.on_message_failed = on_message_failed
        self.on_closed = on_closed
        self.chunk_size = chunk_size
        self.transaction_timeout = (
            transport.transaction_timeout if transaction_timeout is None else transaction_timeout
        )
        self.report_timeout = self.transaction_timeout if report_timeout is None else report_timeout
        self.window = max(1, window)
        self.session_id = new_session_id()
        self.local_uri: MSRPURI | None = None
        self.local_path: list[MSRPURI] = []
        self.relay_path: list[MSRPURI] = []
        self.remote_path: list[MSRPURI] | None = None
        self.connection: MSRPConnection | None = None
        self.state = "new"
        self.error: Exception | None = None
        self._incoming: dict[str, IncomingMessage] = {}
        self._completing: set[IncomingMessage] = set()  # complete() runs asynchronously
        self._outgoing: dict[str, OutgoingMessage] = {}
        self._send_lock = asyncio.Lock()
        self._bound: asyncio.Future[MSRPConnection] = asyncio.get_running_loop().create_future()
        self._early: list[tuple[MSRPConnection, MSRPData]] = []
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<MSRPSession {self.local_uri} {self.state}>"

    @property
    def to_path(self) -> list[MSRPURI]:
        """The To-Path of our requests: our relay's path, then the remote path."""
        if self.remote_path is None:
            raise MSRPSessionError("remote path not known yet")
        return self.relay_path + self.remote_path

    # ------------------------------------------------------------------ setup
    async def prepare(self) -> list[MSRPURI]:
        """Get a local path to advertise: listen on the transport, or connect and AUTH at the relay."""
        if self.state != "new":
            raise MSRPSessionError(f"prepare() in state {self.state}")
        if self.relay is None:
            await self.transport.listen()
            self.local_uri = self.transport.local_uri(self.session_id)
            self.local_path = [self.local_uri]
        else:
            relay_uri = self.relay.uri
            connection = await self.transport.connect(relay_uri, reuse=False)
            assert connection.local_address is not None
            host, port = connection.local_address[:2]
            self.local_uri = MSRPURI(host, port, self.session_id, "tcp", relay_uri.use_tls)
            self._attach(connection)
            try:
                grant = await authenticate(connection, self.local_uri, self.relay, self.transaction_timeout)
            except BaseException:
                self.transport.release(connection, self)
                raise
            self.relay_path = list(grant.use_path)
            self.local_path = self.relay_path + [self.local_uri]
        self.transport.register(self)
        self.state = "prepared"
        return list(self.local_path)

    async def start(self, remote_path: list[MSRPURI], *, active: bool, timeout: float = 10.0) -> None:
        """Start talking to ``remote_path`` (the peer's SDP ``a=path``).

        ``active``: connect (directly, or nothing to do through a relay) and send an empty
        SEND to bind the connection; otherwise wait up to ``timeout`` s for the peer's first
        request (RFC 4975 section 5.4 / RFC 6135).
        """
        if self.state != "prepared":
            raise MSRPSessionError(f"start() in state {self.state}")
        if not remote_path:
            raise MSRPSessionError("empty remote path")
        self.remote_path = list(remote_path)
        self.state = "starting"
        early, self._early = self._early, []
        for connection, frame in early:
            self.handle_request(connection, frame)
        try:
            if self.relay is not None or active:
                if self.connection is None:
                    connection = await self.transport.connect(self.remote_path[0])
                    self._attach(connection)
                await self._send_bind()
            else:
                await asyncio.wait_for(asyncio.shield(self._bound), timeout)
        except TimeoutError:
            error = MSRPTimeoutError("the peer did not connect")
            await self._end(error)
            raise error from None
        except MSRPError as exc:
            await self._end(exc)
            raise
        if self.state == "starting":
            self.state = "started"

    def _attach(self, connection: MSRPConnection) -> None:
        self.connection = connection
        connection.sessions.add(self)
        if not self._bound.done():
            self._bound.set_result(connection)

    async def _send_bind(self) -> None:
        frame = self._new_send(new_message_id())
        frame.headers["Byte-Range"] = "1-0/0"
        assert self.connection is not None
        response = await self.connection.request(frame, self.transaction_timeout)
        if response.code != 200:
            raise MSRPTransactionError(response.code or 0, response.comment or "")

    def _new_send(self, message_id: str) -> MSRPData:
        frame = MSRPData(method="SEND")
        headers = frame.headers
        headers["To-Path"] = format_path(self.to_path)
        headers["From-Path"] = str(self.local_uri)
        headers["Message-ID"] = message_id
        return frame

    # ------------------------------------------------------------------ sending
    def send_message(
        self,
        content: bytes | str | IO[bytes],
        content_type: str = "text/plain",
        *,
        message_id: str | None = None,
        size: int | None = None,
        start: int = 0,
        success_report: bool = False,
        failure_report: str = "yes",
        headers: dict[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> OutgoingMessage:
        """Queue a message; returns at once.  ``await msg.wait()`` for the outcome.

        ``content`` is bytes/str or a binary file object (then ``size`` is its total size
        and it is read chunk by chunk, never whole).  ``start`` (0-based) skips bytes the
        peer already has: the first chunk carries ``Byte-Range: start+1-...``.
        """
        if self.state not in ("started", "starting"):
            raise MSRPSessionError(f"cannot send in state {self.state}")
        if isinstance(content, str):
            content = content.encode("utf-8")
        if isinstance(content, bytes | bytearray | memoryview):
            total = len(content)
        else:
            if size is None:
                raise ValueError("size is required when sending from a file object")
            total = size
        message = OutgoingMessage(
            message_id or new_message_id(),
            content_type,
            content,
            total,
            start=start,
            success_report=success_report,
            failure_report=failure_report,
            headers=headers,
            progress=progress,
        )
        self._outgoing[message.message_id] = message
        message.task = self._spawn(self._send(message))
        return message

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, message: OutgoingMessage) -> None:
        inflight: deque[tuple[asyncio.Future[MSRPData], int, str]] = deque()
        try:
            async with self._send_lock:
                await self._write_chunks(message, inflight)
            while inflight and not message.done:
                await self._settle(message, inflight.popleft())
            if message.done:
                return
            if message.success_report:
                await asyncio.wait_for(asyncio.shield(message.result), self.report_timeout)
            elif message.failure_report == "yes":
                message.succeed(200, "OK", message.last_response)
            else:
                message.succeed(200, "OK", None)
        except TimeoutError:
            message.fail(MSRPTimeoutError("no success report"))
        except MSRPError as exc:
            message.fail(exc)
        except asyncio.CancelledError:
            message.fail(MSRPSessionError("session closed"))
            raise
        except Exception as exc:
            log.exception("sending %r failed", message)
            message.fail(exc)
        finally:
            for future, _, tid in inflight:
                future.cancel()
                if self.connection is not None:
                    self.connection.forget(tid)
            if message.done and self._outgoing.get(message.message_id) is message:
                del self._outgoing[message.message_id]

    async def _write_chunks(self, message: OutgoingMessage, inflight: deque) -> None:
        connection = self.connection
        if connection is None:
            raise MSRPSessionError("session is not connected")
        total = message.total
        offset = message.start
        expect = message.failure_report != "no"
        timeout = self.transaction_timeout if message.failure_report == "yes" else None
        first = True
        while first or offset < total:
            if message.done:
                if message.aborted and not first:
                    await self._write_abort(connection, message, offset)
                return
            first = False
            size = min(self.chunk_size, total - offset)
            data = message.read(offset, size)
            last = offset + size >= total
            frame = self._new_send(message.message_id)
            headers = frame.headers
            if message.success_report:
                headers["Success-Report"] = "yes"
            if message.failure_report != "yes":
                headers["Failure-Report"] = message.failure_report
            headers["Byte-Range"] = f"{offset + 1}-{offset + size}/{total}"
            headers.update(message.headers)
            headers["Content-Type"] = message.content_type
            frame.contflag = "$" if last else "+"
            future = connection.expect_response(frame.transaction_id, timeout) if expect else None
            flag = await connection.write_frame(frame, data, message.is_aborted)
            offset += size
            message.bytes_sent = offset
            if future is not None:
                if message.failure_report == "partial":
                    future.add_done_callback(self._partial_failure(message, frame.transaction_id))
                    self._forget_later(connection, frame.transaction_id)
                else:
                    inflight.append((future, offset, frame.transaction_id))
            if flag == "#":
                message.fail(MSRPAbortedError("aborted by local request"))
                return
            if message.failure_report != "yes":
                message.report_progress(offset)
            while inflight and (len(inflight) >= self.window or inflight[0][0].done()):
                await self._settle(message, inflight.popleft())

    async def _write_abort(self, connection: MSRPConnection, message: OutgoingMessage, offset: int) -> None:
        """An empty chunk ending with ``#``: tells the receiver the message is abandoned."""
        frame = self._new_send(message.message_id)
        frame.headers["Byte-Range"] = f"{offset + 1}-{offset}/{message.total}"
        frame.headers["Content-Type"] = message.content_type
        frame.contflag = "#"
        if message.failure_report != "yes":
            frame.headers["Failure-Report"] = message.failure_report
        await connection.write_frame(frame)

    async def _settle(
        self, message: OutgoingMessage, item: tuple[asyncio.Future[MSRPData], int, str]
    ) -> None:
        future, offset, _ = item
        response = await future
        if message.done:
            return
        if response.code != 200:
            message.fail(MSRPTransactionError(response.code or 0, response.comment or ""))
            return
        message.bytes_acked = offset
        message.last_response = response
        message.report_progress(offset)

    def _partial_failure(self, message: OutgoingMessage, tid: str):
        def callback(future: asyncio.Future[MSRPData]) -> None:
            if future.cancelled() or future.exception() is not None:
                return
            response = future.result()
            if response.code != 200:
                message.fail(MSRPTransactionError(response.code or 0, response.comment or ""))

        return callback

    def _forget_later(self, connection: MSRPConnection, tid: str) -> None:
        asyncio.get_running_loop().call_later(self.transaction_timeout, connection.forget, tid)

    # ------------------------------------------------------------------ receiving
    def handle_request(self, connection: MSRPConnection, frame: MSRPData) -> None:
        """Entry point from the transport for requests addressed to this session."""
        if self.state == "closed":
            respond(connection, frame, 481)
            return
        if self.remote_path is not None and frame.from_path[-1] != self.remote_path[-1]:
            respond(connection, frame, 481, "From-Path does not match the session")
            return
        if self.connection is None:
            self._attach(connection)
        elif connection is not self.connection:
            respond(connection, frame, 506)
            return
        if self.remote_path is None:
            if len(self._early) >= MAX_EARLY_FRAMES:
                respond(connection, frame, 481)
            else:
                self._early.append((connection, frame))
            return
        method = frame.method
        if method == "SEND":
            self._handle_send(connection, frame)
        elif method == "REPORT":
            self._handle_report(frame)
        else:
            respond(connection, frame, 501)

    def _handle_send(self, connection: MSRPConnection, frame: MSRPData) -> None:
        message_id = frame.message_id
        if not message_id:
            respond(connection, frame, 400, "Message-ID missing")
            return
        byte_range = frame.byte_range
        message = self._incoming.get(message_id)
        if message is None:
            if not frame.has_content_section:
                if frame.contflag is not None:
                    respond(connection, frame, 200)  # empty SEND: binding / keep-alive
                return
            message = IncomingMessage(frame)
            if self.on_incoming is not None:
                try:
                    sink = self.on_incoming(message)
                except MSRPTransactionError as exc:
                    respond(connection, frame, exc.code, exc.comment)
                    return
                if sink is not None:
                    message.sink = sink
            for start, end in message.sink.initial_ranges():
                message.received.add(start, end)
            self._incoming[message_id] = message
        body = frame.body
        if body and message.rejected is None:
            start = (byte_range.start if byte_range is not None else 1) + frame.body_offset
            self._store(connection, message, start, body)
        if frame.contflag is None:
            return
        if message.writes or message.steps:
            # answered once the sink has stored what came before this end-line
            message.steps.append((message.write_seq, connection, frame))
        else:
            self._end_of_chunk(connection, message, frame)

    def _store(self, connection: MSRPConnection, message: IncomingMessage, start: int,
               body: bytes | memoryview) -> None:
        """Hand a body (piece) to the sink; track it when the sink stores it asynchronously."""
        try:
            pending = message.sink.write(start - 1, body)
        except MSRPTransactionError as exc:
            message.reject(exc.code, exc.comment)
            return
        except Exception as exc:  # disk full, size overrun, a sink bug: refuse the rest
            message.reject(413, f"cannot store: {exc}")
            return
        end = start + len(body) - 1
        if pending is None:
            message.received.add(start, end)
            return
        future = asyncio.ensure_future(pending)
        message.write_seq += 1
        entry = [message.write_seq, False]  # sequence number, finished (a future may serve several)
        message.writes.append(entry)
        message.write_backlog += len(body)
        if message.write_backlog > MAX_WRITE_BACKLOG and message.paused is None:
            # the sink is slower than the network: let TCP flow control hold the sender back
            connection.pause_reading()
            message.paused = connection
        future.add_done_callback(functools.partial(self._stored, message, entry, start, end))

    def _stored(self, message: IncomingMessage, entry: list, start: int, end: int, future: asyncio.Future) -> None:
        """An asynchronous write finished: record it, then answer the chunk ends it held back."""
        entry[1] = True
        message.write_backlog -= end - start + 1
        error = MSRPSessionError("write cancelled") if future.cancelled() else future.exception()
        if error is None:
            message.received.add(start, end)
        elif message.rejected is None:
            if isinstance(error, MSRPTransactionError):
                message.reject(error.code, error.comment)
            else:
                message.reject(413, f"cannot store: {error}")
        writes = message.writes
        while writes and writes[0][1]:
            writes.popleft()
        if message.paused is not None and message.write_backlog <= MAX_WRITE_BACKLOG // 2:
            message.paused.resume_reading()
            message.paused = None
        steps = message.steps
        if self.state == "closed":
            steps.clear()
            return
        stored_through = writes[0][0] - 1 if writes else message.write_seq
        while steps and steps[0][0] <= stored_through:
            _, connection, frame = steps.popleft()
            self._end_of_chunk(connection, message, frame)

    def _end_of_chunk(self, connection: MSRPConnection, message: IncomingMessage, frame: MSRPData) -> None:
        """A chunk's end-line, once its bytes are stored: answer it, finish the message on ``$``."""
        rejected = message.rejected
        if message.error is not None:  # dropped while this chunk waited for its writes
            if rejected is not None:
                respond(connection, frame, rejected.code, rejected.comment)
            return
        if rejected is not None:
            respond(connection, frame, rejected.code, rejected.comment)
            self._drop_incoming(message, rejected)
            return
        message.chunks += 1
        message.last_frame = frame
        flag = frame.contflag
        if flag == "#":
            respond(connection, frame, 200)
            self._drop_incoming(message, MSRPAbortedError("aborted by the sender"))
            return
        if flag == "+":
            respond(connection, frame, 200)
            return
        byte_range = frame.byte_range
        end = (byte_range.start if byte_range is not None else 1) + frame.body_offset + len(frame.body) - 1
        total = byte_range.total if byte_range is not None and byte_range.total is not None else end
        message.total = total
        if not message.received.covers(1, total):
            respond(connection, frame, 200)
            self._drop_incoming(message, MSRPTransactionError(400, "message ended with bytes missing"))
            return
        if self._incoming.get(message.message_id) is message:
            del self._incoming[message.message_id]
        try:
            pending = message.sink.complete(message)
        except Exception as exc:
            self._not_delivered(connection, frame, message, exc)
            return
        if pending is None:
            self._delivered(connection, frame, message)
            return
        self._completing.add(message)
        future = asyncio.ensure_future(pending)
        future.add_done_callback(functools.partial(self._completed, connection, frame, message))

    def _completed(self, connection: MSRPConnection, frame: MSRPData, message: IncomingMessage,
                   future: asyncio.Future) -> None:
        self._completing.discard(message)
        error = MSRPSessionError("completion cancelled") if future.cancelled() else future.exception()
        if message.error is not None or self.state == "closed":
            return  # dropped (session closed) meanwhile
        if error is None:
            self._delivered(connection, frame, message)
        else:
            self._not_delivered(connection, frame, message, error)

    def _delivered(self, connection: MSRPConnection, frame: MSRPData, message: IncomingMessage) -> None:
        respond(connection, frame, 200)
        if message.success_report:
            self._send_report(frame, message, 200, "OK")
        self._call(self.on_message, message)

    def _not_delivered(self, connection: MSRPConnection, frame: MSRPData, message: IncomingMessage,
                       exc: BaseException) -> None:
        respond(connection, frame, 200)
        self._send_report(frame, message, 400, str(exc) or "delivery failed")
        message.error = exc
        self._call(self.on_message_failed, message, exc)

    def _drop_incoming(self, message: IncomingMessage, reason: BaseException) -> None:
        if self._incoming.get(message.message_id) is message:
            del self._incoming[message.message_id]
        self._completing.discard(message)
        message.error = reason
        if message.paused is not None:
            message.paused.resume_reading()
            message.paused = None
        try:
            message.sink.abort(message, reason)
        except Exception:
            log.exception("sink abort failed")
        self._call(self.on_message_failed, message, reason)

    def _send_report(self, frame: MSRPData, message: IncomingMessage, code: int, comment: str) -> None:
        """A REPORT about ``message`` back along the path ``frame`` came by."""
        if code != 200 and message.failure_report == "no":
            return
        connection = self.connection
        if connection is None or connection.is_closing:
            return
        report = MSRPData(method="REPORT")
        headers = report.headers
        headers["To-Path"] = frame.headers["From-Path"]
        headers["From-Path"] = str(self.local_uri)
        headers["Message-ID"] = message.message_id
        total = message.total or 0
        headers["Byte-Range"] = f"1-{total}/{total}"
        headers["Status"] = str(Status(code, comment))
        connection.write_frame_nowait(report)

    def _handle_report(self, frame: MSRPData) -> None:
        message = self._outgoing.get(frame.message_id or "")
        if message is None:
            return
        status = frame.status
        if status is None:
            return
        if status.code != 200:
            message.fail(MSRPReportError(status.code, status.comment))
            return
        byte_range = frame.byte_range
        if byte_range is None:
            message.reported.add(1, message.total)
        else:
            message.reported.add(
                byte_range.start, byte_range.end if byte_range.end is not None else message.total
            )
        if message.reported.covers(message.start + 1, message.total):
            if message.bytes_acked < message.total:  # the report overtook some 200s
                message.bytes_acked = message.total
                message.report_progress(message.total)
            message.succeed(status.code, status.comment, frame)

    def _call(self, callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            log.exception("MSRP session callback %r failed", callback)

    # ------------------------------------------------------------------ ending
    def connection_lost(self, connection: MSRPConnection, exc: Exception | None) -> None:
        """From the transport: our connection is gone, and the session with it."""
        if connection is not self.connection or self.state == "closed":
            return
        error = exc if isinstance(exc, MSRPError) else MSRPConnectError(str(exc or "connection closed"))
        self._spawn(self._end(error))

    async def close(self) -> None:
        """End the session: fail what is in progress, release the connection."""
        await self._end(None)

    async def _end(self, error: Exception | None) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self.error = error
        failure = error or MSRPSessionError("session closed")
        self.transport.unregister(self)
        for message in list(self._outgoing.values()):
            message.fail(failure)
        self._outgoing.clear()
        for message in [*self._incoming.values(), *self._completing]:
            self._drop_incoming(message, failure)
        if not self._bound.done():
            self._bound.set_exception(failure)
            self._bound.exception()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if self.connection is not None:
            self.transport.release(self.connection, self)
        self._call(self.on_closed, error)
