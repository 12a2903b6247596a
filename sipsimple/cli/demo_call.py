"""The call of ``sipsimple demo``: alice calls bob (Opus, mandatory SRTP, MSRP chat) and uses all of it.

Each step returns the detail of its OK line or raises :class:`StepFailed` with
the reason; :meth:`sipsimple.cli.demo_steps.Scenario.step` records the check.
Everything is done through the middleware API (``Session`` and its
notifications); the audio is checked with the media engine's own ports: a
``ToneGenerator`` plays into alice's stream and a ``NumpyTap`` hears what bob's
stream receives.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

from sipsimple.cli.demo_timeline import Report, StepFailed, Timeline, named

__all__ = ["CallSteps", "dominant_frequency", "level_dbfs", "TONE_HZ", "DTMF_DIGITS"]

TONE_HZ = 1000.0
TONE_LEVEL = -12.0           # dBFS the generator plays at
MIN_LEVEL = -30.0            # dBFS the far end must hear it at (Opus passes a tone nearly unchanged)
FREQUENCY_TOLERANCE = 10.0   # Hz; the analysis resolves 2 Hz over 0.5 s
SETTLE = 0.2                 # s of audio skipped before measuring: the jitter buffer and codec delay fill it
MAX_LOSS = 0.01              # RTP loss allowed on loopback (none is expected)
DTMF_DIGITS = "1234#"
CHAT_FROM_ALICE = "Hello Bob! Can you hear my 1 kHz tone?"
CHAT_FROM_BOB = "Loud and clear, Alice. Your DTMF came through too."


def dominant_frequency(samples: Any, rate: int) -> float:
    """The frequency (Hz) of the strongest component of int16 ``samples``."""
    import numpy as np

    x = np.asarray(samples, dtype=float)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def level_dbfs(samples: Any) -> float:
    """RMS level of int16 ``samples`` in dBFS (-120 for silence)."""
    import numpy as np

    x = np.asarray(samples, dtype=float) / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return 20 * float(np.log10(rms)) if rms > 0 else -120.0


class CallSteps:
    """The steps of the call; mixed into the Scenario, which provides the parties and the target."""

    timeline: Timeline
    report: Report
    alice: Any                   # alice's account
    bob: Any                     # bob's account
    workdir: Path
    outgoing: Any = None         # alice's Session
    incoming: Any = None         # bob's Session
    recording_path: Path | None = None
    chat_bytes: int = 0
    chat_messages: int = 0

    def bob_target(self) -> Any:  # pragma: no cover - the Scenario says where bob is
        raise NotImplementedError

    def routes(self) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def _call_up(self) -> tuple[Any, Any]:
        alice, bob = self.outgoing, self.incoming
        if alice is None or bob is None or alice.state != "ESTABLISHED" or bob.state != "ESTABLISHED":
            raise StepFailed("skipped: the call is not established")
        return alice, bob

    # ------------------------------------------------------------- set-up

    def call(self) -> str:
        from sipsimple.session import Session

        tl = self.timeline
        mark = tl.mark()
        alice = tl.label(Session(self.alice), "alice's call")
        self.outgoing = alice
        alice.connect(self.bob_target(), self.routes(), audio=True, chat=True)
        tl.label(alice.audio_transport, "alice's audio")
        tl.label(alice.chat_transport, "alice's chat")
        incoming = tl.expect(named("SCSessionNewIncoming"), "incoming session at bob", since=mark)
        bob = tl.label(incoming.sender, "bob's call")
        self.incoming = bob
        if incoming.data.streams != ["audio", "chat"]:
            raise StepFailed(f"bob was offered {incoming.data.streams}, not audio and chat")
        if bob.account is not self.bob:
            raise StepFailed(f"the SessionManager gave bob's call to {getattr(bob.account, 'id', bob.account)}")
        tl.expect(named("SCSessionGotRingIndication", alice), "ring indication at alice", since=mark)
        bob.accept(audio=True, chat=True)
        tl.label(bob.audio_transport, "bob's audio")
        tl.label(bob.chat_transport, "bob's chat")
        tl.expect_all({
            "SCSessionDidStart at alice": named("SCSessionDidStart", alice),
            "SCSessionDidStart at bob": named("SCSessionDidStart", bob),
            "connected chat at alice": named("MSRPChatDidStart", alice.chat_transport),
            "connected chat at bob": named("MSRPChatDidStart", bob.chat_transport),
        }, since=mark)
        return (f"{alice.local_uri} -> {alice.remote_uri}, audio + chat established, answered as account "
                f"{bob.account.id} (user agent {bob.remote_user_agent})")

    def codec(self) -> str:
        alice, bob = self._call_up()
        seen = {(session.audio_codec, session.audio_sample_rate) for session in (alice, bob)}
        if seen != {("opus", 48000)}:
            raise StepFailed(f"negotiated {sorted(seen, key=str)}, wanted opus/48000 on both sides")
        return "opus/48000 on both sides"

    def srtp(self) -> str:
        alice, bob = self._call_up()
        modes = {account.srtp_mode for account in (self.alice, self.bob)}
        if modes != {"mandatory"}:
            raise StepFailed(f"the accounts' SRTP mode is {sorted(modes)}, not mandatory")
        active = [session.audio_srtp_active for session in (alice, bob)]
        suites = {session.audio_transport.srtp_suite for session in (alice, bob)}
        if not all(active) or len(suites) != 1 or None in suites:
            raise StepFailed(f"SRTP active {active}, suites {sorted(suites, key=str)}")
        return f"{suites.pop()} active on both sides (both accounts require SRTP)"

    # -------------------------------------------------------------- audio

    def _measure(self, seconds: float) -> tuple[float, float]:
        """Play the tone into alice's stream for a while; (frequency, level) of what bob's stream receives."""
        from sipsimple.core._media import MediaEngine, NumpyTap, ToneGenerator

        alice, bob = self._call_up()
        media = MediaEngine()
        rate = media.sample_rate
        tone, tap = ToneGenerator(TONE_HZ, level=TONE_LEVEL), NumpyTap()
        try:
            media.connect(tone, alice.audio_transport)
            media.connect(bob.audio_transport, tap)
            wanted = int(rate * (SETTLE + seconds))
            # the tap fills at the media clock's pace and nothing announces it: look while the timeline runs
            if not self.timeline.wait_until(lambda: tap.available >= wanted, timeout=seconds + 5):
                raise StepFailed(f"bob's side gave {tap.available} of {wanted} samples in {seconds + 5:g} s")
            samples = tap.read()[-int(rate * seconds):]
        finally:
            tone.stop()
            tap.stop()
        return dominant_frequency(samples, rate), level_dbfs(samples)

    def _check_tone(self, seconds: float) -> str:
        frequency, level = self._measure(seconds)
        detail = f"bob measured {frequency:.1f} Hz at {level:.1f} dBFS over {seconds:g} s"
        if abs(frequency - TONE_HZ) > FREQUENCY_TOLERANCE or level < MIN_LEVEL:
            raise StepFailed(f"alice played {TONE_HZ:g} Hz at {TONE_LEVEL:g} dBFS, {detail}")
        return detail

    def tone(self) -> str:
        return f"alice played {TONE_HZ:g} Hz at {TONE_LEVEL:g} dBFS, " + self._check_tone(0.5)

    def start_recording(self) -> str:
        _, bob = self._call_up()
        tl = self.timeline
        path = self.workdir / "call.wav"
        mark = tl.mark()
        bob.start_recording_audio(str(path))
        started = tl.expect(named("SCSessionDidStartRecordingAudio", bob), "SCSessionDidStartRecordingAudio",
                            since=mark)
        self.recording_path = Path(started.data.file_name)
        return f"bob records the call to {self.recording_path}"

    def recording(self) -> str:
        _, bob = self._call_up()
        if self.recording_path is None:
            raise StepFailed("skipped: the recording did not start")
        tl = self.timeline
        mark = tl.mark()
        bob.stop_recording_audio()
        tl.expect(named("SCSessionDidStopRecordingAudio", bob), "SCSessionDidStopRecordingAudio", since=mark)
        return self._analyse_recording(self.recording_path)

    @staticmethod
    def _analyse_recording(path: Path) -> str:
        import numpy as np

        try:
            with wave.open(str(path), "rb") as wav:
                rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
                data = wav.readframes(wav.getnframes())
        except (OSError, wave.Error, EOFError) as exc:
            raise StepFailed(f"{path.name} is not a readable WAV file: {exc}") from None
        if width != 2:
            raise StepFailed(f"{path.name} has {8 * width}-bit samples, expected 16-bit")
        samples = np.frombuffer(data, dtype="<i2")[::channels]
        duration = len(samples) / rate if rate else 0.0
        # 100 ms blocks: the tone, the silence around it and the DTMF are told apart
        block = rate // 10
        tone_blocks = sum(
            1 for start in range(0, len(samples) - block + 1, block)
            if level_dbfs(samples[start:start + block]) > MIN_LEVEL
            and abs(dominant_frequency(samples[start:start + block], rate) - TONE_HZ) <= FREQUENCY_TOLERANCE)
        detail = (f"{path.name}: {duration:.1f} s, {rate} Hz, {channels} channel(s), 16-bit; "
                  f"{tone_blocks / 10:.1f} s of it hold the {TONE_HZ:g} Hz tone")
        if tone_blocks < 5:
            raise StepFailed(detail)
        return detail

    def dtmf(self) -> str:
        alice, bob = self._call_up()
        tl = self.timeline
        mark = tl.mark()
        for digit in DTMF_DIGITS:  # queued by the media engine, sent one after the other
            alice.send_dtmf(digit)
        received: list[str] = []

        def all_in() -> bool:
            received[:] = [n.data.digit for n in tl.history[mark:]
                           if n.name == "SCSessionGotDTMF" and n.sender is bob]
            return len(received) >= len(DTMF_DIGITS)

        tl.wait_until(all_in, timeout=5 + 0.2 * len(DTMF_DIGITS))
        detail = f"alice sent {' '.join(DTMF_DIGITS)}, bob got {' '.join(received) or 'nothing'} (RFC 4733)"
        if "".join(received) != DTMF_DIGITS:
            raise StepFailed(detail)
        return detail

    # ------------------------------------------------------- hold/resume

    def _reinvite(self, action: str, request: str) -> None:
        """alice holds or resumes: both sides post ``request``, then both say it took effect."""
        alice, bob = self._call_up()
        tl = self.timeline
        mark = tl.mark()
        getattr(alice, action)()
        on_hold = action == "hold"
        tl.expect_all({
            f"{request} (local) at alice": named(request, alice, originator="local"),
            f"{request} (remote) at bob": named(request, bob, originator="remote"),
            "bob accepted it (SCSessionDidChangeHoldState at alice)":
                named("SCSessionDidChangeHoldState", alice, originator="local", on_hold=on_hold),
            "bob answered it (SCSessionDidChangeHoldState at bob)":
                named("SCSessionDidChangeHoldState", bob, originator="remote", on_hold=on_hold),
        }, since=mark)

    def hold(self) -> str:
        self._reinvite("hold", "SCSessionGotHoldRequest")
        alice, bob = self.outgoing, self.incoming
        flags = (alice.on_hold_by_local, alice.on_hold_by_remote, bob.on_hold_by_local, bob.on_hold_by_remote)
        directions = (alice.audio_transport.direction, bob.audio_transport.direction)
        detail = (f"alice on_hold_by_local={flags[0]}, bob on_hold_by_remote={flags[3]}; "
                  f"audio alice {directions[0]}, bob {directions[1]}")
        if flags != (True, False, False, True) or directions != ("sendonly", "recvonly"):
            raise StepFailed(detail)
        return detail

    def resume(self) -> str:
        self._reinvite("unhold", "SCSessionGotUnholdRequest")
        alice, bob = self.outgoing, self.incoming
        held = (alice.on_hold, bob.on_hold)
        directions = (alice.audio_transport.direction, bob.audio_transport.direction)
        detail = f"on_hold alice={held[0]}, bob={held[1]}; audio {directions[0]}/{directions[1]}"
        if held != (False, False) or directions != ("sendrecv", "sendrecv"):
            raise StepFailed(detail)
        return detail + "; the tone flows again: " + self._check_tone(0.3)

    # --------------------------------------------------------------- chat

    def chat(self, sender: str) -> str:
        alice, bob = self._call_up()
        tl = self.timeline
        source, target = (alice, bob) if sender == "alice" else (bob, alice)
        other = "bob" if sender == "alice" else "alice"
        text = CHAT_FROM_ALICE if sender == "alice" else CHAT_FROM_BOB
        mark = tl.mark()
        message_id = source.send_message(text)
        found = tl.expect_all({
            f"delivery report at {sender}": lambda n: (
                n.sender is source and n.name in ("SCSessionDidDeliverMessage", "SCSessionDidNotDeliverMessage")
                and n.data.message_id == message_id),
            f"the message at {other}": lambda n: (
                n.name == "SCSessionGotMessage" and n.sender is target and n.data.content == text),
        }, since=mark)
        report = found[f"delivery report at {sender}"]
        if report.name != "SCSessionDidDeliverMessage":
            raise StepFailed(f"not delivered: {report.data.code} {report.data.reason}")
        got = found[f"the message at {other}"]
        self.chat_bytes += len(text.encode())
        self.chat_messages += 1
        identity = got.data.cpim_headers.get("From")
        return (f'{other} got "{text}" ({got.data.content_type}, CPIM From {identity}); '
                f"delivery report {report.data.code} {report.data.reason}")

    # ------------------------------------------------------------ the end

    def hang_up(self) -> str:
        alice, bob = self._call_up()
        tl = self.timeline
        mark = tl.mark()
        alice.end()
        ended = tl.expect_all({
            "SCSessionDidEnd at alice": named("SCSessionDidEnd", alice),
            "SCSessionDidEnd at bob": named("SCSessionDidEnd", bob),
        }, since=mark)
        originators = (ended["SCSessionDidEnd at alice"].data.originator,
                       ended["SCSessionDidEnd at bob"].data.originator)
        duration = (alice.stop_time - alice.start_time).total_seconds() if alice.start_time and alice.stop_time \
            else 0.0
        detail = f"alice hung up after {duration:.1f} s; originator alice={originators[0]}, bob={originators[1]}"
        if originators != ("local", "remote"):
            raise StepFailed(detail)
        return detail

    def rtp(self, direction: str) -> str:
        alice, bob = self.outgoing, self.incoming
        if alice is None or bob is None or alice.start_time is None:
            raise StepFailed("skipped: the call was not established")
        sender, receiver = (alice, bob) if direction == "alice -> bob" else (bob, alice)
        sent, got = sender.audio_statistics or {}, receiver.audio_statistics or {}
        packets, lost = got.get("rx_packets", 0), got.get("rx_lost", 0)
        expected = got.get("rx_expected", 0) or packets
        loss = lost / expected if expected else 1.0
        detail = (f"{sent.get('tx_packets', 0)} packets sent, {packets} received, {lost} lost ({100 * loss:.2f}%), "
                  f"jitter {got.get('jitter_ms', 0.0):.2f} ms, {got.get('rx_srtp_errors', 0)} SRTP errors")
        if not packets or loss > MAX_LOSS or got.get("rx_srtp_errors", 0):
            raise StepFailed(detail)
        return detail
