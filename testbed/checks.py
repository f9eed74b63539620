"""What an end-to-end test (or an operator at the console) can observe on a running stack:
channels in Asterisk, the event stream and routing state in Redis, work orders over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import redis

from testbed.asterisk import Asterisk
from testbed.service import HotlineService


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def call_gone(asterisk: Asterisk, call_id: str, timeout: float = 60) -> None:
    """Wait until the call's channel no longer exists in Asterisk."""
    wait_for(
        lambda: all(c.get("id") != call_id for c in asterisk.channels()),
        timeout, f"call {call_id} to end",
    )


def events(db: redis.Redis, call_id: str | None = None) -> list[dict[str, str]]:
    """Entries of the ``hotline:events`` stream, all or one call's (``decode_responses``)."""
    rows = [fields for _id, fields in db.xrange("hotline:events")]
    return [r for r in rows if call_id is None or r.get("call_id") == call_id]


def kinds(db: redis.Redis, call_id: str) -> list[str]:
    return [e["kind"] for e in events(db, call_id)]


def first_event(db: redis.Redis, call_id: str, kind: str, timeout: float = 10) -> dict[str, str]:
    found = wait_for(
        lambda: [e for e in events(db, call_id) if e["kind"] == kind], timeout,
        f"{kind} of call {call_id}",
    )
    return found[0]


def workorder(service: HotlineService, call_id: str) -> dict[str, Any] | None:
    """The call's work order through the service's HTTP API, None if there is none (a 404,
    the API failing, or an answer that is not an order)."""
    try:
        order = service.get(f"/api/calls/{call_id}/workorder")
    except Exception:
        return None
    return order if isinstance(order, dict) else None


def routing_leftovers(db: redis.Redis) -> list[str]:
    """Calls still waiting in the shared queue state (none once every call has ended)."""
    return db.zrange("hotline:{rt}:waiting", 0, -1)


def ledger_problems(order: dict[str, Any], stream: list[dict[str, str]]) -> list[str]:
    """What is wrong between a work order's history and its events on ``hotline:events``:
    one ``WO<EVENT>`` per history entry, in the same order, no entry twice, a creation first.
    Empty when nothing is lost and nothing was applied twice."""
    problems = []
    kinds = [e["kind"] for e in stream
             if e["kind"].startswith("WO") and e.get("order_id") == order["id"]]
    history = order["history"]
    if [h["event"] for h in history] != [k.removeprefix("WO").lower() for k in kinds]:
        problems.append(f"history {[h['event'] for h in history]} against events {kinds}")
    entries = [json.dumps(h, sort_keys=True) for h in history]
    if len(set(entries)) != len(entries):
        problems.append(f"a history entry twice: {history}")
    if not history or history[0]["event"] != "create":
        problems.append(f"history does not start with its creation: {history}")
    return problems
