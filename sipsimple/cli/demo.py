"""``sipsimple demo``: alice calls bob over loopback and uses everything a SIP SIMPLE client offers.

Two endpoints, no account to set up and no server: alice subscribes to bob's
presence, calls him with audio (Opus, mandatory SRTP) and chat, plays a 1 kHz
tone that is measured at bob's end, sends DTMF, holds and resumes the call while
bob records it to a WAV file, they chat both ways with delivery reports, bob's
presence shows "in a call" meanwhile, and after the call alice sends bob a file
whose SHA-1 is checked at both ends. Audio runs on the media engine's clocked
null device: no sound card is needed.

The demo prints a timeline of every notification (time since start, name, who
sent it, the data that matters) and a summary with OK/FAIL per check (codec,
SRTP suite, tone, DTMF, hold, resume, recording, chat, RTP loss and jitter, file
hash, MSRP bytes, presence); it exits 0 only when every check is OK. A step
that gets stuck fails after a few seconds with the reason; Ctrl-C stops it
cleanly (exit 130). The configuration lives in memory for the run: the user's
configuration and accounts are neither read nor changed.

``--with-server`` does the same through a throw-away local Kamailio (needs the
``kamailio`` program and its presence and SQLite modules): alice and bob
register with digest authentication, calls are proxied, bob PUBLISHes his
presence and alice SUBSCRIBEs to it through Kamailio's presence server.
"""

from __future__ import annotations

import argparse
import sys
import time

from sipsimple.cli.options import EXIT_FAILURE, EXIT_OK, CLIError, out, setup_logging

NAME = "demo"
HELP = "alice calls bob: Opus+SRTP, tone, DTMF, hold, recording, chat, file, presence (--with-server: via Kamailio)"
DESCRIPTION = __doc__
COMMON_OPTIONS = False

EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with-server", action="store_true",
                        help="go through a local Kamailio: registration, digest auth, proxied calls, presence server")
    parser.add_argument("--local-ip", default="127.0.0.1", metavar="ADDR",
                        help="address the endpoints use (default 127.0.0.1)")
    parser.add_argument("--output-dir", metavar="DIR",
                        help="keep the recording and the transferred files in DIR (default: a temporary "
                             "directory, removed at the end)")
    parser.add_argument("--trace", action="store_true", help="show each SIP message sent and received in the timeline")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log to stderr (-vv: debug)")


def run(args: argparse.Namespace) -> int:
    from sipsimple.cli.demo_steps import Scenario
    from sipsimple.cli.demo_timeline import Report, Timeline
    from sipsimple.core import Engine

    setup_logging(args.verbose)
    if Engine().is_running:
        raise CLIError("the Engine is already running in this process")
    timeline = Timeline(trace=args.trace)
    report = Report(timeline)
    scenario = Scenario(timeline, report, with_server=args.with_server, local_ip=args.local_ip,
                        output_dir=args.output_dir)
    if args.with_server:
        out("alice and bob register at a local Kamailio; calls, chat, files and presence go through it")
    else:
        out(f"alice and bob on one Engine at {args.local_ip}, peer to peer (no account to set up, no server)")
    started = time.monotonic()
    interrupted = False
    try:
        scenario.run()  # tears down whatever happens
    except KeyboardInterrupt:
        interrupted = True
        timeline.note("interrupted (Ctrl-C): everything is stopped")
    finally:
        timeline.drain()
        timeline.close()
        sys.stdout.flush()
    ok = report.summary(time.monotonic() - started, interrupted=interrupted)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if ok else EXIT_FAILURE
