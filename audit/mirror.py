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
from collections.abc import Iterator
from pathlib import Path

from workorders.spool import Spool

MIRROR = "audit.jsonl"
SPOOL = "spool"
"""The spool's folder in the audit directory: entries written while Redis was away."""


class Mirror(Spool):
    """``<directory>/audit.jsonl``: each ``append`` returns after fsync, a line cut by a
    crash is ended before the next one. The work order spool's file discipline, on one file
    that is never rotated."""

    @property
    def current(self) -> Path:
        return self.directory / MIRROR

    def rotate(self) -> list[Path]:
        raise TypeError("the audit mirror is append-only: it is never rotated")


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
