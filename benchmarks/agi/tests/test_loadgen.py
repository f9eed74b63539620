"""The load generator's figures, and one short real run against each kind of server."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

from benchmarks.agi.loadgen import LoadSpec, run_load, summarize
from benchmarks.agi.run import SERVERS, _free_port, running


def worker_result(turnarounds_ns: list[int], sessions: int, commands: int) -> dict:
    counts = {
        "sessions": sessions,
        "commands": commands,
        "session_commands": commands,
        "cpu_s": 0.5,
    }
    return {
        "counts": counts,
        "turnarounds": array("q", turnarounds_ns).tobytes(),
        "session_times": array("q", [50_000_000] * sessions).tobytes(),
    }


def test_summarize_merges_workers_and_takes_percentiles():
    """Counts add up across workers; percentiles come from the merged turnarounds (in us)."""
    spec = LoadSpec(port=1, concurrency=2, duration=2.0)
    results = [
        worker_result([1_000 * i for i in range(1, 51)], 5, 50),
        worker_result([1_000 * i for i in range(51, 101)], 5, 50),
    ]
    figures = summarize(spec, results, server_cpu_s=0.01, memory=[], load_average=(0, 0, 0))
    assert figures["sessions_per_s"] == 5.0
    assert figures["commands_per_s"] == 50.0
    assert figures["commands_per_session"] == 10.0
    assert figures["turnaround_us"]["p50"] == 51.0
    assert figures["turnaround_us"]["p99"] == 100.0
    assert figures["server_cpu_us_per_session"] == pytest.approx(1000.0)
    assert figures["generator_cpu_share"] == 0.5


@pytest.mark.slow
@pytest.mark.parametrize("key", ["ours", "panoramisk", "pyst2", "floor"])
def test_short_run_completes_menu_sessions(key, tmp_path: Path):
    """Against a real server process, callers complete ~11-command menus with no resets or
    stalls, and the server's CPU time is read from /proc."""
    spec = LoadSpec(port=_free_port(), concurrency=20, duration=1.5, warmup=0.7, ramp=0.3)
    with running(SERVERS[key], spec.port, tmp_path / "server.log") as process:
        figures = run_load(spec, process.pid)
    assert figures["sessions_per_s"] > 10
    assert 9 <= figures["commands_per_session"] <= 12
    assert figures["resets"] == figures["stalled"] == figures["runaway"] == 0
    assert figures["unknown_commands"] == 0
    assert figures["server_cpu_s"] > 0
    assert figures["memory"]["vmhwm_mb"] > 5
