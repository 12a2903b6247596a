"""FileSink on its own: pieces of any size, in any order, batched and written by its threads."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipsimple.msrp.errors import FileTransferError, MSRPTransactionError
from sipsimple.msrp.filesink import FileSink
from sipsimple.msrp.filetransfer import format_sha1, send_file
from sipsimple.msrp.ranges import ByteRanges

from .msrp_helpers import Pair, run

KB = 1024
MB = 1024 * 1024


class _Message:
    """What FileSink reads of an IncomingMessage: the total, and what was acknowledged."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.received = ByteRanges()


def sha1(data: bytes) -> str:
    return format_sha1(hashlib.sha1(data).digest())


def split(data: bytes, sizes: list[int]) -> list[tuple[int, bytes]]:
    pieces, offset, i = [], 0, 0
    while offset < len(data):
        size = sizes[i % len(sizes)]
        pieces.append((offset, data[offset : offset + size]))
        offset += size
        i += 1
    return pieces


async def feed(sink: FileSink, pieces: list[tuple[int, bytes]], pauses: set[int]) -> None:
    """Write the pieces; after those in ``pauses`` let the loop run (a new socket read)."""
    pending = []
    for i, (offset, data) in enumerate(pieces):
        future = sink.write(offset, memoryview(data))
        if future is not None:
            pending.append(future)
        if i in pauses:
            await asyncio.sleep(0)
    await asyncio.gather(*pending)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 70 * KB), min_size=1, max_size=6),
    swaps=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 200)), max_size=3),
    pauses=st.sets(st.integers(0, 200), max_size=20),
    seed=st.integers(0, 2**32 - 1),
)
def test_pieces_in_any_order_and_size_make_the_same_file(tmp_path_factory, sizes, swaps, pauses, seed):
    data = random.Random(seed).randbytes(300 * KB)
    pieces = split(data, sizes)
    for a, b in swaps:  # some pieces out of order: the hash is then taken from the file
        a, b = a % len(pieces), b % len(pieces)
        pieces[a], pieces[b] = pieces[b], pieces[a]
    inbox = tmp_path_factory.mktemp("inbox")

    async def main():
        sink = FileSink(inbox, "f.bin", expected_size=len(data), expected_hash=sha1(data))
        await feed(sink, pieces, pauses)
        await sink.complete(_Message(len(data)))
        return sink.path

    path = run(main())
    assert path is not None and path.read_bytes() == data
    assert os.listdir(inbox) == ["f.bin"]


@pytest.mark.parametrize("with_hash", [True, False])
def test_abort_keeps_what_arrived_and_a_new_sink_resumes_from_it(tmp_path, with_hash):
    data = random.Random(7).randbytes(3 * MB + 5000)
    digest = sha1(data) if with_hash else None  # an offer need not give one (RFC 5547)
    cut = 2 * MB + 3000
    progress = []

    async def first():
        sink = FileSink(tmp_path, "f.bin", expected_size=len(data), expected_hash=digest,
                        progress=lambda done, total: progress.append(done))
        # 64 KiB and 2 KiB pieces, never waiting: batches are still gathered or queued at the abort
        for offset, piece in split(data[:cut], [64 * KB, 2 * KB, 2 * KB]):
            sink.write(offset, piece)
        sink.abort(_Message(len(data)), ConnectionError("gone"))
        return sink

    sink = run(first())
    # nothing was acknowledged, yet all of it is on disk for the next attempt
    assert sink.resume_offset == cut and sink.part_path.stat().st_size == cut
    assert sink.part_path.read_bytes() == data[:cut]

    async def second():
        again = FileSink(tmp_path, "f.bin", expected_size=len(data), expected_hash=digest)
        assert again.initial_ranges() == [(1, cut)]
        await feed(again, [(cut + offset, piece) for offset, piece in split(data[cut:], [MB])], set())
        await again.complete(_Message(len(data)))
        return again.path

    path = run(second())
    assert path.read_bytes() == data


def test_a_file_in_2_kib_chunks_arrives_whole(tmp_path):
    data = os.urandom(3 * MB)
    source = tmp_path / "small-chunks.bin"
    source.write_bytes(data)
    async def main():
        async with Pair(chunk_size=2 * KB) as pair:
            sinks = []
            pair.b.on_incoming = lambda m: sinks.append(
                FileSink(tmp_path / "in", "small-chunks.bin", expected_size=len(data), expected_hash=sha1(data))
            ) or sinks[-1]
            await send_file(pair.a, source).wait()
            return sinks[0]

    sink = run(main())
    assert sink.path is not None and sink.path.read_bytes() == data


def test_a_file_larger_than_the_free_space_fails_at_the_first_piece(tmp_path):
    """The sink reserves the announced size when it opens the file: no room shows at once, with
    the reason, instead of after most of the file was sent; no empty part is left behind."""
    too_big = shutil.disk_usage(tmp_path).free + 1024 * MB

    async def main():
        sink = FileSink(tmp_path, "huge.bin", expected_size=too_big)
        with pytest.raises(FileTransferError, match="no room for .* bytes"):
            await sink.write(0, os.urandom(64 * KB))
        return sink

    sink = run(main())
    assert not sink.part_path.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_fits_gets_its_space_up_front_and_the_part_keeps_its_real_size(tmp_path):
    """The reservation does not change what a kept part says: its size is what arrived."""
    data = os.urandom(4 * MB)

    async def main():
        sink = FileSink(tmp_path, "f.bin", expected_size=len(data))
        await sink.write(0, data[: MB])
        assert sink.part_path.stat().st_size == MB
        assert sink.part_path.stat().st_blocks * 512 >= len(data)  # the whole file is allocated
        sink.abort(_Message(len(data)), ConnectionError("gone"))
        return sink

    sink = run(main())
    assert sink.resume_offset == MB and sink.part_path.read_bytes() == data[:MB]


def test_a_sender_is_told_at_once_when_the_receiver_has_no_room(tmp_path):
    """The receiver answers 413 with the reason, and the sender's transfer fails with it."""
    source = tmp_path / "out.bin"
    source.write_bytes(os.urandom(2 * MB))
    announced = shutil.disk_usage(tmp_path).free + 1024 * MB  # what the offer said: more than fits

    async def main():
        async with Pair(chunk_size=64 * KB) as pair:
            pair.b.on_incoming = lambda m: FileSink(tmp_path / "in", "out.bin", expected_size=announced)
            with pytest.raises(MSRPTransactionError) as failure:
                await send_file(pair.a, source).wait()
            return failure.value

    error = run(main())
    assert error.code == 413 and "no room for" in error.comment
    assert list((tmp_path / "in").iterdir()) == []
