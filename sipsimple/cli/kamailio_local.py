"""A throw-away local Kamailio (registrar, proxy with digest auth, presence server) for ``sipsimple demo --with-server``.

Self-contained so that an installed package can run it: the configuration is
below, and only the ``kamailio`` program is needed (Debian packages ``kamailio``,
and for the presence server ``kamailio-presence-modules``).
It listens on 127.0.0.1 (UDP and TCP, one free port), keeps registrations in
memory, challenges REGISTER and (for known users) MESSAGE/INVITE/SUBSCRIBE/PUBLISH,
and relays to registered contacts. With ``presence=True`` (the default) it is
also the presence server of its domain: PUBLISH and SUBSCRIBE for ``presence``
are handled by Kamailio's presence and presence_xml modules, all in memory
(authorization off: every watcher is allowed). Users are those
of the test rig (alice/alicepw, bob/bobpw, carol/carolpw). Everything it writes
stays in a temporary directory that :meth:`LocalKamailio.stop` removes.

    with LocalKamailio().start() as server:
        ... register sip:alice@127.0.0.1 via 127.0.0.1:server.port ...

``python -m sipsimple.cli.kamailio_local`` runs one until Ctrl-C, for manual tests.
The test suite's fuller rig (``tests/peers/kamailio.py``: MSRP relay, TLS, presence in SQLite)
writes its own configuration but runs it with :class:`KamailioProcess`, as this one does.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Self

__all__ = ["LocalKamailio", "KamailioProcess", "KamailioError", "USERS", "options_ok"]

HOST = "127.0.0.1"
USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}
READY_TIMEOUT = 10.0

CONFIG = r"""#!KAMAILIO
# sipsimple demo registrar/proxy: digest auth, in-memory location table, 127.0.0.1 only.
@DEFINES@
debug=1
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
use_dns_cache=off
listen=udp:@HOST@:@PORT@
listen=tcp:@HOST@:@PORT@

mpath="@MPATH@"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "htable.so"
loadmodule "cfgutils.so"
#!ifdef WITH_PRESENCE
# the presence server, without a database: subscriptions (subs_db_mode 0) and publications
# (publ_cache 2) in memory -- with the presentity table in SQLite, two Kamailio processes writing
# at once answered "500" ("database is locked") to a PUBLISH in most runs.
# presence_xml allows every watcher, so no XCAP rules are needed
loadmodule "presence.so"
loadmodule "presence_xml.so"
modparam("presence", "subs_db_mode", 0)
modparam("presence", "publ_cache", 2)
modparam("presence_xml", "force_active", 1)
modparam("presence_xml", "integrated_xcap_server", 0)
#!endif

modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)
modparam("registrar", "min_expires", 10)
modparam("rr", "enable_full_lr", 1)
modparam("auth", "nonce_expire", 300)
modparam("htable", "htable", "users=>size=4;")

event_route[htable:mod-init] {
@USERS@
}

request_route {
    if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
    if (!sanity_check("1511", "7")) { exit; }
    if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
    if (!is_method("ACK")) {
        if (t_precheck_trans()) { t_check_trans(); exit; }
        t_check_trans();
    }
    if (has_totag()) {
        if (loose_route()) { route(RELAY); }
#!ifdef WITH_PRESENCE
        # a refresh or unSUBSCRIBE of a subscription to our presence server is sent to us
        if (is_method("SUBSCRIBE") && uri==myself) { route(PRESENCE); }
#!endif
        if (is_method("ACK")) { if (t_check_trans()) { route(RELAY); } exit; }
        sl_send_reply("404", "Not here");
        exit;
    }
    remove_hf("Route");
    if (is_method("OPTIONS") && uri==myself && $rU==$null) { sl_send_reply("200", "OK"); exit; }
    if (is_method("REGISTER")) {
        route(AUTH);
        if (!save("location")) { sl_reply_error(); }
        exit;
    }
    if (is_method("INVITE|MESSAGE|SUBSCRIBE|PUBLISH|REFER") && $sht(users=>$fU) != $null) {
        route(AUTH);
    }
#!ifdef WITH_PRESENCE
    if (is_method("PUBLISH|SUBSCRIBE")) { route(PRESENCE); }
#!endif
    if (is_method("INVITE|SUBSCRIBE|REFER")) { record_route(); }
    if ($rU == $null) { sl_send_reply("484", "Address Incomplete"); exit; }
    lookup("location");
    $var(found) = $rc;
    if ($var(found) < 0) {
        t_newtran();
        switch ($var(found)) {
            case -2: t_reply("405", "Method Not Allowed"); exit;
            default: t_reply("404", "Not Found"); exit;
        }
    }
    route(RELAY);
}

route[AUTH] {
    $var(pw) = $sht(users=>$au);
    if ($var(pw) == $null) { $var(pw) = "-no-such-user-" + $RANDOM; }
    if (!pv_auth_check("$fd", "$var(pw)", "0", "1")) {
        auth_challenge("$fd", "0");
        exit;
    }
    consume_credentials();
}

route[RELAY] {
    if (!t_relay()) { sl_reply_error(); }
    exit;
}

#!ifdef WITH_PRESENCE
route[PRESENCE] {
    if (!t_newtran()) { sl_reply_error(); exit; }
    if (is_method("PUBLISH")) { handle_publish(); } else { handle_subscribe(); }
    exit;
}
#!endif
"""


class KamailioError(RuntimeError):
    """Kamailio is missing or did not start; the message says why (with the tail of its log)."""


def kamailio_program() -> str:
    """The path of the ``kamailio`` program; KamailioError when it is not installed."""
    program = shutil.which("kamailio") or next(
        (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio") if os.access(p, os.X_OK)), None)
    if program is None:
        raise KamailioError("kamailio is not installed (apt-get install kamailio, or make install-deps)")
    return program


def module_path() -> str:
    """The directory of Kamailio's modules (with a trailing slash, as ``mpath`` wants it)."""
    for path in sorted(glob.glob("/usr/lib/*/kamailio/modules")) + ["/usr/lib/kamailio/modules"]:
        if os.path.exists(os.path.join(path, "tm.so")):
            return path + "/"
    raise KamailioError("Kamailio modules not found (apt-get install kamailio)")


def _check_presence_modules(module_path: str) -> None:
    missing = [name for name in ("presence.so", "presence_xml.so")
               if not os.path.exists(os.path.join(module_path, name))]
    if missing:
        raise KamailioError(f"Kamailio modules {', '.join(missing)} not found "
                            "(apt-get install kamailio-presence-modules)")


def _free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
        return port
    raise KamailioError("no free port on 127.0.0.1")


def options_ok(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when an OPTIONS to sip:host:port over UDP is answered 200 within *timeout* seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        tag = uuid.uuid4().hex[:12]
        request = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{tag};rport\r\n"
            f"From: <sip:ping@{HOST}>;tag={tag}\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {tag}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
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


class KamailioProcess:
    """One Kamailio process on ``host`` run from ``run_dir/kamailio.cfg``: started, waited for, stopped.

    A subclass writes the configuration in :meth:`_write_config`, choosing its ports
    (``port`` is the SIP one, UDP and TCP), and calls :meth:`_run`. Everything Kamailio
    writes (its log included) stays in ``run_dir``.
    """

    SHARED_MEMORY_MB = 32
    PRIVATE_MEMORY_MB = 4

    def __init__(self, run_dir: Path | None = None, host: str = HOST) -> None:
        self.run_dir = run_dir
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def domain(self) -> str:
        """The SIP domain its users live in."""
        return self.host

    @property
    def log_path(self) -> Path | None:
        return None if self.run_dir is None else self.run_dir / "kamailio.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_text()
        return "\n".join(text.splitlines()[-lines:]) if text else "(no log)"

    def _write_config(self) -> None:
        """Choose the ports and write ``run_dir/kamailio.cfg``."""
        raise NotImplementedError

    def _run(self, program: str, defines: Iterable[str] = ()) -> bool:
        """Write the configuration and run Kamailio (``-A`` each of ``defines``) until it answers
        OPTIONS; False when it died or never answered (the process is gone then)."""
        # another process may grab a port between our bind test and Kamailio's bind: try fresh ones
        for attempt in range(3):
            self._write_config()
            if self._launch(program, defines):
                return True
            if "Address already in use" not in self.log_text() or attempt == 2:
                return False
        return False

    def _launch(self, program: str, defines: Iterable[str]) -> bool:
        assert self.run_dir is not None and self.log_path is not None
        command = [program, "-DD", "-E", "-f", str(self.run_dir / "kamailio.cfg"),
                   "-Y", str(self.run_dir / "run"), "-m", str(self.SHARED_MEMORY_MB),
                   "-M", str(self.PRIVATE_MEMORY_MB)]
        for define in defines:
            command += ["-A", define]
        with open(self.log_path, "wb") as log:
            # its own session, so that _terminate can take down the children too if the main process will not
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.run_dir, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if options_ok(self.host, self.port):
                return True
            time.sleep(0.02)
        self._terminate()
        return False

    def _terminate(self, timeout: float = 5.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; also reaps its children."""
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
            os.killpg(process.pid, signal.SIGKILL)  # its children, if any are left
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        self._terminate()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalKamailio(KamailioProcess):
    """The demo's Kamailio on 127.0.0.1; ``host``/``port`` are valid after :meth:`start`."""

    users = USERS

    def __init__(self, users: dict[str, str] | None = None, presence: bool = True) -> None:
        super().__init__()
        if users is not None:
            self.users = dict(users)
        self.presence = presence
        self._module_path = ""

    def start(self) -> LocalKamailio:
        program = kamailio_program()
        self._module_path = module_path()
        if self.presence:
            _check_presence_modules(self._module_path)
        self.run_dir = Path(tempfile.mkdtemp(prefix="sipsimple-kamailio-"))
        (self.run_dir / "run").mkdir()
        if self._run(program):
            return self
        tail = self.log_tail()
        self._cleanup()
        raise KamailioError(f"Kamailio did not start on {self.host}:{self.port}:\n{tail}")

    def _write_config(self) -> None:
        assert self.run_dir is not None
        self.port = _free_port()
        users = "\n".join(f'    $sht(users=>{name}) = "{password}";' for name, password in self.users.items())
        config = (CONFIG.replace("@DEFINES@", "#!define WITH_PRESENCE" if self.presence else "")
                  .replace("@HOST@", self.host).replace("@PORT@", str(self.port))
                  .replace("@MPATH@", self._module_path).replace("@USERS@", users))
        (self.run_dir / "kamailio.cfg").write_text(config)

    def _cleanup(self) -> None:
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 5 s), then remove its directory."""
        self._terminate()
        self._cleanup()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    try:
        server = LocalKamailio().start()
    except KamailioError as exc:
        print(f"error: {exc}")
        return 2
    users = ", ".join(f"{u}/{p}" for u, p in server.users.items())
    print(f"Kamailio on {server.host}:{server.port} (udp, tcp); domain {server.domain}; users {users}", flush=True)
    print("Ctrl-C to stop", flush=True)
    try:
        signal.signal(signal.SIGTERM, _interrupt)
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
