"""The work-order benchmark runs end to end at tiny sizes and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_tiny_run_writes_every_figure(tmp_path: Path) -> None:
    """Creations (single, concurrent) under both fsync policies, the disk's fsync floor with
    'always', the bulk load and every read kind: each figure is present and plausible
    (creations per round trip, the harness's own CPU apart), and the JSON file is written."""
    out = tmp_path / "wo.json"
    # The documented command, in its own process (it runs its own asyncio loops).
    subprocess.run(
        [sys.executable, "-m", "benchmarks.workorders.run", "--single", "20", "--concurrent",
         "30", "--procs", "1", "--tasks", "3", "--orders", "600", "--queries", "5",
         "--fsync-floor", "20", "--out", str(out)],
        cwd=ROOT, check=True, capture_output=True, timeout=120,
    )
    result = json.loads(out.read_text())
    assert [c["appendfsync"] for c in result["creations"]] == ["everysec", "always"]
    # Which parser redis-py used: the client's CPU per creation depends on it.
    assert result["machine"]["redis_parser"] in ("hiredis", "python")
    for part in result["creations"]:
        single, concurrent = part["runs"]
        assert (single["orders"], concurrent["orders"]) == (20, 30)
        assert single["creations_per_s"] > 0 and 0 < single["p50_ms"] <= single["p99_ms"]
        # Group commit: never more round trips than creations; one client sends one by one.
        assert single["creations_per_round_trip"] == 1.0
        assert concurrent["creations_per_round_trip"] >= 1.0
        # The timing loop's own CPU, apart from the store's: a small share of the client's.
        for run in (single, concurrent):
            assert 0 < run["harness_cpu_us_per_order"] < run["client_cpu_us_per_order"]
        assert part["bytes_per_order_via_store"] > 500
    # The disk's fsync floor beside the 'always' creations (only there).
    everysec, always = result["creations"]
    assert "fsync_floor" not in everysec
    floor = always["fsync_floor"]
    assert floor["fsyncs"] == 20 and 0 < floor["p50_ms"] <= floor["p99_ms"] <= floor["max_ms"]
    listing = result["listing"]
    assert listing["orders"] == 600 and listing["bytes_per_order_bulk"] > 500
    assert len(listing["reads"]) == 5
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 for r in listing["reads"])
    assert listing["reads"][0]["ids_per_answer"] > 0
