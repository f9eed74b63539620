"""CPU time and memory of the stack's processes, from /proc (Linux): read at a step's start
and end, the difference is the step's CPU; RSS is sampled while it runs and the peak kept."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (its children not included)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14, 15


def with_children(pid: int) -> list[int]:
    """``pid`` and its child processes (``ivr serve``'s speech decoder processes, whose CPU
    and memory are the service's too)."""
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *children]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def share_of_box(cpu_s: float, wall_s: float, cores: int | None = None) -> float:
    """CPU seconds over ``wall_s`` as a percentage of the whole machine (all cores)."""
    cores = cores or os.cpu_count() or 1
    return 100.0 * cpu_s / (wall_s * cores) if wall_s > 0 else 0.0


@dataclass
class ProcessWatch:
    """CPU seconds between ``start()`` and ``stop()`` and peak RSS of named processes; a
    name maps to several pids (the agents' softphones) and they are summed."""

    pids: Mapping[str, list[int]]
    interval_s: float = 1.0
    cpu_s: dict[str, float] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._start: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _cpu(self, name: str) -> float:
        total = 0.0
        for pid in self.pids[name]:
            with contextlib.suppress(OSError):
                total += cpu_seconds(pid)
        return total

    def _sample_rss(self) -> None:
        for name, pids in self.pids.items():
            rss = 0
            for pid in pids:
                with contextlib.suppress(OSError):
                    rss += rss_bytes(pid)
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample_rss()

    def start(self) -> None:
        self._start = {name: self._cpu(name) for name in self.pids}
        self._sample_rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample_rss()
        self.cpu_s = {name: self._cpu(name) - self._start[name] for name in self.pids}
