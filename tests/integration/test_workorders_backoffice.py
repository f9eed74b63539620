"""Back office and repeat contacts against a real redis-server: the answering agent owns the
order (once, however often the answer is reported), back-office loops racing assign each order
once, nobody qualifying lands on the supervisor's list with the reason, and repeat calls of one
caller link to one open order atomically, also across the spool."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from routing.testing import config, profile, queue, rule
from testbed.redis import connect
from workorders.backoffice import BackOffice, unassigned_orders
from workorders.buckets import Buckets
from workorders.model import Status
from workorders.schema import BackOfficeSettings
from workorders.store import WorkOrderStore

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()  # a Monday, 10:00 UTC
H = 3600.0
CIPHER = random_field_cipher()
SETTINGS = BackOfficeSettings(wait_minutes=5, retry_minutes=15, batch=50)


class Results:
    """A counter test double: counts per result label."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def labels(self, result: str) -> Results:
        self._label = result
        return self

    def inc(self) -> None:
        self.counts[self._label] = self.counts.get(self._label, 0) + 1


def store_for(url, prefix, spool, window_h=24.0):
    return WorkOrderStore(connect(url), spool, prefix=prefix, cipher=CIPHER,
                          repeat_contact_window=window_h * H)


def billing_routing(*agents):
    return config([queue("billing-q", "billing")],
                  [rule("inquiry", "billing-q", [("billing", None)])],
                  agents=list(agents), timezone="UTC")


async def kinds(client, prefix):
    return [f[b"kind"].decode() for _, f in await client.xrange(f"{prefix}events")]


# -- the answering agent --------------------------------------------------------------------


@on_asyncio
async def test_answer_reported_twice_and_concurrently_assigns_once(redis_server, prefix,
                                                                   tmp_path):
    """The answer comes from ARI at the moment and from the flow when Dial returns, maybe on
    two instances: the order gets one assign and one start, the agent as assignee."""
    url = redis_server.url
    one, two = store_for(url, prefix, tmp_path / "a"), store_for(url, prefix, tmp_path / "b")
    created = await one.create_for_call("call-1", "+15550100", "Eve", T0, category="inquiry")
    results = await asyncio.gather(
        one.answered("call-1", "agent101", T0 + 20), two.answered("call-1", "agent101", T0 + 20),
        one.answered("call-1", "agent101", T0 + 25),
    )
    assert all(r is not None and r.agent == "agent101" for r in results), [
        r and (r.agent, r.status) for r in results]
    order = await two.get(created.id)
    assert order.status is Status.IN_PROGRESS and order.agent == "agent101"
    assert [h.event for h in order.history] == ["create", "assign", "start"]
    assert await one.answered("no-such-call", "agent101", T0) is None


@on_asyncio
async def test_an_operation_applied_meanwhile_is_a_repeat_not_a_refusal(redis_server, tmp_path):
    """Twenty rounds of three concurrent answers of one call: when a report reads the order
    just after another applied the same step (start, now refused by the order's status), it
    is a repeat of that step, not a refusal: every report returns the order in progress."""
    for n in range(20):
        prefix = f"r{n}{uuid.uuid4().hex[:6]}:"
        one = store_for(redis_server.url, prefix, tmp_path / f"a{n}")
        two = store_for(redis_server.url, prefix, tmp_path / f"b{n}")
        await one.create_for_call("call-1", "+15550100", "Eve", T0, category="inquiry")
        results = await asyncio.gather(
            one.answered("call-1", "agent101", T0 + 20),
            two.answered("call-1", "agent101", T0 + 20),
            one.answered("call-1", "agent101", T0 + 25),
        )
        assert [r and r.status for r in results] == [Status.IN_PROGRESS] * 3, n


@on_asyncio
async def test_answer_of_a_repeat_call_hands_over_without_restarting(redis_server, prefix,
                                                                     tmp_path):
    """A repeat call linked to an order already in progress, answered by another agent: the
    order is handed over (assign) and not started again (start is refused in progress)."""
    store = store_for(redis_server.url, prefix, tmp_path / "s")
    first = await store.create_for_call("call-1", "+15550100", "Eve", T0, category="inquiry")
    await store.answered("call-1", "agent101", T0 + 10)
    again = await store.create_for_call("call-2", "+1 555 0100", "Eve", T0 + H,
                                        category="inquiry")
    assert again.id == first.id
    taken = await store.answered("call-2", "agent102", T0 + H + 10)
    assert (taken.agent, taken.status) == ("agent102", Status.IN_PROGRESS)
    assert [h.event for h in taken.history] == ["create", "assign", "start", "repeat", "assign"]


# -- the back office ------------------------------------------------------------------------


@on_asyncio
async def test_two_loops_racing_assign_each_order_once(redis_server, prefix, tmp_path):
    """Two instances' back-office rounds at the same moment over the same abandoned orders:
    every order is assigned exactly once (one WOASSIGN each), the load spread by open orders."""
    url = redis_server.url
    stores = [store_for(url, prefix, tmp_path / n) for n in ("a", "b")]
    routing = billing_routing(profile("a1", {"billing": 3}), profile("a2", {"billing": 3}))
    counters = [Results(), Results()]
    loops = [BackOffice(s, connect(url), lambda: routing, lambda: SETTINGS, counter=c)
             for s, c in zip(stores, counters, strict=True)]
    ids = []
    for i in range(12):
        order = await stores[0].create_for_call(f"c{i}", f"+1555010{i:02d}", "x", T0 + i,
                                                category="inquiry")
        await stores[0].update(order.id, T0 + i + 5, "update", "caller", outcome="abandoned")
        ids.append(order.id)
    rounds = await asyncio.gather(*(loop.run_once(T0 + 10 * 60) for loop in loops))
    assigned = [pair for r in rounds for pair in r.assigned]
    assert sorted(order_id for order_id, _ in assigned) == sorted(ids)
    assert sum(c.counts.get("assigned", 0) for c in counters) == 12
    client = connect(url)
    assert (await kinds(client, prefix)).count("WOASSIGN") == 12
    agents = [(await stores[1].get(i)).agent for i in ids]
    assert set(agents) <= {"a1", "a2"}
    for order_id in ids:
        order = await stores[1].get(order_id)
        assert order.status is Status.ASSIGNED
        assert [h.actor for h in order.history if h.event == "assign"] == ["backoffice"]
    assert sum([await client.zcard(k) for k in Buckets(prefix=prefix).keys("wo:backoffice")]) == 0
    assert (await loops[0].run_once(T0 + 20 * 60)).assigned == []


@on_asyncio
async def test_fewest_open_orders_and_the_wait_before_taking(redis_server, prefix, tmp_path):
    """The agent with fewer open orders (wo:agent-open) gets the order; an order younger than
    wait_minutes is left alone (its caller may call straight back); orders still in a live
    call (no back-office reason) are never taken."""
    store = store_for(redis_server.url, prefix, tmp_path / "s")
    for i in range(2):  # a1 already holds two open orders
        busy = await store.create_for_call(f"b{i}", "+15550999", "x", T0, category="other")
        await store.update(busy.id, T0, "assign", "router", agent="a1")
    routing = billing_routing(profile("a1", {"billing": 5}), profile("a2", {"billing": 1}))
    loop = BackOffice(store, connect(redis_server.url), lambda: routing, lambda: SETTINGS,
                      counter=Results())
    live = await store.create_for_call("live", "+15550101", "x", T0, category="inquiry")
    order = await store.create_for_call("gone", "+15550102", "x", T0, category="inquiry")
    await store.send_to_back_office(order.id, T0 + 60, "agent101", "out-of-hours")
    assert (await loop.run_once(T0 + 4 * 60)).assigned == []  # younger than 5 minutes
    assert (await loop.run_once(T0 + 5 * 60)).assigned == [(order.id, "a2")]
    assert (await store.get(live.id)).status is Status.PENDING


@on_asyncio
async def test_nobody_qualifies_lists_once_with_the_reason_and_retries(redis_server, prefix,
                                                                      tmp_path):
    """Nobody with the skill: the order goes on wo:unassigned with the reason, one
    WOUNASSIGNABLE event however many instances see it, tried again only after
    retry_minutes; once an agent qualifies it is assigned and leaves the list."""
    url = redis_server.url
    store = store_for(url, prefix, tmp_path / "s")
    routing = {"now": billing_routing(profile("gen", {"general": 5}))}
    counter = Results()
    loops = [BackOffice(store, connect(url), lambda: routing["now"], lambda: SETTINGS,
                        counter=counter) for _ in range(2)]
    order = await store.create_for_call("c1", "+15550100", "x", T0, category="inquiry")
    await store.update(order.id, T0, "update", "router", outcome="callback-failed")
    at = T0 + 10 * 60
    rounds = await asyncio.gather(*(loop.run_once(at) for loop in loops))
    assert [r.unassigned for r in rounds] == [[(order.id, "no-skill")]] * 2
    client = connect(url)
    assert (await kinds(client, prefix)).count("WOUNASSIGNABLE") == 1
    assert counter.counts == {"no-skill": 1}
    (listed,) = await unassigned_orders(client, prefix)
    assert (listed.order_id, listed.reason, listed.back_office) == (
        order.id, "no-skill", "callback-failed")
    assert "billing" in listed.detail and listed.retry_at == pytest.approx(at + 15 * 60)
    assert (await loops[0].run_once(at + 60)).unassigned == []  # not before the retry
    routing["now"] = billing_routing(profile("b1", {"billing": 2}, {0: [(8 * 60, 9 * 60)]}))
    assert (await loops[0].run_once(at + 15 * 60)).unassigned == [(order.id, "off-schedule")]
    (listed,) = await unassigned_orders(client, prefix)
    assert listed.reason == "off-schedule" and listed.since == pytest.approx(at)
    assert (await kinds(client, prefix)).count("WOUNASSIGNABLE") == 2
    routing["now"] = billing_routing(profile("b1", {"billing": 2}))
    assert (await loops[1].run_once(at + 30 * 60)).assigned == [(order.id, "b1")]
    assert await unassigned_orders(client, prefix) == []


@on_asyncio
async def test_a_supervisor_assigning_by_hand_takes_the_order_off_the_list(redis_server,
                                                                          prefix, tmp_path):
    """An order on the list assigned by hand is dropped from it at the next round, and the
    back office never assigns it again."""
    store = store_for(redis_server.url, prefix, tmp_path / "s")
    loop = BackOffice(store, connect(redis_server.url), lambda: billing_routing(),
                      lambda: SETTINGS, counter=Results())
    order = await store.create_for_call("c1", "+15550100", "x", T0, category="inquiry")
    await store.send_to_back_office(order.id, T0, "agent101")
    assert (await loop.run_once(T0 + H)).unassigned == [(order.id, "no-agents")]
    await store.update(order.id, T0 + H, "assign", "supervisor", agent="a9")
    assert await store.assign_back_office(order.id, "a1", T0 + H) is None
    await loop.run_once(T0 + 2 * H)
    assert await unassigned_orders(connect(redis_server.url), prefix) == []
    assert (await store.get(order.id)).agent == "a9"


# -- repeat contacts ------------------------------------------------------------------------


@on_asyncio
async def test_concurrent_repeat_calls_of_one_caller_make_one_order(redis_server, prefix,
                                                                    tmp_path):
    """Ten calls of one caller about one category at once, through two instances: one
    order, contacts 10, every call's id in the history and found by get_by_call; each call
    asked twice still counts once."""
    url = redis_server.url
    stores = [store_for(url, prefix, tmp_path / n) for n in ("a", "b")]
    calls = [f"call-{i}" for i in range(10)]
    made = await asyncio.gather(*(
        stores[i % 2].create_for_call(call, "+82 10-1234-5678", "Kim", T0 + i,
                                      category="inquiry")
        for i, call in enumerate(calls * 2)
    ))
    assert len({o.id for o in made}) == 1
    order = await stores[0].get(made[0].id)
    assert order.contacts == 10
    linked = {h.details["call_id"] for h in order.history if h.event == "repeat"}
    assert linked | {order.call_id} == set(calls)
    for call in calls:
        assert (await stores[1].get_by_call(call)).id == order.id
    client = connect(url)
    assert (await kinds(client, prefix)).count("WOREPEAT") == 9
    assert sum([await client.zcard(k) for k in Buckets(prefix=prefix).keys("wo:index")]) == 1


@on_asyncio
async def test_repeat_window_edges_category_and_status(redis_server, prefix, tmp_path):
    """Linked within the window of the creation or the last repeat call (the edge included),
    a new order just past it, for another category, after the order is resolved, and never
    with the window at 0."""
    store = store_for(redis_server.url, prefix, tmp_path / "s", window_h=2)
    first = await store.create_for_call("c1", "+15550100", "x", T0, category="inquiry")
    at_edge = await store.create_for_call("c2", "+15550100", "x", T0 + 2 * H, category="inquiry")
    assert at_edge.id == first.id  # exactly the window after creation
    moved = await store.create_for_call("c3", "+15550100", "x", T0 + 4 * H, category="inquiry")
    assert moved.id == first.id and moved.contacts == 3  # within 2 h of the last repeat call
    past = await store.create_for_call("c4", "+15550100", "x", T0 + 6 * H + 0.001,
                                       category="inquiry")
    assert past.id != first.id and past.contacts == 1
    other = await store.create_for_call("c5", "+15550100", "x", T0 + 6 * H + 1,
                                        category="fault")
    assert other.id not in (first.id, past.id)
    await store.update(past.id, T0 + 7 * H, "assign", "r", agent="a1")
    await store.update(past.id, T0 + 7 * H, "start", "a1")
    await store.update(past.id, T0 + 7 * H, "resolve", "a1")
    after = await store.create_for_call("c6", "+15550100", "x", T0 + 7 * H + 1,
                                        category="inquiry")
    assert after.id != past.id
    off = store_for(redis_server.url, prefix, tmp_path / "off", window_h=0)
    assert (await off.create_for_call("c7", "+15550100", "x", T0 + 7 * H + 2,
                                      category="inquiry")).id != after.id


@on_asyncio
async def test_spooled_repeat_call_links_at_replay_exactly_once(redis_server, prefix,
                                                                tmp_path):
    """A call made while Redis was away is spooled as an order of its own (the spool cannot
    see the caller's orders); at replay it is linked to the caller's open order, its local id
    an alias of that order, and a second replay (a crash mid-replay) counts nothing twice."""
    url = redis_server.url
    store = store_for(url, prefix, tmp_path / "s")
    first = await store.create_for_call("c1", "+15550100", "x", T0, category="inquiry")
    cut_off = WorkOrderStore(
        aioredis.Redis.from_url(f"redis://127.0.0.1:{_free_port()}", socket_timeout=0.2,
                                socket_connect_timeout=0.2),
        tmp_path / "spool", prefix=prefix, cipher=CIPHER, repeat_contact_window=24 * H,
    )
    local = await cut_off.create_for_call("c2", "+15550100", "x", T0 + H, category="inquiry")
    await cut_off.update(local.id, T0 + H + 5, "update", "caller", outcome="abandoned")
    assert local.id.startswith("L")
    backup = tmp_path / "spool-copy"
    shutil.copytree(tmp_path / "spool", backup)
    replaying = WorkOrderStore(connect(url), tmp_path / "spool", prefix=prefix, cipher=CIPHER,
                               repeat_contact_window=24 * H)
    assert await replaying.replay_spool() == 2
    again = WorkOrderStore(connect(url), backup, prefix=prefix, cipher=CIPHER,
                           repeat_contact_window=24 * H)
    assert await again.replay_spool() == 0
    order = await store.get(first.id)
    assert order.contacts == 2 and order.outcome == "abandoned"
    assert (await store.get_by_call("c2")).id == first.id
    assert (await store.get(local.id)).id == first.id
    assert [h.event for h in order.history] == ["create", "repeat", "update"]
    assert json.loads(json.dumps(order.to_dict()))["contacts"] == 2


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
