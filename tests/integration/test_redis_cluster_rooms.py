"""The rooms beside routing on a real 3-master Redis Cluster (the ``redis_cluster`` fixture):
each atomic step of the audit log, the access tokens and sessions and the recordings catalog
touches one hash slot, so each works there as on one Redis; keys of a work order (another
slot) are read around the catalog's steps, not inside them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from access.sessions import SessionStore
from access.tokens import TokenStore
from audit import AuditLog
from audit.log import audit_prefix
from audit.reading import Filters, entries, verify
from hotline.redisclient import async_redis, is_cluster_client
from ivr.config import RedisSettings
from ivr.testing import on_asyncio
from recordings.catalog import Due, Erased, RedisCatalog
from recordings.testing import sample_meta
from testbed.redis import RedisCluster

T0 = 1_800_000_000.0
KEY = bytes.fromhex("22" * 32)


def client(cluster: RedisCluster) -> Any:
    settings = RedisSettings.model_validate({"cluster": {"nodes": cluster.nodes}})
    redis = async_redis(settings, socket_timeout=2.0, socket_connect_timeout=2.0)
    assert is_cluster_client(redis)
    return redis


@on_asyncio
async def test_the_audit_chain_appends_and_verifies_on_a_cluster(
    redis_cluster, prefix, tmp_path: Path
) -> None:
    """With the ``{audit}``-tagged prefix a cluster deployment gets, two instances append to
    one chain (the append script's three keys share a slot), and the chain verifies."""
    redis = client(redis_cluster)
    tagged = audit_prefix(prefix, cluster=True)
    assert tagged == f"{prefix}{{audit}}:"
    logs = [AuditLog(redis, tmp_path / name, prefix=tagged) for name in ("a", "b")]
    for n in range(6):
        await logs[n % 2].record(user="kim", role="supervisor", action="workorder.read",
                                 obj=f"workorder:{n}", address="10.0.0.7", now=T0 + n)
    listed = await entries(redis, tagged, Filters())
    assert sorted(fields["object"] for _id, fields in listed) == [
        f"workorder:{n}" for n in range(6)]
    result = await verify(redis, tagged, [tmp_path / "a", tmp_path / "b"])
    assert result.intact, result
    await redis.aclose()


def test_one_redis_keeps_the_audit_key_names() -> None:
    """Standalone Redis keeps ``<prefix>audit``: the tag is a cluster's only."""
    assert audit_prefix("hotline:", cluster=False) == "hotline:"


@on_asyncio
async def test_tokens_and_sessions_work_on_a_cluster(redis_cluster, prefix) -> None:
    """A token is created (its index and its hash in two slots, two steps), listed,
    authenticates, opens a session and is revoked, all through a cluster client."""
    redis = client(redis_cluster)
    tokens = TokenStore(redis, KEY, prefix=prefix)
    token, info = await tokens.create("kim", "ops", now=T0)
    assert [t.token_id for t in await tokens.list()] == [info.token_id]
    identity = await tokens.authenticate(f"Bearer {token}", T0 + 1)
    assert identity.user == "kim"
    sessions = SessionStore(redis, KEY, tokens, prefix=prefix, lifetime_s=3600)
    session = await sessions.login(token, T0 + 2)
    assert (await sessions.identity(session.session_id, T0 + 3)).user == "kim"
    revoked = await tokens.revoke(info.token_id, T0 + 4)
    assert revoked.revoked == T0 + 4
    await redis.aclose()


@on_asyncio
async def test_the_recordings_catalog_stores_holds_and_erases_on_a_cluster(
    redis_cluster, prefix
) -> None:
    """Recordings added (hash and indexes in the ``{rec}`` slot in one MULTI) are listed; the
    retention pass reads their work orders' standing from the orders' own slot; an order on
    legal hold blocks the erase of its recording, the others are erased with a deletion
    record."""
    redis = client(redis_cluster)
    order_keys = {"17": f"{prefix}wo:{{wo1}}:17", "18": f"{prefix}wo:{{wo2}}:18"}
    catalog = RedisCatalog(redis, prefix, cluster=True, order_key=order_keys.__getitem__)
    assert catalog.index == f"{prefix}{{rec}}:rec:index"
    await catalog.add(sample_meta("r1", work_order_id="17", ended_at=1060.0))
    await catalog.add(sample_meta("r2", work_order_id="18", ended_at=1070.0))
    await catalog.add(sample_meta("r3", work_order_id="", ended_at=1080.0))
    assert [m.recording_id for m in await catalog.newest(agents=["agent101"])] == [
        "r3", "r2", "r1"]
    await redis.hset(order_keys["17"], mapping={
        "status": "closed", "updated_at": "2026-01-01T00:00:00.000000Z", "legal_hold": "1"})
    await redis.hset(order_keys["18"], mapping={"status": "open"})

    batches = [b async for b in catalog.retention_batches(T0)]
    (batch,) = batches
    assert sorted(f.recording_id for f in batch.facts) == ["r1", "r2", "r3"]
    assert batch.orders["17"].legal_hold and batch.orders["17"].status == "closed"
    assert batch.orders["18"].status == "open" and not batch.orders["18"].legal_hold

    outcome = await catalog.erase([Due(r, 1060.0, "test") for r in ("r1", "r2", "r3", "r9")],
                                  "test", T0)
    assert outcome == [Erased.HELD, Erased.ERASED, Erased.ERASED, Erased.MISSING]
    assert [m.recording_id for m in await catalog.newest()] == ["r1"]
    assert sorted(d["recording_id"] for d in await catalog.deletions()) == ["r2", "r3"]
    await redis.aclose()


@on_asyncio
async def test_webhook_dead_letters_are_redriven_on_a_cluster(redis_cluster, prefix) -> None:
    """A webhook's dead list and re-drive list share the webhook's hash tag on a cluster, so
    ``ivr webhooks redrive`` (one LMOVE per letter) works there; one Redis keeps its names."""
    from events.consumer import Entry
    from webhooks.deadletter import DeadLetter, DeadLetters

    redis = client(redis_cluster)
    letters = DeadLetters(redis, prefix, cluster=True)
    assert letters.dead_key("crm") == f"{prefix}webhooks:dead:{{crm}}"
    assert DeadLetters(redis, prefix).dead_key("crm") == f"{prefix}webhooks:dead:crm"
    for n in range(3):
        await letters.add(DeadLetter.of("crm", Entry(f"1-{n}", {"kind": "WOCREATE"}),
                                        "HTTP 500", 5, T0 + n))
    assert await letters.redrive("crm") == 3
    head = await letters.next_redriven("crm")
    assert head is not None and head[1].id == "1-0"
    await letters.redriven("crm", head[0])
    assert [letter.id for letter in await letters.read("crm")] == []
    second = await letters.next_redriven("crm")
    assert second is not None and second[1].id == "1-1"
    await redis.aclose()
