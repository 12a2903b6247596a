"""ALSA configurations for a machine without a sound card.

``alsa_env(run_dir)`` gives an environment whose default ALSA device discards
playback and captures silence; with *played_wav* / *source_raw* playback is also
written to a WAV file and capture reads raw audio from a file. Pass it to a
child process (baresip with its alsa module, PortAudio-based code) as ``env``.
ALSA's null device is not clocked: a client that does not pace itself spins.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).parent / "alsa"
ALSA_CONF = "/usr/share/alsa/alsa.conf"


def alsa_config(run_dir: Path, played_wav: Path | None = None, source_raw: Path | None = None) -> Path:
    """Write the configuration into *run_dir* and return its path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if played_wav is None and source_raw is None:
        text = (HERE / "asoundrc").read_text()
    else:
        text = (HERE / "asoundrc_file").read_text()
        text = text.replace("PLAYED_WAV", str(played_wav or "/dev/null"))
        text = text.replace("SOURCE_RAW", str(source_raw or "/dev/zero"))
    path = run_dir / "asoundrc"
    path.write_text(text)
    return path


def alsa_env(run_dir: Path, played_wav: Path | None = None, source_raw: Path | None = None,
             base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of *base* (default: os.environ) whose ALSA default device is the headless one."""
    env = dict(os.environ if base is None else base)
    env["ALSA_CONFIG_PATH"] = f"{ALSA_CONF}:{alsa_config(run_dir, played_wav, source_raw)}"
    return env
