"""Which of a process's mappings grew between two readings of ``/proc/PID/smaps``.

RSS alone says a process grew, not where. The soak reads ``ivr serve``'s memory map after
every round and this module, pure over the two texts, names the regions that took the
growth: the main ``[heap]`` (brk: glibc's main arena), thread arenas (glibc gives a thread
that mallocs under contention an arena of its own, in heaps of up to 64 MiB aligned on 64 MiB,
the untouched rest reserved ``---p``), the other anonymous mappings (CPython's object arenas of
1 MiB, large mallocs that glibc serves with mmap; the kernel merges neighbours, so they are
summed rather than matched one by one), thread stacks, and file-backed mappings by path (a
library or a model mapped on first use shows up as new).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

ARENA_HEAP = 64 * 2**20  # glibc's HEAP_MAX_SIZE on 64-bit: a thread arena's heap and alignment
HEADER = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \d+\s*(.*)$")

HEAP, ARENAS, ANONYMOUS, STACKS = "[heap]", "thread arenas", "anonymous", "stacks"


@dataclass(frozen=True)
class Region:
    """One mapping of the map: its addresses, permissions, path (empty: anonymous) and the
    smaps fields in kB (``Rss``, ``Anonymous``, ``AnonHugePages``, ...)."""

    start: int
    end: int
    perms: str
    path: str
    kb: Mapping[str, int]

    @property
    def rss_kb(self) -> int:
        return self.kb.get("Rss", 0)


@dataclass(frozen=True)
class Growth:
    """A kind of mapping (or one file) and its resident kB in the two readings; ``new``:
    a file not mapped at all in the first."""

    name: str
    before_kb: int
    after_kb: int
    new: bool = False

    @property
    def kb(self) -> int:
        return self.after_kb - self.before_kb


def parse(text: str) -> list[Region]:
    """The regions of one ``/proc/PID/smaps`` text, in address order."""
    regions: list[Region] = []
    head: tuple[int, int, str, str] | None = None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        match = HEADER.match(line)
        if match:
            if head is not None:
                regions.append(Region(*head, fields))
            head = (int(match.group(1), 16), int(match.group(2), 16), match.group(3),
                    match.group(4).strip())
            fields = {}
        elif head is not None and line.endswith(" kB"):
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0])
    if head is not None:
        regions.append(Region(*head, fields))
    return regions


def is_thread_arena(region: Region, following: Region | None) -> bool:
    """A glibc thread arena's heap: anonymous, read-write, starting on a 64 MiB boundary and
    ending there or where the reserved ``---p`` rest of its 64 MiB ends."""
    if region.path or region.perms[:2] != "rw" or region.start % ARENA_HEAP:
        return False
    end = region.end
    if following is not None and not following.path and following.perms.startswith("---") \
            and following.start == region.end:
        end = following.end
    return end - region.start == ARENA_HEAP


def kind(region: Region, following: Region | None) -> str:
    if region.path == "[heap]":
        return HEAP
    if region.path.startswith("[stack"):
        return STACKS
    if region.path.startswith("["):  # [vdso], [vvar], [vsyscall]
        return region.path
    if region.path:
        return region.path.removesuffix(" (deleted)")
    if is_thread_arena(region, following):
        return ARENAS
    # A thread's stack is an anonymous rw mapping behind a guard page: counted with the
    # other anonymous memory, it is small next to the arenas.
    return ANONYMOUS


def resident_by_kind(regions: Sequence[Region]) -> dict[str, int]:
    """Resident kB per kind of mapping (files by path)."""
    totals: dict[str, int] = {}
    for i, region in enumerate(regions):
        name = kind(region, regions[i + 1] if i + 1 < len(regions) else None)
        totals[name] = totals.get(name, 0) + region.rss_kb
    return totals


def growth(before: str, after: str, min_kb: int = 256) -> list[Growth]:
    """The kinds of mapping whose resident size changed by ``min_kb`` or more from the
    ``before`` smaps text to the ``after`` one (and every file mapped since, whatever its
    size), the biggest change first."""
    old, new = resident_by_kind(parse(before)), resident_by_kind(parse(after))
    changes = [Growth(name, old.get(name, 0), new.get(name, 0),
                      new=name not in old and name.startswith("/"))
               for name in sorted(set(old) | set(new))]
    return sorted((g for g in changes if abs(g.kb) >= min_kb or g.new),
                  key=lambda g: (-abs(g.kb), g.name))


def summary(changes: Iterable[Growth]) -> str:
    """One line: ``[heap] +1.2 MB, libfoo.so (new) +3.0 MB``; ``-`` when nothing moved."""
    parts = [f"{g.name.rsplit('/', 1)[-1]}{' (new)' if g.new else ''} "
             f"{g.kb / 1024:+.1f} MB" for g in changes]
    return ", ".join(parts) or "-"
