"""MSRP benchmark: file transfer throughput and chat rate between two processes on loopback.

``run(json_output, file_size=..., chunk_sizes=..., repeats=..., chat_messages=...)`` starts a receiver process (this module with ``--serve``), then:

* raw TCP: the same number of bytes through a plain asyncio socket (the baseline),
* MSRP file transfer of a temp file at 2 KiB, 64 KiB and 1 MiB chunks, received into a
  :class:`~sipsimple.msrp.filesink.FileSink` told the size and hash from the offer, as a session's
  is (written to disk, fsynced, SHA-1 verified; timed until the sender has the success report),
* the same transfer into a sink that drops the bytes (the protocol alone),
* a plain copy: the same bytes through a plain socket into a file, written and SHA-1 checked
  by two threads as a FileSink does, with no protocol at all (what disk and SHA-1 cost here),
* MSRP chat: small messages with Success-Report, all queued at once, until every report came back.

Beside them, :func:`sha1_speed`: one core hashing the same bytes in memory.  A receiver that
checks the hash cannot be faster than that, whatever it does with the bytes otherwise.

Each transfer (raw, file, discard, copy) runs :data:`REPEATS` times, interleaved; the median of each is
reported (all runs are in ``runs``).  Both processes first fix glibc's malloc thresholds
(:func:`steady_malloc`): with its defaults, whether a 1 MiB buffer costs 256 page faults or none
depends on the heap's history, and raw TCP alone moved between 0.8 and 2.2 GB/s with nothing
else changed.  Result: a dict (printed as JSON with ``json_output``, else as a
table).
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import json
import os
import queue
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sipsimple.msrp.filesink import FileSink
from sipsimple.msrp.filetransfer import file_hash, format_sha1, send_file
from sipsimple.msrp.session import MSRPSession
from sipsimple.msrp.transport import MSRPTransport, read_large
from sipsimple.msrp.uri import format_path, parse_path

__all__ = ["run"]

FILE_SIZE = 64 * 1024 * 1024
SMALL_CHUNK_FILE_SIZE = 16 * 1024 * 1024
CHUNK_SIZES = (2 * 1024, 64 * 1024, 1024 * 1024)
CHAT_MESSAGES = 5000
REPEATS = 3
"""Runs of each transfer; the median of each kind is reported (the machine may be shared)."""


M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def steady_malloc() -> bool:
    """Have glibc keep freed memory for reuse (no mmap per large buffer, no trimming of the heap),
    so that both sides of every comparison allocate alike; False where that is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(M_MMAP_THRESHOLD, 64 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 512 << 20))


def sha1_speed(path: Path, repeats: int = REPEATS) -> float:
    """Bytes/s of SHA-1 over the file's bytes held in memory, fed 1 MiB at a time (the best of
    ``repeats``): what one core can verify at most."""
    data = memoryview(path.read_bytes())
    best = 0.0
    for _ in range(repeats):
        sha = hashlib.sha1()
        start = time.perf_counter()
        for offset in range(0, len(data), 1 << 20):
            sha.update(data[offset : offset + (1 << 20)])
        best = max(best, len(data) / (time.perf_counter() - start))
    return best


# ---------------------------------------------------------------------- receiver process
class _DiscardSink:
    """Receives and forgets: measures the protocol without disk and hashing."""

    def initial_ranges(self) -> list[tuple[int, int]]:
        return []

    def write(self, offset: int, data: bytes) -> None:
        pass

    def complete(self, message) -> None:
        pass

    def abort(self, message, reason) -> None:
        pass


async def _serve() -> None:
    steady_malloc()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    workdir = Path(tempfile.mkdtemp(prefix="msrp-bench-recv-"))

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    while True:
        line = await reader.readline()
        if not line:
            return
        command = json.loads(line)
        kind = command["cmd"]
        if kind == "quit":
            return
        if kind == "raw":
            await _serve_raw(command["size"], reply)
        elif kind == "copy":
            await _serve_copy(command, reply, workdir)
        elif kind in ("file", "chat"):
            await _serve_msrp(command, reader, reply, workdir)


class _RawReceiver(asyncio.Protocol):
    """Counts the bytes and drops them: one copy out of the kernel per read, reads as large as
    an MSRP connection's (the least a receiver can do)."""

    def __init__(self, size: int, done: asyncio.Future) -> None:
        self.remaining = size
        self.done = done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        read_large(transport)

    def data_received(self, data: bytes) -> None:
        self.remaining -= len(data)
        if self.remaining <= 0 and not self.done.done():
            self.transport.write(b"k")
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(f"raw TCP: connection lost with {self.remaining} bytes to come"))


async def _serve_raw(size: int, reply) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    server = await loop.create_server(lambda: _RawReceiver(size, done), "127.0.0.1", 0)
    reply({"port": server.sockets[0].getsockname()[1]})
    await done
    server.close()


async def _serve_copy(command: dict, reply, workdir: Path) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    reply({"port": listener.getsockname()[1]})
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, _plain_copy, listener, command["size"], command["hash"], workdir / "copy.bin")
    finally:
        listener.close()


def _plain_copy(listener: socket.socket, size: int, digest: str, path: Path) -> None:
    """Receive ``size`` bytes into ``path``: reads here, a writer thread and a hasher thread (the
    work a FileSink has to do, without MSRP); answer one byte once written, fsynced and checked."""
    connection, _ = listener.accept()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.posix_fallocate(fd, 0, size)
    sha = hashlib.sha1()
    writes: queue.SimpleQueue = queue.SimpleQueue()
    hashes: queue.SimpleQueue = queue.SimpleQueue()

    def write() -> None:
        while (item := writes.get()) is not None:
            os.pwrite(fd, item[1], item[0])
            hashes.put(item[1])
        hashes.put(None)

    def hash_() -> None:
        while (data := hashes.get()) is not None:
            sha.update(data)

    threads = [threading.Thread(target=write), threading.Thread(target=hash_)]
    for thread in threads:
        thread.start()
    received = 0
    with connection:
        while received < size:
            data = connection.recv(1 << 20)
            if not data:
                break
            writes.put((received, data))
            received += len(data)
        writes.put(None)
        for thread in threads:
            thread.join()
        os.fsync(fd)
        os.close(fd)
        path.unlink()
        if received != size or format_sha1(sha.digest()) != digest:
            raise RuntimeError("plain copy: bytes or hash differ")
        connection.sendall(b"k")


async def _serve_msrp(command: dict, reader: asyncio.StreamReader, reply, workdir: Path) -> None:
    transport = MSRPTransport()
    finished = asyncio.get_running_loop().create_future()
    count = 0

    def on_message(message) -> None:
        nonlocal count
        count += 1
        if command["cmd"] == "file" or count >= command.get("count", 1):
            if not finished.done():
                finished.set_result(None)

    def on_incoming(message):
        if command["cmd"] == "file":
            if command.get("discard"):
                return _DiscardSink()
            return FileSink(
                workdir, f"bench-{command['chunk']}.bin", expected_size=command["size"],
                expected_hash=command["hash"], resume=False,
            )
        return None

    session = MSRPSession(transport, on_message=on_message, on_incoming=on_incoming)
    reply({"path": format_path(await session.prepare())})
    remote = json.loads(await reader.readline())["path"]
    await session.start(parse_path(remote), active=False)
    await finished
    reply({"ok": True})  # before the clean-up: deleting the received file is no part of the transfer
    await transport.close()
    if command["cmd"] == "file":
        for leftover in workdir.iterdir():
            leftover.unlink()


# ---------------------------------------------------------------------- sender side
class _Peer:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def send(self, obj: dict) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(obj) + "\n").encode())
        await self.process.stdin.drain()

    async def recv(self) -> dict:
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("benchmark receiver died")
        return json.loads(line)


async def _raw(peer: _Peer, path: Path, size: int, copy_hash: str | None = None) -> float:
    """Send the file through a plain socket: to a receiver that drops it, or (``copy_hash``) one
    that writes and checks it."""
    if copy_hash is None:
        await peer.send({"cmd": "raw", "size": size})
    else:
        await peer.send({"cmd": "copy", "size": size, "hash": copy_hash})
    port = (await peer.recv())["port"]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.perf_counter()
    with open(path, "rb") as f:
        while data := f.read(1 << 20):
            writer.write(data)
            await writer.drain()
    await reader.readexactly(1)
    elapsed = time.perf_counter() - start
    writer.close()
    return size / elapsed


async def _msrp_session(peer: _Peer, command: dict, chunk_size: int) -> tuple[MSRPTransport, MSRPSession]:
    await peer.send(command)
    remote = parse_path((await peer.recv())["path"])
    transport = MSRPTransport()
    session = MSRPSession(transport, chunk_size=chunk_size)
    local = await session.prepare()
    await peer.send({"path": format_path(local)})
    await session.start(remote, active=True)
    return transport, session


async def _file(peer: _Peer, path: Path, size: int, digest: str, chunk: int, discard: bool = False) -> float:
    command = {"cmd": "file", "chunk": chunk, "size": size, "hash": digest, "discard": discard}
    transport, session = await _msrp_session(peer, command, chunk)
    start = time.perf_counter()
    await send_file(session, path, success_report=True).wait()
    assert (await peer.recv())["ok"]
    elapsed = time.perf_counter() - start
    await transport.close()
    return size / elapsed


async def _chat(peer: _Peer, count: int) -> float:
    transport, session = await _msrp_session(peer, {"cmd": "chat", "count": count}, 2048)
    start = time.perf_counter()
    messages = [session.send_message(f"chat message number {i}", success_report=True) for i in range(count)]
    for message in messages:
        await message.wait()
    assert (await peer.recv())["ok"]
    elapsed = time.perf_counter() - start
    await transport.close()
    return count / elapsed


async def _run(file_size: int, small_chunk_file_size: int, chunk_sizes: tuple[int, ...], repeats: int,
               chat_messages: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="msrp-bench-"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sipsimple.bench.msrp",
        "--serve",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    peer = _Peer(process)
    results: dict = {"file_transfer": [], "chat": {}, "steady_malloc": steady_malloc()}
    try:
        for chunk in chunk_sizes:
            size = small_chunk_file_size if chunk < 16384 else file_size
            path = workdir / f"src-{size}.bin"
            if not path.exists():
                with open(path, "wb") as f:
                    for _ in range(size // (1 << 20)):
                        f.write(os.urandom(1 << 20))
            digest = file_hash(path)
            sha1 = sha1_speed(path, repeats)
            raws, files, wires, copies = [], [], [], []
            for _ in range(repeats):  # interleaved, so that a busy moment of the machine hits all four
                raws.append(await _raw(peer, path, size))
                files.append(await _file(peer, path, size, digest, chunk))
                wires.append(await _file(peer, path, size, digest, chunk, discard=True))
                copies.append(await _raw(peer, path, size, copy_hash=digest))
            raw, msrp, wire = statistics.median(raws), statistics.median(files), statistics.median(wires)
            copy = statistics.median(copies)
            results["file_transfer"].append(
                {
                    "chunk_size": chunk,
                    "bytes": size,
                    "raw_tcp_MBps": round(raw / 1e6, 1),
                    "msrp_MBps": round(msrp / 1e6, 1),
                    "ratio": round(msrp / raw, 3),
                    "msrp_discard_MBps": round(wire / 1e6, 1),
                    "discard_ratio": round(wire / raw, 3),
                    "plain_copy_MBps": round(copy / 1e6, 1),
                    "copy_ratio": round(msrp / copy, 3),
                    "sha1_one_core_MBps": round(sha1 / 1e6, 1),
                    "sha1_ratio": round(sha1 / raw, 3),
                    "runs": {
                        "raw_tcp_MBps": [round(x / 1e6, 1) for x in raws],
                        "msrp_MBps": [round(x / 1e6, 1) for x in files],
                        "msrp_discard_MBps": [round(x / 1e6, 1) for x in wires],
                        "plain_copy_MBps": [round(x / 1e6, 1) for x in copies],
                    },
                }
            )
        if chat_messages:
            results["chat"] = {
                "messages": chat_messages,
                "success_reports": True,
                "messages_per_s": round(await _chat(peer, chat_messages)),
            }
        await peer.send({"cmd": "quit"})
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        for item in workdir.iterdir():
            item.unlink()
        workdir.rmdir()
    return results


def run(
    json_output: bool = False,
    *,
    file_size: int = FILE_SIZE,
    small_chunk_file_size: int = SMALL_CHUNK_FILE_SIZE,
    chunk_sizes: tuple[int, ...] = CHUNK_SIZES,
    repeats: int = REPEATS,
    chat_messages: int = CHAT_MESSAGES,
) -> dict:
    """Run the MSRP benchmark; print the results (JSON or a table) and return them.

    ``file_size`` is the file sent at 64 KiB chunks and up, ``small_chunk_file_size`` the one sent
    at smaller chunks; ``chat_messages`` 0 leaves the chat rate out.
    """
    results = asyncio.run(_run(file_size, small_chunk_file_size, tuple(chunk_sizes), repeats, chat_messages))
    if json_output:
        print(json.dumps(results, indent=2))
    else:
        print("MSRP file transfer on loopback, two processes; 'file': receiver writes to disk and checks")
        print("SHA-1, 'discard': receiver drops the bytes (protocol only), 'copy': a plain socket into a file,")
        print("written and SHA-1 checked, no protocol; 'SHA-1': one core hashing the bytes in memory")
        print(
            f"{'chunk':>8} {'MB':>4} {'raw TCP MB/s':>13} {'file MB/s':>10} {'ratio':>6} {'discard MB/s':>13} "
            f"{'ratio':>6} {'copy MB/s':>10} {'file/copy':>9} {'SHA-1 MB/s':>10} {'ratio':>6}"
        )
        for row in results["file_transfer"]:
            print(
                f"{row['chunk_size']:>8} {row['bytes'] >> 20:>4} {row['raw_tcp_MBps']:>13} "
                f"{row['msrp_MBps']:>10} {row['ratio']:>6} {row['msrp_discard_MBps']:>13} {row['discard_ratio']:>6} "
                f"{row['plain_copy_MBps']:>10} {row['copy_ratio']:>9} {row['sha1_one_core_MBps']:>10} "
                f"{row['sha1_ratio']:>6}"
            )
        chat = results["chat"]
        if chat:
            print(f"chat: {chat['messages_per_s']} messages/s with success reports ({chat['messages']} messages)")
    return results


if __name__ == "__main__":
    if "--serve" in sys.argv:
        asyncio.run(_serve())
    else:
        run("--json" in sys.argv)
