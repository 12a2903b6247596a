"""``sipsimple call`` and ``sipsimple answer`` as subprocesses: against baresip through Kamailio
with digest auth, and against each other peer to peer.

An ``answer`` process's readiness and address come from its ``listening on sip:...``
line on stderr; its progress is followed line by line on stdout, without sleeping.
"""

from __future__ import annotations

import re
import wave

import numpy as np
import pytest

from tests.audio_analysis import dominant_frequency, level_dbfs, read_wav
from tests.cli_helpers import CLIProcess, proxy_args, run_cli


def rtp_received(output: str) -> int:
    match = re.search(r"^rtp received: (\d+) packets, (\d+) bytes$", output, re.M)
    assert match, output
    return int(match.group(1))


def write_tone(path, frequency=1000.0, seconds=3.0, rate=48000, level=0.3) -> None:
    """A mono 16-bit WAV file holding a sine tone."""
    t = np.arange(int(rate * seconds)) / rate
    samples = (level * 32767 * np.sin(2 * np.pi * frequency * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def answerer(*args: str) -> CLIProcess:
    return CLIProcess("answer", *args)


P2P = ("--local-ip", "127.0.0.1")


@pytest.fixture
def bob_baresip(kamailio, baresip_factory):
    def make(**kwargs):
        bob = baresip_factory(user="bob", password="bobpw", registrar=f"{kamailio.host}:{kamailio.port}", **kwargs)
        bob.wait_registered()
        return bob
    return make


def test_call_baresip_through_kamailio(kamailio, bob_baresip):
    bob_baresip()
    result = run_cli("call", f"bob@{kamailio.domain}", "--duration", "1.5", *proxy_args(kamailio, "alice"))
    assert result.returncode == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert "state: CALLING" in lines and "state: ESTABLISHED" in lines and "state: TERMINATED" in lines
    assert lines.index("state: CALLING") < lines.index("state: ESTABLISHED") < lines.index("state: TERMINATED")
    assert "codec: PCMU/8000" in lines and "srtp: off" in lines
    assert re.search(r"^duration: 1\.\d\d s$", result.stdout, re.M)
    assert rtp_received(result.stdout) > 0
    assert re.search(r"^rtp sent: [1-9]\d* packets", result.stdout, re.M)
    assert re.search(r"^rtp loss: \d+ packets \(\d+\.\d %\), jitter \d+\.\d\d ms$", result.stdout, re.M)


def test_call_baresip_srtp_mandatory(kamailio, bob_baresip):
    bob_baresip(mediaenc="srtp-mand")
    result = run_cli("call", f"bob@{kamailio.domain}", "--duration", "1", "--srtp", "mandatory",
                     *proxy_args(kamailio, "alice"))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert re.search(r"^srtp: (AES_CM_128_HMAC_SHA1_(80|32)|AEAD_AES_(128|256)_GCM)$", result.stdout, re.M), \
        result.stdout
    assert rtp_received(result.stdout) > 0


def test_call_sends_dtmf_to_baresip(kamailio, bob_baresip):
    bob = bob_baresip()
    result = run_cli("call", f"bob@{kamailio.domain}", "--dtmf", "123", "--duration", "0.5", "--codec", "PCMU",
                     *proxy_args(kamailio, "alice"))
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert [line for line in result.stdout.splitlines() if line.startswith("dtmf sent")] == \
        ["dtmf sent: 1", "dtmf sent: 2", "dtmf sent: 3"]
    assert [bob.ctrl.wait_event("CALL_DTMF_START")["param"] for _ in range(3)] == ["1", "2", "3"]


def test_call_our_answer_plays_tone_into_recording(tmp_path):
    tone, recording = tmp_path / "tone.wav", tmp_path / "recorded.wav"
    write_tone(tone, 1000.0, seconds=2.0)
    with answerer("--auto-answer", "--count", "1", "--record", str(recording), "--account", "bob@127.0.0.1",
                  *P2P) as bob:
        address = bob.address("stderr")
        assert address.startswith("sip:bob@127.0.0.1:")
        result = run_cli("call", address, "--play", str(tone), "--account", "alice@127.0.0.1", *P2P)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "playback ended" in result.stdout and "hanging up" in result.stdout
        status, output = bob.finish()
        assert status == 0, output
    assert "incoming call from sip:alice@127.0.0.1" in output
    assert "state: ESTABLISHED" in output and "call ended by the other party" in output
    assert f"recording to {recording}" in output
    assert rtp_received(output) > 0
    samples, rate = read_wav(recording)
    assert len(samples) > rate  # more than a second of the call
    middle = samples[rate // 4: rate]
    assert abs(dominant_frequency(middle, rate) - 1000) < 10 and level_dbfs(middle) > -30


def test_answer_hangs_up_after_duration(tmp_path):
    with answerer("--auto-answer", "--count", "1", "--duration", "1", "--codec", "G722", *P2P) as bob:
        address = bob.address("stderr")
        result = run_cli("call", address, *P2P)
        assert result.returncode == 0, (result.stdout, result.stderr)
        assert "call ended by the other party" in result.stdout
        assert "codec: G722/16000" in result.stdout
        status, output = bob.finish()
    assert status == 0 and "hanging up" in output


def test_call_declined_exits_1(tmp_path):
    with answerer("--count", "1", *P2P) as bob:
        bob.send("n")  # typed ahead, read when it asks
        address = bob.address("stderr")
        result = run_cli("call", address, *P2P)
        assert result.returncode == 1, (result.stdout, result.stderr)
        assert "call failed: 603 Decline" in result.stdout
        assert "state: ESTABLISHED" not in result.stdout
        status, output = bob.finish()
    assert status == 0 and "answer? [y/n]" in output and "declining" in output


def test_call_unknown_user_through_kamailio_exits_1(kamailio):
    result = run_cli("call", f"nobody@{kamailio.domain}", "--duration", "1", *proxy_args(kamailio, "alice"))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert re.search(r"^call failed: 404 ", result.stdout, re.M), result.stdout


@pytest.mark.parametrize("args", [
    ["tel:+15551234"],
    ["sip:@127.0.0.1"],
    ["bob@127.0.0.1", "--duration", "0"],
    ["bob@127.0.0.1", "--dtmf", "12x"],
    ["bob@127.0.0.1", "--codec", "nonesuch"],
    ["bob@127.0.0.1", "--play", "/nonexistent/file.wav"],
    ["bob@127.0.0.1", "--srtp", "sometimes"],
])
def test_call_usage_errors_exit_2(args):
    result = run_cli("call", *args, *P2P, timeout=30)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "error" in result.stderr and not result.stdout
