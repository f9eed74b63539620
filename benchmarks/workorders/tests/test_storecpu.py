"""The store-only CPU figure runs at a tiny size and gives a plausible number."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.workorders.storecpu import cpu_per_creation
from ivr.testing import on_asyncio

ROOT = Path(__file__).resolve().parents[3]


@on_asyncio
async def test_cpu_per_creation_is_measured() -> None:
    """Creations through the real store with their round trip answered in process: a CPU
    time per creation above zero and below a second."""
    seconds = await cpu_per_creation(40, 4)
    assert 0 < seconds < 1


def test_the_command_prints_it() -> None:
    """The documented command, in its own process, prints the figure and its sizes."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.workorders.storecpu", "--orders", "20",
         "--tasks", "2"], cwd=ROOT, check=True, capture_output=True, text=True, timeout=120,
    )
    assert "µs of client CPU per creation (20 creations, 2 coroutines)" in done.stdout
