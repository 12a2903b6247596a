"""One-way delay through a stream pair, measured by click onsets on one bridge timeline.

A NumpyTap plays short clicks into stream A; a second tap records the mix of those
clicks (straight from the first tap) and of what stream B received from A over
loopback, so original and echo sit on the same sample clock and the gap between
them is the one-way delay, exact to the sample and independent of the machine's
load. It is functionally bounded: one bridge tick (A sends in the second half of
a tick, B plays the packet at the next one), plus the jitter buffer's wait (its
margin; in one process nothing arrives late, so it stays near zero), plus the
algorithmic delay of the codec and of the resamplers. A stranded partial frame
in a FIFO, a packet kept queued before the start, or a tick of extra buffering
each add about a frame and break the bound.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from sipsimple.core._media import AudioTransport, NumpyTap
from tests.media_engine import start_media_engine

FRAME_MS = 20
CLICKS = 8
CLICK_PERIOD_MS = 150
CLICK_MS = 3
AMPLITUDE = 12000
QUIET_MS = 8            # an onset follows at least this much quiet
TOLERANCE_MS = 2.0      # onset detection on two differently filtered copies of a click

# (bridge rate, codec, algorithmic delay in ms): the speex resampler (quality 3) delays
# by half its filter, 24 samples at the lower rate per direction (3 ms at 8 kHz, 1.5 ms
# at 16 kHz); G.722's QMF filter bank adds ~1.5 ms; Opus (application VOIP) looks
# ahead 6.5 ms and runs at the bridge rate, without resampler
CASES = [
    (8000, "PCMU", 0.0),
    (16000, "PCMU", 6.0),
    (48000, "PCMU", 6.0),
    (48000, "G722", 3.0 + 1.5),
    (48000, "opus", 6.5),
    (16000, "opus", 6.5),
]


def pair(codec):
    a = AudioTransport(codecs=[codec])
    b = AudioTransport(codecs=[codec])
    offer = a.local_media()
    answer = b.local_media(offer)
    b.start(offer)
    a.start(answer)
    return a, b


def click_train(rate):
    t = np.arange(rate * CLICK_MS // 1000)
    click = (AMPLITUDE * np.sin(2 * np.pi * 1000 * t / rate)).astype(np.int16)
    period = rate * CLICK_PERIOD_MS // 1000
    signal = np.zeros(period * CLICKS, dtype=np.int16)
    for i in range(CLICKS):
        signal[i * period:i * period + len(click)] = click
    return signal


def onsets(x, rate):
    loud = np.flatnonzero(np.abs(x.astype(np.int32)) > AMPLITUDE // 4)
    if len(loud) == 0:
        return []
    quiet = rate * QUIET_MS // 1000
    keep = np.concatenate(([True], np.diff(loud) > quiet))
    return [int(i) for i in loud[keep]]


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("rate,codec,algorithmic_ms", CASES, ids=[f"{c}@{r // 1000}k" for r, c, _ in CASES])
def test_one_way_delay_is_a_tick_plus_the_algorithmic_delay(rate, codec, algorithmic_ms):
    engine = start_media_engine(rate)
    a, b = pair(codec)
    source, recorder = NumpyTap(), NumpyTap()
    try:
        engine.connect(source, a)
        engine.connect(source, recorder)
        engine.connect(b, recorder)
        assert wait_for(lambda: b.statistics["rx_packets"] >= 10, 5)
        signal = click_train(rate)
        recorder.read()
        source.write(signal)
        need = len(signal) + rate // 10
        assert wait_for(lambda: recorder.available >= need, 10)
        x = recorder.read()
        stats = b.statistics
    finally:
        for port in (a, b, source, recorder):
            port.stop()
    found = onsets(x, rate)
    assert len(found) == 2 * CLICKS, found          # every click, then its echo
    delays_ms = [(echo - sent) * 1000 / rate for sent, echo in zip(found[::2], found[1::2], strict=True)]
    bound = FRAME_MS + stats["jb_target_ms"] + algorithmic_ms + TOLERANCE_MS
    median = float(np.median(delays_ms))
    assert FRAME_MS - TOLERANCE_MS <= median <= bound, (delays_ms, stats["jb_target_ms"])
    assert stats["jb_underruns"] == 0 and stats["jb_dropped"] == 0
