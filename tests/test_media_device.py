"""Sound devices: PortAudio listing, file-backed ALSA devices (in a
subprocess, as PortAudio reads the ALSA configuration once), switching
devices while running, and the echo canceller on a loopback test device."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from sipsimple.core._media import MediaEngine, NumpyTap, list_devices
from tests.media_engine import start_media_engine

ALSA_FILE_CONFIG = """
pcm.!default {{
    type asym
    playback.pcm "tofile"
    capture.pcm "fromfile"
}}
pcm.tofile {{
    type file
    slave.pcm "nullsink"
    file "{played}"
    format "wav"
}}
pcm.fromfile {{
    type file
    slave.pcm "nullsink"
    file "/dev/null"
    infile "{source}"
    format "raw"
}}
pcm.nullsink {{ type null }}
"""

CHILD = textwrap.dedent("""
    import time, numpy as np
    from sipsimple.core._media import MediaEngine, NumpyTap, ToneGenerator, list_devices
    names = [d["name"] for d in list_devices()]
    assert "default" in names, names
    eng = MediaEngine()
    eng.start(sample_rate=48000, device=None, input_device="system_default", output_device="default")
    tap = NumpyTap()
    tone = ToneGenerator(440, level=-12)
    eng.connect(eng.device_port, tap)
    eng.connect(tone, eng.device_port)
    time.sleep(0.5)
    x = tap.read().astype(float)
    eng.set_devices("null", "null")          # switch while running
    time.sleep(0.1)
    eng.set_devices("system_default", "system_default")
    time.sleep(0.3)
    assert (np.abs(tap.read()[-4800:]) > 1000).any()
    eng.stop()
    nz = np.flatnonzero(x)
    x = x[nz[0]:nz[-1]]
    spec = np.abs(np.fft.rfft(x))
    print("PEAK", np.argmax(spec) * 48000 / len(x), 10 * np.log10(np.mean(x ** 2) / 32768 ** 2))
""")


@pytest.fixture(scope="module")
def engine():
    return start_media_engine(48000)


def test_list_devices_shape():
    for dev in list_devices():
        assert {"index", "name", "host_api", "input_channels", "output_channels"} <= set(dev)


def test_portaudio_file_devices(tmp_path):
    t = np.arange(48000 * 3) / 48000
    (0.25 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tofile(tmp_path / "src.raw")
    conf = tmp_path / "asoundrc"
    conf.write_text(ALSA_FILE_CONFIG.format(played=tmp_path / "played.wav", source=tmp_path / "src.raw"))
    env = dict(os.environ, ALSA_CONFIG_PATH=f"/usr/share/alsa/alsa.conf:{conf}")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("PEAK")][0]
    peak, level = map(float, line.split()[1:])
    assert abs(peak - 1000) < 5          # the microphone (a file) reached the bridge
    assert abs(level + 15) < 1.5
    # ALSA's null PCM is not clocked: the file holds the tone frames among many zeros
    played = np.memmap(tmp_path / "played.wav", dtype="<i2", mode="r", offset=44)
    played = played[np.flatnonzero(played)].astype(float)
    assert len(played) > 4800            # the tone reached the speaker (a file)
    spec = np.abs(np.fft.rfft(played[:48000]))
    assert abs(np.argmax(spec) * 48000 / len(played[:48000]) - 440) < 5


@pytest.mark.parametrize("rate", [16000])
def test_echo_canceller_on_loopback_device(rate):
    eng = MediaEngine()
    if eng.running:
        eng.stop()
    eng.start(sample_rate=rate, device="null")
    tap = NumpyTap()
    try:
        rng = np.random.default_rng(1)
        eng.connect(tap, eng.device_port)          # far end speaks into the speaker

        def echo_level(ec):
            eng.set_devices("loopback", "loopback", echo_cancellation=ec)
            tap.clear()
            tap.write((rng.standard_normal(rate * 2) * 3000).astype(np.int16))
            levels = []
            deadline = time.monotonic() + 1.8
            while time.monotonic() < deadline:
                time.sleep(0.1)
                levels.append(eng.level(eng.device_port))
            return np.mean(levels[-5:])

        plain = echo_level(False)
        cancelled = echo_level(True)
        assert plain > -30
        assert cancelled < plain - 15
    finally:
        eng.set_devices("null", "null", echo_cancellation=False)
        tap.stop()
        eng.stop()
        eng.start(sample_rate=48000, device="null")
