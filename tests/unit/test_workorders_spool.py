"""The local spool file: durable appends, rotation into batches, torn lines."""

from __future__ import annotations

import errno
import json
import os

from workorders.spool import Spool


def test_append_then_read_in_order(tmp_path):
    """Records come back in the order written, as written, hostile strings included, one
    line each."""
    spool = Spool(tmp_path)
    records = [{"op_id": str(i), "text": 'q"\\${X}\n김'} for i in range(3)]
    for record in records:
        spool.append(record)
    assert list(spool.records()) == records
    assert len(spool.current.read_bytes().splitlines()) == 3
    assert spool.pending()


def test_empty_spool_is_not_pending(tmp_path):
    """A new spool directory has nothing to replay."""
    assert not Spool(tmp_path / "new").pending()


def test_rotate_freezes_a_batch_and_new_writes_go_elsewhere(tmp_path):
    """rotate() moves current writes into a batch; a write during the replay lands in a new
    current file, not in the batch being read; done() drops only that batch."""
    spool = Spool(tmp_path)
    spool.append({"op_id": "a"})
    (batch,) = spool.rotate()
    spool.append({"op_id": "b"})
    assert [r["op_id"] for r in spool.records(batch)] == ["a"]
    spool.done(batch)
    assert [r["op_id"] for r in spool.records()] == ["b"]
    assert spool.pending()


def test_leftover_batches_replay_first(tmp_path):
    """A batch left by a failed replay comes before newer batches and the current file."""
    spool = Spool(tmp_path)
    spool.append({"op_id": "old"})
    spool.rotate()
    spool.append({"op_id": "new"})
    batches = spool.rotate()
    assert [r["op_id"] for b in batches for r in spool.records(b)] == ["old", "new"]


def test_torn_last_line_is_repaired_and_skipped(tmp_path):
    """A line cut by a crash mid-write is skipped, and the next record is not glued to it."""
    spool = Spool(tmp_path)
    spool.append({"op_id": "whole"})
    with spool.current.open("ab") as file:
        file.write(b'{"op_id": "cut')
    reopened = Spool(tmp_path)
    reopened.append({"op_id": "after"})
    assert [r["op_id"] for r in reopened.records()] == ["whole", "after"]


def test_records_are_json_lines(tmp_path):
    """The file is plain JSON lines, readable by ops with any tool."""
    spool = Spool(tmp_path)
    spool.append({"op_id": "x", "op": "create"})
    assert json.loads(spool.current.read_text()) == {"op_id": "x", "op": "create"}


def test_a_full_disk_leaves_no_torn_record_behind(tmp_path, monkeypatch):
    """A disk that fills up mid-record (the write takes half the line, the next one fails
    with ENOSPC): append raises, the half line is cut off again, and once there is room the
    next record is read back whole, after the earlier ones."""
    spool = Spool(tmp_path)
    spool.append({"op_id": "before"})
    real_write = os.write
    calls = []

    def filling_disk(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("workorders.spool.os.write", filling_disk)
    try:
        spool.append({"op_id": "lost-to-the-full-disk", "pad": "x" * 100})
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    else:
        raise AssertionError("append said done on a full disk")
    monkeypatch.setattr("workorders.spool.os.write", real_write)
    spool.append({"op_id": "after"})
    assert [r["op_id"] for r in spool.records()] == ["before", "after"]


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    """os.write may take only part of the line without an error: append writes the rest
    before it says done."""
    spool = Spool(tmp_path)
    real_write = os.write
    monkeypatch.setattr("workorders.spool.os.write",
                        lambda fd, data: real_write(fd, data[:7]))
    spool.append({"op_id": "whole", "text": "a longer record than seven bytes"})
    monkeypatch.setattr("workorders.spool.os.write", real_write)
    assert list(spool.records()) == [{"op_id": "whole", "text": "a longer record than seven bytes"}]
