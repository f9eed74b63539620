"""Recordings against a real redis-server: the pipeline stores metadata (with the wrapped
key, never the audio) and indexes; listing by agent and call; crypto-erase with its deletion
record; legal hold on the recording or on its work order (``legal_hold`` = "1" in the order
hash) blocks the purge; rewrap after a master key rotation; and ``ivr recordings`` end to
end on the command line."""

from __future__ import annotations

import base64
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hotline.cli import build_parser
from ivr.testing import on_asyncio
from recordings.capture import IngestOutcome
from recordings.catalog import Due, Erased, RedisCatalog
from recordings.cli import main
from recordings.crypto import RecordingVault
from recordings.pipeline import Pipeline
from recordings.purge import purge, rewrap
from recordings.retry import RetryArea
from recordings.schema import RetentionSettings
from recordings.storage import DirectoryStore
from recordings.testing import FakeAlarms, raw_recording, run_inline
from recordings.transcode import FfmpegTranscoder
from testbed.redis import connect

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
OLD, NEW = RecordingVault.new_master_key(), RecordingVault.new_master_key()
YEAR = 365.25 * 86400
NOW = 2_000_000_000.0


class Stack:
    def __init__(self, client, prefix: str, tmp: Path, vault: RecordingVault) -> None:
        self.client, self.prefix = client, prefix
        self.catalog = RedisCatalog(client, prefix)
        self.store = DirectoryStore(tmp / "store")
        self.vault = vault
        self.pipeline = Pipeline(
            transcoder=FfmpegTranscoder("opus"), storage=self.store, catalog=self.catalog,
            vault=lambda: self.vault, retry=RetryArea(tmp / "retry"), alarms=FakeAlarms(),
            clock=lambda: NOW, run_blocking=run_inline,
        )
        self.tmp = tmp

    async def record(self, n: int, agent: str, *, order: str | None, ended: float,
                     call_id: str | None = None, leg: str = "call"):
        folder = self.tmp / f"call-{n}"
        folder.mkdir()
        raw = raw_recording(folder, call_id=call_id or f"c-{n}", agent=agent,
                            work_order_id=order, started_at=ended - 60, ended_at=ended, leg=leg)
        done = await self.pipeline.ingest(raw)
        assert done.outcome is IngestOutcome.STORED, done.detail
        return raw.recording_id


@on_asyncio
async def test_stored_recordings_are_listed_erased_and_held(redis_server, prefix, tmp_path):
    """The metadata hash holds the wrapped key and the checksum but no audio; listing by
    agent and by call works; the purge erases what is due (hash, indexes and object gone,
    a deletion record without personal data) and keeps what is held on the recording or on
    its work order, until released."""
    client = connect(redis_server.url)
    stack = Stack(client, prefix, tmp_path, RecordingVault(OLD, versions=["1"]))
    old = NOW - 5 * YEAR
    due = await stack.record(1, "agent101", order=None, ended=old)
    held = await stack.record(2, "agent101", order=None, ended=old)
    order_held = await stack.record(3, "agent103", order="77", ended=old)
    fresh = await stack.record(4, "agent103", order=None, ended=NOW - 10)

    stored = await client.hgetall(f"{prefix}rec:{due}")
    assert stored[b"master"] == b"1" and len(base64.b64decode(stored[b"wrapped_key"])) == 60
    assert b"OggS" not in b"".join(stored.values())
    listed = await stack.catalog.newest(agents=["agent103"])
    assert [m.recording_id for m in listed] == [fresh, order_held]
    assert [m.recording_id for m in await stack.catalog.newest(call_id="c-2")] == [held]

    await stack.catalog.set_hold(held, True, "case 17")
    await client.hset(f"{prefix}wo:77", mapping={
        "status": "closed", "updated_at": "2026-01-01T00:00:00.000000Z",
        "retain_until": "2027-01-01T00:00:00.000000Z", "legal_hold": "1"})
    policy = RetentionSettings()
    report = await purge(stack.catalog, stack.store, policy, NOW, run_blocking=run_inline)
    assert (report.checked, report.due, report.held, report.kept) == (4, [due], 2, 1)
    assert not await client.exists(f"{prefix}rec:{due}")
    assert await client.zscore(f"{prefix}rec:index", due) is None
    assert not await client.sismember(f"{prefix}rec:by-call:c-1", due)
    assert not stack.store.path_of(due).exists()
    [record] = await stack.catalog.deletions()
    assert set(record) == {"recording_id", "reason", "recorded_on", "deleted_at", "by"}
    assert record["recording_id"] == due and "agent" not in str(record)

    # A hold set after the pass read the facts still blocks the erase (checked in the script).
    assert await stack.catalog.erase([Due(held, NOW, "test")], "test", NOW) == [Erased.HELD]
    await stack.catalog.set_hold(held, False, "")
    await client.hset(f"{prefix}wo:77", "legal_hold", "0")
    report = await purge(stack.catalog, stack.store, policy, NOW, run_blocking=run_inline)
    assert sorted(report.due) == sorted([held, order_held]) and report.kept == 1
    await client.aclose()


@on_asyncio
async def test_rewrap_after_a_master_key_rotation(redis_server, prefix, tmp_path):
    """After a new master key is put first, ``rewrap`` re-wraps every recording's data key
    under it (audio untouched); the old key alone then opens nothing; a second run finds
    all current."""
    client = connect(redis_server.url)
    stack = Stack(client, prefix, tmp_path, RecordingVault(OLD, versions=["1"]))
    rid = await stack.record(1, "agent101", order=None, ended=NOW)
    before = stack.store.get(rid)
    rotated = RecordingVault(NEW, [OLD], versions=["2", "1"])
    report = await rewrap(stack.catalog, lambda: rotated)
    assert (report.rewrapped, report.current, report.failed) == (1, 0, {})
    meta = await stack.catalog.get(rid)
    assert meta.master == "2" and stack.store.get(rid) == before
    assert RecordingVault(NEW, versions=["2"]).open(meta.sealed(before)).startswith(b"OggS")
    again = await rewrap(stack.catalog, lambda: rotated)
    assert (again.rewrapped, again.current) == (0, 1)
    await client.aclose()


def test_the_command_line(redis_server, prefix, tmp_path, monkeypatch):
    """``ivr recordings list|get|hold|release|purge`` against the service's Redis: list and
    get (the decrypted audio to a file) with a reason, hold blocks the purge, each access and
    each purge (not a dry run) in the audit log; a deleted id exits 1."""
    import asyncio

    monkeypatch.setenv("HOTLINE__REDIS__URL", redis_server.url)
    monkeypatch.setenv("HOTLINE__REDIS__KEY_PREFIX", f"'{prefix}'")
    monkeypatch.setenv("HOTLINE__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("HOTLINE_MASTER_KEY", "1:" + base64.b64encode(OLD).decode())

    async def seed() -> str:
        client = connect(redis_server.url)
        stack = Stack(client, prefix, tmp_path, RecordingVault(OLD, versions=["1"]))
        stack.store = DirectoryStore(tmp_path / "spool" / "recordings")
        stack.pipeline.storage = stack.store
        rid = await stack.record(1, "agent101", order=None, ended=time.time() - 5 * YEAR)
        await client.aclose()
        return rid

    def run(*argv: str) -> tuple[int, str, str]:
        args = build_parser().parse_args(["--config", str(CONFIG_DIR), "recordings", *argv])
        out, err = io.StringIO(), io.StringIO()
        code = main(args, out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    with ThreadPoolExecutor(1) as pool:  # the commands run asyncio.run themselves
        rid = pool.submit(asyncio.run, seed()).result()
        code, out, _ = pool.submit(run, "list", "--reason", "monthly QA", "--as", "quinn").result()
        assert code == 0 and rid in out and "agent101" in out
        target = tmp_path / "out.ogg"
        code, _, err = pool.submit(run, "get", rid, "--reason", "complaint 17",
                                   "--output", str(target)).result()
        assert code == 0 and target.read_bytes().startswith(b"OggS"), err
        code, out, _ = pool.submit(run, "hold", rid, "--reason", "case 2026-77").result()
        assert (code, out.strip()) == (0, f"{rid}: on legal hold")
        code, out, _ = pool.submit(run, "purge").result()
        assert code == 0 and "0 deleted, 1 on legal hold" in out
        code, out, _ = pool.submit(run, "release", rid, "--reason", "case closed").result()
        code, out, _ = pool.submit(run, "purge", "--dry-run").result()
        assert code == 0 and f"due     {rid}" in out and "1 due for deletion" in out
        code, out, _ = pool.submit(run, "purge").result()
        assert code == 0 and f"deleted {rid}" in out
        code, _, err = pool.submit(run, "get", rid, "--reason", "again").result()
        assert code == 1 and "no recording" in err

        async def audit_actions() -> list[bytes]:
            client = connect(redis_server.url)
            entries = await client.xrange(f"{prefix}audit")
            await client.aclose()
            return [fields[b"action"] for _, fields in entries]

        actions = pool.submit(asyncio.run, audit_actions()).result()
    assert actions == [b"recording.list", b"recording.play", b"recording.hold",
                       b"recording.purge", b"recording.release", b"recording.purge"]


def test_the_command_line_lists_a_call_with_its_callbacks(redis_server, prefix, tmp_path,
                                                          monkeypatch):
    """A call's recording and its callback's (one recording per call leg, the same call id
    and work order) are listed together by ``ivr recordings list --call`` and ``--order``,
    newest first, the callback's line marked ``callback``; ``--json`` carries ``leg``; the
    order's filter leaves other orders' recordings out."""
    import asyncio

    monkeypatch.setenv("HOTLINE__REDIS__URL", redis_server.url)
    monkeypatch.setenv("HOTLINE__REDIS__KEY_PREFIX", f"'{prefix}'")
    monkeypatch.setenv("HOTLINE__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("HOTLINE_MASTER_KEY", "1:" + base64.b64encode(OLD).decode())

    async def seed() -> tuple[str, str]:
        client = connect(redis_server.url)
        stack = Stack(client, prefix, tmp_path, RecordingVault(OLD, versions=["1"]))
        now = time.time()
        call = await stack.record(1, "agent101", order="WO-9", ended=now - 3600, call_id="c-9")
        back = await stack.record(2, "agent103", order="WO-9", ended=now - 60, call_id="c-9",
                                  leg="callback")
        await stack.record(3, "agent101", order="WO-8", ended=now - 30)
        await client.aclose()
        return call, back

    def run(*argv: str) -> tuple[int, str]:
        args = build_parser().parse_args(["--config", str(CONFIG_DIR), "recordings", *argv])
        out = io.StringIO()
        return main(args, out=out, err=io.StringIO()), out.getvalue()

    with ThreadPoolExecutor(1) as pool:  # the commands run asyncio.run themselves
        call, back = pool.submit(asyncio.run, seed()).result()
        for narrowed in (["--call", "c-9"], ["--order", "WO-9"]):
            code, out = pool.submit(run, "list", "--reason", "complaint 9", *narrowed).result()
            lines = out.splitlines()
            assert code == 0 and [line.split()[0] for line in lines] == [back, call], out
            assert lines[0].endswith("  callback") and not lines[1].endswith("callback")
            code, out = pool.submit(run, "list", "--reason", "complaint 9", "--json",
                                    *narrowed).result()
            shown = [json.loads(line) for line in out.splitlines()]
            assert [(m["leg"], m["call_id"], m["work_order_id"]) for m in shown] == [
                ("callback", "c-9", "WO-9"), ("call", "c-9", "WO-9")]


@on_asyncio
async def test_a_pass_over_many_batches_erases_every_due_recording(redis_server, prefix):
    """Thirty due recordings read seven at a time, one young and one held: every due one is
    erased (erasing does not shift the reads), each with its deletion record; the young one
    is not even read (ended too recently to be due), the held one stays."""
    from recordings.testing import sample_meta

    client = connect(redis_server.url)
    catalog = RedisCatalog(client, prefix)
    old = NOW - 4 * YEAR
    for n in range(30):
        await catalog.add(sample_meta(f"rec-{n:02d}", ended_at=old + n, started_at=old + n - 60,
                                      work_order_id=None, call_id=f"c-{n}"))
    await catalog.add(sample_meta("rec-young", ended_at=NOW - 10, work_order_id=None))
    await catalog.add(sample_meta("rec-held", ended_at=old, work_order_id=None,
                                  legal_hold=True))
    store = DirectoryStore(Path("/nonexistent"))  # nothing to delete: the objects are absent
    report = await purge(catalog, store, RetentionSettings(), NOW, batch_size=7,
                         run_blocking=run_inline)
    assert sorted(report.due) == [f"rec-{n:02d}" for n in range(30)]
    assert (report.checked, report.held, report.kept) == (32, 1, 1)
    assert await client.zrange(f"{prefix}rec:index", 0, -1) == [b"rec-held", b"rec-young"]
    assert len(await catalog.deletions(100)) == 30
    await client.aclose()
