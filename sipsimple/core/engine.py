"""The Engine: the one SIP stack of a process, on its own thread.

``Engine()`` is a singleton. ``start(**options)`` binds the transports and starts
the thread that owns Sofia-SIP; ``stop()`` ends every dialog and returns when the
thread is gone. Notifications (sender: the Engine):

- ``SCEngineDidStart``: the stack is up; data: ``local_ip``, ``udp_port``, ``tcp_port``, ``tls_port``.
- ``SCEngineDidFail``: it could not start or died; data: ``reason``.
- ``SCEngineWillEnd`` / ``SCEngineDidEnd``: around ``stop()``.
- ``SCEngineSIPTrace`` (with ``trace_sip=True``): data: ``direction`` ("in"/"out"),
  ``transport``, ``source_ip``, ``source_port``, ``destination_ip``, ``destination_port``,
  ``data`` (the whole message as sent or received, bytes; retransmissions too), ``timestamp``.
- ``SCEngineGotMessage``: an out-of-dialog MESSAGE arrived (the stack answered it 200);
  data: ``request_uri``, ``from_header``, ``to_header``, ``content_type``, ``body``,
  ``call_id``, ``message`` (the SIPMessage).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from typing import Any

from sipsimple.core import _core
from sipsimple.core.errors import SIPCoreEngineError
from sipsimple.core.primitive import now
from sipsimple.core.sip_trace import TraceParser
from sipsimple.core.uri import SIPURI
from sipsimple.notification import NotificationCenter, NotificationData

__all__ = ["Engine", "default_local_ip", "pick_free_port"]

log = logging.getLogger("sipsimple.engine")

DEFAULT_USER_AGENT = "sipsimple"
UDP_BUFFER_SIZE = 2 * 1024 * 1024
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, NOTIFY, SUBSCRIBE, INFO, UPDATE, REFER, PRACK"

sofia_log = logging.getLogger("sipsimple.core.sofia")  # Sofia-SIP's own diagnostics, while tracing


def default_local_ip() -> str:
    """The address the host would use for outside traffic (nothing is sent), else 127.0.0.1."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP only picks a route
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def pick_free_port(ip: str, tcp: bool = True, udp: bool = True) -> int:
    """A port free for both UDP and TCP on ``ip`` (the kernel picks, we check the other)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
            port = s.getsockname()[1]
        try:
            if udp:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind((ip, port))
            if tcp:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.bind((ip, port))
            return port
        except OSError:
            continue
    raise SIPCoreEngineError(f"no free port on {ip}")


class _MessageData(NotificationData):
    """The data of SCEngineGotMessage: the fields are read from the message when asked for."""

    @property
    def request_uri(self):
        return self.message.request_uri

    @property
    def from_header(self):
        return self.message.from_header

    @property
    def to_header(self):
        return self.message.to_header

    @property
    def content_type(self):
        return self.message.content_type

    @property
    def body(self):
        return self.message.body

    @property
    def call_id(self):
        return self.message.call_id


class _Dispatch:
    """Receives what the Engine thread delivers that belongs to no primitive."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def on_event(self, event) -> None:
        if event.name == "nua_i_message":
            message = event.message
            if message is None:
                return
            NotificationCenter().post_notification("SCEngineGotMessage", sender=self.engine,
                                                   data=_MessageData(message=message, timestamp=now()))
        elif event.name == "nua_i_error":
            log.warning("SIP stack error: %s %s", event.status, event.reason)

    def on_new_dialog(self, event) -> None:
        if event.name == "nua_i_invite":
            from sipsimple.core.invitation import Invitation

            Invitation._incoming(event)
        elif event.name == "nua_i_subscribe":
            handler = self.engine.incoming_subscription_handler
            if handler is not None:
                handler(event)

    def on_trace(self, data: bytes) -> None:
        self.engine._post_trace(data)

    def on_stopped(self) -> None:
        self.engine._thread_ended()


class Engine:
    """The SIP stack of the process (a singleton), as the seed's ``sipsimple.engine.Engine``."""

    _instance: Engine | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> Engine:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._init()
                cls._instance = instance
            return cls._instance

    def _init(self) -> None:
        self._core: Any = None
        self._lock = threading.RLock()
        self._cert_dir: str | None = None
        self.options: dict[str, Any] = {}
        self.local_ip: str | None = None
        self.udp_port: int | None = None
        self.tcp_port: int | None = None
        self.tls_port: int | None = None
        self.user_agent = DEFAULT_USER_AGENT
        self.incoming_subscription_handler = None

    # ------------------------------------------------------------- state

    @property
    def is_running(self) -> bool:
        return self._core is not None and self._core.running

    @property
    def transports(self) -> tuple[str, ...]:
        return tuple(t for t, port in (("udp", self.udp_port), ("tcp", self.tcp_port), ("tls", self.tls_port))
                     if port)

    def contact_uri(self, user: str | None = None, transport: str = "udp") -> SIPURI:
        """Our address for ``transport``, as other parties should reach it."""
        port = {"udp": self.udp_port, "tcp": self.tcp_port, "tls": self.tls_port}.get(transport)
        if not port:
            raise SIPCoreEngineError(f"transport {transport} is not enabled")
        params = {} if transport == "udp" else {"transport": transport}
        return SIPURI(self.local_ip or "127.0.0.1", user=user, port=port, parameters=params)

    # --------------------------------------------------------- lifecycle

    def start(
        self,
        *,
        local_ip: str | None = None,
        transports: tuple[str, ...] | list[str] = ("udp", "tcp"),
        udp_port: int = 0,
        tcp_port: int | None = None,
        tls_port: int = 0,
        user_agent: str = DEFAULT_USER_AGENT,
        tls_ca_file: str | None = None,
        tls_certificate: str | None = None,
        tls_verify_server: bool = True,
        trace_sip: bool = False,
        allow_events: tuple[str, ...] | list[str] = (),
        resolv_conf: str | None = None,
        timeout: float = 5.0,
        **unknown: Any,
    ) -> None:
        """Start the stack. Ports 0 are picked free; TCP shares the UDP port unless given.

        ``tls_certificate`` is a PEM file with our certificate and key (a
        self-signed one is made when TLS is on and none is given);
        ``tls_ca_file`` the CAs a server's certificate is checked against, which
        happens unless ``tls_verify_server`` is False. ``allow_events`` lists the
        event packages incoming SUBSCRIBEs may ask for. ``resolv_conf`` is a
        resolv.conf-style file naming the DNS servers Sofia asks for RFC 3263
        lookups (NAPTR, SRV, A) when a URI has a domain and no port; by default
        /etc/resolv.conf.
        """
        if unknown:
            raise TypeError(f"unknown Engine option(s): {', '.join(sorted(unknown))}")
        transports = tuple(t.lower() for t in transports)
        for t in transports:
            if t not in ("udp", "tcp", "tls"):
                raise ValueError(f"unknown transport {t!r}; expected udp, tcp or tls")
        if not transports:
            raise ValueError("at least one transport is needed")
        if not isinstance(user_agent, str) or any(ch in user_agent for ch in "\r\n\0"):
            raise ValueError("invalid user agent string")
        ip = local_ip or default_local_ip()
        try:
            if ipaddress.ip_address(ip).version != 4:
                raise ValueError
        except ValueError:
            raise ValueError(f"local_ip must be an IPv4 address, not {ip!r}") from None
        for name, value in (("udp_port", udp_port), ("tcp_port", tcp_port), ("tls_port", tls_port)):
            if value is not None and not (isinstance(value, int) and 0 <= value < 65536):
                raise ValueError(f"{name} must be 0..65535, not {value!r}")
        allow_events = tuple(allow_events)
        for package in allow_events:
            if not isinstance(package, str) or not package or any(ch in package for ch in "\r\n\0;, "):
                raise ValueError(f"invalid event package {package!r}")
        for name, path in (("tls_ca_file", tls_ca_file), ("tls_certificate", tls_certificate),
                           ("resolv_conf", resolv_conf)):
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{name}: no such file {path!r}")

        with self._lock:
            if self.is_running:
                raise SIPCoreEngineError("the Engine is already running")
            plain = [t for t in transports if t != "tls"]
            sip_port = udp_port or tcp_port or 0
            if plain and not sip_port:
                sip_port = pick_free_port(ip, tcp="tcp" in plain, udp="udp" in plain)
            if tcp_port not in (None, 0, sip_port):
                raise ValueError("udp_port and tcp_port must be the same port (Sofia binds both on one)")
            tag_list: list[tuple[str, Any]] = [
                ("media_enable", 0),
                ("user_agent", user_agent),
                ("allow", ALLOW),
                ("enablemessage", 1),
                ("autoalert", 0),
                ("autoanswer", 0),
                ("outbound", "no-natify no-options-keepalive no-validate"),
                ("keepalive", 0),
                ("detect_network_updates", 0),
                ("shutdown_events", 1),
                # a burst of datagrams must wait in the kernel, not be dropped (the default is ~200 kB)
                ("udp_rmem", UDP_BUFFER_SIZE),
                ("udp_wmem", UDP_BUFFER_SIZE),
            ]
            if resolv_conf:
                # the DNS servers for RFC 3263 lookups (NAPTR, SRV, A) of domains without a port
                tag_list.append(("resolv_conf", resolv_conf))
            if allow_events:
                # SUBSCRIBEs for these packages reach incoming_subscription_handler (else 489 Bad Event)
                tag_list.append(("allow_events", ", ".join(allow_events)))
            if plain:
                transport_param = "" if len(plain) == 2 else f";transport={plain[0]}"
                tag_list.append(("url", f"sip:{ip}:{sip_port}{transport_param}"))
            else:
                tag_list.append(("url", f"sip:{ip}:*;transport=udp"))
            if "tls" in transports:
                if not tls_port:
                    tls_port = pick_free_port(ip, udp=False)
                self._cert_dir = self._make_cert_dir(tls_certificate, tls_ca_file)
                tag_list.append(("sips_url", f"sips:{ip}:{tls_port}"))
                tag_list.append(("certificate", self._cert_dir))
                tag_list.append(("tls_verify_policy", 2 if tls_verify_server else 0))
            self._trace_parser = TraceParser()
            core = _core.EngineCore(_Dispatch(self))
            try:
                core.start(tag_list, trace=trace_sip, timeout=timeout)
            except RuntimeError as exc:
                self._remove_cert_dir()
                self._post("SCEngineDidFail", reason=str(exc))
                raise SIPCoreEngineError(f"the Engine could not start: {exc}") from None
            self._core = core
            self.local_ip = ip
            self.udp_port = sip_port if "udp" in transports else None
            self.tcp_port = sip_port if "tcp" in transports else None
            self.tls_port = tls_port if "tls" in transports else None
            self.user_agent = user_agent
            self.options = dict(local_ip=ip, transports=transports, udp_port=udp_port, tcp_port=tcp_port,
                                tls_port=tls_port, user_agent=user_agent, tls_ca_file=tls_ca_file,
                                tls_certificate=tls_certificate, tls_verify_server=tls_verify_server,
                                trace_sip=trace_sip, allow_events=allow_events, resolv_conf=resolv_conf)
        log.info("engine started on %s udp=%s tcp=%s tls=%s", ip, self.udp_port, self.tcp_port, self.tls_port)
        self._post("SCEngineDidStart", local_ip=ip, udp_port=self.udp_port, tcp_port=self.tcp_port,
                   tls_port=self.tls_port)

    def start_cfg(self, **overrides: Any) -> None:
        """Start with the options of the configuration (ConfigurationManager must be started)."""
        try:
            from sipsimple.configuration.settings import SIPSimpleSettings
        except ImportError:
            options: dict[str, Any] = {}
        else:
            options = SIPSimpleSettings().engine_options()
        options.update(overrides)
        self.start(**options)

    def stop(self, timeout: float = 10.0) -> None:
        """End every dialog and registration, then the thread; returns once it is gone.

        Called on the Engine thread itself (from a notification handler), it only
        asks the stack to shut down and returns; ``SCEngineDidEnd`` tells when done.
        """
        with self._lock:
            core = self._core
            if core is None:
                return
            self._post("SCEngineWillEnd")
            if core.is_engine_thread():
                core.request_stop()
                return
        self._stop_core(core, timeout)

    def _stop_core(self, core, timeout: float) -> None:
        try:
            core.stop(timeout)
        except RuntimeError as exc:
            self._post("SCEngineDidFail", reason=str(exc))
            raise SIPCoreEngineError(str(exc)) from None

    def _thread_ended(self) -> None:
        with self._lock:
            self._core = None
            self._remove_cert_dir()
            self.udp_port = self.tcp_port = self.tls_port = None
        self._post("SCEngineDidEnd")

    # ------------------------------------------------------------ helpers

    def _post(self, name: str, **data: Any) -> None:
        data.setdefault("timestamp", now())
        NotificationCenter().post_notification(name, sender=self, data=NotificationData(**data))

    def _post_trace(self, data: bytes) -> None:
        parser = self._trace_parser
        for record in parser.feed(data):
            remote = (record.address, record.port)
            local_port = {"tls": self.tls_port, "tcp": self.tcp_port}.get(record.transport, self.udp_port)
            local = (self.local_ip, local_port)
            source, destination = (remote, local) if record.direction == "in" else (local, remote)
            self._post("SCEngineSIPTrace", direction=record.direction, transport=record.transport,
                       source_ip=source[0], source_port=source[1],
                       destination_ip=destination[0], destination_port=destination[1], data=record.data)
        for text in parser.diagnostics:
            sofia_log.debug("%s", text.decode("utf-8", "replace"))
        parser.diagnostics.clear()

    def _make_cert_dir(self, certificate: str | None, ca_file: str | None) -> str:
        # Sofia reads TLS material from a directory: agent.pem (our cert + key), cafile.pem
        d = tempfile.mkdtemp(prefix="sipsimple-tls-")
        agent = os.path.join(d, "agent.pem")
        if certificate:
            shutil.copyfile(certificate, agent)
        else:
            key, crt = os.path.join(d, "key.pem"), os.path.join(d, "crt.pem")
            try:
                subprocess.run(
                    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365",
                     "-keyout", key, "-out", crt, "-subj", "/CN=sipsimple"],
                    check=True, capture_output=True, timeout=60,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                shutil.rmtree(d, ignore_errors=True)
                raise SIPCoreEngineError(f"cannot make a TLS certificate (is openssl installed?): {exc}") from None
            with open(agent, "wb") as out:
                for part in (crt, key):
                    with open(part, "rb") as f:
                        out.write(f.read())
        if ca_file:
            shutil.copyfile(ca_file, os.path.join(d, "cafile.pem"))
        return d

    def _remove_cert_dir(self) -> None:
        if self._cert_dir:
            shutil.rmtree(self._cert_dir, ignore_errors=True)
            self._cert_dir = None
