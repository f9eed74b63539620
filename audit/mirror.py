"""The append-only file copy of the audit chain: ``<audit dir>/audit.jsonl``.

One JSON object per line: an entry as it was chained (every field, ``prev`` and ``hash``
included) plus ``stream_id``. Lines are only ever appended (``O_APPEND``), never rewritten;
an entry replayed from the spool gets its line when it is chained, and a replay repeated after
a crash may write the same line twice (``ivr audit verify`` accepts identical copies).

fsync per entry, not per batch: ``record`` returns only once its entry is on disk, because the
access it records happens right after, and Redis (appendfsync everysec) may lose the last
second on a crash; audited accesses come at a person's pace (opening an order, changing a
state), so an fsync each (a millisecond or two, in a worker thread, off the reactor) costs
nothing a batch would save, and a batch would make each caller wait for the others.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

log = logging.getLogger(__name__)

MIRROR = "audit.jsonl"
SPOOL = "spool"
"""The spool's folder in the audit directory: entries written while Redis was away."""


class Mirror:
    """Appends lines to ``<directory>/audit.jsonl`` durably (each returns after fsync)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / MIRROR
        # A crash mid-write can leave a last line without its newline: start a fresh line.
        self._torn = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as mirror:
                mirror.seek(-1, os.SEEK_END)
                self._torn = mirror.read(1) != b"\n"

    def append(self, line: Mapping[str, str]) -> None:
        data = json.dumps(dict(line), ensure_ascii=True, separators=(",", ":")) + "\n"
        if self._torn:
            data = "\n" + data
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self._torn = False


def read_lines(path: Path) -> Iterator[tuple[int, dict[str, str] | None]]:
    """``(line number, the line's object)`` for each non-blank line; ``None`` for a line that
    is not a JSON object of strings (a torn write, or an edit)."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError:
                yield number, None
                continue
            if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
                yield number, value
            else:
                yield number, None
