"""Work orders of real calls under Redis faults: the whole stack (Asterisk 22, ``ivr serve``,
SIPp agents, the testbed's redis-server with the shipped AOF config), and redis-server killed
with SIGKILL in the middle of a burst of calls.

What a user could check afterwards: every call has its work order exactly once (one order,
one creation event), and each order's history matches its events on ``hotline:events`` one
for one, with no entry twice: nothing lost, nothing applied twice. The call that was talking
to an agent when Redis died names that agent as its assignee, and that agent is free again
for the next call without anyone touching routing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from testbed.checks import (
    call_gone,
    events,
    first_event,
    ledger_problems,
    wait_for,
    workorder,
)
from workorders.buckets import Buckets

pytestmark = pytest.mark.e2e

AGENTS = ("agent101", "agent102", "agent103", "agent104")
# Fault reports (key 3 during the welcome); the caller hangs up after 20 s at the latest, so
# a call that cannot reach an agent while Redis is back but routing is still catching up ends.
FAULT = "w2|d3|w20|h"


def _spool_files(spool: Path) -> list[Path]:
    """The service's spool files (read only: the service owns them)."""
    return sorted(spool.glob("*.jsonl")) if spool.is_dir() else []


def _spooled_creations(spool: Path) -> set[str]:
    records = [json.loads(line) for path in _spool_files(spool)
               for line in path.read_text().splitlines() if line.endswith("}")]
    return {str(r["order"]["call_id"]) for r in records if r.get("op") == "create"}


def _spooled_assignment(spool: Path, order_id: str) -> str | None:
    """The agent a spooled ``assign`` of this order names, if one is in the spool."""
    records = [json.loads(line) for path in _spool_files(spool)
               for line in path.read_text().splitlines() if line.endswith("}")]
    for r in records:
        if r.get("op") == "update" and r.get("order_id") == order_id and r["event"] == "assign":
            return str(r["changes"].get("agent"))
    return None


def _history_matches_events(order: dict[str, Any], stream: list[dict[str, str]]) -> None:
    """One work order event per history entry, in the same order, and no entry twice."""
    assert not ledger_problems(order, stream), (order["call_id"], ledger_problems(order, stream))


def test_redis_killed_during_a_burst_of_calls_loses_and_doubles_no_work_order(
    hotline, agents, operator, caller, asterisk, redis_server, db, tmp_path
) -> None:
    """Two calls reach agents; redis-server is killed (SIGKILL) while one is connected, and
    two more calls arrive while it is dead (their orders spooled by ``ivr serve``, the callers
    go to the operator). Redis restarts on its AOF, ``ivr serve`` is killed (SIGKILL) with its
    spool pending or being replayed and started again on the same spool, and one more call
    comes in. Every call's work order is in Redis exactly once, with its history in order and
    one event per change. The connected call's conversation ends while Redis is dead: its
    order names the agent who answered (spooled, then replayed), and that agent, whose end of
    call routing never heard of, is available again once the calls are over (the sweep found
    the call gone in Asterisk)."""
    for name in AGENTS:
        agents(name, answer_after=0.3, hold_for=3.0)
    service = hotline(agents=AGENTS)
    spool = tmp_path / "spool-hotline-1" / "workorders"

    before = [caller(FAULT, number=f"555020{i}", name=f"Before {i}") for i in range(2)]
    talking = first_event(db, before[0], "CONNECT", timeout=40)["agent"]
    talking_order = wait_for(lambda: workorder(service, before[0]), 10, "its order")["id"]
    redis_server.kill()
    try:
        during = [caller(FAULT, number=f"555021{i}", name=f"During {i}") for i in range(2)]
        wait_for(lambda: set(during) <= _spooled_creations(spool), 40,
                 "the orders of the calls made while Redis was dead, in the spool")
        # The conversation ends while Redis is dead: the answer is on the order all the same.
        assert wait_for(lambda: _spooled_assignment(spool, talking_order), 20,
                        "the assignment of the call connected when Redis died") == talking
    finally:
        redis_server.start()
    service.kill()
    service = hotline(agents=AGENTS, flush=False)  # same instance: same spool directory
    after = caller(FAULT, number="5550220", name="After")

    calls = [*before, *during, after]
    for call_id in calls:
        call_gone(asterisk, call_id, timeout=60)
    wait_for(lambda: not _spool_files(spool), 30, "the spool replayed")

    stream = events(db)
    for call_id in calls:
        order = wait_for(lambda c=call_id: workorder(service, c), 10, f"order of {call_id}")
        creations = [e for e in stream if e["kind"] == "WOCREATE" and e["call_id"] == call_id]
        assert len(creations) == 1, (call_id, creations)
        assert creations[0]["order_id"] == order["id"]
        _history_matches_events(order, stream)
    # Each bucket's index and call lookups (workorders.buckets), all of them together.
    assert sum(db.zcard(k) for k in Buckets().keys("wo:index")) == len(calls)
    assert len(list(db.scan_iter("hotline:wo:{wo*}:by-call:*"))) == len(calls)
    assert db.llen("hotline:wo:spool-rejected") == 0
    assert workorder(service, before[0])["agent"] == talking
    wait_for(lambda: db.hget(f"hotline:{{rt}}:agent:{talking}", "status") == "available", 60,
             f"{talking}, talking when Redis died, available again")
    completions = [e for e in events(db, before[0]) if e["kind"].startswith("COMPLETE")]
    assert len(completions) == 1, completions
