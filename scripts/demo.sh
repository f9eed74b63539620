#!/usr/bin/env bash
# Brings up the whole local hotline on this machine and places a demo call:
#   redis-server, Asterisk 22 with asterisk/ (a Debian sid chroot on bookworm), four agents'
#   SIP softphones (SIPp, auto-answer) and the operator's, then `ivr serve`, then
#   `ivr call --dtmf 3`: a caller reporting a fault, routed to the network agent; the work
#   order is printed as JSON at the end. Everything stays up for more calls:
#       source var/demo.env && .venv/bin/ivr call --dtmf 1
#   Stop it all with: scripts/demo.sh down
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "down" ]; then
    if [ -f var/demo.pid ]; then kill "$(cat var/demo.pid)" 2>/dev/null || true; rm -f var/demo.pid; fi
    exec .venv/bin/python -m testbed down
fi

scripts/setup-debian.sh
mkdir -p var
.venv/bin/python -m testbed down >/dev/null 2>&1 || true
.venv/bin/python -m testbed up --hold-for 8 >/dev/null
.venv/bin/python -m testbed env > var/demo.env
# shellcheck disable=SC1091
source var/demo.env

echo "[demo] starting ivr serve (the first start synthesizes the prompts with piper, ~1 min)" >&2
nohup .venv/bin/ivr serve > var/demo-serve.log 2>&1 &
echo $! > var/demo.pid
for _ in $(seq 1 600); do
    if curl -fsS http://127.0.0.1:8090/health >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat var/demo.pid)" 2>/dev/null; then
        echo "[demo] ivr serve exited; see var/demo-serve.log" >&2; tail -20 var/demo-serve.log >&2; exit 1
    fi
    sleep 0.5
done
# An ops token for the API (`ivr call` reads the work order through it), shown once and kept
# in var/demo.env for more calls; the demo stack's master key is the testbed's, not a real one.
HOTLINE_TOKEN=$(.venv/bin/ivr tokens create --user demo --role ops --expires 1d --json \
    | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["token"])')
export HOTLINE_TOKEN
echo "export HOTLINE_TOKEN=$HOTLINE_TOKEN" >> var/demo.env
echo "[demo] hotline up: FastAGI 127.0.0.1:4573, API http://127.0.0.1:8090/api/queues (Authorization: Bearer \$HOTLINE_TOKEN)" >&2
echo "[demo] calling: the caller presses 3 (fault) during the welcome prompt" >&2
.venv/bin/ivr call --dtmf 3 --caller-number +15550100 --caller-name "Demo Caller"
