#!/usr/bin/env bash
# Install the Debian packages sipsimple needs to build and to run its tests.
#
# Idempotent and quick when there is nothing to do: packages already installed
# are found with dpkg-query and apt is not touched at all. The package index is
# refreshed only when a package is missing and apt cannot find it as things are.
#
# usage: scripts/install-deps.sh            (root, or a user with sudo)
#        PYTHON=/usr/bin/python3.11 scripts/install-deps.sh
set -euo pipefail

PYTHON=${PYTHON:-python3}

packages=(
    # building the compiled core
    build-essential pkg-config
    libsofia-sip-ua-dev libsrtp2-dev libopus-dev libspandsp-dev libgsm1-dev libspeexdsp-dev portaudio19-dev
    # test peers and tools
    kamailio kamailio-sqlite-modules kamailio-presence-modules kamailio-tls-modules
    sip-tester baresip-core openssl sqlite3 sox
    # sipsimple bench --profile: samples the media engine's native threads
    linux-perf
)

# venv and headers come from Debian only when the Python in use is Debian's own;
# a pyenv or self-built Python brings both itself.
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    packages+=(python3 python3-venv python3-dev)
elif [[ "$("$PYTHON" -c 'import sys; print(sys.base_prefix)')" == /usr ]]; then
    packages+=(python3-venv python3-dev)
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    [[ "$status" == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all ${#packages[@]} Debian packages are installed"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"

if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
fi

apt_env=(env DEBIAN_FRONTEND=noninteractive)
install=("${as_root[@]}" "${apt_env[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}")

# A fresh machine has no package lists (or stale ones that name versions no
# longer on the mirror): try as is, and on failure refresh the lists and retry.
if ! "${as_root[@]}" "${apt_env[@]}" apt-get install -s -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || ! "${install[@]}"; then
    "${as_root[@]}" "${apt_env[@]}" apt-get update -q
    "${install[@]}"
fi
