"""MSRP sessions between two of our endpoints on 127.0.0.1."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import socket
import ssl
import threading

import pytest

from sipsimple.msrp.errors import (
    MSRPAbortedError,
    MSRPConnectError,
    MSRPProtocolError,
    MSRPSessionError,
    MSRPTimeoutError,
    MSRPTransactionError,
)
from sipsimple.msrp.filesink import FileSink
from sipsimple.msrp.filetransfer import file_hash, send_file
from sipsimple.msrp.message import MSRPData
from sipsimple.msrp.messages import MemorySink
from sipsimple.msrp.parser import MSRPParser
from sipsimple.msrp.session import MSRPSession
from sipsimple.msrp.transport import MSRPTransport
from sipsimple.msrp.uri import MSRPURI
from sipsimple.streams.msrp_base import MSRPStreamError, tls_contexts

from .msrp_helpers import Pair, make_tls_identity, run, wait_until

MB = 1024 * 1024


def test_chat_both_ways_with_success_reports():
    async def main():
        async with Pair() as pair:
            first = pair.a.send_message("hello bob", success_report=True)
            result = await first.wait()
            assert result.code == 200 and result.frame.method == "REPORT"
            assert pair.received_b[0].body == b"hello bob" and pair.received_b[0].content_type == "text/plain"
            back = pair.b.send_message("hi alice", "text/plain", success_report=True)
            assert (await back.wait()).code == 200
            assert pair.received_a[0].body == b"hi alice"
            # many at once keep their order; without success reports the 200s decide
            messages = [pair.a.send_message(f"m{i}") for i in range(200)]
            await asyncio.gather(*(m.wait() for m in messages))
            assert [m.body for m in pair.received_b[1:]] == [f"m{i}".encode() for i in range(200)]

    run(main())


def test_one_megabyte_message_is_chunked_and_reassembled():
    async def main():
        async with Pair(chunk_size=2048) as pair:
            body = os.urandom(1024 * 1024)
            progress = []
            message = pair.a.send_message(body, "application/octet-stream", success_report=True,
                                          progress=lambda done, total: progress.append(done))
            await message.wait()
            assert pair.received_b[-1].body == body
            assert pair.received_b[-1].last_frame.byte_range.start == 1024 * 1024 - 2047
            assert len(progress) > 100 and progress[-1] == 1024 * 1024 and progress == sorted(progress)

    run(main())


def test_file_transfer_20mb_sha1(tmp_path):
    source = tmp_path / "source.bin"
    with open(source, "wb") as f:
        for _ in range(20):
            f.write(os.urandom(1024 * 1024))
    digest = file_hash(source)
    inbox = tmp_path / "inbox"

    async def main():
        sinks = []

        def on_incoming(message):
            sinks.append(FileSink(inbox, "source.bin", expected_size=message.total, expected_hash=digest))
            return sinks[-1]

        async with Pair(chunk_size=64 * 1024) as pair:
            pair.b.on_incoming = on_incoming
            progress = []
            message = send_file(pair.a, source, progress=lambda d, t: progress.append((d, t)))
            await message.wait()
            await wait_until(lambda: pair.received_b)
            assert progress[-1] == (20 * 1024 * 1024, 20 * 1024 * 1024)
            assert sinks[0].path == inbox / "source.bin"
            assert file_hash(sinks[0].path) == digest
            assert not list(inbox.glob(".*.part"))

    run(main())


def test_file_transfer_hash_mismatch_leaves_no_file(tmp_path):
    source = tmp_path / "s.bin"
    source.write_bytes(os.urandom(300_000))
    wrong = "sha-1:" + ":".join(["00"] * 20)
    inbox = tmp_path / "inbox"

    async def main():
        async with Pair(chunk_size=32 * 1024) as pair:
            pair.b.on_incoming = lambda m: FileSink(inbox, "s.bin", expected_hash=wrong)
            message = send_file(pair.a, source)
            with pytest.raises(MSRPTransactionError) as info:
                await message.wait()
            assert "hash mismatch" in str(info.value)
            assert pair.failed_b and "hash mismatch" in str(pair.failed_b[0][1])
            assert list(inbox.iterdir()) == []

    run(main())


def test_file_transfer_cut_and_resumed(tmp_path):
    size = 6 * 1024 * 1024
    source = tmp_path / "movie.bin"
    source.write_bytes(os.urandom(size))
    digest = file_hash(source)
    inbox = tmp_path / "inbox"

    async def main():
        # first attempt: the receiver's connection dies after ~40%
        async with Pair(chunk_size=64 * 1024) as pair:
            def on_incoming(message):
                sink = FileSink(inbox, "movie.bin", expected_size=size, expected_hash=digest)
                real_write = sink.write

                def write(offset, data):
                    stored = real_write(offset, data)
                    if offset + len(data) >= size * 0.4:
                        pair.b.connection.abort()
                    return stored

                sink.write = write
                return sink

            pair.b.on_incoming = on_incoming
            message = send_file(pair.a, source)
            with pytest.raises(MSRPConnectError):
                await message.wait()
            await wait_until(lambda: pair.failed_b)
        partial = list(inbox.glob(".movie.bin.*.part"))
        assert len(partial) == 1 and 0 < partial[0].stat().st_size < size
        assert not (inbox / "movie.bin").exists()
        # second attempt: a new session resumes from what is on disk
        async with Pair(chunk_size=64 * 1024) as pair:
            sink = FileSink(inbox, "movie.bin", expected_size=size, expected_hash=digest)
            offset = sink.resume_offset
            assert offset == partial[0].stat().st_size
            pair.b.on_incoming = lambda m: sink
            message = send_file(pair.a, source, start=offset)
            await message.wait()
            await wait_until(lambda: pair.received_b)
            first = pair.received_b[0].first_frame.byte_range
            assert first.start == offset + 1 and first.total == size
        assert file_hash(inbox / "movie.bin") == digest

    run(main())


def test_abort_outgoing_message_uses_hash_flag():
    async def main():
        async with Pair(chunk_size=1024 * 1024) as pair:
            pair.b.on_incoming = lambda m: MemorySink(64 * 1024 * 1024)
            message = pair.a.send_message(b"x" * (32 * 1024 * 1024), "application/octet-stream",
                                          progress=lambda d, t: message.abort() if d >= 2 * 1024 * 1024 else None)
            with pytest.raises(MSRPAbortedError):
                await message.wait()
            await wait_until(lambda: pair.failed_b)
            failed, error = pair.failed_b[0]
            assert isinstance(error, MSRPAbortedError) and failed.last_frame.contflag == "#"
            # the session goes on
            await pair.a.send_message("still here").wait()
            assert pair.received_b[-1].body == b"still here"

    run(main())


def test_receiver_rejects_with_413():
    async def main():
        async with Pair(chunk_size=4096) as pair:
            pair.b.on_incoming = lambda m: MemorySink(max_size=10_000)
            message = pair.a.send_message(b"y" * 50_000, "application/octet-stream")
            with pytest.raises(MSRPTransactionError) as info:
                await message.wait()
            assert info.value.code == 413

    run(main())


def test_transaction_timeout():
    async def main():
        async with Pair(transaction_timeout=0.3) as pair:
            # b stops reading: nothing gets answered (neither 200s nor reports)
            pair.b.connection.pause_reading()
            message = pair.a.send_message("anyone?")
            with pytest.raises(MSRPTimeoutError) as info:
                await message.wait()
            assert info.value.code == 408
            report_wait = pair.a.send_message("report?", success_report=True, failure_report="no")
            with pytest.raises(MSRPTimeoutError):
                await report_wait.wait()

    run(main())


def _raw_request(to_path: str, from_path: str, tid: str = "rawtid01") -> bytes:
    frame = MSRPData(tid, method="SEND", headers={"To-Path": to_path, "From-Path": from_path,
                                                 "Message-ID": "m1", "Byte-Range": "1-2/2",
                                                 "Content-Type": "text/plain"}, body=b"hi")
    return frame.encode()


def _read_frame(sock: socket.socket) -> MSRPData:
    parser = MSRPParser()
    while True:
        data = sock.recv(65536)
        assert data, "connection closed"
        frames = parser.feed(data)
        if frames:
            return frames[0]


def test_path_mismatch_gets_481_and_unknown_session_too():
    async def main():
        async with Pair() as pair:
            local = str(pair.b.local_uri)
            loop = asyncio.get_running_loop()
            for to_path, from_path in [
                (local, "msrp://127.0.0.1:9/intruder;tcp"),  # wrong From-Path
                (str(pair.b.local_uri.replace(session_id="nosuchsession")), str(pair.a.local_uri)),
            ]:
                sock = socket.create_connection(("127.0.0.1", pair.tb.port))
                sock.setblocking(True)
                await loop.run_in_executor(None, sock.sendall, _raw_request(to_path, from_path))
                response = await loop.run_in_executor(None, _read_frame, sock)
                assert response.code == 481
                sock.close()
            assert pair.received_b == []

    run(main())


def test_garbage_peer_is_closed_and_others_go_on():
    async def main():
        async with Pair() as pair:
            errors = []
            pair.tb.on_connection_error = lambda conn, exc: errors.append(exc)
            loop = asyncio.get_running_loop()
            sock = socket.create_connection(("127.0.0.1", pair.tb.port))
            await loop.run_in_executor(None, sock.sendall, b"GET / HTTP/1.0\r\n\r\n")
            assert await loop.run_in_executor(None, sock.recv, 100) == b""  # clean close
            sock.close()
            await wait_until(lambda: errors)
            assert isinstance(errors[0], MSRPProtocolError)
            await pair.a.send_message("unaffected", success_report=True).wait()
            assert pair.received_b[-1].body == b"unaffected"

    run(main())


def test_garbage_on_a_session_connection_ends_that_session():
    async def main():
        async with Pair() as pair:
            closed = []
            pair.b.on_closed = closed.append
            pair.a.connection.transport.write(b"MSRP nonsense\r\n\r\n")
            await wait_until(lambda: closed)
            assert isinstance(closed[0], MSRPProtocolError)
            with pytest.raises(MSRPSessionError):
                pair.b.send_message("too late")

    run(main())


def test_connection_reuse_between_sessions():
    async def main():
        ta, tb = MSRPTransport(), MSRPTransport()
        try:
            got = []
            sessions = []
            for _ in range(3):
                a = MSRPSession(ta)
                b = MSRPSession(tb, on_message=got.append)
                path_a, path_b = await a.prepare(), await b.prepare()
                await asyncio.gather(a.start(path_b, active=True), b.start(path_a, active=False))
                sessions.append((a, b))
            assert len({a.connection for a, _ in sessions}) == 1
            for i, (a, _) in enumerate(sessions):
                await a.send_message(f"via shared {i}").wait()
            assert sorted(m.body for m in got) == [b"via shared 0", b"via shared 1", b"via shared 2"]
            await sessions[0][0].close()
            assert not sessions[1][0].connection.is_closing
            await sessions[1][0].send_message("still shared").wait()
        finally:
            await ta.close()
            await tb.close()

    run(main())


def test_passive_side_times_out_when_nobody_connects():
    async def main():
        transport = MSRPTransport()
        session = MSRPSession(transport)
        await session.prepare()
        with pytest.raises(MSRPTimeoutError):
            await session.start([MSRPURI("127.0.0.1", 9, "remote1", "tcp")], active=False, timeout=0.2)
        assert session.state == "closed"
        await transport.close()

    run(main())


def test_tls(tmp_path):
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))

    async def main():
        ta = MSRPTransport(client_ssl=client)
        tb = MSRPTransport(server_ssl=server)
        try:
            got = []
            a, b = MSRPSession(ta, chunk_size=16384), MSRPSession(tb, on_message=got.append)
            path_a, path_b = await a.prepare(), await b.prepare()
            assert path_b[0].use_tls and str(path_b[0]).startswith("msrps://")
            await asyncio.gather(a.start(path_b, active=True), b.start(path_a, active=False))
            body = os.urandom(300_000)
            await a.send_message(body, "application/octet-stream", success_report=True).wait()
            assert hashlib.sha1(got[0].body).digest() == hashlib.sha1(body).digest()
        finally:
            await ta.close()
            await tb.close()

    run(main())


def _random_file(path, size):
    with open(path, "wb") as f:
        for offset in range(0, size, MB):
            f.write(os.urandom(min(MB, size - offset)))
    return path


def test_file_sink_stores_in_a_worker_and_only_stored_bytes_are_acknowledged(tmp_path):
    size = 24 * MB
    source = _random_file(tmp_path / "big.bin", size)
    digest = file_hash(source)
    gate = threading.Event()
    written_by: dict[str, int] = {}

    class HeldSink(FileSink):
        def _store(self, offset, pieces, size):
            name = threading.current_thread().name
            written_by[name] = written_by.get(name, 0) + size
            if name.startswith("msrp-file-sink"):
                gate.wait(20)  # the disk is stuck until the test lets it go
            super()._store(offset, pieces, size)

    async def main():
        async with Pair(chunk_size=MB) as pair:
            sinks = []
            pair.b.on_incoming = lambda m: sinks.append(HeldSink(tmp_path / "inbox", "big.bin", expected_hash=digest)) \
                or sinks[-1]
            message = send_file(pair.a, source)
            # nothing is stored: nothing is acknowledged, and bob stops reading after a few MiB
            await wait_until(lambda: pair.b.connection is not None and not pair.b.connection.transport.is_reading())
            assert message.bytes_acked == 0 and not message.done
            received = pair.b.connection.bytes_received
            assert received < size // 2
            gate.set()
            await message.wait()
            await wait_until(lambda: pair.received_b)
            assert pair.b.connection.transport.is_reading()
            assert file_hash(sinks[0].path) == digest
            # the loop thread wrote at most a few small pieces
            assert sum(n for name, n in written_by.items() if name.startswith("msrp-file-sink")) > size - MB

    try:
        run(main())
    finally:
        gate.set()


def test_a_failing_disk_refuses_the_file_with_413_and_keeps_what_was_written(tmp_path):
    size = 6 * MB
    source = _random_file(tmp_path / "s.bin", size)
    inbox = tmp_path / "inbox"

    class FullDisk(FileSink):
        def _store(self, offset, pieces, size):
            if offset + size > 2 * MB:
                raise OSError(errno.ENOSPC, "No space left on device")
            super()._store(offset, pieces, size)

    async def main():
        async with Pair(chunk_size=MB) as pair:
            sinks = []
            pair.b.on_incoming = lambda m: sinks.append(FullDisk(inbox, "s.bin", expected_hash=file_hash(source))) \
                or sinks[-1]
            message = send_file(pair.a, source)
            with pytest.raises(MSRPTransactionError) as info:
                await message.wait()
            assert info.value.code == 413 and "No space left on device" in info.value.comment
            await wait_until(lambda: pair.failed_b)
            assert message.bytes_acked <= 2 * MB
        # the .part keeps the stored prefix, for a later resume
        assert 0 < sinks[0].resume_offset <= 2 * MB
        assert sinks[0].part_path.stat().st_size == sinks[0].resume_offset
        assert not (inbox / "s.bin").exists()

    run(main())


def test_tls_contexts_from_engine_options(tmp_path):
    own, own_cert = make_tls_identity(tmp_path / "own")
    _, other_cert = make_tls_identity(tmp_path / "other")
    with pytest.raises(MSRPStreamError, match="needs a certificate"):
        tls_contexts({}, listen=True)
    with pytest.raises(MSRPStreamError, match="cannot load the TLS certificate"):
        tls_contexts({"tls_certificate": str(other_cert)}, listen=True)  # no key in it
    server, _ = tls_contexts({"tls_certificate": str(own)}, listen=True)

    async def exchange(client):
        ta, tb = MSRPTransport(client_ssl=client), MSRPTransport(server_ssl=server)
        try:
            got = []
            a, b = MSRPSession(ta), MSRPSession(tb, on_message=got.append)
            path_a, path_b = await a.prepare(), await b.prepare()
            await asyncio.gather(a.start(path_b, active=True), b.start(path_a, active=False, timeout=2))
            await a.send_message("over tls").wait()
            assert got[0].body == b"over tls"
        finally:
            await ta.close()
            await tb.close()

    # trusted, untrusted with checks on, untrusted with checks off
    run(exchange(tls_contexts({"tls_ca_file": str(own_cert)}, listen=False)[1]))
    with pytest.raises(MSRPConnectError, match="TLS certificate of 127.0.0.1:[0-9]+ not accepted: self-signed"):
        run(exchange(tls_contexts({"tls_ca_file": str(other_cert)}, listen=False)[1]))
    run(exchange(tls_contexts({"tls_ca_file": str(other_cert), "tls_verify_server": False}, listen=False)[1]))


# ---------------------------------------------------------------------- many frames per read
def _send(tid: str, to_path: str, from_path: str, message_id: str | None, body: bytes, start: int, total: int,
          flag: str = "+", method: str = "SEND") -> bytes:
    headers = {"To-Path": to_path, "From-Path": from_path}
    if message_id is not None:
        headers["Message-ID"] = message_id
    headers["Byte-Range"] = f"{start}-{start + len(body) - 1}/{total}"
    headers["Content-Type"] = "application/octet-stream"
    return MSRPData(tid, method=method, headers=headers, body=body, contflag=flag).encode()


def test_a_batch_of_frames_in_one_write_is_answered_in_order_and_a_bad_one_gets_its_error():
    """A peer writes 60 requests at once: every one is answered, in order, the bad ones with their
    own error, and the good chunks make up the message.  The peer is a raw TCP connection
    speaking MSRP by hand (our parser reads the answers)."""

    async def main():
        transport = MSRPTransport()
        received, failed = [], []
        session = MSRPSession(transport, on_message=received.append,
                              on_message_failed=lambda m, e: failed.append(e))
        try:
            local = str((await session.prepare())[0])
            peer = MSRPURI("127.0.0.1", 9, "rawpeer1", "tcp")
            starting = asyncio.ensure_future(session.start([peer], active=False, timeout=5))
            body = os.urandom(50 * 1000)
            frames, expected = [], []
            for i in range(50):
                piece = body[i * 1000 : (i + 1) * 1000]
                flag = "$" if i == 49 else "+"
                frames.append(_send(f"good{i:04d}", local, str(peer), "message1", piece, i * 1000 + 1, len(body), flag))
                expected.append((f"good{i:04d}", 200))
                if i % 5 == 2:  # between the chunks: requests that are wrong in one way each
                    kind = i // 5 % 4
                    tid = f"bad{i:04d}x"
                    if kind == 0:
                        frames.append(_send(tid, local, str(peer), None, b"x", 1, 1))  # no Message-ID
                        expected.append((tid, 400))
                    elif kind == 1:
                        frames.append(_send(tid, local, "msrp://127.0.0.1:9/intruder;tcp", "other", b"x", 1, 1))
                        expected.append((tid, 481))
                    elif kind == 2:
                        frames.append(_send(tid, local, str(peer), "other", b"x", 1, 1, method="FOO"))
                        expected.append((tid, 501))
                    else:
                        to_other = str(MSRPURI("127.0.0.1", transport.port, "nosuchsession", "tcp"))
                        frames.append(_send(tid, to_other, str(peer), "other", b"x", 1, 1))
                        expected.append((tid, 481))
            reader, writer = await asyncio.open_connection("127.0.0.1", transport.port)
            writer.write(b"".join(frames))  # one write: the session reads it in one or a few reads
            await writer.drain()
            parser, answers = MSRPParser(), []
            while len(answers) < len(expected):
                data = await reader.read(65536)
                assert data, "connection closed"
                answers += parser.feed(data)
            assert [(a.transaction_id, a.code) for a in answers] == expected
            assert all(str(a.to_path[0]) == str(peer) for a in answers if a.code == 200)
            await starting
            await wait_until(lambda: received)
            assert received[0].body == body and received[0].chunks == 50 and not failed
            writer.close()
        finally:
            await transport.close()

    run(main())


def test_error_comments_cannot_break_the_framing():
    """A sink refusing a chunk with a multi-line reason: the 413 still parses at the sender
    (CR/LF in a comment would otherwise end the start line early)."""

    class Refusing(MemorySink):
        def write(self, offset, data):
            raise MSRPTransactionError(413, "no room\r\nMSRP forged SEND")

    async def main():
        async with Pair(chunk_size=1000) as pair:
            pair.b.on_incoming = lambda m: Refusing()
            message = pair.a.send_message(b"z" * 5000, "application/octet-stream")
            with pytest.raises(MSRPTransactionError) as info:
                await message.wait()
            assert info.value.code == 413 and info.value.comment == "no room  MSRP forged SEND"
            pair.b.on_incoming = None
            await pair.a.send_message("the connection is fine").wait()
            assert pair.received_b[-1].body == b"the connection is fine"

    run(main())


def test_chunk_headers_come_in_order_and_reserved_ones_are_refused():
    async def main():
        async with Pair(chunk_size=4096) as pair:
            body = os.urandom(10_000)
            extra = {"Content-Disposition": "attachment", "X-Note": "héllo"}
            await pair.a.send_message(body, "application/x-test", success_report=True, headers=extra).wait()
            got = pair.received_b[-1]
            assert got.body == body and got.chunks == 3
            assert list(got.last_frame.headers) == ["To-Path", "From-Path", "Message-ID", "Success-Report",
                                                    "Byte-Range", "X-Note", "Content-Disposition", "Content-Type"]
            assert got.last_frame.headers["X-Note"] == "héllo"
            assert str(got.last_frame.byte_range) == "8193-10000/10000"
            for bad in ({"byte-range": "1-1/1"}, {"Content-Type": "text/plain"}, {"X-A": "1\r\nX-B: 2"},
                        {"Bad Name": "1"}):
                with pytest.raises(ValueError):
                    pair.a.send_message(b"x", headers=bad)

    run(main())


def test_many_messages_in_flight_time_out_together_and_late_answers_are_ignored():
    """One timer serves all transactions of a connection: 300 chunks unanswered all fail in
    time; answers that come after the timeout change nothing."""

    async def main():
        async with Pair(transaction_timeout=0.4, chunk_size=100) as pair:
            pair.b.connection.pause_reading()
            loop = asyncio.get_running_loop()
            started = loop.time()
            messages = [pair.a.send_message(os.urandom(1000)) for _ in range(30)]
            outcomes = await asyncio.gather(*(m.wait() for m in messages), return_exceptions=True)
            assert all(isinstance(o, MSRPTimeoutError) for o in outcomes)
            assert loop.time() - started < 3
            pair.b.connection.resume_reading()  # b now answers what it gets: nobody listens
            await wait_until(lambda: len(pair.failed_b) + len(pair.received_b) >= 1)
            after = pair.a.send_message("after the storm", success_report=True)
            assert (await after.wait()).code == 200

    run(main())
