"""Shared helpers of the MSRP tests: run a coroutine with a deadline, connected session pairs, TLS material."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sipsimple.core import Engine
from sipsimple.msrp.session import MSRPSession
from sipsimple.msrp.transport import MSRPTransport
from sipsimple.session import SessionManager


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


def make_tls_identity(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (CN and IP SAN): (PEM with certificate and key, certificate only)."""
    directory.mkdir(parents=True, exist_ok=True)
    key, cert, both = directory / "key.pem", directory / "cert.pem", directory / "identity.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=IP:{host}"], check=True, capture_output=True)
    both.write_bytes(cert.read_bytes() + key.read_bytes())
    return both, cert


@contextlib.contextmanager
def tls_engine(directory: Path, *, trusted: bool = True, verify: bool = True) -> Iterator[Engine]:
    """The Engine (UDP, with the SessionManager) started with the TLS settings MSRP streams use.

    Our certificate is one for 127.0.0.1; the CA file holds that same certificate (``trusted``)
    or an unrelated one, so that the peer's certificate fails verification.
    """
    own, own_cert = make_tls_identity(directory / "own")
    ca_file = own_cert if trusted else make_tls_identity(directory / "other")[1]
    engine = Engine()
    engine.start(local_ip="127.0.0.1", transports=("udp",), tls_certificate=str(own), tls_ca_file=str(ca_file),
                 tls_verify_server=verify)
    SessionManager()
    try:
        yield engine
    finally:
        engine.stop()
