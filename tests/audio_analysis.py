"""Measuring audio in tests: dominant frequency and level of int16 samples."""

from __future__ import annotations

import wave

import numpy as np


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    x = np.asarray(samples, dtype=float)
    x = x - x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


def level_dbfs(samples: np.ndarray) -> float:
    x = np.asarray(samples, dtype=float) / 32768.0
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return 20 * np.log10(rms) if rms > 0 else -120.0


def read_wav(path) -> tuple[np.ndarray, int]:
    """Mono int16 samples (the first channel) and the sample rate of a WAV file."""
    with wave.open(str(path), "rb") as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        data = w.readframes(w.getnframes())
    assert width == 2, f"expected 16-bit samples, got {width * 8}-bit"
    samples = np.frombuffer(data, dtype="<i2")
    return samples[::channels], rate
