"""The self-contained wheel: built, installed in a fresh venv, a call made with it.

How it is shown that the wheel needs no Debian library packages:

1. ``scripts/build-wheel.sh`` builds the sdist, the wheel from the sdist, adds the
   NSS modules libsrtp2 loads at run time and runs ``auditwheel repair``, which
   copies every non-manylinux library into ``sipsimple.libs/``. The result is cached
   in ``build/wheel-cache/<hash of the sources>/`` so a second run costs nothing.
2. A fresh venv (``python -m venv`` in a temporary directory) gets the wheel with pip;
   its dependencies (numpy, zope.interface, dnspython, lxml) come from the index.
3. The venv's python then runs in a private mount namespace (``unshare -m``, or
   ``unshare -Urm`` when not root) in which this machine's copies of the libraries are
   gone as far as the process can tell: ``/dev/null`` is bind-mounted over every system
   file the wheel bundles a copy of (``libsofia-sip-ua.so.0.6.0``, ``libsrtp2.so.1``,
   ..., ``libsoftokn3.so``), empty tmpfs are mounted over ``/usr/include`` and the
   pkg-config directories, and the environment is emptied (``env -i``: no
   ``LD_LIBRARY_PATH``, ``PYTHONPATH``, ``CPATH``, ``PKG_CONFIG_PATH``) with the working
   directory outside the source tree. A library the wheel failed to bundle, or one it
   would still take from ``/usr/lib``, then fails to load instead of being found.
   Libraries that the interpreter's own standard library links (libssl and libcrypto
   for ``_ssl``/``_hashlib``, libsqlite3, liblzma, ...) stay visible, since Python
   would not start without them; the wheel's copies of those are still the ones its
   extensions load (they carry hashed names and are found through the RPATH).
   Without the privilege to make a mount namespace the test falls back to the emptied
   environment alone and says so in its output; the /proc/self/maps checks still hold.
4. In that process a small script (``CALL_SCRIPT``) imports the extensions, starts
   the Engine, places a call between two Sessions of the same process on loopback
   (mandatory SRTP, Opus), plays a tone each way and measures it, ends the call, and
   reports the shared objects in ``/proc/self/maps`` after the import and during the
   call. The tests assert that Sofia-SIP, libsrtp2, Opus, spandsp, GSM, speexdsp,
   PortAudio and the NSS modules are mapped from the venv's ``sipsimple.libs`` and
   none from the system, and that both sides started, heard the other's tone, ended.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parent.parent
CACHE = ROOT / "build" / "wheel-cache"
# the libraries the wheel must carry: (name prefix in sipsimple.libs, what needs it)
REQUIRED = {
    "libsofia-sip-ua": "_core",
    "libsrtp2": "_media",
    "libopus": "_media",
    "libspandsp": "_media",
    "libgsm": "_media",
    "libspeexdsp": "_media",
    "libportaudio": "_media",
}
# dlopen()ed by libnss3 (libsrtp2's crypto) when the first SRTP context is made
NSS_MODULES = ("libsoftokn3.so", "libfreeblpriv3.so")
SOURCE_SUFFIXES = {".py", ".pyx", ".pxi", ".pxd", ".pyi", ".typed"}

CALL_SCRIPT = r'''
"""One call between two Sessions of this process on loopback (run by the wheel's venv)."""

import json
import sys
import threading
import time


def mapped():
    with open("/proc/self/maps") as maps:
        return sorted({line.split()[-1] for line in maps if ".so" in line.split()[-1]})


import numpy as np

import sipsimple
import sipsimple.core._core
import sipsimple.core._media
from sipsimple.core import SIPURI, Engine
from sipsimple.core._media import MediaEngine, NumpyTap, ToneGenerator
from sipsimple.notification import NotificationCenter
from sipsimple.session import Session, SessionManager

result = {"sipsimple": sipsimple.__file__, "after_import": mapped()}


class Account:
    def __init__(self, user):
        self.uri = SIPURI("127.0.0.1", user=user)
        self.credentials = None
        self.display_name = user.title()
        self.srtp_mode = "mandatory"
        self.audio_codecs = None


class Recorder:
    def __init__(self):
        self.seen, self.cond = [], threading.Condition()
        NotificationCenter().add_observer(self)

    def __call__(self, notification):
        with self.cond:
            self.seen.append(notification)
            self.cond.notify_all()

    def wait(self, name, sender=None, timeout=10.0):
        def match():
            return [n for n in self.seen if n.name == name and (sender is None or n.sender is sender)]
        with self.cond:
            if not self.cond.wait_for(match, timeout):
                sys.exit(f"no {name} within {timeout} s; last seen {[n.name for n in self.seen][-15:]}")
            return match()[0]


def measure(media, source, sink, frequency):
    """Play a tone into one side's stream; the dominant frequency of 0.5 s the other side got."""
    tone, tap = ToneGenerator(frequency, level=-12), NumpyTap()
    media.connect(tone, source.audio_transport)
    media.connect(sink.audio_transport, tap)
    deadline = time.monotonic() + 5
    while tap.available < media.sample_rate // 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = tap.read()[-media.sample_rate // 2:].astype(float)
    tone.stop()
    tap.stop()
    samples -= samples.mean()
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / media.sample_rate)[int(np.argmax(spectrum))])


recorder = Recorder()
engine = Engine()
engine.start(local_ip="127.0.0.1", transports=("udp",))
SessionManager()
try:
    alice = Session(Account("alice"))
    alice.connect(SIPURI("127.0.0.1", user="bob", port=engine.udp_port), [], audio=True)
    bob = recorder.wait("SCSessionNewIncoming").sender
    bob.accept(audio=True)
    result["alice_started"] = recorder.wait("SCSessionDidStart", sender=alice) is not None
    result["bob_started"] = recorder.wait("SCSessionDidStart", sender=bob) is not None
    media = MediaEngine()
    result["codec"] = alice.audio_codec
    result["srtp"] = bool(alice.audio_srtp_active and bob.audio_srtp_active)
    result["alice_to_bob_hz"] = measure(media, alice, bob, 1000)
    result["bob_to_alice_hz"] = measure(media, bob, alice, 700)
    result["during_call"] = mapped()
    alice.end()
    result["alice_ended"] = recorder.wait("SCSessionDidEnd", sender=alice).data.originator
    result["bob_ended"] = recorder.wait("SCSessionDidEnd", sender=bob).data.originator
finally:
    engine.stop()
print(json.dumps(result))
'''


def source_hash() -> str:
    """What the wheel is built from: the package sources, the build files and the build script."""
    digest = hashlib.sha256()
    files = [ROOT / name for name in ("pyproject.toml", "setup.py", "README.md", "scripts/build-wheel.sh")]
    files += sorted(p for p in (ROOT / "sipsimple").rglob("*")
                    if p.suffix in SOURCE_SUFFIXES and p.name != "_version.py" and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@pytest.fixture(scope="module")
def dist() -> Path:
    """build/wheel-cache/<hash>/ with the sdist and the repaired wheel, built when the sources changed."""
    out = CACHE / source_hash()
    if not list(out.glob("*.whl")):
        if CACHE.exists():
            shutil.rmtree(CACHE)  # one cached build is enough
        partial = out.with_suffix(".partial")
        result = subprocess.run([str(ROOT / "scripts" / "build-wheel.sh"), str(partial)], cwd=ROOT,
                                env=dict(os.environ, PYTHON=sys.executable),
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"build-wheel.sh failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        partial.rename(out)
    return out


@pytest.fixture(scope="module")
def wheel(dist: Path) -> Path:
    (path,) = dist.glob("*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (its dependencies from the package index)."""
    path = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=120)
    result = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                            capture_output=True, text=True, timeout=300, cwd=path)
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def original_name(bundled: str) -> str:
    """auditwheel's libsofia-sip-ua-fe473324.so.0.6.0 -> libsofia-sip-ua.so.0.6.0 (libdb-5-xxx.3.so -> libdb-5.3.so)."""
    return re.sub(r"-[0-9a-f]{8}(?=\.)", "", bundled, count=1)


def system_library_dirs() -> list[Path]:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    dirs = {Path(line.split(" => ")[1]).parent for line in out.splitlines() if " => " in line}
    return sorted(d for d in dirs if d.is_dir())


def stdlib_libraries(python: Path) -> set[Path]:
    """The shared libraries the interpreter and its standard-library extensions link."""
    dynload = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_config_var('DESTSHARED'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    objects = [str(python.resolve())] + [str(p) for p in Path(dynload).glob("*.so")]
    assert len(objects) > 10, f"no standard-library extensions found in {dynload}"
    out = subprocess.run(["ldd", *objects], capture_output=True, text=True).stdout
    return {Path(m.group(1)).resolve() for m in re.finditer(r"=> (/\S+)", out)}


def masked_files(venv: Path) -> tuple[list[Path], list[Path]]:
    """(system files to hide, system files kept because Python itself links them)."""
    (libs,) = venv.glob("lib/python*/site-packages/sipsimple.libs")
    keep = stdlib_libraries(venv / "bin" / "python")
    hide, kept = set(), set()
    for bundled in libs.iterdir():
        for directory in system_library_dirs():
            candidate = directory / original_name(bundled.name)
            if candidate.exists():
                real = candidate.resolve()
                (kept if real in keep else hide).add(real)
    return sorted(hide), sorted(kept)


def can_unshare() -> list[str] | None:
    if shutil.which("unshare") is None:
        return None
    for command in (["unshare", "-m", "--propagation", "private"], ["unshare", "-Urm", "--propagation", "private"]):
        probe = subprocess.run([*command, "sh", "-c", "mount -t tmpfs none /mnt"], capture_output=True)
        if probe.returncode == 0:
            return command
    return None


def run_without_system_libraries(venv: Path, script: Path, hide: list[Path]) -> tuple[dict, str]:
    """Run ``script`` with the venv's python where the hidden libraries and headers are gone."""
    clean_env = ["env", "-i", f"PATH={venv}/bin:/usr/bin:/bin", f"HOME={script.parent}",
                 "LANG=C.UTF-8", f"TMPDIR={script.parent}"]
    python = [str(venv / "bin" / "python"), str(script)]
    unshare = can_unshare()
    if unshare:
        masks = [f"mount -t tmpfs none {d}" for d in ("/usr/include", "/usr/local/include",
                                                       "/usr/lib/x86_64-linux-gnu/pkgconfig",
                                                       "/usr/lib/pkgconfig", "/usr/share/pkgconfig")
                 if os.path.isdir(d)]
        masks += [f"mount --bind /dev/null {path}" for path in hide]
        shell = " && ".join([*masks, 'exec "$@"'])
        command = [*unshare, "sh", "-ec", shell, "sh", *clean_env, *python]
        how = f"mount namespace ({' '.join(unshare)}), {len(hide)} system libraries hidden"
    else:
        command = [*clean_env, *python]
        how = "emptied environment only (no mount namespace available)"
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=script.parent)
    assert result.returncode == 0, f"{how}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1]), how


@pytest.fixture(scope="module")
def isolated_call(venv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    directory = tmp_path_factory.mktemp("wheel-call")
    script = directory / "call.py"
    script.write_text(CALL_SCRIPT)
    hide, kept = masked_files(venv)
    result, how = run_without_system_libraries(venv, script, hide)
    print(f"\nwheel call ran in a {how}; kept visible for Python itself: {[p.name for p in kept]}")
    result["hidden"] = [str(p) for p in hide]
    return result


def bundled_dir(venv: Path) -> Path:
    (libs,) = venv.glob("lib/python*/site-packages/sipsimple.libs")
    return libs


def test_sdist_has_the_sources(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    core = "sipsimple/core/"
    for name in ("setup.py", "pyproject.toml", "README.md", core + "_core.pyx", core + "_media.pyx",
                 core + "core_engine.pxi", core + "media_engine.pxi", core + "sofia.pxd", core + "srtp.pxd",
                 core + "_core.pyi", core + "_media.pyi", core + "py.typed", "sipsimple/py.typed"):
        assert name in names, f"{name} missing from {sdist.name}"
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "sipsimple" / "core").glob("*.p[yx][xid]")}
    assert on_disk <= names, f"not in the sdist: {sorted(on_disk - names)}"


def test_wheel_is_manylinux_and_bundles_the_libraries(wheel: Path) -> None:
    assert re.search(r"-cp3\d+-cp3\d+-manylinux_2_\d+_x86_64\.whl$", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    libs = [n.split("/", 1)[1] for n in names if n.startswith("sipsimple.libs/") and not n.endswith("/")]
    for prefix in REQUIRED:
        assert any(re.match(rf"{re.escape(prefix)}-[0-9a-f]{{8}}\.", lib) for lib in libs), f"{prefix} not bundled"
    for module in NSS_MODULES:
        assert module in libs, f"{module} (loaded by libnss3 for SRTP) not bundled"
    for name in ("sipsimple/core/_core.pyi", "sipsimple/core/_media.pyi", "sipsimple/py.typed",
                 "sipsimple/core/py.typed"):
        assert name in names
    assert any(re.match(r"sipsimple/core/_core\.cpython-.*\.so$", n) for n in names)
    assert any(re.match(r"sipsimple/core/_media\.cpython-.*\.so$", n) for n in names)
    print(f"\n{wheel.name}: {wheel.stat().st_size / 1e6:.1f} MB, sipsimple.libs: {sorted(libs)}")


def test_extensions_resolve_to_the_bundled_copies(venv: Path) -> None:
    libs = bundled_dir(venv)
    for extension, needs in (("_core", "_core"), ("_media", "_media")):
        (so,) = libs.parent.glob(f"sipsimple/core/{extension}.cpython-*.so")
        out = subprocess.run(["ldd", str(so)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
                             check=True).stdout
        assert "not found" not in out, out
        for prefix, owner in REQUIRED.items():
            if owner == needs:
                (line,) = [line for line in out.splitlines() if line.strip().startswith(prefix + "-")]
                resolved = Path(line.split(" => ")[1].split(" (")[0]).resolve()
                assert resolved.parent == libs.resolve(), line


def mapped_as(mapped: list[str], name: str) -> list[str]:
    """The mapped paths of library ``name`` (libopus, libsoftokn3.so), as the system or auditwheel names it."""
    stem = name.split(".so")[0]
    return [p for p in mapped if re.match(rf"{re.escape(stem)}(-[0-9a-f]{{8}})?\.so", os.path.basename(p))]


def assert_bundled(mapped: list[str], venv: Path, names: list[str]) -> None:
    libs = str(bundled_dir(venv).resolve()) + "/"
    for name in names:
        found = mapped_as(mapped, name)
        assert found, f"{name} is not mapped at all"
        assert all(path.startswith(libs) for path in found), f"{name} mapped from {found}, not from {libs}"


def test_imports_use_only_bundled_libraries(isolated_call: dict, venv: Path) -> None:
    assert isolated_call["sipsimple"].startswith(str(venv)), isolated_call["sipsimple"]
    assert_bundled(isolated_call["after_import"], venv, list(REQUIRED))
    hidden_names = {os.path.basename(p) for p in isolated_call["hidden"]}
    for prefix in REQUIRED:
        assert any(name.startswith(prefix + ".so") for name in hidden_names), f"{prefix} was not hidden"


def test_call_between_two_sessions_from_the_wheel(isolated_call: dict, venv: Path) -> None:
    result = isolated_call
    assert result["alice_started"] and result["bob_started"]
    assert result["codec"] == "opus" and result["srtp"] is True
    assert abs(result["alice_to_bob_hz"] - 1000) < 10, result["alice_to_bob_hz"]
    assert abs(result["bob_to_alice_hz"] - 700) < 10, result["bob_to_alice_hz"]
    assert (result["alice_ended"], result["bob_ended"]) == ("local", "remote")
    # SRTP went through the bundled NSS and the modules it loads at run time
    assert_bundled(result["during_call"], venv, [*REQUIRED, "libnss3", "libnspr4", "libnssutil3", *NSS_MODULES])
