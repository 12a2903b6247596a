"""The CLI's TLS material: the certificate our TLS listeners show, and checking a TLS proxy's.

Our certificate (:func:`our_certificate`) is ``--tls-certificate FILE``, else the
configuration's global ``tls.certificate`` (the SDK's ``SIPSimpleSettings``), each
checked to be a readable PEM with a certificate and its private key; without either,
a command that may listen for MSRP over TLS has :func:`make_run_certificate` make a
self-signed one, which lives until :func:`remove_run_certificate` (``stop_engine``).
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

__all__ = ["our_certificate", "check_certificate", "check_server_certificate", "make_run_certificate",
           "remove_run_certificate"]

log = logging.getLogger("sipsimple.cli")

_run_certificate_dir: tempfile.TemporaryDirectory | None = None  # removed by remove_run_certificate


def our_certificate(args: argparse.Namespace) -> str | None:
    """Our TLS certificate's PEM: ``--tls-certificate``, else the configured ``tls.certificate``, else
    None (``start_engine`` may then make one for the run). Either is checked before it is used."""
    certificate = getattr(args, "tls_certificate", None)
    if certificate:
        return check_certificate(certificate, "--tls-certificate")
    from sipsimple.cli import config
    from sipsimple.configuration.datatypes import Path
    from sipsimple.configuration.settings import SIPSimpleSettings

    config_dir = getattr(args, "config_dir", None)
    with config.configuration(config_dir):
        configured = SIPSimpleSettings().tls.certificate
    if not configured:
        return None
    # a relative path is taken from the working directory, as the SDK's Engine.start_cfg() takes it
    return check_certificate(Path.normalize(configured), "configured tls.certificate",
                             f" (set in {config.config_file(config_dir)}; --tls-certificate overrides it)")


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
