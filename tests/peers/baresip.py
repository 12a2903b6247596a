"""A headless baresip (Debian package ``baresip-core``) as a real peer, driven over ctrl_tcp.

    bob = Baresip(run_dir, user="bob", password="bobpw", registrar=f"{kam.host}:{kam.port}").start()
    bob.wait_registered()
    bob.ctrl.command("dial", f"sip:alice@{kam.domain}")
    bob.ctrl.wait_event("CALL_ESTABLISHED")
    bob.stop()

It listens only on 127.0.0.1 (SIP and ctrl_tcp on ports picked free), answers
calls by itself by default, sends a 440 Hz tone (or a WAV file given as
*audio_file*; baresip hangs up when that file ends) and plays what it receives
into an aubridge device nobody reads: paced by baresip itself, so no sound card
and no busy loop. ``sndfile`` records each call's audio under ``rec/``.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .alsa import alsa_env
from .kamailio import PeerError, log_tail, make_certificate
from .ports import HOST, free_port, free_port_range

READY_TIMEOUT = 10.0
MODULE_PATH = "/usr/lib/baresip/modules"
MODULES = ["g711.so", "g722.so", "opus.so", "gsm.so", "aubridge.so", "aufile.so", "ausine.so",
           "sndfile.so", "srtp.so"]


class BaresipControl:
    """Client for baresip's ctrl_tcp: JSON messages in netstrings ("<length>:<json>,").

    Replies come back to :meth:`command`; events that arrive meanwhile are kept, in
    order, in :attr:`events` (all of them) and for :meth:`wait_event`.
    """

    def __init__(self, port: int, host: str = HOST, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.events: list[dict[str, Any]] = []
        self._unclaimed: list[dict[str, Any]] = []
        self._token = 0

    def close(self) -> None:
        self.sock.close()

    def _frame(self, deadline: float) -> dict[str, Any]:
        """The next message, waiting until *deadline* (TimeoutError after it)."""
        while True:
            head, colon, rest = self.buffer.partition(b":")
            if colon:
                if not head.isdigit():
                    raise PeerError(f"baresip ctrl_tcp: bad netstring {self.buffer[:80]!r}")
                size = int(head)
                if len(rest) > size:
                    self.buffer = rest[size + 1:]  # the byte after the payload is the ','
                    return json.loads(rest[:size])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("baresip ctrl_tcp: nothing received in time")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError as exc:
                raise TimeoutError("baresip ctrl_tcp: nothing received in time") from exc
            if not data:
                raise PeerError("baresip ctrl_tcp: connection closed")
            self.buffer += data

    def _keep(self, message: dict[str, Any]) -> None:
        if message.get("event"):
            self.events.append(message)
            self._unclaimed.append(message)

    def command(self, name: str, params: str = "", timeout: float = 5.0) -> dict[str, Any]:
        """Run a command (as on baresip's console, e.g. ``dial``, ``hangup``, ``reginfo``); its reply."""
        self._token += 1
        token = f"t{self._token}"
        payload = json.dumps({"command": name, "params": params, "token": token}).encode()
        self.sock.sendall(b"%d:%s," % (len(payload), payload))
        deadline = time.monotonic() + timeout
        while True:
            message = self._frame(deadline)
            if message.get("response") and message.get("token") == token:
                return message
            self._keep(message)

    def wait_event(self, type: str, timeout: float = 10.0) -> dict[str, Any]:  # noqa: A002 - baresip's word
        """The first event of *type* (e.g. ``REGISTER_OK``, ``CALL_ESTABLISHED``) not returned before."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self._unclaimed:
                if message.get("type") == type:
                    self._unclaimed.remove(message)
                    return message
            try:
                self._keep(self._frame(deadline))
            except TimeoutError:
                seen = [m.get("type") for m in self.events]
                raise TimeoutError(f"baresip: no {type} event within {timeout} s; events so far: {seen}") from None


class Baresip:
    """One baresip process with one account.

    Either give *user*/*password*/*registrar* ("host:port") to register there, or a
    complete baresip *account* line. *answermode* "auto" answers incoming calls;
    *mediaenc* e.g. "srtp" or "srtp-mand"; *params* adds account parameters.
    """

    def __init__(self, run_dir: Path | str | None = None, *, user: str = "bob", password: str | None = None,
                 registrar: str | None = None, account: str | None = None, answermode: str = "auto",
                 audio_codecs: str = "pcmu", mediaenc: str | None = None, params: Iterable[str] = (),
                 audio_file: Path | str | None = None, extra_config: Iterable[str] = ()) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else Path(tempfile.mkdtemp(prefix="baresip-"))
        self.user = user
        self.registrar = registrar
        self.account = account or self._account_line(user, password, registrar, answermode, audio_codecs,
                                                      mediaenc, params)
        self.audio_file = audio_file
        self.extra_config = list(extra_config)
        self.sip_port = 0
        self.ctrl_port = 0
        self.rtp_ports = (0, 0)
        self.log_path = self.run_dir / "baresip.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ctrl: BaresipControl = None  # type: ignore[assignment]  # set by start()

    @staticmethod
    def _account_line(user: str, password: str | None, registrar: str | None, answermode: str,
                      audio_codecs: str, mediaenc: str | None, params: Iterable[str]) -> str:
        parts = [f"<sip:{user}@{HOST}>", f"answermode={answermode}", f"audio_codecs={audio_codecs}"]
        if registrar:
            # every request goes through the registrar, which is also the proxy for the domain
            parts += ["regint=600", f'outbound="sip:{registrar};lr"']
        else:
            parts.append("regint=0")
        if password is not None:
            parts.append(f"auth_pass={password}")
        if mediaenc:
            parts.append(f"mediaenc={mediaenc}")
        parts += list(params)
        return ";".join(parts)

    @property
    def uri(self) -> str:
        """Where to reach it directly, bypassing any registrar."""
        return f"sip:{self.user}@{HOST}:{self.sip_port}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _write_config(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "rec").mkdir(exist_ok=True)
        cert, key = make_certificate(self.run_dir / "tls")
        pem = self.run_dir / "tls.pem"  # baresip will not start without one, even with TLS unused
        pem.write_bytes(cert.read_bytes() + key.read_bytes())
        self.sip_port = free_port()
        self.ctrl_port = free_port(udp=False)
        rtp_low = free_port_range(16, tcp=False)
        self.rtp_ports = (rtp_low, rtp_low + 15)
        source = f"aufile,{self.audio_file}" if self.audio_file else "ausine,440"
        settings = [
            ("poll_method", "epoll"),
            ("net_interface", HOST),
            ("sip_listen", f"{HOST}:{self.sip_port}"),
            ("sip_certificate", str(pem)),
            ("sip_cafile", str(cert)),
            ("call_local_timeout", "120"),
            ("call_max_calls", "4"),
            ("audio_player", "aubridge,sink"),
            ("audio_alert", "aubridge,sink"),
            ("audio_source", source),
            ("audio_path", "/usr/share/baresip"),
            ("ausrc_srate", "48000" if not self.audio_file else "8000"),
            ("ausrc_channels", "2" if not self.audio_file else "1"),
            ("audio_buffer", "20-160"),
            ("rtp_ports", f"{self.rtp_ports[0]}-{self.rtp_ports[1]}"),
            ("rtcp_mux", "no"),
            ("jitter_buffer_delay", "5-10"),
            ("rtp_stats", "yes"),
            # a loopback port nobody answers: no DNS lookups leave the machine
            ("dns_server", f"{HOST}:{free_port(tcp=False)}"),
            ("module_path", MODULE_PATH),
        ]
        lines = [f"{name}\t\t{value}" for name, value in settings]
        lines += [f"module\t\t\t{module}" for module in MODULES]
        lines += ["module_tmp\t\tuuid.so", "module_tmp\t\taccount.so",
                  "module_app\t\tcontact.so", "module_app\t\tmenu.so", "module_app\t\tctrl_tcp.so",
                  f"ctrl_tcp_listen\t\t{HOST}:{self.ctrl_port}",
                  f"snd_path\t\t{self.run_dir / 'rec'}"]
        lines += self.extra_config
        (self.run_dir / "config").write_text("\n".join(lines) + "\n")
        (self.run_dir / "accounts").write_text(self.account + "\n")
        (self.run_dir / "contacts").write_text("")

    def start(self) -> Baresip:
        """Start it and connect to its ctrl_tcp; returns once baresip says it is ready."""
        if self.process is not None:
            raise PeerError("baresip already started")
        self._write_config()
        env = alsa_env(self.run_dir)
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(["baresip", "-f", str(self.run_dir)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, cwd=self.run_dir, env=env)
        deadline = time.monotonic() + READY_TIMEOUT
        while "baresip is ready." not in self.log_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PeerError(f"baresip did not become ready; log {self.log_path}:\n{log_tail(self.log_path)}")
            time.sleep(0.02)
        self.ctrl = BaresipControl(self.ctrl_port)
        return self

    def wait_registered(self, timeout: float = 10.0) -> None:
        """Wait until its account is registered (it may have been before ctrl_tcp was connected)."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.ctrl.command("reginfo").get("data", "")
            if self.registered_in(info):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"baresip not registered after {timeout} s: {info!r}\n{log_tail(self.log_path)}")
            try:
                self.ctrl.wait_event("REGISTER_OK", timeout=min(0.5, max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                pass

    @staticmethod
    def registered_in(reginfo: str) -> bool:
        """Whether ``reginfo`` output shows a registered account (baresip prints "OK" in green)."""
        plain = re.sub(r"\x1b\[[0-9;]*m", "", reginfo)
        return any("sip:" in line and re.search(r"\bOK\b", line) for line in plain.splitlines())

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM (twice: a registered baresip first unregisters), then SIGKILL."""
        if getattr(self, "ctrl", None) is not None:
            self.ctrl.close()
            self.ctrl = None  # type: ignore[assignment]
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGTERM, signal.SIGKILL):
            process.send_signal(sig)
            try:
                process.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue

    def __enter__(self) -> Baresip:
        return self if self.process is not None else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
