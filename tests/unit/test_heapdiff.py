"""The leak hunt's diagnostic (``hotline.heapdiff``): off unless tracemalloc traces; then each
SIGUSR2 writes a snapshot, and two snapshots compare offline."""

from __future__ import annotations

import os
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hotline.heapdiff import HEAP_DIR_ENV, growth, install_on_signal


@pytest.fixture
def usr2_restored() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGUSR2)
    yield
    signal.signal(signal.SIGUSR2, previous)


def test_without_tracemalloc_nothing_is_installed(usr2_restored: None) -> None:
    """With tracemalloc not tracing (no PYTHONTRACEMALLOC) the service installs no handler:
    SIGUSR2 keeps its disposition and nothing is kept."""
    assert not tracemalloc.is_tracing()
    before = signal.getsignal(signal.SIGUSR2)
    assert install_on_signal(lambda work: work()) is None
    assert signal.getsignal(signal.SIGUSR2) is before


def test_each_signal_writes_a_snapshot_that_compares(
    usr2_restored: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While tracing, each SIGUSR2 hands the snapshot to the reactor (``call_soon``), which
    writes it numbered to $HOTLINE_HEAP_DIR; the comparison of two names what grew between
    them, by line."""
    monkeypatch.setenv(HEAP_DIR_ENV, str(tmp_path))
    queued: list[Callable[[], None]] = []
    tracemalloc.start(2)
    try:
        snapshots = install_on_signal(queued.append)
        assert snapshots is not None
        os.kill(os.getpid(), signal.SIGUSR2)
        queued.pop()()
        kept = [bytes(1000) for _ in range(200)]  # what "leaks" between the two
        os.kill(os.getpid(), signal.SIGUSR2)
        queued.pop()()
    finally:
        tracemalloc.stop()
    first, second = sorted(tmp_path.glob("heap-*.tracemalloc"))
    report = growth(tracemalloc.Snapshot.load(str(first)),
                    tracemalloc.Snapshot.load(str(second)))
    assert len(kept) == 200
    assert "test_heapdiff.py" in report.splitlines()[1]  # the top line is the list above
