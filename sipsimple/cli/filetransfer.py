"""``sipsimple send-file`` and ``sipsimple receive-files``: files over MSRP (RFC 5547).

    sipsimple send-file TARGET FILE [--msrp-relay URI] [--msrp-tls]
    sipsimple receive-files --dir DIR [--count N] [--msrp-relay URI] [--msrp-tls]

``send-file`` offers FILE (name, type, size and SHA-1 in the SDP) to TARGET and
sends it once accepted; it prints ``delivered FILE (N bytes, sha-1:...)`` and
exits 0 when the other side confirmed it, 1 otherwise.

``receive-files`` waits for file offers (registering first with
``--account``/``--password``/``--proxy``; ``listening on sip:...`` is printed on
stderr), accepts each into DIR and prints ``received PATH (N bytes, sha-1:...)``
once the file is complete and its SHA-1 checked. A file whose hash does not match
is deleted. A transfer cut short leaves a hidden ``.part`` file: offering the
same file again resumes it where it stopped. It exits 0 after ``--count`` files,
or on Ctrl-C/SIGTERM.

Both show a progress bar on stderr for transfers over 1 MB (when stderr is a
terminal; otherwise a ``progress: N%`` line every 10%).

MSRP over TLS and relays are as for ``sipsimple chat``: ``--msrp-tls`` offers
``msrps:`` directly (``receive-files`` answers TLS whenever the offer asks for it,
showing ``--tls-certificate FILE``, else the configured ``tls.certificate``, else a
self-signed certificate made for the run);
``--msrp-relay msrps://HOST:PORT;tcp`` goes through a relay over TLS, checked
against ``--tls-ca-file`` unless ``--no-verify-tls``. For this run only.

The subcommands themselves are the modules ``sipsimple.cli.send_file`` and
``sipsimple.cli.receive_files``, which use what is here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from sipsimple.cli.chat import (
    END_TIMEOUT,
    MSRPAccount,
    add_msrp_arguments,
    end_session,
    msrp_options,
    over_tls,
)
from sipsimple.cli.incoming import check_listening, start_listening, stop_listening
from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    StopSignal,
    engine_running,
    err,
    out,
    parse_target,
    settings_from_args,
)

FILE_EVENTS = ("SCSessionNewIncoming", "SCSessionDidStart", "SCSessionDidFail", "SCSessionDidEnd",
               "SCSessionFileTransferProgress", "SCSessionGotFile", "SCSessionDidDeliverFile",
               "SCSessionDidNotDeliverFile", "MSRPFileTransferDidFail")
PROGRESS_MIN_SIZE = 1024 * 1024


class ProgressBar:
    """A progress bar on a terminal, else a line every 10%; nothing for small files."""

    def __init__(self, label: str, stream=None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.first: int | None = None
        self.last_decile = -1
        self.drawn = False

    def update(self, done: int, total: int | None) -> None:
        if not total or total < PROGRESS_MIN_SIZE:
            return
        if self.first is None:
            self.first = done
        fraction = min(1.0, done / total)
        if self.tty:
            filled = int(fraction * self.width)
            elapsed = max(time.monotonic() - self.started, 1e-6)
            rate = (done - self.first) / elapsed / 1e6
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                              f"{fraction * 100:5.1f}% {done / 1e6:.1f}/{total / 1e6:.1f} MB {rate:.1f} MB/s")
            self.stream.flush()
            self.drawn = True
        else:
            decile = int(fraction * 10)
            if decile > self.last_decile:
                self.last_decile = decile
                err(f"progress: {decile * 10}% ({done}/{total} bytes)")

    def finish(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


# ------------------------------------------------------------------ send-file


def add_send_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help="user@domain or sip: URI to send the file to")
    parser.add_argument("file", metavar="FILE", help="the file to send")
    add_msrp_arguments(parser, tls=True)


def run_send(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    relay, use_tls = msrp_options(args, settings)
    path = os.path.abspath(args.file)
    if not os.path.isfile(path):
        raise CLIError(f"cannot send {args.file!r}: not a readable file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise CLIError(f"cannot send {args.file!r}: {exc.strerror}") from None
    target = parse_target(args.target, settings.account.host if settings.account else None)
    with engine_running(settings, target=target, run_certificate=use_tls and relay is None) as stop:
        from sipsimple.session import Session, SessionManager

        SessionManager()
        session = Session(MSRPAccount(settings, relay, use_tls))
        events = EventQueue().observe(FILE_EVENTS, sender=session)
        try:
            session.connect(target, [settings.route] if settings.route is not None else [], file=path)
            err(f"offering {os.path.basename(path)} ({os.path.getsize(path)} bytes) to {target}")
            return _send_loop(session, events, stop)
        finally:
            events.close()


def _send_loop(session, events: EventQueue, stop: StopSignal) -> int:
    bar = ProgressBar("sending")
    status: int | None = None
    while not stop:
        notification = events.get(0.1, stop)
        if notification is None:
            continue
        name, data = notification.name, notification.data
        if name == "SCSessionDidStart":
            err(f"accepted{over_tls(session.file_transfer)}")
        elif name == "SCSessionFileTransferProgress":
            bar.update(data.transferred_bytes, data.total_bytes)
        elif name == "SCSessionDidDeliverFile":
            bar.finish()
            out(f"delivered {data.file_name} ({data.size} bytes, {data.hash})")
            status = EXIT_OK
        elif name == "SCSessionDidNotDeliverFile":
            bar.finish()
            out(f"not delivered {data.file_name}: {data.code} {data.reason} "
                f"({data.transferred_bytes} bytes sent)")
            status = EXIT_FAILURE
        elif name == "SCSessionDidFail":
            out(f"failed: {data.code} {data.reason}".rstrip())
            status = EXIT_FAILURE
        elif name == "SCSessionDidEnd":
            return status if status is not None else EXIT_FAILURE
    bar.finish()
    err("interrupted")
    end_session(session, events, END_TIMEOUT)
    return EXIT_FAILURE


# -------------------------------------------------------------- receive-files


def add_receive_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, metavar="DIR", help="where received files go")
    parser.add_argument("--count", type=int, metavar="N", help="exit after N files")
    add_msrp_arguments(parser, tls=True)


def run_receive(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    relay, use_tls = msrp_options(args, settings)
    check_listening(settings, args.count)
    directory = os.path.abspath(args.dir)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot use --dir {args.dir!r}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise CLIError(f"cannot use --dir {args.dir!r}: not writable")
    # without a relay we listen, over TLS when an offer asks for it: have a certificate ready
    with engine_running(settings, target=settings.account, run_certificate=relay is None) as stop:
        from sipsimple.session import SessionManager

        SessionManager()
        account = MSRPAccount(settings, relay, use_tls)
        events = EventQueue().observe(FILE_EVENTS)
        registration = None
        try:
            registration, contact = start_listening(settings, events, stop)
            if contact is None:
                return EXIT_FAILURE
            return _receive_loop(events, stop, account, directory, args.count)
        finally:
            stop_listening(registration, events)
            events.close()


def _receive_loop(events: EventQueue, stop: StopSignal, account, directory: str, count: int | None) -> int:
    received = 0
    failed = False
    sessions: dict = {}  # session -> its ProgressBar
    while not stop:
        notification = events.get(0.1, stop)
        if notification is None:
            continue
        name, session, data = notification.name, notification.sender, notification.data
        if name == "SCSessionNewIncoming":
            if "file-transfer" not in data.streams:
                err(f"declined session from {session.remote_uri} ({', '.join(data.streams)})")
                session.reject()
                continue
            offer = session.proposed_file
            session.account = account
            err(f"incoming file {offer.name!r} ({offer.size} bytes) from {session.remote_uri}")
            sessions[session] = ProgressBar("receiving")
            try:
                session.accept(file_transfer=True, directory=directory)
            except Exception as exc:
                err(f"cannot accept: {exc}")
                sessions.pop(session, None)
        elif name == "MSRPFileTransferDidFail":
            if getattr(session, "direction", None) == "incoming" and session.selector is not None:
                err(f"file {session.selector.name!r} failed: {data.reason}")
                failed = True
        elif session not in sessions:
            continue
        elif name == "SCSessionFileTransferProgress":
            sessions[session].update(data.transferred_bytes, data.total_bytes)
        elif name == "SCSessionGotFile":
            sessions[session].finish()
            out(f"received {data.file_name} ({data.size} bytes, {data.hash})")
            received += 1
        elif name == "SCSessionDidFail":
            err(f"session from {session.remote_uri} failed: {data.code} {data.reason}".rstrip())
            failed = True
        elif name == "SCSessionDidEnd":
            sessions.pop(session).finish()
            if count is not None and received >= count and not sessions:
                return EXIT_OK
    err("interrupted")
    for session in list(sessions):
        end_session(session, events)
    return EXIT_FAILURE if failed and count is not None and received < count else EXIT_OK
