"""A throw-away Kamailio on 127.0.0.1: registrar and proxy with digest auth, presence server, MSRP relay, TLS.

    kam = Kamailio(run_dir).start({'presence', 'msrp', 'tls'})
    ... register as sip:alice@127.0.0.1 (password kam.users['alice']) at kam.host:kam.port ...
    kam.stop()

Every port is picked free at start and everything Kamailio writes stays in the
run directory: its configuration, the TLS key and certificate, the presence
database, its runtime files and its log.
"""

from __future__ import annotations

import glob
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from .ports import HOST, free_port

HERE = Path(__file__).parent / "kamailio"
FEATURES = frozenset({"presence", "msrp", "tls"})
USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}
READY_TIMEOUT = 10.0


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


def sip_options_ok(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when an OPTIONS to sip:host:port over UDP is answered 200 within *timeout* seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:12]
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{tag};rport\r\n"
            f"From: <sip:ping@{HOST}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.sendto(request.encode(), (host, port))
            deadline = time.monotonic() + timeout
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                reply = sock.recv(65535)
                if tag.encode() in reply:
                    return reply.startswith(b"SIP/2.0 200 ")
        except OSError:  # timeout, or ICMP port unreachable while it is still starting
            return False


def _module_path() -> str:
    for path in sorted(glob.glob("/usr/lib/*/kamailio/modules")) + ["/usr/lib/kamailio/modules"]:
        if os.path.exists(os.path.join(path, "tm.so")):
            return path + "/"
    raise PeerError("Kamailio modules not found (apt-get install kamailio; or make install-deps)")


def _create_presence_db(path: Path) -> None:
    schemas = Path("/usr/share/kamailio/db_sqlite")
    with sqlite3.connect(path) as db:
        for part in ("standard", "presence"):
            db.executescript((schemas / f"{part}-create.sql").read_text())


class Kamailio:
    """One Kamailio process. Attributes are valid after :meth:`start`."""

    users: dict[str, str] = USERS

    def __init__(self, run_dir: Path | str | None = None, host: str = HOST) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="kamailio-"))
        self.host = host
        self.port = 0
        self.tls_port = 0
        self.msrp_port = 0
        self.features: frozenset[str] = frozenset()
        self.ca_file: Path | None = None
        self.log_path = self.run_dir / "kamailio.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return (f"<Kamailio {self.host}:{self.port} tls={self.tls_port} msrp={self.msrp_port} "
                f"features={sorted(self.features)} run_dir={self.run_dir}>")

    @property
    def domain(self) -> str:
        """The SIP domain its users live in."""
        return self.host

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.domain}"

    @property
    def msrp_relay_uri(self) -> str:
        return f"msrp://{self.host}:{self.msrp_port};tcp"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

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
        # another process may grab a port between our bind test and Kamailio's bind: try fresh ones
        for attempt in range(3):
            self._write_config()
            if self._launch(defines):
                return self
            if "Address already in use" not in self.log_text() or attempt == 2:
                break
        raise PeerError(f"Kamailio did not become ready on {self.host}:{self.port}; "
                        f"log {self.log_path}:\n{log_tail(self.log_path)}")

    def _write_config(self) -> None:
        self.port = free_port()
        self.tls_port = free_port(udp=False) if "tls" in self.features else 0
        self.msrp_port = free_port(udp=False) if "msrp" in self.features else 0
        values = {
            "@HOST@": self.host,
            "@SIP_PORT@": str(self.port),
            "@TLS_PORT@": str(self.tls_port),
            "@MSRP_PORT@": str(self.msrp_port),
            "@RUNDIR@": str(self.run_dir),
            "@MPATH@": _module_path(),
        }
        for name in ("kamailio.cfg", "tls.cfg"):
            text = (HERE / name).read_text()
            for token, value in values.items():
                text = text.replace(token, value)
            (self.run_dir / name).write_text(text)

    def _launch(self, defines: list[str]) -> bool:
        """Run Kamailio; True once it answers, False (process gone) if it died or never answered."""
        command = ["kamailio", "-DD", "-E", "-f", str(self.run_dir / "kamailio.cfg"),
                   "-Y", str(self.run_dir / "run"), "-m", "64", "-M", "8"]
        for define in defines:
            command += ["-A", define]
        with open(self.log_path, "wb") as log:
            # own session, so stop() can take down the children too if the main process will not
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.run_dir,
                                            start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if sip_options_ok(self.host, self.port):
                return True
            time.sleep(0.02)
        self.stop()
        return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to *timeout* seconds, then SIGKILL; also reaps its children."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        try:
            os.killpg(process.pid, signal.SIGKILL)  # leftover children, if any
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Kamailio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
