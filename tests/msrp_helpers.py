"""Shared helpers of the MSRP tests: run a coroutine with a deadline, make connected session pairs."""

from __future__ import annotations

import asyncio
import contextlib

from sipsimple.msrp.session import MSRPSession
from sipsimple.msrp.transport import MSRPTransport


def run(coroutine, timeout: float = 30.0):
    """Run ``coroutine`` on a fresh loop, failing after ``timeout`` seconds."""

    async def guarded():
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(guarded())


class Pair:
    """Two transports and a started session on each (a active, b passive)."""

    def __init__(self, **session_options) -> None:
        self.options = session_options
        self.ta = MSRPTransport()
        self.tb = MSRPTransport()
        self.received_a: list = []
        self.received_b: list = []
        self.failed_b: list = []
        self.a: MSRPSession | None = None
        self.b: MSRPSession | None = None

    async def __aenter__(self) -> Pair:
        self.a = MSRPSession(self.ta, on_message=self.received_a.append, **self.options)
        self.b = MSRPSession(self.tb, on_message=self.received_b.append,
                             on_message_failed=lambda m, e: self.failed_b.append((m, e)), **self.options)
        path_a = await self.a.prepare()
        path_b = await self.b.prepare()
        await asyncio.gather(self.a.start(path_b, active=True), self.b.start(path_a, active=False))
        return self

    async def __aexit__(self, *exc) -> None:
        for transport in (self.ta, self.tb):
            with contextlib.suppress(Exception):
                await transport.close()


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
