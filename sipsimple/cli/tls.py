"""The CLI's TLS material (:func:`tls_from_args`): the CAs TLS servers are checked against,
whether they are checked, and the certificate our TLS listeners show.

Each is its option (``--tls-ca-file``, ``--no-verify-tls``, ``--tls-certificate``), else the
configuration's global ``tls`` setting (``ca_file``, ``verify_server``, ``certificate`` of the
SDK's ``SIPSimpleSettings``). Files are checked before use: CAs must load, a certificate must
come with its private key. Without a certificate, a command that may listen for MSRP over TLS
has :func:`make_run_certificate` make a self-signed one, which lives until
:func:`remove_run_certificate` (``stop_engine``).
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import ssl
import subprocess
import tempfile

from sipsimple.cli.options import CLIError

__all__ = ["tls_from_args", "check_ca_file", "check_certificate", "check_server_certificate", "make_run_certificate",
           "remove_run_certificate"]

log = logging.getLogger("sipsimple.cli")

_run_certificate_dir: tempfile.TemporaryDirectory | None = None  # removed by remove_run_certificate


def tls_from_args(args: argparse.Namespace) -> tuple[str | None, str | None, bool]:
    """``(ca_file, certificate, verify_server)`` for this run: each option if given, else the
    configuration's global ``tls`` setting (read once, only when an option is missing).

    ``ca_file`` checks TLS servers (None: the system's CAs); ``certificate`` is what our TLS
    listeners show (None: ``start_engine`` may make one for the run).  A given or configured
    file that cannot be used is a :class:`CLIError` naming where it came from.
    """
    ca_file = getattr(args, "tls_ca_file", None)
    certificate = getattr(args, "tls_certificate", None)
    no_verify = bool(getattr(args, "no_verify_tls", False))
    configured = None
    if not (ca_file and certificate and no_verify):
        configured = _ConfiguredTLS(getattr(args, "config_dir", None))
    if ca_file:
        ca_file = check_ca_file(ca_file, "--tls-ca-file")
    elif configured is not None and configured.ca_file:
        ca_file = check_ca_file(configured.ca_file, "configured tls.ca_file", configured.hint("--tls-ca-file"))
    if certificate:
        certificate = check_certificate(certificate, "--tls-certificate")
    elif configured is not None and configured.certificate:
        certificate = check_certificate(configured.certificate, "configured tls.certificate",
                                        configured.hint("--tls-certificate"))
    verify = not no_verify and (configured is None or configured.verify_server)
    return ca_file, certificate, verify


class _ConfiguredTLS:
    """The global ``tls`` settings of a configuration directory, paths made absolute."""

    def __init__(self, config_dir: str | None) -> None:
        from sipsimple.cli import config
        from sipsimple.configuration.datatypes import Path
        from sipsimple.configuration.settings import SIPSimpleSettings

        with config.configuration(config_dir):
            tls = SIPSimpleSettings().tls
            # a relative path is taken from the working directory, as the SDK's Engine.start_cfg() takes it
            self.ca_file = Path.normalize(tls.ca_file) if tls.ca_file else None
            self.certificate = Path.normalize(tls.certificate) if tls.certificate else None
            self.verify_server = bool(tls.verify_server)
        self.config_file = config.config_file(config_dir)

    def hint(self, option: str) -> str:
        return f" (set in {self.config_file}; {option} overrides it)"


def check_ca_file(path: str, source: str, hint: str = "") -> str:
    """``path`` if it is a readable file of PEM CA certificates, else a CLIError naming ``source``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:  # before OSError, of which it is a subclass
        raise CLIError(f"invalid {source} {path!r}: expected PEM CA certificates ({exc.reason or exc}){hint}") from None
    except OSError as exc:
        raise CLIError(f"cannot read {source} {path!r}: {exc.strerror or exc}{hint}") from None
    return path


def check_certificate(path: str, source: str, hint: str = "") -> str:
    """``path`` if it is a readable PEM file holding a certificate and its private key, else a
    CLIError naming ``source`` (where the path came from) and ending with ``hint``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(path)
    except ssl.SSLError as exc:  # before OSError, of which it is a subclass
        raise CLIError(f"invalid {source} {path!r}: expected a PEM file with a certificate and "
                       f"its private key ({exc.reason or exc}){hint}") from None
    except OSError as exc:
        raise CLIError(f"cannot read {source} {path!r}: {exc.strerror or exc}{hint}") from None
    return path


def check_server_certificate(sock: socket.socket, host: str, where: str, ca_file: str | None,
                             verify: bool) -> None:
    """A TLS handshake with the proxy ``where`` on the connected ``sock``: a CLIError when it fails,
    or (``verify``) when its certificate is not signed by ``ca_file`` (else the system's CAs)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False  # the stack checks the chain, not the name
    if verify:
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        else:
            context.load_default_certs()
    else:
        context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(sock, server_hostname=host):
            pass
    except ssl.SSLCertVerificationError as exc:
        hint = "" if ca_file else " (give its CA with --tls-ca-file, or use --no-verify-tls)"
        raise CLIError(f"TLS certificate of proxy {where} is not trusted: {exc.verify_message}{hint}") from None
    except (ssl.SSLError, OSError) as exc:
        raise CLIError(f"TLS handshake with proxy {where} failed: {exc}") from None


def make_run_certificate(host: str) -> str:
    """A self-signed certificate for ``host`` (CN and IP SAN) with its key, made for this run: the PEM's path.

    It lives in a temporary directory that :func:`remove_run_certificate` removes (``stop_engine``
    calls it). Peers that check certificates do not trust it (they need ``--no-verify-tls``);
    ``--tls-certificate`` or the configured ``tls.certificate`` gives one they can check.
    """
    from sipsimple.core.uri import is_ip_address

    global _run_certificate_dir
    directory = tempfile.TemporaryDirectory(prefix="sipsimple-cli-tls-")
    key, cert = os.path.join(directory.name, "key.pem"), os.path.join(directory.name, "cert.pem")
    san = f"IP:{host}" if is_ip_address(host) else f"DNS:{host}"
    try:
        # an EC key: made in milliseconds, where RSA takes a noticeable part of a second
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-keyout", key, "-out", cert, "-subj", f"/CN={host}",
                        "-addext", f"subjectAltName={san}"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        directory.cleanup()
        raise CLIError(f"cannot make a TLS certificate for MSRP over TLS (is openssl installed?): {exc}; "
                       "give one with --tls-certificate") from None
    both = os.path.join(directory.name, "identity.pem")
    with open(both, "wb") as out_file:
        for part in (cert, key):
            with open(part, "rb") as f:
                out_file.write(f.read())
    remove_run_certificate()
    _run_certificate_dir = directory
    log.info("made a self-signed TLS certificate for %s: %s", host, both)
    return both


def remove_run_certificate() -> None:
    """Remove what :func:`make_run_certificate` made (nothing if it made nothing)."""
    global _run_certificate_dir
    if _run_certificate_dir is not None:
        _run_certificate_dir.cleanup()
        _run_certificate_dir = None
