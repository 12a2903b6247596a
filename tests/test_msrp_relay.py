"""MSRP through the Kamailio MSRP relay (RFC 4976): AUTH with digest, Use-Path, chat and files."""

from __future__ import annotations

import asyncio
import os

import pytest

from sipsimple.msrp.errors import MSRPAuthError
from sipsimple.msrp.filesink import FileSink
from sipsimple.msrp.filetransfer import file_hash, send_file
from sipsimple.msrp.relay import RelaySettings
from sipsimple.msrp.session import MSRPSession
from sipsimple.msrp.transport import MSRPTransport

from .msrp_helpers import run, wait_until

# Kamailio reads a whole MSRP frame into its TCP read buffer (about 16 KiB by default):
# larger chunks are dropped with "buffer overrun", so relayed sessions use 8 KiB chunks.
RELAY_CHUNK = 8192


def relay_settings(kamailio, user: str, password: str | None = None) -> RelaySettings:
    return RelaySettings(kamailio.host, kamailio.msrp_port, user, password or kamailio.users[user])


class RelayPair:
    def __init__(self, kamailio) -> None:
        self.kamailio = kamailio
        self.ta, self.tb = MSRPTransport(), MSRPTransport()
        self.got_a: list = []
        self.got_b: list = []

    async def __aenter__(self) -> RelayPair:
        self.a = MSRPSession(self.ta, relay=relay_settings(self.kamailio, "alice"), on_message=self.got_a.append,
                             chunk_size=RELAY_CHUNK)
        self.b = MSRPSession(self.tb, relay=relay_settings(self.kamailio, "bob"), on_message=self.got_b.append,
                             chunk_size=RELAY_CHUNK)
        path_a, path_b = await self.a.prepare(), await self.b.prepare()
        assert len(path_a) == 2 and path_a[0].port == self.kamailio.msrp_port and path_a[1] == self.a.local_uri
        await asyncio.gather(self.a.start(path_b, active=True), self.b.start(path_a, active=False))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ta.close()
        await self.tb.close()


def test_relay_chat_both_ways_with_success_reports(kamailio):
    async def main():
        async with RelayPair(kamailio) as pair:
            result = await pair.a.send_message("hello via relay", success_report=True).wait()
            assert result.code == 200 and result.frame.method == "REPORT"
            assert pair.got_b[0].body == b"hello via relay"
            # the relay put itself in the From-Path; the last URI is still alice
            assert pair.got_b[0].first_frame.from_path[-1] == pair.a.local_uri
            assert len(pair.got_b[0].first_frame.from_path) > 1
            await pair.b.send_message("and back", success_report=True).wait()
            assert pair.got_a[0].body == b"and back"
            messages = [pair.a.send_message(f"burst {i}", success_report=True) for i in range(50)]
            await asyncio.gather(*(m.wait() for m in messages))
            assert [m.body for m in pair.got_b[1:]] == [f"burst {i}".encode() for i in range(50)]

    run(main())


def test_relay_large_message_and_file(kamailio, tmp_path):
    source = tmp_path / "doc.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024))
    digest = file_hash(source)

    async def main():
        async with RelayPair(kamailio) as pair:
            body = os.urandom(1024 * 1024)
            await pair.b.send_message(body, "application/octet-stream", success_report=True).wait()
            assert pair.got_a[-1].body == body
            sinks = []
            pair.b.on_incoming = lambda m: sinks.append(FileSink(tmp_path / "in", "doc.bin", expected_hash=digest)) or sinks[-1]
            await send_file(pair.a, source).wait()
            await wait_until(lambda: len(pair.got_b) == 1)
            assert file_hash(sinks[0].path) == digest

    run(main(), timeout=60)


def test_relay_auth_wrong_password(kamailio):
    async def main():
        transport = MSRPTransport()
        try:
            session = MSRPSession(transport, relay=relay_settings(kamailio, "alice", "wrong"))
            with pytest.raises(MSRPAuthError) as info:
                await session.prepare()
            assert info.value.code in (401, 403)
        finally:
            await transport.close()

    run(main())


def test_relay_to_a_peer_without_one(kamailio):
    """Only alice uses the relay: it forwards her frames to bob's own listener and his back down her connection."""
    async def main():
        ta, tb = MSRPTransport(), MSRPTransport()
        got_a: list = []
        got_b: list = []
        try:
            a = MSRPSession(ta, relay=relay_settings(kamailio, "alice"), on_message=got_a.append,
                            chunk_size=RELAY_CHUNK)
            b = MSRPSession(tb, on_message=got_b.append)
            path_a, path_b = await a.prepare(), await b.prepare()
            assert len(path_b) == 1
            # bob waits for the first SEND, which the relay brings on a connection it opens to him
            await asyncio.gather(a.start(path_b, active=True), b.start(path_a, active=False))
            assert b.connection.peer_address[1] != a.connection.local_address[1]
            result = await a.send_message("to a peer without relay", success_report=True).wait()
            assert result.code == 200 and got_b[0].body == b"to a peer without relay"
            await b.send_message("back through alice's relay", success_report=True).wait()
            assert got_a[0].body == b"back through alice's relay"
        finally:
            await ta.close()
            await tb.close()

    run(main())
