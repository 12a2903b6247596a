"""``sipsimple call``: make an audio call, show how it goes, print its statistics at the end.

    sipsimple call TARGET [--play WAV] [--record WAV] [--duration S] [--dtmf DIGITS]
                          [--srtp off|optional|mandatory] [--codec NAME]...

TARGET is ``user@domain[:port]``, a sip:/sips: URI, or a bare user of the
account's domain. With ``--proxy`` the call goes through it (answering its
digest challenges with ``--account``/``--password``); without, straight to
the target.

Every state change is printed as it happens (``state: CALLING``, ``ringing``,
``state: ESTABLISHED``, ...). Once established, ``--play`` plays a WAV file
into the call (with no ``--duration`` the call hangs up when the file has
played), ``--record`` records both directions to a WAV file, ``--dtmf`` sends
the digits (RFC 4733) one after the other with a short pause between them.
The call is hung up after ``--duration`` seconds (counted from the answer,
and never before the DTMF digits are out), by the other party, or with
Ctrl-C/SIGTERM. At the end the codec, SRTP suite, duration and RTP statistics
(packets and bytes each way, loss, jitter) are printed.

Audio goes through the media engine's clocked null device: no sound card is
needed (or used). Exit status: 0 when the call was established and ended
normally, 1 when it failed (the code and reason are printed), 2 for usage
errors.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import wave
from typing import Any

from sipsimple.cli.options import (
    EXIT_FAILURE,
    EXIT_OK,
    CLIError,
    EventQueue,
    StopSignal,
    engine_running,
    out,
    parse_target,
    settings_from_args,
)

NAME = "call"
HELP = "make an audio call (play/record WAV files, send DTMF) and print its statistics"
DESCRIPTION = __doc__

SRTP_MODES = ("off", "optional", "mandatory")
DTMF_DIGITS = "0123456789*#ABCD"
DTMF_PAUSE = 0.25  # between two digits, after the digit's own 100 ms
END_TIMEOUT = 10.0  # waiting for BYE/CANCEL to be answered
STATS_INTERVAL = 0.2  # how often the RTP statistics are read while the call is up

SESSION_EVENTS = ("SCSessionChangedState", "SCSessionGotRingIndication", "SCSessionDidStart",
                  "SCSessionDidFail", "SCSessionWillEnd", "SCSessionDidEnd", "SCSessionGotDTMF",
                  "SCSessionGotNoAudio", "SCSessionGotHoldRequest", "SCSessionGotUnholdRequest",
                  "SCSessionDidStartRecordingAudio")


# ----------------------------------------------------------------- options


def add_media_arguments(parser: argparse.ArgumentParser) -> None:
    """The media options ``call`` and ``answer`` share."""
    parser.add_argument("--play", metavar="WAV", help="play this 16-bit PCM WAV file into the call")
    parser.add_argument("--record", metavar="WAV", help="record the call (both directions) to this WAV file")
    parser.add_argument("--duration", type=float, metavar="S",
                        help="hang up this many seconds after the call was answered")
    parser.add_argument("--srtp", choices=SRTP_MODES, default=None,
                        help="SRTP (SDES): off, optional (offered; the default unless the account says) or mandatory")
    parser.add_argument("--codec", action="append", metavar="NAME", dest="codecs",
                        help="allow this codec (repeat for more, in order of preference; default: all)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help="user@domain or sip: URI to call")
    add_media_arguments(parser)
    parser.add_argument("--dtmf", metavar="DIGITS", help="send these DTMF digits (0-9 * # A-D) once established")


def check_media_arguments(args: argparse.Namespace) -> list[str] | None:
    """Validate the shared media options (CLIError on a bad one); the codec names, canonical."""
    if args.duration is not None and not args.duration > 0:
        raise CLIError(f"invalid --duration {args.duration:g}: expected a positive number of seconds")
    if args.play:
        check_wav(args.play)
    if args.record:
        directory = os.path.dirname(os.path.abspath(args.record))
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            raise CLIError(f"cannot record to {args.record!r}: {directory} is not a writable directory")
    if not args.codecs:
        return None
    from sipsimple.core._media import available_codecs

    known = {codec.name.lower(): codec.name for codec in available_codecs()}
    codecs = []
    for name in args.codecs:
        for item in name.split(","):
            item = item.strip()
            if item.lower() not in known:
                raise CLIError(f"unknown codec {item!r}; available: {', '.join(known.values())}")
            codecs.append(known[item.lower()])
    return codecs


def check_wav(path: str) -> float:
    """The duration of a playable WAV file (16-bit PCM, mono or stereo); CLIError otherwise."""
    try:
        with wave.open(path, "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() not in (1, 2):
                raise CLIError(f"cannot play {path!r}: only 16-bit PCM mono or stereo WAV files are supported")
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error) as exc:
        raise CLIError(f"cannot play {path!r}: {exc}") from None


# ----------------------------------------------------------------- account


class CLIAccount:
    """The least a Session needs from an account, made from the command-line options."""

    def __init__(self, settings, srtp_mode: str | None = None, codecs: list[str] | None = None) -> None:
        # the options first, then what a configured account says (settings), then the defaults
        self.uri = settings.from_uri()
        self.credentials = settings.credentials
        self.display_name = settings.display_name
        self.srtp_mode = srtp_mode or settings.srtp_mode or "optional"
        self.audio_codecs = codecs or (list(settings.audio_codecs) if settings.audio_codecs else None)
        self.outbound_proxy = settings.route


# ------------------------------------------------------------- the call


class CallMonitor:
    """Follows one Session: prints its notifications, runs its media extras, keeps its statistics.

    The RTP statistics go away with the stream when the call ends, so they are
    read every :data:`STATS_INTERVAL` while the call is up, and once more the
    moment the dialog ends (on the Engine thread, before the Session tears
    the stream down).
    """

    def __init__(self, session, play: str | None = None, record: str | None = None,
                 label: str = "") -> None:
        self.session = session
        self.play = play
        self.record = record
        self.prefix = label
        self.player = None
        self.established_at: float | None = None
        self.ended_at: float | None = None
        self.failure: tuple[int, str] | None = None
        self.declined = False
        self.ended_by: str | None = None
        self.info: dict[str, Any] = {}
        self.stats: dict[str, Any] = {}
        self._stats_read = 0.0
        self._lock = threading.Lock()
        self.invitation = None

    def say(self, text: str) -> None:
        out(self.prefix + text)

    # -------------------------------------------------- notifications

    def handle(self, notification) -> bool:
        """Act on one of the session's notifications; True once it ended (SCSessionDidEnd)."""
        name, data = notification.name, notification.data
        if name == "SCSessionChangedState":
            self.say(f"state: {data.state}")
            if data.state == "ESTABLISHED" and self.established_at is None:
                self._established()
        elif name == "SCSessionGotRingIndication":
            self.say("ringing")
        elif name == "SCSessionDidFail":
            self.failure = (data.code, data.reason)
            self.say(f"call failed: {data.code} {data.reason}" if data.code else f"call failed: {data.reason}")
        elif name == "SCSessionDidEnd":
            self.ended_at = time.monotonic()
            self.ended_by = data.originator
            return True
        elif name == "SCSessionGotDTMF":
            self.say(f"dtmf received: {data.digit}")
        elif name == "SCSessionGotNoAudio":
            self.say("no audio received")
        elif name == "SCSessionGotHoldRequest":
            self.say(f"on hold ({data.originator})")
        elif name == "SCSessionGotUnholdRequest":
            self.say(f"off hold ({data.originator})")
        elif name == "SCSessionDidStartRecordingAudio":
            self.say(f"recording to {data.file_name}")
        elif name == "WavePlayerDidEnd":
            self.say("playback ended")
        return False

    def _established(self) -> None:
        self.established_at = time.monotonic()
        session = self.session
        transport = session.audio_transport
        self.info = {
            "codec": session.audio_codec,
            "sample_rate": session.audio_sample_rate,
            "srtp": transport.srtp_suite if transport is not None and session.audio_srtp_active else None,
            "local": f"{session.audio_local_rtp_address}:{session.audio_local_rtp_port}",
            "remote": f"{session.audio_remote_rtp_address_sdp}:{session.audio_remote_rtp_port_sdp}",
        }
        self.say(f"audio: codec={self.info['codec']}/{self.info['sample_rate']} srtp={self.info['srtp'] or 'off'} "
                 f"local={self.info['local']} remote={self.info['remote']}")
        invitation = getattr(session, "_invitation", None)
        if invitation is not None:
            # read the statistics the moment the dialog ends, before the stream is torn down
            from sipsimple.notification import NotificationCenter

            self.invitation = invitation
            NotificationCenter().add_observer(self, name="SCInvitationChangedState", sender=invitation)
        self.read_stats(force=True)
        if self.record:
            try:
                session.start_recording_audio(self.record)
            except Exception as exc:
                self.say(f"cannot record to {self.record}: {exc}")
        if self.play:
            self.start_playing()

    def handle_notification(self, notification) -> None:
        """Engine-thread observer of the Invitation: last statistics as the dialog ends."""
        if notification.data.state == "disconnected":
            self.read_stats(force=True)

    def start_playing(self) -> None:
        from sipsimple.core._media import MediaEngine, MediaError, WavePlayer

        transport = self.session.audio_transport
        if transport is None:
            return
        try:
            self.player = WavePlayer(os.path.abspath(self.play))
            MediaEngine().connect(self.player, transport)
            self.player.start()
        except (MediaError, OSError) as exc:
            self.say(f"cannot play {self.play}: {exc}")
            self.player = None
            return
        self.say(f"playing {self.play} ({self.player.duration:.2f} s)")

    def stop_playing(self) -> None:
        player, self.player = self.player, None
        if player is not None:
            player.stop()

    @property
    def playback_done(self) -> bool:
        return self.player is not None and self.player.ended

    # -------------------------------------------------- statistics

    def read_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._stats_read < STATS_INTERVAL:
            return
        self._stats_read = now
        transport = self.session.audio_transport
        try:
            stats = transport.statistics if transport is not None else None
        except Exception:  # torn down meanwhile
            stats = None
        if stats:
            with self._lock:
                self.stats = stats

    def close(self) -> None:
        self.stop_playing()
        if self.invitation is not None:
            from sipsimple.notification import NotificationCenter

            NotificationCenter().discard_observer(self, name="SCInvitationChangedState", sender=self.invitation)
            self.invitation = None

    @property
    def duration(self) -> float | None:
        if self.established_at is None:
            return None
        return (self.ended_at or time.monotonic()) - self.established_at

    def summary(self) -> list[str]:
        """The end-of-call lines: codec, SRTP, duration, RTP statistics."""
        if self.established_at is None:
            return []
        s = self.stats
        lines = [f"codec: {self.info.get('codec')}/{self.info.get('sample_rate')}",
                 f"srtp: {self.info.get('srtp') or 'off'}",
                 f"duration: {self.duration:.2f} s"]
        if s:
            lost = s.get("rx_lost", 0)
            rate = 100.0 * (s.get("rx_loss_rate") or 0.0)
            lines += [f"rtp sent: {s.get('tx_packets', 0)} packets, {s.get('tx_bytes', 0)} bytes",
                      f"rtp received: {s.get('rx_packets', 0)} packets, {s.get('rx_bytes', 0)} bytes",
                      f"rtp loss: {lost} packets ({rate:.1f} %), jitter {s.get('jitter_ms', 0.0):.2f} ms"]
            if s.get("rtt_ms") is not None:
                lines.append(f"rtt: {s['rtt_ms']:.1f} ms")
        else:
            lines.append("rtp: no statistics")
        return lines

    def print_summary(self) -> None:
        for line in self.summary():
            self.say(line)


def end_session(session, events: EventQueue, monitor: CallMonitor) -> None:
    """Hang up (or cancel) and wait for SCSessionDidEnd, printing what comes meanwhile."""
    monitor.read_stats(force=True)
    session.end()
    deadline = time.monotonic() + END_TIMEOUT
    while monitor.ended_at is None and time.monotonic() < deadline:
        notification = events.get(deadline - time.monotonic())
        if notification is None:
            break
        if notification.sender is session or notification.sender is monitor.player:
            monitor.handle(notification)


def run(args: argparse.Namespace) -> int:
    from sipsimple.core import SIPCoreError
    from sipsimple.session import Session, SessionManager

    settings = settings_from_args(args)
    target = parse_target(args.target, settings.account.host if settings.account else None)
    codecs = check_media_arguments(args)
    digits = (args.dtmf or "").upper()
    bad = [d for d in digits if d not in DTMF_DIGITS]
    if bad:
        raise CLIError(f"invalid --dtmf {args.dtmf!r}: expected digits 0-9 * # A-D")
    with engine_running(settings, target=target) as stop:
        try:
            SessionManager()
            account = CLIAccount(settings, args.srtp, codecs)
            session = Session(account)
            monitor = CallMonitor(session, play=args.play, record=args.record)
            events = EventQueue().observe(SESSION_EVENTS, sender=session)
            events.observe(("WavePlayerDidEnd",))
            out(f"calling {target}" + (f" via {settings.route.address}:{settings.route.port}"
                                       f";transport={settings.route.transport}" if settings.route else ""))
            try:
                session.connect(target, [settings.route] if settings.route else [], audio=True)
            except (SIPCoreError, ValueError) as exc:
                raise CLIError(f"cannot call {target}: {exc}") from None
            try:
                return _run_call(session, events, monitor, stop, args, digits)
            finally:
                monitor.close()
                events.close()
        finally:
            _stop_media()


def _run_call(session, events: EventQueue, monitor: CallMonitor, stop: StopSignal, args, digits: str) -> int:
    pending = list(digits)
    next_digit_at: float | None = None
    hangup_at: float | None = None
    interrupted = False
    while True:
        notification = events.get(0.05)
        if notification is not None and (notification.sender is session or
                                         (notification.name == "WavePlayerDidEnd"
                                          and notification.sender is monitor.player)):
            if monitor.handle(notification):
                break
            if monitor.established_at is not None and next_digit_at is None:
                next_digit_at = monitor.established_at + 0.2
                if args.duration is not None:
                    hangup_at = monitor.established_at + args.duration
        now = time.monotonic()
        if stop and not interrupted:
            interrupted = True
            monitor.say("interrupted: hanging up")
            end_session(session, events, monitor)
            break
        if monitor.established_at is None or session.state not in ("ESTABLISHED", "PROPOSING", "PROPOSED"):
            continue
        monitor.read_stats()
        if pending and next_digit_at is not None and now >= next_digit_at:
            digit = pending.pop(0)
            try:
                session.send_dtmf(digit)
                monitor.say(f"dtmf sent: {digit}")
            except Exception as exc:
                monitor.say(f"cannot send DTMF {digit}: {exc}")
            next_digit_at = now + 0.1 + DTMF_PAUSE
        if pending or (digits and next_digit_at is not None and now < next_digit_at):
            continue  # the last digit's packets (and their end packets) go out before the BYE
        done_playing = args.duration is None and args.play and monitor.playback_done
        if (hangup_at is not None and now >= hangup_at) or done_playing:
            monitor.say("hanging up")
            end_session(session, events, monitor)
            break
    if monitor.ended_at is not None and monitor.ended_by == "remote" and monitor.established_at:
        monitor.say("call ended by the other party")
    monitor.print_summary()
    if monitor.failure is not None or monitor.established_at is None:
        if monitor.failure is None:
            monitor.say("call failed: interrupted before it was answered" if interrupted
                        else "call failed: it ended before it was answered")
        return EXIT_FAILURE
    return EXIT_OK


def _stop_media() -> None:
    try:
        from sipsimple.core._media import MediaEngine

        engine = MediaEngine()
        if engine.running:
            engine.stop()
    except Exception:  # nothing to stop, or it is going away anyway
        pass
