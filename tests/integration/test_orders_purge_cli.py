"""``ivr orders purge`` against a real redis-server, as ops run it from a shell: the service's
config and keys, the orders past their retention deleted with their deletion records (a dry
run deletes nothing), a legally held order kept, and the run in the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from hotline.keys import read_service_keys
from ivr.config import DEFAULT_CONFIG_DIR, load_config
from ivr.testing import on_asyncio
from workorders.buckets import Buckets
from workorders.model import Event
from workorders.store import WorkOrderStore

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "purge-test:" + "cHVyZ2UtdGVzdC1tYXN0ZXIta2V5LW5vdC1wcm9kISE="
# Closed in 2019: past the three years of retention by the time the test runs.
T0 = datetime(2019, 3, 2, 9, 0, tzinfo=UTC).timestamp()


@on_asyncio
async def test_purge_deletes_expired_orders_keeps_held_ones_and_is_audited(
    redis_server, tmp_path, monkeypatch
):
    """Two closed orders of 2019 and one open: --dry-run names the two and deletes nothing;
    the real run deletes the one not on legal hold, leaves its deletion record without
    personal data, keeps the held and the open ones, and records the run as workorder.purge."""
    env = {**os.environ, "HOTLINE_MASTER_KEY": MASTER_KEY,
           "HOTLINE__REDIS__URL": redis_server.url,
           "HOTLINE__SPOOL_DIR": str(tmp_path / "spool")}
    cfg = load_config(DEFAULT_CONFIG_DIR, environ=env)
    client = aioredis.Redis.from_url(redis_server.url)
    monkeypatch.setenv("HOTLINE_MASTER_KEY", MASTER_KEY)  # the service's key, as `ivr` reads it
    keys = await read_service_keys(client, cfg)
    store = WorkOrderStore.from_config(client, cfg.workorders, spool_dir=tmp_path / "spool",
                                       cipher=keys.cipher, prefix=cfg.service.redis.key_prefix)
    ids = []
    for n in range(2):
        order = await store.create_for_call(f"old-{n}", "+4930555010", "Kim Lee", T0 + n)
        await store.update(order.id, T0 + 60, Event.ASSIGN, "agent101", agent="agent101")
        await store.update(order.id, T0 + 70, Event.START, "agent101")
        await store.update(order.id, T0 + 80, Event.RESOLVE, "agent101", outcome="fixed")
        await store.update(order.id, T0 + 90, Event.CLOSE, "agent101")
        ids.append(order.id)
    await store.set_legal_hold(ids[1], True, T0 + 100, "olga", "court order 12/2026")
    still_open = await store.create_for_call("open-1", "+4930555011", "Lee Kim", T0)

    def ivr(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hotline.cli", "--config", str(DEFAULT_CONFIG_DIR),
             "orders", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    dry = ivr("purge", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["would_delete"] == 1
    assert await store.get(ids[0]) is not None

    done = ivr("purge", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["deleted"] == 1 and [r["id"] for r in report["records"]] == [ids[0]]
    assert await store.get(ids[0]) is None
    assert (await store.get(ids[1])).legal_hold and await store.get(still_open.id)
    prefix = cfg.service.redis.key_prefix
    records = [json.loads(r) for k in Buckets(prefix=prefix).keys("wo:deletions")
               for r in await client.lrange(k, 0, -1)]
    assert [r["id"] for r in records] == [ids[0]]
    assert "Kim" not in json.dumps(records) and "4930555010" not in json.dumps(records)
    audit = [{k.decode(): v.decode() for k, v in fields.items()}
             for _, fields in await client.xrange(f"{prefix}audit")]
    assert [a["action"] for a in audit] == ["workorder.purge"]
    await client.aclose()
