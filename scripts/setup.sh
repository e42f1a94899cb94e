#!/usr/bin/env bash
# Set up Victoria SIP on Debian 12: the system packages it and its tests use
# (when run as root, or with sudo), a virtualenv in .venv, the project in it, and
# PJSIP built for a server (scripts/build_pjsip.py: the first run only, minutes;
# the wheel is cached in ~/.cache/victoria-sip/pjsip, so later runs take seconds).
#   ./scripts/setup.sh            Victoria itself
#   ./scripts/setup.sh --tests    plus the test tools and the Coqui TTS extra (torch: ~4 min, 7.6 GB)
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv espeak-ng ca-certificates)  # ca-certificates: the CAs an account over TLS trusts by default
# only when PJSIP must be built (no cached wheel): compilers, SWIG, Python headers, OpenSSL and libuuid headers
PJSIP_BUILD_PACKAGES=(build-essential swig python3-dev libssl-dev uuid-dev)
EXTRAS=""
if [ "${1:-}" = "--tests" ]; then
    EXTRAS="[test,coqui]"
    APT_PACKAGES+=(kamailio kamailio-tls-modules sip-tester sox postgresql nftables openssl chromium chromium-driver)  # registrar (and its TLS), SIP caller, audio tools, database, firewall, certificates, the console's browser
fi

install_system_packages() {
    command -v apt-get >/dev/null || { echo "setup: no apt-get; install $* yourself" >&2; return 0; }
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "setup: run as root or install: ${missing[*]}" >&2; exit 1; }
        sudo=sudo
    fi
    echo "setup: installing ${missing[*]} (apt-get)"
    $sudo apt-get update -q >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

install_python_packages() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    local stamp=".venv/.victoria-installed${EXTRAS}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "setup: installing Python packages into .venv: .${EXTRAS} (pip; minutes the first time)"
        .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
        .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${EXTRAS}"
        touch "$stamp"
    fi
}

install_pjsip() {
    # PJSIP 2.17 built by us (config/pjsip/config_site.h), not the pjsua2-python wheel; see scripts/build_pjsip.py
    .venv/bin/python scripts/build_pjsip.py --check && return 0
    .venv/bin/python scripts/build_pjsip.py --cached || install_system_packages "${PJSIP_BUILD_PACKAGES[@]}"
    .venv/bin/python scripts/build_pjsip.py
}

install_system_packages "${APT_PACKAGES[@]}"
install_python_packages
install_pjsip
