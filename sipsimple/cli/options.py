"""What every subcommand shares: the common options, starting the Engine, waiting for notifications.

Common options (added to each subcommand by :func:`add_common_options`)::

    --account USER@DOMAIN   who we are (a sip: URI works too), or a configured account
    --password PW           digest password of the account
    --proxy HOST:PORT[;transport=udp|tcp|tls]   outbound proxy / registrar
    --config-dir DIR        where the configured accounts are (also a global option)
    --local-ip ADDR         address to bind (default: the one that routes to the proxy or target)
    --port N                local SIP port for UDP and TCP (default: a free one)
    --tls-ca-file FILE      CAs a TLS server's certificate is checked against
    --no-verify-tls         do not check the TLS server's certificate
    --tls-certificate FILE  PEM with our certificate and key, shown by our TLS listeners (SIP, MSRP);
                            default: the configured ``tls.certificate``, else one made for the run
    --trace                 print the SIP messages to stderr
    -v / -vv                log at INFO / DEBUG level to stderr

No proxy and no password means direct peer-to-peer use: nothing registers.

Configured accounts (``sipsimple account add``) fill in what the options leave
out: with no ``--account``, the default account is used; ``--account ID``
naming a configured account (by id, or by its user part alone) takes its
password, proxy, display name, digest username, SRTP mode, codecs and MSRP
relay, each overridden by the option of the same meaning. Given both
``--password`` and ``--proxy``, ``--account`` is a complete explicit account
and no configured account is read. An ``--account`` that is neither
configured nor complete is an error ("unknown account"), unless its domain is
an IP address: that is a direct peer-to-peer identity, as it always was.

TLS: ``--tls-ca-file``, ``--no-verify-tls`` and ``--tls-certificate`` each fall
back on the configuration's global ``tls.ca_file``, ``tls.verify_server`` and
``tls.certificate`` (the SDK's ``SIPSimpleSettings``, whatever the account). Without
a certificate, the commands that may listen for MSRP over TLS make a self-signed one
for the run. A given or configured file that cannot be read, or is not PEM CAs or
a certificate with its key, is a usage error (see :mod:`sipsimple.cli.tls`).

Errors the user can fix (bad URI, unknown transport, unreachable proxy, the
Engine not starting) raise :class:`CLIError`; the dispatcher prints them as one
line and exits 2.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import logging
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLIError", "Settings", "EventQueue", "StopSignal", "StdinLines",
    "add_common_options", "add_config_dir_option", "settings_from_args", "parse_account", "parse_target", "parse_proxy",
    "check_count", "start_engine", "stop_engine", "engine_running", "format_uri",
    "describe_result",
    "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE",
]

log = logging.getLogger("sipsimple.cli")

EXIT_OK = 0
EXIT_FAILURE = 1  # the SIP operation failed (non-2xx, no response)
EXIT_USAGE = 2  # bad arguments, configuration or environment

TRANSPORTS = ("udp", "tcp", "tls")
_PROXY_RE = re.compile(r"^(?P<host>\[[^\]]+\]|[^:;\[\]]+)(?::(?P<port>[^;]*))?(?P<params>;.*)?$")


class CLIError(Exception):
    """A problem the user can fix; printed as ``sipsimple: error: <message>``, exit status 2."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def add_common_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("account and network")
    group.add_argument("--account", metavar="USER@DOMAIN", help="our SIP address (user@domain or a sip: URI)")
    group.add_argument("--password", metavar="PW", help="digest password of the account")
    group.add_argument("--proxy", metavar="HOST:PORT[;transport=udp|tcp|tls]",
                       help="outbound proxy and registrar (default: none, direct peer-to-peer)")
    add_config_dir_option(group, default=argparse.SUPPRESS)
    group.add_argument("--local-ip", metavar="ADDR", help="local IPv4 address to use")
    group.add_argument("--port", metavar="N", type=_port_number, default=0,
                       help="local SIP port for UDP and TCP (default: any free port)")
    group.add_argument("--tls-ca-file", metavar="FILE", help="CA certificates to check a TLS server against")
    group.add_argument("--no-verify-tls", action="store_true", help="do not check the TLS server's certificate")
    group.add_argument("--tls-certificate", metavar="FILE",
                       help="PEM file with our certificate and private key, for our TLS listeners (SIP, MSRP); "
                            "default: the configured tls.certificate")
    group.add_argument("--trace", action="store_true", help="print SIP messages to stderr")
    group.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")


def add_config_dir_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: Any = None) -> None:
    """``--config-dir DIR``; subcommands give ``argparse.SUPPRESS`` so the global option's value stays."""
    parser.add_argument("--config-dir", metavar="DIR", default=default,
                        help="configuration directory (default: $SIPSIMPLE_CONFIG_DIR or ~/.config/sipsimple)")


def _port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


# ------------------------------------------------------------------ parsing


def _parse_sip_uri(text: str, what: str):
    from sipsimple.core import SIPURI

    text = text.strip()
    if not text:
        raise CLIError(f"empty {what}")
    body = text[1:-1] if text.startswith("<") and text.endswith(">") else text
    if not body.lower().startswith(("sip:", "sips:")):
        if ":" in body.split("@", 1)[0] or "/" in body:  # another scheme, e.g. tel: or http://
            raise CLIError(f"invalid {what} {text!r}: not a SIP URI")
        body = "sip:" + body
    try:
        uri = SIPURI.parse(body)
    except ValueError:
        raise CLIError(f"invalid {what} {text!r}: expected user@domain or a sip: URI") from None
    if uri.user == "":
        raise CLIError(f"invalid {what} {text!r}: empty user part")
    return uri


def parse_account(text: str):
    """``user@domain`` or ``sip:user@domain`` -> SIPURI (the address of record)."""
    uri = _parse_sip_uri(text, "account")
    if not uri.user:
        raise CLIError(f"invalid account {text!r}: expected user@domain")
    if uri.port or uri.parameters or uri.headers:
        uri.port = None
        uri.parameters = {}
        uri.headers = {}
    return uri


def parse_target(text: str, default_domain: str | None = None):
    """A message or call target: ``user@domain[:port]``, a sip:/sips: URI, or a bare ``user`` of our domain."""
    text = text.strip()
    if text and "@" not in text and ":" not in text and default_domain and not _looks_like_host(text):
        text = f"{text}@{default_domain}"
    return _parse_sip_uri(text, "target")


def _looks_like_host(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return "." in text


def parse_proxy(text: str):
    """``HOST[:PORT][;transport=udp|tcp|tls]`` (or a sip:/sips: URI of it) -> Route."""
    from sipsimple.core import Route

    original = text
    text = text.strip()
    secure = False
    lower = text.lower()
    if lower.startswith("sips:"):
        secure, text = True, text[5:]
    elif lower.startswith("sip:"):
        text = text[4:]
    match = _PROXY_RE.match(text)
    if not match or not match.group("host").strip():
        raise CLIError(f"invalid proxy {original!r}: expected HOST:PORT[;transport=udp|tcp|tls]")
    host = match.group("host").strip("[]")
    port_text = match.group("port")
    transport = "tls" if secure else "udp"
    for item in (match.group("params") or "").split(";"):
        name, _, value = item.partition("=")
        if name.strip().lower() == "transport":
            transport = value.strip().lower()
    if transport not in TRANSPORTS:
        raise CLIError(f"unknown transport {transport!r} in proxy {original!r}; expected udp, tcp or tls")
    if port_text is not None and port_text != "":
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise CLIError(f"invalid port {port_text!r} in proxy {original!r}")
        port = int(port_text)
    else:
        port = 5061 if transport == "tls" else 5060
    try:
        return Route(host, port, transport)
    except ValueError as exc:
        raise CLIError(f"invalid proxy {original!r}: {exc}") from None


def format_uri(uri) -> str:
    """A URI for display: no tag/parameters of the header, just the URI."""
    return str(getattr(uri, "uri", uri))


def describe_result(data) -> str:
    """The answer a request got, from a notification's data: ``CODE REASON``, or
    ``no response (REASON)`` when none came (code 0: a timeout or a transport error)."""
    return f"{data.code} {data.reason}" if data.code else f"no response ({data.reason})"


def check_count(count: int | None) -> None:
    """``--count N`` must be 1 or more (or not given)."""
    if count is not None and count < 1:
        raise CLIError(f"invalid --count {count}: expected 1 or more")


# ----------------------------------------------------------------- settings


@dataclass
class Settings:
    """The common options, checked and parsed."""

    account: Any = None  # SIPURI or None
    password: str | None = None
    route: Any = None  # Route or None
    local_ip: str | None = None
    port: int = 0
    tls_ca_file: str | None = None
    verify_tls: bool = True
    tls_certificate: str | None = None
    trace: bool = False
    # from a configured account (all None/True when the options alone made the account)
    account_id: str | None = None  # the configured account's id
    username: str | None = None  # digest username, when not the account's user part
    display_name: str | None = None
    srtp_mode: str | None = None
    audio_codecs: tuple[str, ...] | None = None
    msrp_relay: str | None = None
    msrp_use_tls: bool = False  # the configured account's msrp.use_tls
    register: bool = True  # False: 'sipsimple session' does not register the account

    @property
    def credentials(self):
        from sipsimple.core import Credentials

        if self.account is None or self.password is None:
            return None
        return Credentials(self.username or self.account.user, self.password)

    @property
    def peer_to_peer(self) -> bool:
        return self.route is None and self.password is None

    def where(self, uri) -> str:
        """Where requests for ``uri`` go, for the user: ``HOST:PORT over UDP`` (the proxy), else its host."""
        route = self.route
        return f"{route.address}:{route.port} over {route.transport.upper()}" if route else uri.host

    def from_uri(self):
        """Our From address: the account, else ``sip:<login>@<local ip>``."""
        from sipsimple.core import SIPURI

        if self.account is not None:
            return self.account.copy()
        try:
            login = getpass.getuser()
        except Exception:
            login = ""
        if not re.fullmatch(r"[A-Za-z0-9._~-]+", login or ""):
            login = "sipsimple"
        from sipsimple.core import Engine

        return SIPURI(Engine().local_ip or self.local_ip or "127.0.0.1", user=login)


def settings_from_args(args: argparse.Namespace) -> Settings:
    setup_logging(getattr(args, "verbose", 0))
    settings = Settings(port=getattr(args, "port", 0) or 0, trace=bool(getattr(args, "trace", False)))
    configured = _configured_account(args)
    if configured is not None:
        settings.account = parse_account(configured.id)
        settings.account_id = configured.id
        settings.password = configured.password
        settings.route = configured.route
        settings.username = configured.username
        settings.display_name = configured.display_name
        settings.srtp_mode = configured.srtp_mode
        settings.audio_codecs = configured.audio_codecs
        settings.msrp_relay = configured.msrp_relay
        settings.msrp_use_tls = configured.msrp_use_tls
        settings.register = configured.register
        log.info("using the configured account %s", configured.id)
    elif getattr(args, "account", None):
        settings.account = parse_account(args.account)
    if getattr(args, "password", None) is not None:
        if settings.account is None:
            raise CLIError("--password needs --account")
        settings.password = args.password
    if getattr(args, "proxy", None):
        settings.route = parse_proxy(args.proxy)
    if getattr(args, "local_ip", None):
        try:
            if ipaddress.ip_address(args.local_ip).version != 4:
                raise ValueError
        except ValueError:
            raise CLIError(f"invalid --local-ip {args.local_ip!r}: expected an IPv4 address") from None
        settings.local_ip = args.local_ip
    from sipsimple.cli.tls import tls_from_args

    settings.tls_ca_file, settings.tls_certificate, settings.verify_tls = tls_from_args(args)
    return settings


def _configured_account(args: argparse.Namespace):
    """The configured account the options leave room for (see the module docstring), or None."""
    from sipsimple.cli import config

    text = getattr(args, "account", None)
    password, proxy = getattr(args, "password", None), getattr(args, "proxy", None)
    config_dir = getattr(args, "config_dir", None)
    if not text:
        if password is not None:
            return None  # '--password needs --account', said by the caller
        return config.load_account(config_dir, None, required=False)
    if config.is_short_name(text.strip()):
        return config.load_account(config_dir, text)
    if password is not None and proxy is not None:
        return None  # a complete explicit account
    uri = parse_account(text)  # a bad address is reported as such, before any lookup
    complete = password is not None or proxy is not None or config.is_ip_domain(uri.host)
    return config.load_account(config_dir, f"{uri.user}@{uri.host}", required=not complete)


def setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        level = logging.WARNING
    elif verbosity == 1:
        level = logging.INFO
    else:
        level = logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    logging.getLogger().setLevel(level)


# ------------------------------------------------------------------ network


def resolve_host(host: str) -> str:
    """The IPv4 address of ``host``; CLIError when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise CLIError(f"cannot resolve {host!r}: {exc.strerror}") from None
    return infos[0][4][0]


def local_ip_towards(host: str) -> str:
    """The local address the kernel would use to reach ``host`` (nothing is sent)."""
    address = resolve_host(host)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((address, 5060))
            return sock.getsockname()[0]
    except OSError as exc:
        raise CLIError(f"no route to {host}: {exc.strerror or exc}") from None


def check_proxy_reachable(route, timeout: float = 3.0, tls_ca_file: str | None = None,
                          verify_tls: bool = True) -> None:
    """Fail early, with a clear message, when the proxy cannot be reached.

    TCP: a connection is opened and closed. TLS: the same with a handshake,
    checking the server's certificate against ``tls_ca_file`` (else the system's
    CAs) unless ``verify_tls`` is false -- the stack itself only reports an
    untrusted certificate as a 408 after 32 s. UDP: a keep-alive (CRLF CRLF,
    RFC 5626, ignored by SIP servers) is sent from a connected socket, and an
    ICMP port unreachable shows up as a refused receive; silence is taken as reachable.
    """
    address = resolve_host(route.address)
    where = f"{route.address}:{route.port} over {route.transport.upper()}"
    if route.transport in ("tcp", "tls"):
        try:
            with socket.create_connection((address, route.port), timeout=timeout) as sock:
                if route.transport == "tls":
                    from sipsimple.cli.tls import check_server_certificate

                    check_server_certificate(sock, route.address, where, tls_ca_file, verify_tls)
        except CLIError:
            raise
        except TimeoutError:
            raise CLIError(f"proxy {where} is unreachable: connection timed out") from None
        except OSError as exc:
            raise CLIError(f"proxy {where} is unreachable: {exc.strerror or exc}") from None
        return
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            sock.connect((address, route.port))
            sock.send(b"\r\n\r\n")
            try:
                sock.recv(1)
            except TimeoutError:
                pass
    except ConnectionRefusedError:
        raise CLIError(f"proxy {where} is unreachable: nothing listens there (port unreachable)") from None
    except OSError as exc:
        raise CLIError(f"proxy {where} is unreachable: {exc.strerror or exc}") from None


# ------------------------------------------------------------------- engine


class _TracePrinter:
    def __init__(self, stream) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, notification) -> None:
        data = notification.data
        arrow = "<--" if data.direction == "in" else "-->"
        text = data.data.decode("utf-8", "replace") if isinstance(data.data, bytes) else str(data.data)
        header = (f"{arrow} {data.transport.upper()} {data.source_ip}:{data.source_port} -> "
                  f"{data.destination_ip}:{data.destination_port}")
        with self.lock:
            self.stream.write(f"{header}\n{text.rstrip()}\n\n")
            self.stream.flush()


_trace_printer: _TracePrinter | None = None  # the NotificationCenter holds observers weakly


def start_engine(settings: Settings, *, tls: bool | None = None, target=None, check_proxy: bool = True,
                 run_certificate: bool = False):
    """Start the Engine for ``settings``; returns it. Raises CLIError when it cannot start.

    TLS is enabled when the proxy (or ``target``) wants it, or when ``tls`` is True.
    The local address defaults to the one that routes to the proxy, else to ``target``.
    Our TLS certificate is ``settings.tls_certificate`` (``--tls-certificate``, else the configured
    ``tls.certificate``); without one, ``run_certificate`` (for a command that may listen for MSRP
    over TLS) makes a self-signed one for the local address.
    """
    from sipsimple.cli.tls import make_run_certificate, remove_run_certificate
    from sipsimple.core import Engine, SIPCoreError
    from sipsimple.notification import NotificationCenter

    global _trace_printer
    route = settings.route
    if route is not None and check_proxy:
        check_proxy_reachable(route, tls_ca_file=settings.tls_ca_file, verify_tls=settings.verify_tls)
    if tls is None:
        tls = (route is not None and route.transport == "tls") or (
            route is None and target is not None and target.transport == "tls")
    local_ip = settings.local_ip
    if local_ip is None:
        towards = route.address if route is not None else (target.host if target is not None else None)
        if towards is not None:
            try:
                local_ip = local_ip_towards(towards)
            except CLIError:
                if route is not None:
                    raise
                local_ip = None  # the target may be a domain only the stack's DNS resolves
    transports = ("udp", "tcp", "tls") if tls else ("udp", "tcp")
    certificate = settings.tls_certificate
    if certificate is None and run_certificate:
        from sipsimple.core.engine import default_local_ip

        certificate = make_run_certificate(local_ip or default_local_ip())
    if settings.trace:
        _trace_printer = _TracePrinter(sys.stderr)
        NotificationCenter().add_observer(_trace_printer, name="SCEngineSIPTrace")
    try:
        Engine().start(local_ip=local_ip, transports=transports, udp_port=settings.port,
                       tls_ca_file=settings.tls_ca_file, tls_verify_server=settings.verify_tls,
                       tls_certificate=certificate, trace_sip=settings.trace, user_agent=_user_agent())
    except (SIPCoreError, ValueError, OSError) as exc:
        remove_run_certificate()
        message = str(exc)
        if settings.port and "in use" not in message and ("bind" in message or "could not" in message):
            message += f" (is port {settings.port} already in use?)"
        raise CLIError(message) from None
    log.info("engine started on %s udp=%s tcp=%s tls=%s", Engine().local_ip, Engine().udp_port,
             Engine().tcp_port, Engine().tls_port)
    return Engine()


def stop_engine(timeout: float = 5.0) -> None:
    from sipsimple.cli.tls import remove_run_certificate
    from sipsimple.core import Engine, SIPCoreError

    try:
        Engine().stop(timeout)
    except SIPCoreError as exc:
        log.warning("engine did not stop cleanly: %s", exc)
    finally:
        remove_run_certificate()


@contextmanager
def engine_running(settings: Settings, *, target=None, run_certificate: bool = False) -> Iterator[StopSignal]:
    """The Engine started as :func:`start_engine` does, SIGINT/SIGTERM turned into the
    :class:`StopSignal` yielded; on the way out the Engine stops and the signal handlers come back."""
    with StopSignal() as stop:
        start_engine(settings, target=target, run_certificate=run_certificate)
        try:
            yield stop
        finally:
            stop_engine()


def _user_agent() -> str:
    from sipsimple import __version__

    return f"sipsimple-cli/{__version__}"


# ------------------------------------------------------------ waiting loop


class StopSignal:
    """Turns SIGINT/SIGTERM into a flag the main loop polls (restored by ``restore``)."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> StopSignal:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handler)
            except ValueError:  # not the main thread
                pass
        return self

    def _handler(self, signum, frame) -> None:
        self.received = signum

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __bool__(self) -> bool:
        return self.received is not None

    def __enter__(self) -> StopSignal:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


class EventQueue:
    """Collects notifications (on whatever thread posts them) for the main thread to consume.

    ``EventQueue().observe(names, sender)`` subscribes it (call it more than once
    to merge several sources, in arrival order); ``get(timeout, stop)`` returns
    the next notification, or None on timeout or when ``stop`` (a StopSignal)
    fired, so the main thread stays responsive to signals.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._subscriptions: list[tuple[str | None, Any]] = []
        self.started = time.monotonic()

    def __call__(self, notification) -> None:
        self._queue.put((time.monotonic(), notification))

    def observe(self, names: Iterable[str] | None = None, sender: Any = None) -> EventQueue:
        from sipsimple.notification import NotificationCenter

        for name in list(names) if names is not None else [None]:
            NotificationCenter().add_observer(self, name=name, sender=sender)
            self._subscriptions.append((name, sender))
        return self

    def close(self) -> None:
        from sipsimple.notification import NotificationCenter

        for name, sender in self._subscriptions:
            NotificationCenter().discard_observer(self, name=name, sender=sender)
        self._subscriptions.clear()

    def get_timed(self, timeout: float | None, stop: StopSignal | None = None):
        """(monotonic time, notification) or None."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if stop:
                return None
            wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if wait <= 0:
                return None
            try:
                return self._queue.get(timeout=wait)
            except queue.Empty:
                continue

    def get(self, timeout: float | None, stop: StopSignal | None = None):
        item = self.get_timed(timeout, stop)
        return None if item is None else item[1]

    def until_stopped(self, stop: StopSignal) -> Iterator[Any]:
        """The notifications as they come, for as long as ``stop`` has not fired."""
        while not stop:
            notification = self.get(None, stop)
            if notification is None:
                return
            yield notification

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float | None,
                 stop: StopSignal | None = None, on_other: Callable[[Any], None] | None = None):
        """The first notification for which ``predicate`` is true; others go to ``on_other``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            notification = self.get(left, stop)
            if notification is None:
                return None
            if predicate(notification):
                return notification
            if on_other is not None:
                on_other(notification)


class StdinLines:
    """Lines typed on stdin (without their line ending), read by a daemon thread so that
    the main loop keeps polling notifications and the StopSignal while nothing is typed."""

    def __init__(self, name: str = "stdin") -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name=name, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in sys.stdin:
                self._lines.put(line.rstrip("\r\n"))
        finally:
            self._lines.put(None)

    def get(self) -> str | None | bool:
        """The next line, None at the end of input, False when nothing was typed yet."""
        try:
            return self._lines.get_nowait()
        except queue.Empty:
            return False


def out(text: str = "", stream=None) -> None:
    """Print a line and flush at once (output is often read line by line by another program)."""
    stream = stream or sys.stdout
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        # the reader went away (e.g. '| head'): send the rest to /dev/null, tell the caller once
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        raise


def err(text: str) -> None:
    out(text, sys.stderr)
