#!/usr/bin/env bash
# Installs everything on a fresh Debian machine, then runs the whole test suite: lint, types, unit
# tests, the real-model speech tests and the end-to-end tests against a real Asterisk 22,
# redis-server and SIPp agents (the suite starts and stops those itself).
#
# Two parts at once, so the suite takes about as long as its end-to-end tests:
# - the end-to-end tests (marker e2e), in the foreground, in two workers: each runs a whole stack
#   in a network namespace of its own (testbed/plugin.py), as the stack binds fixed ports; they
#   mostly wait on real calls (prompts, ring timeouts, SIP timers), so two fit on two cores;
#   those whose verdict is a timing (marker solo) run alone at the end;
# - lint, types and every other test (spread over the cores by pytest-xdist) use the CPU those
#   calls leave idle, in the background at a lower priority, so a call's timing keeps the CPU
#   it needs; their output is printed after the end-to-end tests' (kept in var/test-rest.log).
# Both parts always run; the exit status is non-zero if either failed. Arguments go to both
# pytest runs (a `-m EXPR` is combined with each part's own marker); a selection that leaves one
# part no test is not a failure, one that leaves both none is pytest's 5.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh

args=() mark=""
while [ $# -gt 0 ]; do
    case $1 in
        -m) mark=${2:?"-m needs an expression"}; shift 2 ;;
        -m?*) mark=${1#-m}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
e2e="e2e" rest="not e2e"
if [ -n "$mark" ]; then e2e="($mark) and e2e" rest="($mark) and not e2e"; fi

mkdir -p var
rest_log=var/test-rest.log
set -m  # the background part in a process group of its own, to stop it whole on an interrupt
(
    lint=0
    nice -n 10 .venv/bin/ruff check . || lint=1
    nice -n 10 .venv/bin/mypy || lint=1  # strict, on the seams listed in pyproject.toml's [tool.mypy]
    tests=0
    nice -n 10 .venv/bin/pytest -n logical -m "$rest" ${args[@]+"${args[@]}"} || tests=$?
    if [ "$tests" -ne 0 ] && [ "$tests" -ne 5 ]; then exit "$tests"; fi
    [ "$lint" -eq 0 ] || exit 1
    exit "$tests"
) >"$rest_log" 2>&1 </dev/null &
rest_pid=$!
set +m
trap 'kill -TERM -- "-$rest_pid" 2>/dev/null || true' INT TERM

e2e_workers=${HOTLINE_E2E_WORKERS:-2}
if [ "$e2e_workers" != 0 ] && ! .venv/bin/python -m testbed.netns true; then
    echo "test.sh: no network namespaces here: the end-to-end tests run one at a time" >&2
    e2e_workers=0
fi
e2e_status=0
.venv/bin/pytest -n "$e2e_workers" --dist worksteal --durations=15 \
    -m "($e2e) and not solo" ${args[@]+"${args[@]}"} || e2e_status=$?
rest_status=0
wait "$rest_pid" || rest_status=$?
trap - INT TERM
# Last, on a box with nothing else running: the tests whose verdict is a timing the caller
# hears (marker solo: the fault campaign's dead air under load).
solo_status=0
.venv/bin/pytest --durations=5 -m "($e2e) and solo" ${args[@]+"${args[@]}"} || solo_status=$?
printf '\n==== lint, types and the tests but end-to-end (%s)\n' "$rest_log"
cat "$rest_log"

for status in "$e2e_status" "$rest_status" "$solo_status"; do
    if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then exit "$status"; fi
done
if [ "$e2e_status" -eq 5 ] && [ "$rest_status" -eq 5 ] && [ "$solo_status" -eq 5 ]; then exit 5; fi
exit 0
