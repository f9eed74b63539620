"""A local append-only spool of work order writes made while Redis was unreachable.

One JSON object per line, written with ``fsync`` before the caller is told "done", so a
crash right after a spooled write loses nothing. Every record carries an ``op_id``: the store
records applied op ids in Redis, so a record replayed twice (crash mid-replay, a timeout whose
command did reach Redis) is applied once.

Files in the spool directory:

- ``current.jsonl``: where new records are appended;
- ``replay-<ns>.jsonl``: ``current.jsonl`` renamed when a replay starts (``rotate()``), so
  writes that arrive during the replay go to a fresh ``current.jsonl`` and the batch being
  replayed never changes under the reader. Deleted once every record in it is applied; one
  that survives a failed replay is replayed first next time (names sort by age).

Blocking file I/O on purpose: it only happens while Redis is down (degraded mode), a line and
an fsync per write, and it must be on disk before we answer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CURRENT = "current.jsonl"
BATCH_GLOB = "replay-*.jsonl"


class Spool:
    """The spool directory: append, rotate into batches, read batches, drop replayed ones."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()

    @property
    def current(self) -> Path:
        return self.directory / CURRENT

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (returns after fsync)."""
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n"
        created = not self.current.exists()
        fd = os.open(self.current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                data = line.encode("ascii")
                while data:  # a write may take part of the line (a disk filling up)
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError:
                # A full disk can keep part of the line: cut it off, or the next record
                # would be glued to it and both would be unreadable.
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
        if created:
            self._fsync_directory()

    def pending(self) -> bool:
        """Whether any record waits for replay."""
        return self.current.exists() or any(self.directory.glob(BATCH_GLOB))

    def rotate(self) -> list[Path]:
        """Every batch to replay, oldest first, after moving ``current.jsonl`` into a batch."""
        if self.current.exists():
            self.current.rename(self.directory / f"replay-{time.time_ns():020d}.jsonl")
            self._fsync_directory()
        return sorted(self.directory.glob(BATCH_GLOB))

    def records(self, batch: Path | None = None) -> Iterator[dict[str, Any]]:
        """The records of one batch, or of every pending file in replay order."""
        paths = [batch] if batch else [*sorted(self.directory.glob(BATCH_GLOB)), self.current]
        for path in paths:
            if not path.exists():
                continue
            with path.open("rb") as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except ValueError:
                        # Only a crash in the middle of a write leaves such a line, and that
                        # write was never acknowledged to its caller.
                        log.error("spool %s:%d: unreadable record skipped: %r", path, number, line)
                        continue
                    yield record

    def done(self, batch: Path) -> None:
        """Drop a batch whose every record is applied."""
        batch.unlink(missing_ok=True)
        self._fsync_directory()

    def _repair_torn_tail(self) -> None:
        # A crash mid-write can leave a line without its newline; the next record must not be
        # glued to it.
        if self.current.exists() and self.current.stat().st_size:
            with self.current.open("rb+") as spool:
                spool.seek(-1, os.SEEK_END)
                if spool.read(1) != b"\n":
                    spool.write(b"\n")
                    spool.flush()
                    os.fsync(spool.fileno())

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
