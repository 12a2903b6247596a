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
from .message import MSRPData, Status, new_message_id, new_transaction_id
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
WINDOW_CHUNKS = 64
WINDOW_BYTES = 512 * 1024


def default_window(chunk_size: int) -> int:
    """Chunks sent ahead of their responses: :data:`WINDOW_CHUNKS`, or more for small chunks,
    up to :data:`WINDOW_BYTES` in flight (then receiver and sender work side by side instead of
    in turns; what is in flight sits in socket buffers, not in our memory)."""
    return max(WINDOW_CHUNKS, WINDOW_BYTES // chunk_size)


class _InFlight:
    """The chunks of one outgoing message sent and not answered yet, in order.

    ``entries`` holds ``[end offset, response, transaction id]`` per chunk; responses may come
    out of order, but the message counts as acknowledged (``bytes_acked``, progress) only up
    to the first chunk still unanswered.  :meth:`answered` is the connection's callback; the
    progress callback runs later, in a callback of its own (once per batch of responses, once
    per chunk in it): the user's code does not run inside the connection's reading.
    """

    __slots__ = ("message", "entries", "count", "waiter", "wake_below", "acked")

    def __init__(self, message: OutgoingMessage) -> None:
        self.message = message
        self.entries: deque[list] = deque()
        self.count = 0  # unanswered chunks
        self.waiter: asyncio.Future[None] | None = None
        self.wake_below = 0
        self.acked: list[int] = []  # chunk ends acknowledged, for the progress callback
        message.result.add_done_callback(self._wake)

    def add(self, end: int, tid: str) -> list:
        entry = [end, None, tid]
        self.entries.append(entry)
        self.count += 1
        return entry

    def answered(self, entry: list, response: MSRPData | None, error: Exception | None) -> None:
        self.count -= 1
        message = self.message
        if not message.done:
            if error is not None:
                message.fail(error)
            elif response is not None and response.code != 200:
                message.fail(MSRPTransactionError(response.code or 0, response.comment or ""))
            else:
                entry[1] = response
                entries = self.entries
                while entries and entries[0][1] is not None:
                    end, acked, _ = entries.popleft()
                    message.bytes_acked = end
                    message.last_response = acked
                    if message.progress is not None:
                        if not self.acked:
                            asyncio.get_running_loop().call_soon(self._report)
                        self.acked.append(end)
        if self.count < self.wake_below:
            self._wake()

    def _report(self) -> None:
        acked, self.acked = self.acked, []
        message = self.message
        for end in acked:
            result = message.result
            if result.done() and (result.cancelled() or result.exception() is not None):
                return  # aborted or failed meanwhile: no progress after that
            message.report_progress(end)

    def _wake(self, _: object = None) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_below(self, count: int) -> None:
        """Until fewer than ``count`` chunks are unanswered, or the message is done."""
        while self.count >= count and not self.message.done:
            self.wake_below = count
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        self.waiter = None
        self.wake_below = 0


def _partial_answer(message: OutgoingMessage, response: MSRPData | None, error: Exception | None) -> None:
    """The response to a chunk sent with ``Failure-Report: partial``: only an error code counts."""
    if response is not None and response.code != 200:
        message.fail(MSRPTransactionError(response.code or 0, response.comment or ""))


class MSRPSession:
    """An MSRP session on an :class:`MSRPTransport`, directly or through a relay.

    Callbacks (all optional, called on the loop):

    * ``on_incoming(message) -> MessageSink | None`` on the first chunk of a new message;
      return a sink (else memory is used) or raise :class:`MSRPTransactionError` to refuse.
    * ``on_message(message)`` when a message is complete.
    * ``on_message_failed(message, exc)`` when an incoming message is aborted or fails.
    * ``on_closed(exc)`` once, when the session ends (``exc`` None for a local close).

    ``chunk_size`` is the body size of a SEND chunk; ``window`` how many chunks of a message
    go out ahead of their responses (None: :func:`default_window` of the chunk size).
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
        window: int | None = None,
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
        self.window = None if window is None else max(1, window)
        """Chunks of a message sent ahead of their responses; None: :func:`default_window`."""
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
        self._from_path_ok: str | None = None  # a From-Path header text found to match remote_path
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
        self._from_path_ok = None
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
        inflight = _InFlight(message)
        try:
            async with self._send_lock:
                await self._write_chunks(message, inflight)
            await inflight.wait_below(1)
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
            if self.connection is not None:
                for entry in inflight.entries:
                    if entry[1] is None:
                        self.connection.forget(entry[2])
            if message.done and self._outgoing.get(message.message_id) is message:
                del self._outgoing[message.message_id]

    def _chunk_template(self, message: OutgoingMessage) -> tuple[str, str]:
        """The head lines of ``message``'s chunks before and after Byte-Range (the latter with
        the blank line), in :meth:`MSRPData.encode_head` order: a chunk's head is then one format."""
        frame = self._new_send(message.message_id)
        headers = frame.headers
        if message.success_report:
            headers["Success-Report"] = "yes"
        if message.failure_report != "yes":
            headers["Failure-Report"] = message.failure_report
        headers["Byte-Range"] = "\0"  # a placeholder: cannot be in any header value
        headers.update(message.headers)
        headers["Content-Type"] = message.content_type
        head = frame.encode_head().decode("utf-8")
        lines = head[head.index("\r\n") + 2 :]  # without the start line
        before, found, after = lines.partition("Byte-Range: \0\r\n")
        assert found, "Byte-Range is set by the session only"
        return before, after

    async def _write_chunks(self, message: OutgoingMessage, inflight: _InFlight) -> None:
        """Write ``message`` chunk by chunk, at most ``window`` chunks ahead of the responses.

        A chunk's head is one format of a per-message template, it goes out with the other
        chunks of the loop iteration in one write (see :meth:`MSRPConnection.write_parts_nowait`),
        and its response is a callback (no future or timer per chunk).
        """
        connection = self.connection
        if connection is None:
            raise MSRPSessionError("session is not connected")
        total = message.total
        offset = message.start
        policy = message.failure_report
        timeout = self.transaction_timeout
        chunk_size = self.chunk_size
        window = self.window or default_window(chunk_size)
        before, after = self._chunk_template(message)
        first = True
        while first or offset < total:
            if inflight.count >= window:
                await inflight.wait_below(window)
            if message.done:
                if message.aborted and not first:
                    await self._write_abort(connection, message, offset)
                return
            first = False
            end = min(offset + chunk_size, total)
            data = message.read(offset, end - offset)
            tid = new_transaction_id()
            flag = "$" if end >= total else "+"
            head = f"MSRP {tid} SEND\r\n{before}Byte-Range: {offset + 1}-{end}/{total}\r\n{after}".encode()
            if policy == "yes":
                connection.on_response(tid, timeout, inflight.answered, inflight.add(end, tid))
            elif policy == "partial":  # only a failure matters; no answer is no failure
                connection.on_response(tid, timeout, _partial_answer, message)
            if connection.write_parts_nowait(head, data, f"\r\n-------{tid}{flag}\r\n".encode()):
                if connection.write_paused:
                    await connection.drain()
            else:
                end_line = f"\r\n-------{tid}".encode()
                flag = await connection.write_parts(head, data, end_line, flag, message.is_aborted)
            offset = end
            message.bytes_sent = offset
            if flag == "#":
                message.fail(MSRPAbortedError("aborted by local request"))
                return
            if policy != "yes":
                message.report_progress(offset)

    async def _write_abort(self, connection: MSRPConnection, message: OutgoingMessage, offset: int) -> None:
        """An empty chunk ending with ``#``: tells the receiver the message is abandoned."""
        frame = self._new_send(message.message_id)
        frame.headers["Byte-Range"] = f"{offset + 1}-{offset}/{message.total}"
        frame.headers["Content-Type"] = message.content_type
        frame.contflag = "#"
        if message.failure_report != "yes":
            frame.headers["Failure-Report"] = message.failure_report
        await connection.write_frame(frame)

    # ------------------------------------------------------------------ receiving
    def handle_request(self, connection: MSRPConnection, frame: MSRPData) -> None:
        """Entry point from the transport for requests addressed to this session."""
        if self.state == "closed":
            respond(connection, frame, 481)
            return
        remote_path = self.remote_path
        if remote_path is not None:
            # every chunk carries the same From-Path: compare URIs only for a new text
            raw_from_path = frame.headers["From-Path"]
            if raw_from_path != self._from_path_ok:
                if frame.from_path[-1] != remote_path[-1]:
                    respond(connection, frame, 481, "From-Path does not match the session")
                    return
                self._from_path_ok = raw_from_path
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
