"""A throw-away Kamailio on 127.0.0.1: registrar and proxy with digest auth, presence server, MSRP relay, TLS.

    kam = Kamailio(run_dir).start({'presence', 'msrp', 'tls'})
    ... register as sip:alice@127.0.0.1 (password kam.users['alice']) at kam.host:kam.port ...
    kam.stop()

With 'msrp' the MSRP relay listens on TCP (``kam.msrp_relay_uri``), with 'msrp' and 'tls'
also on TLS (``kam.msrps_relay_uri``, certificate ``kam.ca_file``); AUTH as a SIP user.

Every port is picked free at start and everything Kamailio writes stays in the
run directory: its configuration, the TLS key and certificate, the presence
database, its runtime files and its log. Running the process (retrying with fresh
ports, waiting until it answers OPTIONS, stopping it and its children) is the
package's :class:`sipsimple.cli.kamailio_local.KamailioProcess`; the configuration
is the fuller one in ``tests/peers/kamailio/``.
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from sipsimple.cli.kamailio_local import KamailioProcess, kamailio_program, module_path
from sipsimple.cli.kamailio_local import options_ok as sip_options_ok

from .ports import HOST, free_port

__all__ = ["FEATURES", "Kamailio", "PeerError", "USERS", "log_tail", "make_certificate", "sip_options_ok"]

HERE = Path(__file__).parent / "kamailio"
FEATURES = frozenset({"presence", "msrp", "tls"})
USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}


class PeerError(RuntimeError):
    """A test peer failed to start or misbehaved; the message carries the tail of its log."""


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def make_certificate(directory: Path, host: str = HOST) -> tuple[Path, Path]:
    """A self-signed certificate for *host* (CN and IP SAN) in *directory*: (cert.pem, key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
             "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={host}",
             "-addext", f"subjectAltName=IP:{host}"],
            check=True, capture_output=True,
        )
    return cert, key


def _create_presence_db(path: Path) -> None:
    schemas = Path("/usr/share/kamailio/db_sqlite")
    with sqlite3.connect(path) as db:
        for part in ("standard", "presence"):
            db.executescript((schemas / f"{part}-create.sql").read_text())
        # Kamailio's processes share the file and its db_sqlite sets no busy timeout: with the
        # default rollback journal a query in one process made a PUBLISH's commit in another
        # fail ("database is locked", a 500). In WAL mode readers do not block the writer.
        db.execute("PRAGMA journal_mode=WAL")


class Kamailio(KamailioProcess):
    """One Kamailio process. Attributes are valid after :meth:`start`."""

    users: dict[str, str] = USERS
    SHARED_MEMORY_MB = 192  # room for the relay's write queues (tcp_conn_wq_max in kamailio.cfg)
    PRIVATE_MEMORY_MB = 8

    def __init__(self, run_dir: Path | str | None = None, host: str = HOST) -> None:
        super().__init__(Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="kamailio-")), host)
        self.tls_port = 0
        self.msrp_port = 0
        self.msrps_port = 0
        self.features: frozenset[str] = frozenset()
        self.ca_file: Path | None = None

    def __repr__(self) -> str:
        return (f"<Kamailio {self.host}:{self.port} tls={self.tls_port} msrp={self.msrp_port} "
                f"msrps={self.msrps_port} "
                f"features={sorted(self.features)} run_dir={self.run_dir}>")

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"

    @property
    def msrp_relay_uri(self) -> str:
        """The MSRP relay over TCP ('msrp' feature)."""
        return f"msrp://{self.host}:{self.msrp_port};tcp"

    @property
    def msrps_relay_uri(self) -> str:
        """The MSRP relay over TLS ('msrp' and 'tls' features; its certificate is :attr:`ca_file`)."""
        if not self.msrps_port:
            raise PeerError("the MSRP relay listens on TLS only with the features 'msrp' and 'tls'")
        return f"msrps://{self.host}:{self.msrps_port};tcp"

    def start(self, features: Iterable[str] = FEATURES, proxy_auth: bool = True) -> Kamailio:
        """Start it with *features* (any of 'presence', 'msrp', 'tls') and wait until it answers OPTIONS.

        With *proxy_auth* false, INVITE/MESSAGE/SUBSCRIBE/PUBLISH/REFER are relayed without a
        407 challenge (REGISTER is always challenged).
        """
        if self.process is not None:
            raise PeerError("Kamailio already started")
        self.features = frozenset(features)
        unknown = self.features - FEATURES
        if unknown:
            raise ValueError(f"unknown Kamailio features: {sorted(unknown)}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "run").mkdir(exist_ok=True)
        if "tls" in self.features:
            self.ca_file, _ = make_certificate(self.run_dir / "tls", self.host)
        if "presence" in self.features and not (self.run_dir / "presence.db").exists():
            _create_presence_db(self.run_dir / "presence.db")
        defines = [f"WITH_{feature.upper()}" for feature in sorted(self.features)]
        if not proxy_auth:
            defines.append("NO_PROXY_AUTH")
        if not self._run(kamailio_program(), defines):
            raise PeerError(f"Kamailio did not become ready on {self.host}:{self.port}; "
                            f"log {self.log_path}:\n{log_tail(self.log_path)}")
        return self

    def _write_config(self) -> None:
        self.port = free_port()
        self.tls_port = free_port(udp=False) if "tls" in self.features else 0
        self.msrp_port = free_port(udp=False) if "msrp" in self.features else 0
        self.msrps_port = free_port(udp=False) if {"msrp", "tls"} <= self.features else 0
        values = {
            "@HOST@": self.host,
            "@SIP_PORT@": str(self.port),
            "@TLS_PORT@": str(self.tls_port),
            "@MSRP_PORT@": str(self.msrp_port),
            "@MSRPS_PORT@": str(self.msrps_port),
            "@RUNDIR@": str(self.run_dir),
            "@MPATH@": module_path(),
        }
        for name in ("kamailio.cfg", "tls.cfg"):
            text = (HERE / name).read_text()
            for token, value in values.items():
                text = text.replace(token, value)
            (self.run_dir / name).write_text(text)
