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

# The Debian archive this machine's apt already uses (its own configuration names the host;
# this script names none): HOTLINE_DEBIAN_MIRROR, else the first URI of a source serving the
# Debian archive (a "Suites: bookworm" / "deb ... bookworm main" entry, not -security).
debian_mirror() {
    if [ -n "${HOTLINE_DEBIAN_MIRROR:-}" ]; then echo "$HOTLINE_DEBIAN_MIRROR"; return; fi
    local codename
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        awk -v c="$codename" '
            /^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) hit = 1 }
            /^$/ { if (hit && uri !~ /security/) { print uri; exit } uri = ""; hit = 0 }
            END { if (hit && uri !~ /security/) print uri }' "$f"
    done | head -n 1 | grep . && return
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        # deb [options] URI suite components...
        awk -v c="$codename" '$1 == "deb" {
            n = 2; if ($2 ~ /^\[/) { while (n <= NF && $n !~ /\]$/) n++; n++ }
            if ($(n + 1) == c && $n !~ /security/) { print $n; exit } }' "$f"
    done | head -n 1
}

# libopus0 (ffmpeg brings it too): the speech evaluation's Opus line with packet loss.
apt_install redis-server sip-tester debootstrap ca-certificates python3-venv curl espeak-ng flite sox libsox-fmt-all ffmpeg libopus0
# CMU Sphinx's own tools (bw, mllr_solve, sphinx_fe, pocketsphinx_mdef_convert): only to estimate
# pocketsphinx's telephone transform again (benchmarks/speech/adapt_pocketsphinx.py, and its
# test); the service reads the shipped ivr/speech/data/pocketsphinx-telephone.mllr without them.
apt_install sphinxtrain sphinxbase-utils pocketsphinx
# The screens' end-to-end test (tests/e2e/test_screens.py): headless Chromium driven by selenium.
apt_install chromium chromium-driver

# --- Asterisk 22 -----------------------------------------------------------------------------
if command -v asterisk >/dev/null 2>&1 && asterisk -V 2>/dev/null | grep -q 'Asterisk 2[2-9]'; then
    log "host Asterisk: $(asterisk -V)"
elif [ -x "$ASTERISK_ROOT/usr/sbin/asterisk" ]; then
    log "Asterisk chroot: $ASTERISK_ROOT ($(chroot "$ASTERISK_ROOT" asterisk -V))"
else
    mirror=$(debian_mirror)
    if [ -z "$mirror" ]; then
        log "no Debian mirror found in this machine's apt sources (/etc/apt/sources.list.d/*.sources, /etc/apt/sources.list);"
        log "set HOTLINE_DEBIAN_MIRROR to the Debian archive to build the Asterisk chroot from"
        exit 2
    fi
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
if [ -x "$ASTERISK_ROOT/usr/sbin/asterisk" ]; then
    # debootstrap leaves the chroot without /etc/hosts, so every lookup of this host's own
    # name (Asterisk looks for its address as it sends SIP, acl.c) went to the DNS server; one
    # unanswered lookup held PJSIP's one SIP thread for the resolver's 5 s timeout and every
    # call's SIP waited behind it (the load benchmark's stalls at 80 callers).
    { cat /etc/hosts 2>/dev/null
      grep -qw -- "$(hostname)" /etc/hosts 2>/dev/null || echo "127.0.1.1 $(hostname)"
    } > "$ASTERISK_ROOT/etc/hosts.new"
    mv "$ASTERISK_ROOT/etc/hosts.new" "$ASTERISK_ROOT/etc/hosts"
fi
# Hold music without a quiet lead-in or long pauses (asterisk/musiconhold.conf: moh-hotline).
if command -v asterisk >/dev/null 2>&1 && asterisk -V 2>/dev/null | grep -q 'Asterisk 2[2-9]'; then
    moh=/usr/share/asterisk
else
    moh=$ASTERISK_ROOT/usr/share/asterisk
fi
log "$(scripts/hold-music.sh "$moh/moh" "$moh/moh-hotline")"

# --- Python ----------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
    log "creating .venv"
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
log "installing the project and its test dependencies into .venv"
.venv/bin/python -m pip install -q -e '.[test,bench]'
log "done"
