"""The disk's fsync floor: what one small append plus ``fsync`` costs in a directory.

With ``appendfsync always`` Redis appends each write (or each event-loop turn's writes) to
its AOF and fsyncs before it replies, so no creation answers faster than this: the floor
under the ``always`` latencies, measured in the directory the benchmark's redis-server keeps
its AOF in (same file system, same disk). The rest of a creation's latency is ours (client,
Redis's CPU, the round trip).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.workorders.latency import latency_ms

#: About what the AOF gets per creation (the create script's call, replicated as its effects).
RECORD = b"*3\r\n$4\r\nHSET\r\n" + b"x" * 480 + b"\r\n"


@dataclass(frozen=True)
class FsyncFloor:
    """``count`` appends of ``RECORD`` each followed by ``fsync``; seconds each, sorted."""

    directory: str
    count: int
    latencies: tuple[float, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "directory": self.directory,
            "fsyncs": self.count,
            **latency_ms(self.latencies),
        }


def fsync_floor(directory: str | os.PathLike[str], count: int = 1000) -> FsyncFloor:
    """Append and fsync ``count`` times to a scratch file in ``directory`` (removed after)."""
    path = Path(directory) / "fsync-floor.scratch"
    latencies: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(count):
            at = time.perf_counter()
            os.write(fd, RECORD)
            os.fsync(fd)
            latencies.append(time.perf_counter() - at)
    finally:
        os.close(fd)
        path.unlink(missing_ok=True)
    return FsyncFloor(str(directory), count, tuple(sorted(latencies)))
