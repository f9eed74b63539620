"""The fault campaign's benchmark command with real SIP callers, at CI's size: a few SIP
callers with RTP audio (the load benchmark's fleet) on the line while Redis is killed and
while Asterisk restarts.

Needs the real stack (Asterisk 22, redis-server, SIPp) and binds the testbed's fixed ports:
run it under the machine's e2e lock like every e2e test. Its verdict is dead air heard in
real time: scripts/test.sh runs it alone (solo).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
pytestmark = [pytest.mark.e2e, pytest.mark.solo]


def test_sip_callers_ride_out_redis_kill_and_asterisk_restart() -> None:
    """Four SIP callers each: under redis-server's ``kill -9`` none hears 2 s of dead air,
    none is dropped, every order is kept once and a caller after the heal reaches an agent;
    Asterisk's restart ends the calls it carries (counted apart) and loses no order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load.faults", "--callers", "sip", "--calls", "4",
         "--seconds", "10", "--only", "redis-kill,asterisk-restart", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    results = {row["scenario"]: row for row in map(json.loads, done.stdout.splitlines())}
    assert set(results) == {"redis-kill", "asterisk-restart"}, done.stderr[-3000:]
    for name, row in results.items():
        assert row["problems"] == [], (name, row)
        assert row["calls"] >= 4 and row["recovery_s"] is not None, (name, row)
        assert (row["orders_lost"], row["orders_doubled"]) == (0, 0), (name, row)
    assert results["redis-kill"]["dropped"] == 0
    assert results["redis-kill"]["longest_dead_air_s"] <= 2.0
    assert done.returncode == 0, done.stderr[-3000:]
