"""The load benchmark's one command, end to end at a tiny size (CI's short form).

Needs the real stack (Asterisk 22, redis-server, SIPp) and binds the fixed testbed ports: run
it under the machine's e2e lock like every e2e test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.e2e


def test_three_callers_step_prints_a_full_row(tmp_path: Path) -> None:
    """Three real SIP callers (one speaks, one presses a key, one hangs up in the menu) go
    through Asterisk and ``ivr serve``: every call is answered and completes, each hears the
    welcome, the speaker's and the key's requests are decided, and the row has CPU figures
    for Asterisk, ``ivr serve`` and redis-server."""
    out = tmp_path / "load.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load.run", "--steps", "3", "--step-s", "1",
         "--agents", "1", "--sentences", "1", "--mix", "speak=1,keys=1,menu-hangup=1",
         "--json", "--out", str(out), "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(done.stdout)
    assert (row["calls"], row["set_up_failures"], row["dropped"]) == (3, 0, 0), row
    assert row["completed"] == 3, row
    assert row["first_prompt_p99_ms"] is not None and row["first_prompt_p99_ms"] < 3000
    for name in ("asterisk", "ivr serve", "redis-server"):
        assert row["cpu_pct"][name] >= 0 and row["rss_mb"][name] > 0
    calls = json.loads(out.read_text())["calls"]["3"]
    by_kind = {call["kind"]: call for call in calls}
    assert by_kind["menu-hangup"]["reached"] == "hung-up"
    assert by_kind["keys"]["reached"] in ("agent", "operator")
    assert by_kind["keys"]["category"] == by_kind["keys"]["expected_category"]
    assert by_kind["speak"]["category"] is not None
