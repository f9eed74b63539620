#!/usr/bin/env bash
# Installs everything the hotline and its test suite need on a fresh Debian machine (as root):
# system packages, an Asterisk 22 (the host's package when it has one, otherwise a Debian sid
# chroot, since bookworm ships no Asterisk), and the Python project in .venv.
# Idempotent: a second run only checks what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

ASTERISK_ROOT=${HOTLINE_ASTERISK_ROOT:-/opt/hotline/asterisk-sid}
log() { printf '[setup] %s\n' "$*" >&2; }

apt_install() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "apt-get install ${missing[*]}"
    if [ -z "${_APT_UPDATED:-}" ]; then apt-get update -qq; _APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

apt_install redis-server sip-tester debootstrap ca-certificates python3-venv curl espeak-ng

# --- Asterisk 22 -----------------------------------------------------------------------------
if command -v asterisk >/dev/null 2>&1 && asterisk -V 2>/dev/null | grep -q 'Asterisk 2[2-9]'; then
    log "host Asterisk: $(asterisk -V)"
elif [ -x "$ASTERISK_ROOT/usr/sbin/asterisk" ]; then
    log "Asterisk chroot: $ASTERISK_ROOT ($(chroot "$ASTERISK_ROOT" asterisk -V))"
else
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    log "building an Asterisk chroot (Debian sid) in $ASTERISK_ROOT from $mirror"
    rm -rf "$ASTERISK_ROOT.tmp"; mkdir -p "$(dirname "$ASTERISK_ROOT")"
    debootstrap --variant=minbase sid "$ASTERISK_ROOT.tmp" "$mirror" >/dev/null
    chroot "$ASTERISK_ROOT.tmp" apt-get -qq -o Acquire::Check-Valid-Until=false update
    chroot "$ASTERISK_ROOT.tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends asterisk asterisk-modules asterisk-core-sounds-en-gsm \
        asterisk-moh-opsound-gsm >/dev/null
    mv "$ASTERISK_ROOT.tmp" "$ASTERISK_ROOT"
    log "Asterisk chroot ready: $(chroot "$ASTERISK_ROOT" asterisk -V)"
fi

# --- Python ----------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
log "installing the project and its test dependencies into .venv"
.venv/bin/python -m pip install -q -e '.[test,bench]'
log "done"
