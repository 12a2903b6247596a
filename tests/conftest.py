"""Shared fixtures: real peers on 127.0.0.1 and scratch directories.

Fixtures
    kamailio        session-wide Kamailio with presence, MSRP relay and TLS (tests.peers.kamailio.Kamailio)
    baresip_factory make(**Baresip kwargs) -> started tests.peers.baresip.Baresip, stopped after the test
    tmp_run_dir     an empty directory for one test's peer files and logs

Helpers to import: ``from tests.peers.ports import free_port, free_port_range``,
``from tests.peers.sipp import run_sipp, SippProcess``.

Tests that use a peer fixture are marked ``interop`` automatically, so
``pytest -m "not interop"`` runs only what needs no outside program.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peers.baresip import Baresip
from tests.peers.kamailio import Kamailio

PEER_FIXTURES = {"kamailio", "baresip_factory"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "interop: talks to a real peer (Kamailio, sipp, baresip)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if PEER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.interop)


def _require(program: str) -> None:
    # a missing peer is a broken setup, not a reason to skip: say how to fix it
    if shutil.which(program) is None:
        pytest.fail(f"'{program}' is not installed; run 'make install-deps'", pytrace=False)


@pytest.fixture
def tmp_run_dir(tmp_path: Path) -> Path:
    """An empty directory for this test's peer configuration, logs and recordings."""
    path = tmp_path / "run"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kamailio]:
    """Registrar/proxy for users alice, bob, carol (passwords in ``.users``) with presence, MSRP relay and TLS."""
    _require("kamailio")
    server = Kamailio(tmp_path_factory.mktemp("kamailio")).start({"presence", "msrp", "tls"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def engine() -> Iterator[Any]:
    """The Engine started on 127.0.0.1 with UDP, TCP and TLS (TLS server checks off), stopped after."""
    from sipsimple.core import Engine

    eng = Engine()
    eng.start(local_ip="127.0.0.1", transports=("udp", "tcp", "tls"), tls_verify_server=False)
    try:
        yield eng
    finally:
        eng.stop()


@pytest.fixture
def sip() -> Iterator[Any]:
    """The Engine on 127.0.0.1 (UDP) with the SessionManager listening: sessions between local accounts."""
    from sipsimple.core import Engine
    from sipsimple.session import SessionManager

    eng = Engine()
    eng.start(local_ip="127.0.0.1", transports=("udp",))
    SessionManager()
    try:
        yield eng
    finally:
        eng.stop()


@pytest.fixture
def config() -> Iterator[Any]:
    """The ConfigurationManager on a memory backend (a module may override it with a file one)."""
    from sipsimple.account import AccountManager
    from sipsimple.configuration import ConfigurationManager, MemoryBackend

    manager = ConfigurationManager()
    manager.start(MemoryBackend())
    try:
        yield manager
    finally:
        AccountManager().stop()
        manager.stop()


@pytest.fixture
def account_manager(config: Any) -> Iterator[Any]:
    """The AccountManager started over ``config``."""
    from sipsimple.account import AccountManager

    manager = AccountManager()
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()


@pytest.fixture
def recorder() -> Iterator[Any]:
    """A NotificationRecorder for every notification posted during the test."""
    from tests.notifications import NotificationRecorder

    rec = NotificationRecorder()
    try:
        yield rec
    finally:
        rec.close()


@pytest.fixture
def baresip_factory(tmp_path: Path) -> Iterator[Callable[..., Baresip]]:
    """Start baresip peers: ``make(user='bob', password='bobpw', registrar=f'{kam.host}:{kam.port}')``."""
    _require("baresip")
    started: list[Baresip] = []

    def make(**kwargs: Any) -> Baresip:
        peer = Baresip(tmp_path / f"baresip-{len(started)}", **kwargs)
        started.append(peer)
        return peer.start()

    try:
        yield make
    finally:
        for peer in started:
            peer.stop()
