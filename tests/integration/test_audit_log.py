"""The audit log against a real redis-server: chained appends from several instances, the
verification of the chain and the mirror files, the spool while Redis is away (chained once
on replay), the refusal when nothing can take an entry, and the list with its filters.

asyncio code: each test body runs as an asyncio Task (``on_asyncio``), as in the service.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from audit import AuditLog, AuditUnavailable
from audit import cli as auditcli
from audit.chain import GENESIS, link
from audit.log import stream_key
from audit.mirror import MIRROR, SPOOL
from audit.reading import Filters, entries, stream_entries, verify
from ivr.testing import on_asyncio
from testbed.redis import connect, free_port
from workorders.spool import Spool

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()
REPO = Path(__file__).resolve().parents[2]


async def record(log: AuditLog, n: int, **overrides: object) -> str:
    fields: dict[str, object] = {
        "user": "kim", "role": "supervisor", "action": "workorder.read",
        "obj": f"workorder:{n}", "address": "10.0.0.7", "now": T0 + n,
        **overrides,
    }
    return await log.record(**fields)  # type: ignore[arg-type]


async def stream(client: aioredis.Redis, prefix: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (i.decode(), {k.decode(): v.decode() for k, v in fields.items()})
        for i, fields in await client.xrange(stream_key(prefix))
    ]


async def rewrite(
    client: aioredis.Redis,
    prefix: str,
    change: Callable[[list[tuple[str, dict[str, str]]]], list[tuple[str, dict[str, str]]]],
) -> None:
    """Tamper with the stream as someone with Redis access could: rewrite it with the same
    stream ids, ``change`` applied to the list of entries."""
    rows = change(await stream(client, prefix))
    await client.delete(stream_key(prefix))
    for stream_id, fields in rows:
        await client.xadd(stream_key(prefix), fields, id=stream_id)


def messages(result) -> list[str]:
    return [str(finding) for finding in result.findings]


@on_asyncio
async def test_record_appends_a_chained_entry_and_its_copy(redis_server, prefix, tmp_path):
    """record() answers the audit id; the entry is in the stream with every field, linked to
    the chain's start, the head is its hash, the index knows its stream id, and the mirror
    file has the same entry with its stream id. The chain verifies intact."""
    client = connect(redis_server.url)
    log = AuditLog(client, tmp_path, prefix=prefix)
    audit_id = await log.record(
        user="kim", role="supervisor", action="workorder.export", obj="workorder:17",
        address="10.0.0.7", now=T0, reason="court order 12/26", details={"format": "csv"},
    )
    second = await record(log, 2)
    ((stream_id, fields), (_, after)) = await stream(client, prefix)
    assert fields == link({
        "id": audit_id, "time": "2026-11-28T09:00:00.000000Z", "user": "kim",
        "role": "supervisor", "action": "workorder.export", "object": "workorder:17",
        "address": "10.0.0.7", "reason": "court order 12/26", "details": '{"format":"csv"}',
    }, GENESIS)
    assert after["id"] == second and after["prev"] == fields["hash"]
    assert (await client.get(f"{prefix}audit:head")).decode() == after["hash"]
    assert (await client.hget(f"{prefix}audit:ids", audit_id)).decode() == stream_id
    copies = [json.loads(line) for line in (tmp_path / MIRROR).read_text().splitlines()]
    assert copies[0] == {**fields, "stream_id": stream_id}
    result = await verify(client, prefix, [tmp_path])
    assert result.intact and result.entries == 2 and not result.waiting
    await client.aclose()


@on_asyncio
async def test_two_instances_writing_concurrently_keep_one_chain(redis_server, prefix, tmp_path):
    """Two AuditLog instances (two connections, two directories) recording interleaved and
    concurrently make one chain: every entry once, every link valid, none left spooled; the
    stream reads the same in pages, either way."""
    clients = [connect(redis_server.url) for _ in range(2)]
    logs = [AuditLog(c, tmp_path / f"i{n}", prefix=prefix) for n, c in enumerate(clients)]
    answers: list[bytes] = []
    for log in logs:  # count the script's answers: the races must really happen
        script = log._script

        async def counted(*args, _script=script, **kwargs):
            answer = await _script(*args, **kwargs)
            answers.append(answer[0])
            return answer

        log._script = counted
    ids = await asyncio.gather(*(record(logs[n % 2], n, user=f"u{n % 2}") for n in range(200)))
    assert answers.count(b"appended") == 200 and answers.count(b"moved") > 50
    rows = await stream(clients[0], prefix)
    assert sorted(fields["id"] for _, fields in rows) == sorted(ids)
    assert not any(log.spool_pending for log in logs)
    result = await verify(clients[0], prefix, [tmp_path / "i0", tmp_path / "i1"])
    assert result.intact and result.entries == 200, messages(result)
    paged = [row async for row in stream_entries(clients[0], prefix, page=7)]
    backwards = [row async for row in stream_entries(clients[0], prefix, newest_first=True, page=7)]
    assert paged == rows and backwards == rows[::-1]
    for client in clients:
        await client.aclose()


async def chained_log(redis_server, prefix, tmp_path, n: int = 5):
    client = connect(redis_server.url)
    log = AuditLog(client, tmp_path, prefix=prefix)
    for i in range(n):
        await record(log, i)
    return client, await stream(client, prefix)


@on_asyncio
async def test_verify_finds_a_deleted_entry(redis_server, prefix, tmp_path):
    """XDEL of an entry in the middle: verify names the next entry, the prev it carries and
    the hash it expected; the index and the mirror file still know the deleted entry."""
    client, rows = await chained_log(redis_server, prefix, tmp_path)
    await client.xdel(stream_key(prefix), rows[2][0])
    result = await verify(client, prefix, [tmp_path])
    first = messages(result)[0]
    assert first.startswith(f"{rows[3][0]}: entry {rows[3][0]} (audit id {rows[3][1]['id']})")
    assert f"prev is {rows[2][1]['hash']}, expected {rows[1][1]['hash']}" in first
    assert any(f.startswith("audit:ids: audit id " + rows[2][1]["id"]) for f in messages(result))
    assert any("is in the file but not in the stream" in f for f in messages(result))
    await client.aclose()


@on_asyncio
async def test_verify_finds_the_newest_entry_deleted(redis_server, prefix, tmp_path):
    """XDEL of the newest entry breaks no link; the head tells."""
    client, rows = await chained_log(redis_server, prefix, tmp_path)
    await client.xdel(stream_key(prefix), rows[-1][0])
    result = await verify(client, prefix)
    assert messages(result)[0].startswith(f"audit:head: is {rows[-1][1]['hash']}")
    await client.aclose()


@on_asyncio
async def test_verify_finds_an_edited_field(redis_server, prefix, tmp_path):
    """An entry rewritten with another reason: verify names it, with the stored and the
    recomputed hash; the mirror's copy differs from it."""
    client, rows = await chained_log(redis_server, prefix, tmp_path)

    def edit(rows):
        rows[1][1]["reason"] = "routine check"
        return rows

    await rewrite(client, prefix, edit)
    result = await verify(client, prefix, [tmp_path])
    first = messages(result)[0]
    assert first.startswith(f"{rows[1][0]}: entry {rows[1][0]}")
    assert f"hash is {rows[1][1]['hash']}, recomputed" in first
    assert any("differs from the stream in reason" in f for f in messages(result))
    await client.aclose()


@on_asyncio
async def test_verify_finds_reordered_and_inserted_entries(redis_server, prefix, tmp_path):
    """Two entries' places swapped (each keeps its fields, ids reassigned in order), then an
    entry inserted with a link of its own: each is found at the first entry out of place."""
    client, rows = await chained_log(redis_server, prefix, tmp_path)

    def swap(rows):
        ids = [stream_id for stream_id, _ in rows]
        fields = [f for _, f in rows]
        fields[1], fields[2] = fields[2], fields[1]
        return list(zip(ids, fields, strict=True))

    await rewrite(client, prefix, swap)
    assert messages(await verify(client, prefix))[0].startswith(f"{rows[1][0]}: entry")

    await rewrite(client, prefix, lambda _: rows)  # put back as it was
    assert (await verify(client, prefix)).intact

    def insert(rows):
        # A forged entry linked to entry 2 goes in after it (the stream rewritten with stream
        # ids 1-0, 2-0... to make room).
        forged = link({**rows[2][1], "id": "f" * 32, "user": "mallory"}, rows[1][1]["hash"])
        fields = [rows[0][1], rows[1][1], forged, *(f for _, f in rows[2:])]
        return [(f"{n}-0", f) for n, f in enumerate(fields, 1)], forged

    inserted, forged = insert(rows)
    await rewrite(client, prefix, lambda _: inserted)
    result = await verify(client, prefix)
    assert messages(result)[0].startswith("4-0: entry 4-0")
    assert f"expected {forged['hash']}" in messages(result)[0]
    await client.aclose()


@on_asyncio
async def test_verify_checks_the_mirror_file(redis_server, prefix, tmp_path):
    """An entry in the mirror file that the stream lacks, or a copy that differs from the
    stream's, is reported with file and line; identical repeated copies are fine."""
    client, rows = await chained_log(redis_server, prefix, tmp_path, n=3)
    mirror = tmp_path / MIRROR
    lines = mirror.read_text().splitlines()
    edited = json.loads(lines[1])
    edited["address"] = "192.0.2.1"
    foreign = {**json.loads(lines[2]), "id": "e" * 32}
    mirror.write_text("\n".join([*lines, lines[0], json.dumps(edited), json.dumps(foreign)]) + "\n")
    result = await verify(client, prefix, [tmp_path])
    assert messages(result) == [
        f"{mirror}:5: entry {rows[1][1]['id']} differs from the stream in address",
        f"{mirror}:6: entry {'e' * 32} is in the file but not in the stream",
    ]
    await client.aclose()


@on_asyncio
async def test_redis_away_spools_then_replays_exactly_once(redis_server, prefix, tmp_path):
    """With Redis stopped, record() still answers: the entry is fsynced to the spool with the
    ``pending`` marker. After Redis is back, the next record chains the spooled entries
    first, in order, marked replayed and keeping their time; a replay of the same spool again
    (a crash before it was deleted, a new instance) chains nothing twice. The chain and the
    mirror verify intact."""
    client = connect(redis_server.url)
    log = AuditLog(client, tmp_path, prefix=prefix, timeout=1.0)
    before = await record(log, 0)
    redis_server.stop()
    try:
        away = [await record(log, n) for n in (10, 20)]
        assert log.spool_pending
        spooled = list(Spool(tmp_path / SPOOL).records())
        assert [(s["id"], s["pending"]) for s in spooled] == [
            (audit_id, "redis unreachable") for audit_id in away
        ]
        with pytest.raises(redis.exceptions.ConnectionError):
            await verify(client, prefix)
    finally:
        redis_server.start()
    after = await record(log, 30)
    rows = await stream(client, prefix)
    assert [f["id"] for _, f in rows] == [before, *away, after]
    assert [f.get("replayed") for _, f in rows] == [None, "1", "1", None]
    assert rows[1][1]["time"] == "2026-11-28T09:00:10.000000Z"
    assert not log.spool_pending and await log.replay_spool() == 0

    for record_ in spooled:  # as if the replay crashed before deleting its batch
        Spool(tmp_path / SPOOL).append(record_)
    restarted = AuditLog(client, tmp_path, prefix=prefix)
    assert restarted.spool_pending and await restarted.replay_spool() == 0
    assert len(await stream(client, prefix)) == 4
    result = await verify(client, prefix, [tmp_path])
    assert result.intact and not result.waiting, messages(result)
    await client.aclose()


@on_asyncio
async def test_entry_chained_before_its_reply_was_lost_is_not_chained_again(
    redis_server, prefix, tmp_path
):
    """An entry whose append reached Redis but whose answer did not (a timeout) is spooled
    all the same; its replay finds the audit id chained and adds nothing."""
    client = connect(redis_server.url)
    log = AuditLog(client, tmp_path, prefix=prefix)
    audit_id = await record(log, 1)
    ((_, fields),) = await stream(client, prefix)
    content = {k: v for k, v in fields.items() if k not in ("prev", "hash")}
    Spool(tmp_path / SPOOL).append({**content, "pending": "timeout"})  # as on a timeout
    assert await AuditLog(client, tmp_path, prefix=prefix).replay_spool() == 0
    assert [f["id"] for _, f in await stream(client, prefix)] == [audit_id]
    assert (await verify(client, prefix, [tmp_path])).intact
    await client.aclose()


@on_asyncio
async def test_record_raises_when_neither_redis_nor_the_file_takes_it(tmp_path):
    """Redis unreachable and the spool unwritable (its folder replaced by a file): record()
    raises AuditUnavailable, so the caller refuses the access."""
    client = connect(f"redis://127.0.0.1:{free_port()}/0")
    log = AuditLog(client, tmp_path, prefix="t:", timeout=1.0)
    shutil.rmtree(tmp_path / SPOOL)
    (tmp_path / SPOOL).write_text("not a folder")
    with pytest.raises(AuditUnavailable, match="workorder:1"):
        await record(log, 1)
    assert not log.spool_pending
    await client.aclose()


@on_asyncio
async def test_list_filters(redis_server, prefix, tmp_path):
    """entries(): by user, action, object (exact or prefix), time range; limit keeps the
    newest N, listed oldest first."""
    client = connect(redis_server.url)
    log = AuditLog(client, tmp_path, prefix=prefix)
    await record(log, 0, user="kim")
    await record(log, 1, user="lee", action="workorder.change", reason="wrong queue")
    await record(log, 2, user="kim", obj="agent:a1", action="agent.state")
    await record(log, 3, user="kim")

    async def objects(**filters) -> list[str]:
        return [f["object"] for _, f in await entries(client, prefix, Filters(**filters))]

    assert await objects() == ["workorder:0", "workorder:1", "agent:a1", "workorder:3"]
    assert await objects(user="kim") == ["workorder:0", "agent:a1", "workorder:3"]
    assert await objects(action="workorder.change") == ["workorder:1"]
    assert await objects(obj="workorder:*", user="kim") == ["workorder:0", "workorder:3"]
    assert await objects(since=T0 + 1, until=T0 + 3) == ["workorder:1", "agent:a1"]
    assert await objects(limit=2) == ["agent:a1", "workorder:3"]
    assert await objects(user="kim", limit=2) == ["agent:a1", "workorder:3"]
    await client.aclose()


def cli_args(*argv: str) -> argparse.Namespace:
    from hotline.cli import build_parser

    return build_parser().parse_args(["audit", *argv])


@on_asyncio
async def test_cli_records_the_read_before_it_reads(redis_server, prefix, tmp_path):
    """``ivr audit list`` records its own audit.read (role auditor, the --as user, the
    filters) before reading, so the list shows it; ``verify`` exits 1 with the finding when
    an entry was deleted."""
    client = connect(redis_server.url)
    log = AuditLog(client, tmp_path, prefix=prefix)
    await record(log, 0)
    out = io.StringIO()
    code = await auditcli.run(cli_args("list", "--as", "auditor1", "--json"), log, client,
                              now=T0 + 5, mirrors=[tmp_path], out=out)
    listed = [json.loads(line) for line in out.getvalue().splitlines()]
    assert code == 0 and [e["action"] for e in listed] == ["workorder.read", "audit.read"]
    assert (listed[1]["user"], listed[1]["role"], listed[1]["address"]) == (
        "auditor1", "auditor", "local"
    )
    assert json.loads(listed[1]["details"]) == {"command": "list"}

    out = io.StringIO()
    assert await auditcli.run(cli_args("verify"), log, client, now=T0 + 6,
                              mirrors=[tmp_path], out=out) == 0
    assert "audit chain intact: 3 entries" in out.getvalue()
    rows = await stream(client, prefix)
    await client.xdel(stream_key(prefix), rows[1][0])
    out = io.StringIO()
    assert await auditcli.run(cli_args("verify"), log, client, now=T0 + 7,
                              mirrors=[tmp_path], out=out) == auditcli.EXIT_BROKEN
    assert f"  {rows[2][0]}: entry {rows[2][0]}" in out.getvalue()
    await client.aclose()


def test_ivr_audit_command(redis_server, tmp_path):
    """``ivr audit verify`` and ``list`` as a process, configured by service.yaml and the
    environment: exit 0 on an intact chain, and the list shows both reads."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ, "HOTLINE__REDIS__URL": redis_server.url,
        "HOTLINE__REDIS__KEY_PREFIX": f'"{prefix}"', "HOTLINE__SPOOL_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "hotline.cli", "--config", str(REPO / "config"), "audit"]
    verified = subprocess.run([*command, "verify", "--as", "au"], env=env, cwd=REPO,
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stderr
    assert "audit chain intact: 1 entries" in verified.stdout
    listed = subprocess.run([*command, "list", "--action", "audit.read"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 3  # the header, two reads
    assert (tmp_path / "audit" / MIRROR).exists()
