"""The screens benchmark: how a browser reads frames and counts latencies, and one tiny real
run (a redis-server, an ``ivr serve``, 4 browsers, 3 calls) that must produce figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.screens.browsers import Frame, Latencies, frames
from benchmarks.screens.run import percentile, summary
from benchmarks.screens.world import viewers


def test_frames_are_read_as_eventsource_reads_them() -> None:
    """Complete frames come out (multi-line data joined), a partial frame stays in the
    buffer, comments and retry lines give nothing."""
    buffer = bytearray(b"retry: 1000\n\n: keepalive\n\nid: 5-0\nevent: activity\ndata: <li>\n"
                       b"data: x</li>\n\nid: 5-0\nevent: sta")
    assert list(frames(buffer)) == [Frame("activity", "5-0", "<li>\nx</li>")]
    assert buffer == bytearray(b"id: 5-0\nevent: sta")


def test_an_update_counts_until_the_state_that_includes_the_event() -> None:
    """An event's activity line counts at once; its update when a state fragment with its id
    (or a later one) arrives; entries before the measured window are left out."""
    seen = Latencies(measure_from_ms=1_000)
    seen.seen(Frame("activity", "900-0", ""), 0.95)  # warm-up: not counted
    seen.seen(Frame("activity", "1000-0", ""), 1.02)
    seen.seen(Frame("activity", "1010-0", ""), 1.03)
    seen.seen(Frame("agents", "1000-0", ""), 1.05)
    assert [round(x, 3) for x in seen.activity] == [0.02, 0.02]
    assert [round(x, 3) for x in seen.update] == [0.05]
    seen.seen(Frame("notice", None, ""), 1.2)
    seen.seen(Frame("queues", "1010-3", ""), 1.1)
    assert [round(x, 3) for x in seen.update] == [0.05, 0.09]


def test_a_mark_settles_the_updates_up_to_its_id() -> None:
    """An ``id`` alone (the service: the screen is current up to there) comes out of the
    buffer and counts as the update of the activity lines before it."""
    buffer = bytearray(b"id: 1000-0\nevent: activity\ndata: <li/>\n\nid: 1000-0\n\n")
    read = list(frames(buffer))
    assert read == [Frame("activity", "1000-0", "<li/>"), Frame("", "1000-0", "")]
    seen = Latencies(measure_from_ms=1_000)
    seen.seen(read[0], 1.01)
    seen.seen(read[1], 1.02)
    assert [round(x, 3) for x in seen.update] == [0.02]


def test_viewers_mix_wallboards_and_desks() -> None:
    """A wallboard for each of the first screens (every fourth of them ops'), one desk per
    agent for the rest."""
    people = viewers(8, 4, 2)
    assert [v.role for v in people[:4]] == ["supervisor", "supervisor", "supervisor", "ops"]
    assert {v.path for v in people[4:]} == {"/screens/desk/events"}
    assert [v.user for v in people[4:]] == ["bench001", "bench002", "bench003", "bench004"]
    assert percentile([3.0, 1.0, 2.0], 99) == 3.0 and percentile([], 50) is None


def test_the_summary_says_whether_the_target_is_met() -> None:
    """The command's last line: the three percentiles, met or missed against p99 <= 500 ms,
    the cost of a screen and the host's load."""
    figures = {"update_latency_ms": {"p50": 120.0, "p95": 300.0, "p99": 480.0},
               "cpu_ms_per_s_per_screen": 1.1, "frames_per_s_per_screen": 1.3,
               "kbytes_per_s_per_screen": 17.0, "load_average": [2.5, 3.0], "cpus": 2}
    line = summary(figures)
    assert line.startswith("update latency p50 120.0 / p95 300.0 / p99 480.0 ms "
                           "(target p99 <= 500 ms: met)")
    assert "1.1 ms CPU per second per screen" in line and "load average 2.5 -> 3.0" in line
    figures["update_latency_ms"]["p99"] = 501.0
    assert "missed" in summary(figures)


@pytest.mark.slow
def test_a_tiny_run_gives_figures(tmp_path) -> None:
    """The documented command, tiny: 4 browsers, 3 calls, 3-second windows; every browser
    connects, calls are in progress, the latencies and the CPU figures come out. (A process
    of its own: the benchmark runs its own event loop.)"""
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    out = tmp_path / "figures.json"
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.screens.run", "--screens", "4", "--wallboards", "1",
         "--calls", "3", "--seconds", "3", "--warmup", "3", "--json", str(out)],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["screens"] == 4 and figures["calls_started"] >= 3
    assert figures["frames_per_s_per_screen"] > 0 and figures["streams_refused_then_retried"] == 0
    assert figures["cpu_service_with_screens"] >= 0
