"""WAV player (once, looping, end notification, resampling, stereo) and WAV
recorder (valid while written, flushed every second, holds a call's tone)."""

import time
import wave

import numpy as np
import pytest

from sipsimple.core._media import (
    AudioTransport,
    MediaError,
    NumpyTap,
    ToneGenerator,
    WavePlayer,
    WaveRecorder,
)
from tests.media_engine import recorded_events, start_media_engine


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


@pytest.fixture
def events(engine):
    with recorded_events(engine) as got:
        yield got


def write_wav(path, freq, seconds, rate, channels=1, amplitude=0.3):
    t = np.arange(int(seconds * rate)) / rate
    x = (amplitude * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    if channels == 2:
        x = np.repeat(x, 2)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(x.tobytes())


def peak_freq(x, rate=48000):
    x = x.astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * rate / len(x)


@pytest.mark.parametrize("rate,channels", [(16000, 2), (48000, 1), (8000, 1)])
def test_player_plays_once_and_notifies(engine, events, tmp_path, rate, channels):
    path = tmp_path / "tone.wav"
    write_wav(path, 440, 0.5, rate, channels)
    player = WavePlayer(str(path))
    tap = NumpyTap()
    try:
        assert abs(player.duration - 0.5) < 1e-6
        engine.connect(player, tap)
        player.start()
        deadline = time.monotonic() + 3
        while not player.ended and time.monotonic() < deadline:
            time.sleep(0.02)
        assert player.ended
        assert [n for n, s, _ in events if s is player] == ["WavePlayerDidEnd"]
        time.sleep(0.1)
        x = tap.read()
        active = np.flatnonzero(np.abs(x) > 500)
        assert abs(len(x[active[0]:active[-1]]) / 48000 - 0.5) < 0.03
        assert abs(peak_freq(x[active[0]:active[-1]]) - 440) < 5
    finally:
        player.stop()
        tap.stop()


def test_player_loops(engine, events, tmp_path):
    path = tmp_path / "short.wav"
    write_wav(path, 1000, 0.1, 48000)
    player = WavePlayer(str(path), loop=True)
    tap = NumpyTap()
    try:
        engine.connect(player, tap)
        player.start()
        time.sleep(0.6)
        x = tap.read()
        assert not player.ended and player.playing
        active = np.flatnonzero(np.abs(x) > 500)
        assert len(x[active[0]:active[-1]]) > 0.45 * 48000
        assert not [n for n, s, _ in events if s is player]
    finally:
        player.stop()
        tap.stop()


def test_player_rejects_bad_files(engine, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(MediaError):
        WavePlayer(str(bad))
    with pytest.raises(OSError):
        WavePlayer(str(tmp_path / "missing.wav"))


def test_recorder_is_valid_while_recording(engine, tmp_path):
    path = tmp_path / "rec.wav"
    tone = ToneGenerator(1000, level=-12)
    rec = WaveRecorder(str(path))
    try:
        engine.connect(tone, rec)
        rec.start()
        time.sleep(2.3)
        # not stopped: what a crash would leave behind is already a valid file
        with wave.open(str(path), "rb") as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48000)
            frames = w.getnframes()
            assert 2.0 * 48000 <= frames <= 2.3 * 48000
            data = np.frombuffer(w.readframes(frames), dtype=np.int16)
        assert abs(peak_freq(data) - 1000) < 5
    finally:
        rec.stop()
        tone.stop()
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() >= 2.2 * 48000


def test_recording_of_a_call_holds_the_tone(engine, tmp_path):
    path = tmp_path / "call.wav"
    a = AudioTransport(codecs=["PCMA"], srtp="mandatory")
    b = AudioTransport(codecs=["PCMA"], srtp="mandatory")
    tone = ToneGenerator(1000, level=-12)
    rec = WaveRecorder(str(path))
    try:
        offer = a.local_media()
        answer = b.local_media(offer)
        b.start(offer)
        a.start(answer)
        engine.connect(tone, a)
        engine.connect(b, rec)          # what we hear
        engine.connect(tone, rec)       # and what we send... (mixed)
        engine.disconnect(tone, rec)    # ...only the remote side for this check
        rec.start()
        time.sleep(1.0)
    finally:
        rec.stop()
        for o in (a, b, tone):
            o.stop()
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert len(data) > 0.9 * 48000
    tail = data[-24000:].astype(float)
    assert abs(peak_freq(tail) - 1000) < 5
    assert abs(10 * np.log10(np.mean(tail**2) / 32768**2) + 12) < 1.5


CRASHING_RECORDER = """
import os, sys, time
from sipsimple.core._media import MediaEngine, ToneGenerator, WaveRecorder
eng = MediaEngine()
eng.start(sample_rate=16000, device="null")
tone = ToneGenerator(1000)
rec = WaveRecorder(sys.argv[1])
eng.connect(tone, rec)
rec.start()
time.sleep(2.6)
os.kill(os.getpid(), 9)
"""


def test_recorder_survives_a_crash(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "crash.wav"
    proc = subprocess.run([sys.executable, "-c", CRASHING_RECORDER, str(path)], timeout=30)
    assert proc.returncode == -9
    with wave.open(str(path), "rb") as w:
        frames = w.getnframes()
        data = np.frombuffer(w.readframes(frames), dtype=np.int16)
    assert 1.6 * 16000 <= frames <= 2.6 * 16000        # at most the last second is lost
    assert len(data) == frames
    assert abs(peak_freq(data, 16000) - 1000) < 5
