"""The build names the Debian package to install when a library is missing."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_missing_library_names_the_debian_package(tmp_path):
    # an empty pkg-config search path: no library can be found
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(tmp_path), PKG_CONFIG_PATH=str(tmp_path))
    result = subprocess.run([sys.executable, "setup.py", "build_ext", "--build-temp", str(tmp_path / "build")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "install the Debian package 'libsofia-sip-ua-dev'" in result.stdout + result.stderr
