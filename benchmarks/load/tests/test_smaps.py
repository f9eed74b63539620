"""Which mappings grew between two smaps readings (``benchmarks.load.smaps``): fixture text
in the kernel's format, no process read."""

from __future__ import annotations

from benchmarks.load.smaps import ANONYMOUS, ARENAS, HEAP, STACKS, growth, parse, summary


def region(start: int, end: int, perms: str, path: str, rss_kb: int) -> str:
    """One smaps entry as the kernel writes it (the fields this module reads and a few
    it must skip)."""
    offset_dev_inode = "00000000 fe:00 260131" if path.startswith("/") else "00000000 00:00 0"
    return (f"{start:x}-{end:x} {perms} {offset_dev_inode}                     {path}\n"
            f"Size:               {(end - start) // 1024} kB\n"
            f"KernelPageSize:        4 kB\n"
            f"Rss:                {rss_kb} kB\n"
            f"Pss:                {rss_kb} kB\n"
            f"Anonymous:          {0 if path.startswith('/') else rss_kb} kB\n"
            f"AnonHugePages:         0 kB\n"
            f"THPeligible:           0\n"
            f"VmFlags: rd wr mr mw me ac \n")


MIB = 2**20
ARENA_AT = 0x7F0000000000  # 64 MiB aligned, where glibc puts a thread arena's heap


def reading(heap_kb: int, arena_kb: int, anon_kb: int, extra: str = "",
            arena_rw_mib: int = 4) -> str:
    return "".join([
        region(0x555500000000, 0x555500001000, "r--p", "/usr/bin/python3.11", 4),
        region(0x555500100000, 0x555503100000, "rw-p", "[heap]", heap_kb),
        # A thread arena: the read-write part it has used, the rest of its 64 MiB reserved.
        region(ARENA_AT, ARENA_AT + arena_rw_mib * MIB, "rw-p", "", arena_kb),
        region(ARENA_AT + arena_rw_mib * MIB, ARENA_AT + 64 * MIB, "---p", "", 0),
        # CPython's object arenas and big mallocs: anonymous, not on the 64 MiB grid.
        region(0x7F1000100000, 0x7F1001100000, "rw-p", "", anon_kb),
        region(0x7F2000000000, 0x7F2000100000, "r-xp", "/usr/lib/libc.so.6", 900),
        extra,
        region(0x7FFD00000000, 0x7FFD00021000, "rw-p", "[stack]", 132),
    ])


def test_a_reading_is_parsed_into_regions_with_their_fields() -> None:
    regions = parse(reading(heap_kb=30_000, arena_kb=2_000, anon_kb=8_000))
    assert [r.path for r in regions] == ["/usr/bin/python3.11", "[heap]", "", "", "",
                                         "/usr/lib/libc.so.6", "[stack]"]
    heap = regions[1]
    assert (heap.start, heap.end, heap.perms, heap.rss_kb) == (0x555500100000, 0x555503100000,
                                                               "rw-p", 30_000)
    assert heap.kb["Anonymous"] == 30_000 and "THPeligible" not in heap.kb


def test_growth_names_the_heap_the_thread_arenas_and_the_other_anonymous_memory() -> None:
    """Each kind is summed and compared; changes under the threshold are left out and the
    biggest comes first."""
    before = reading(heap_kb=30_000, arena_kb=2_000, anon_kb=8_000)
    after = reading(heap_kb=30_100, arena_kb=17_000, anon_kb=9_024, arena_rw_mib=20)
    changes = growth(before, after)
    assert [(g.name, g.before_kb, g.after_kb) for g in changes] == [
        (ARENAS, 2_000, 17_000), (ANONYMOUS, 8_000, 9_024)]
    assert changes[0].kb == 15_000
    assert summary(changes) == "thread arenas +14.6 MB, anonymous +1.0 MB"
    assert [g.name for g in growth(before, after, min_kb=50)] == [ARENAS, ANONYMOUS, HEAP]


def test_a_second_arena_created_by_a_new_thread_adds_to_the_arenas() -> None:
    at = ARENA_AT + 64 * MIB
    second = (region(at, at + 2 * MIB, "rw-p", "", 1_500)
              + region(at + 2 * MIB, at + 64 * MIB, "---p", "", 0))
    changes = growth(reading(30_000, 2_000, 8_000), reading(30_000, 2_000, 8_000, second))
    assert [(g.name, g.kb) for g in changes] == [(ARENAS, 1_500)]


def test_anonymous_memory_off_the_64_mib_grid_or_not_64_mib_long_is_not_an_arena() -> None:
    """Aligned by chance but not an arena's 64 MiB with its reserve: plain anonymous."""
    at = ARENA_AT + 128 * MIB
    aligned = region(at, at + 8 * MIB, "rw-p", "", 4_000)
    changes = growth(reading(30_000, 2_000, 8_000), reading(30_000, 2_000, 8_000, aligned))
    assert [(g.name, g.kb) for g in changes] == [(ANONYMOUS, 4_000)]


def test_a_library_mapped_late_is_named_new_whatever_its_size() -> None:
    """A file mapped since the first reading (a library or a model loaded on first use) is
    reported even when small; files are summed per path, ``(deleted)`` ignored."""
    lib = (region(0x7F3000000000, 0x7F3000010000, "r--p", "/opt/lib/libvosk.so", 40)
           + region(0x7F3000010000, 0x7F3000020000, "r-xp", "/opt/lib/libvosk.so (deleted)",
                    60))
    changes = growth(reading(30_000, 2_000, 8_000), reading(30_000, 2_000, 8_000, lib))
    assert [(g.name, g.before_kb, g.after_kb, g.new) for g in changes] == [
        ("/opt/lib/libvosk.so", 0, 100, True)]
    assert summary(changes) == "libvosk.so (new) +0.1 MB"


def test_stacks_and_nothing_moved() -> None:
    same = reading(30_000, 2_000, 8_000)
    assert growth(same, same) == [] and summary([]) == "-"
    bigger_stack = same.replace("Rss:                132 kB", "Rss:                900 kB")
    assert [(g.name, g.kb) for g in growth(same, bigger_stack)] == [(STACKS, 768)]
