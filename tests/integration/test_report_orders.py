"""``ivr report orders`` against a real redis-server: the orders of the period read through
the creation index, the KPIs computed, a table, the JSON and a chart, no personal data."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from hotline.report.orders import read_report
from ivr.config import DEFAULT_CONFIG_DIR
from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders.clocks import ClockPolicy
from workorders.model import Event
from workorders.store import WorkOrderStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
ROOT = Path(__file__).resolve().parents[2]


async def fill(url: str, prefix: str, tmp_path) -> aioredis.Redis:
    """Two orders in the period (one resolved with a survey), one the day before."""
    client = aioredis.Redis.from_url(url)
    store = WorkOrderStore(client, tmp_path / "spool", prefix=prefix,
                           cipher=random_field_cipher())
    first = await store.create_for_call("c1", "+4930555010", "Kim Lee", T0, queue="faults",
                                        category="fault", transcript="no dial tone")
    await store.update(first.id, T0 + 600, Event.ASSIGN, "agent101", agent="agent101")
    await store.update(first.id, T0 + 700, Event.START, "agent101")
    await store.update(first.id, T0 + 3600, Event.RESOLVE, "agent101")
    await store.update(first.id, T0 + 4000, Event.UPDATE, "survey", csat=5, nps=9)
    await store.create_for_call("c2", "+4930555011", "Lee Kim", T0 + DAY, queue="billing",
                                category="inquiry")
    await store.create_for_call("c3", "+4930555012", "Out Side", T0 - DAY)
    return client


@on_asyncio
async def test_report_reads_the_period_through_the_creation_index(redis_server, tmp_path):
    """Only the orders created in the period count, per day; the figures follow the
    clocks at the report's time; the orders are read without opening personal data."""
    prefix = f"k{uuid.uuid4().hex[:6]}:"
    client = await fill(redis_server.url, prefix, tmp_path)
    report = await read_report(client, prefix, ClockPolicy(), MIDNIGHT, MIDNIGHT + 2 * DAY,
                               T0 + 3 * DAY)
    data = report.as_dict()
    assert [(d["day"], d["created"]) for d in data["days"]] == [
        ("2026-03-02", 1), ("2026-03-03", 1)]
    total = data["total"]
    assert (total["created"], total["resolved"], total["resolution_p50_s"]) == (2, 1, 3600.0)
    assert total["assignment_within_target_pct"] == 50.0  # c2 never assigned: breached
    assert (total["csat_average"], total["nps"]) == (5.0, 100.0)
    assert set(total["by"]["queue"]) == {"faults", "billing"}
    assert "Kim" not in json.dumps(data) and "dial tone" not in json.dumps(data)
    await client.aclose()


@on_asyncio
async def test_ivr_report_orders_prints_a_table_json_and_a_chart(redis_server, tmp_path):
    """The command prints a table per day with a total, or the JSON with --json, and writes
    the chart with --chart; an unreadable period is refused with exit 2."""
    client = await fill(redis_server.url, "hotline:", tmp_path)
    base = ["--config", str(DEFAULT_CONFIG_DIR), "report", "orders", "--redis",
            redis_server.url, "--from", "2026-03-02", "--to", "2026-03-03"]

    def ivr(argv: list[str]) -> subprocess.CompletedProcess[str]:
        # Its own process, as from a shell: the command runs its own asyncio loop.
        return subprocess.run([sys.executable, "-m", "hotline.cli", *argv], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    done = ivr(base)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split()[:3] == ["day", "created", "assign"]
    assert [line.split()[:2] for line in lines[2:]] == [
        ["2026-03-02", "1"], ["2026-03-03", "1"], ["total", "2"]]
    chart = tmp_path / "orders.png"
    done = ivr([*base, "--json", "--chart", str(chart)])
    data = json.loads(done.stdout)
    assert data["total"]["created"] == 2 and data["chart"] == str(chart)
    assert chart.read_bytes().startswith(b"\x89PNG")
    refused = ivr([*base[:6], "--from", "2026-03-05", "--to", "2026-03-01"])
    assert refused.returncode == 2 and "--to must not be before --from" in refused.stderr
    await client.aclose()
