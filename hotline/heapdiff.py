"""What grew on the heap between two moments: a leak hunt's diagnostic, off by default.

Run ``ivr serve`` with ``PYTHONTRACEMALLOC=N`` (N frames a trace) and send it SIGUSR2: each
signal writes a tracemalloc snapshot to ``$HOTLINE_HEAP_DIR`` (default: the system's temp
directory) as ``heap-<pid>-<n>.tracemalloc`` and logs its name. Only the snapshot is taken
on the reactor (a copy of the traces, in C, well under a second); grouping a heap of a
million blocks by line takes minutes in Python, which would stall every call, so that is
done afterwards, in another process: ``python -m hotline.heapdiff A B`` prints the lines and
call stacks that grew most from snapshot A to snapshot B.
``python -m benchmarks.load.soak --heap-diff`` sets the variables and signals after every
round, the same moment of the cycle each time. Without tracemalloc tracing the handler is not
installed: nothing runs, nothing is kept.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

HEAP_DIR_ENV = "HOTLINE_HEAP_DIR"


class HeapSnapshots:
    """Numbered snapshots of the traced heap, written to ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken = 0

    def take(self) -> Path:
        self.taken += 1
        path = self.directory / f"heap-{os.getpid()}-{self.taken}.tracemalloc"
        tracemalloc.take_snapshot().dump(str(path))
        return path


def install_on_signal(call_soon: Callable[[Callable[[], None]], Any],
                      signum: int = signal.SIGUSR2) -> HeapSnapshots | None:
    """Write a heap snapshot on ``signum`` when tracemalloc is tracing (the handler hands the
    work to ``call_soon``, e.g. the reactor's ``callFromThread``); None otherwise."""
    if not tracemalloc.is_tracing():
        return None
    directory = Path(os.environ.get(HEAP_DIR_ENV) or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    snapshots = HeapSnapshots(directory)

    def take() -> None:
        current, _peak = tracemalloc.get_traced_memory()
        log.warning("heap snapshot (traced %.1f MiB): %s", current / 2**20, snapshots.take())

    signal.signal(signum, lambda *_: call_soon(take))
    log.info("tracemalloc is tracing: SIGUSR2 writes a heap snapshot to %s", directory)
    return snapshots


def growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, lines: int = 25,
           stacks: int = 8) -> str:
    """The lines and the call stacks whose memory grew most from ``before`` to ``after``."""
    noise = (tracemalloc.Filter(False, tracemalloc.__file__),
             tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"))
    before, after = before.filter_traces(noise), after.filter_traces(noise)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    out = [f"traced growth {total / 1024:+.1f} KiB; by line:"]
    out += [f"  {stat}" for stat in after.compare_to(before, "lineno")[:lines]]
    out.append("by call stack:")
    for stat in after.compare_to(before, "traceback")[:stacks]:
        out.append(f"  {stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks")
        out += [f"      {frame}" for frame in stat.traceback.format()]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m hotline.heapdiff BEFORE.tracemalloc AFTER.tracemalloc",
              file=sys.stderr)
        return 2
    before, after = (tracemalloc.Snapshot.load(path) for path in argv)
    print(growth(before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
