"""Work orders under Redis faults, against real redis-server processes (AOF on, as shipped):
redis-server killed (SIGKILL) in the middle of a burst and restarted on its data, a process
killed in the middle of a spool replay, and a Redis that is slow rather than down. After each,
every order is in Redis exactly once, with its whole history in order and one event per
change: nothing lost, nothing applied twice.

Each test starts its own redis-server (it is killed or put to sleep). The store is asyncio
code: each test body runs as an asyncio Task (``on_asyncio``), as the service runs it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.datakeys import DataKey
from privacy.envelope import new_key
from privacy.fields import FieldCipher
from testbed.redis import RedisServer
from workorders.model import Status, WorkOrder
from workorders.spool import Spool
from workorders.store import StoreUnavailable, WorkOrderStore
from workorders.store.core import UNSYNCED_WINDOW_S

REPO = Path(__file__).resolve().parents[2]
PII_KEY, INDEX_KEY = new_key(), new_key()
# One cipher for the module (the replaying child process gets the same keys).
CIPHER = FieldCipher(DataKey("workorders-pii", 1, PII_KEY), DataKey("blind-index", 1, INDEX_KEY))
PREFIX = "hotline:"

# What each order lives through in the bursts: one history entry and one event per step.
STEPS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("assign", {"agent": "agent103"}),
    ("note", {"text": "step 1"}),
    ("start", {}),
    ("note", {"text": "step 2"}),
    ("resolve", {"outcome": "fixed"}),
)
HISTORY = ["create", *(event for event, _ in STEPS)]
KINDS = ["WOCREATE", *("WO" + event.upper() for event, _ in STEPS)]
NOTES = ["step 1", "step 2"]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test's own, with DEBUG allowed from the loopback."""
    with RedisServer(debug_commands=True) as started:
        yield started


def connect(url: str, **options: Any) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url, **{"socket_timeout": 2, "socket_connect_timeout": 2, **options}
    )


def store_on(
    client: aioredis.Redis, spool: Path, prefix: str = PREFIX, **options: Any
) -> WorkOrderStore:
    return WorkOrderStore(client, spool, prefix=prefix, cipher=CIPHER, **options)


async def live_through(store: WorkOrderStore, call_id: str, on_write: Callable[[], None]) -> str:
    """One call's order, created and taken through ``STEPS`` one change after the other, as
    the call flow and the agent do; the id the caller was given."""
    order = await store.create_for_call(
        call_id, "+8210" + call_id[-4:], "Caller " + call_id, time.time(),
        category="fault", urgency="urgent", queue="faults",
    )
    on_write()
    for event, changes in STEPS:
        changed = await store.update(order.id, time.time(), event, "agent103", **changes)
        assert changed is not None and changed.history[-1].event == event
        on_write()
    return order.id


async def assert_exactly_once(
    client: aioredis.Redis, call_ids: Iterable[str], scratch: Path
) -> None:
    """Every call has one order, with the whole history of ``STEPS`` in order and no entry
    twice, and exactly one event per change on the stream; no other order exists."""
    reader = store_on(client, scratch / f"reader-{uuid.uuid4().hex}")
    events_by_order: dict[str, list[str]] = {}
    for _, fields in await client.xrange(f"{PREFIX}events"):
        entry = {k.decode(): v.decode() for k, v in fields.items()}
        events_by_order.setdefault(entry["order_id"], []).append(entry["kind"])
    ids = []
    for call_id in call_ids:
        order = await reader.get_by_call(call_id)
        assert order is not None, f"call {call_id}: work order lost"
        ids.append(order.id)
        assert [h.event for h in order.history] == HISTORY, (call_id, order.history)
        assert [h.details.get("text") for h in order.history if h.event == "note"] == NOTES
        times = [h.time for h in order.history]
        assert times == sorted(times) and len(set(times)) == len(times), order.history
        assert (order.status, order.agent) == (Status.RESOLVED, "agent103")
        assert events_by_order.get(order.id) == KINDS, (call_id, events_by_order.get(order.id))
    assert len(set(ids)) == len(ids)
    assert sum([await client.zcard(k) for k in reader.buckets.keys("wo:index")]) == len(ids)
    assert sorted(events_by_order) == sorted(ids)
    assert await client.llen(f"{PREFIX}wo:spool-rejected") == 0


def by_call_keys(url: str) -> int:
    with redis.Redis.from_url(url) as sync:
        return sum(1 for _ in sync.scan_iter(f"{PREFIX}wo:*:by-call:*", count=1000))


@on_asyncio
async def test_redis_killed_mid_burst_loses_and_doubles_nothing(server, tmp_path):
    """Two service instances drive forty calls' orders each through their lifecycle, calls
    arriving while others are under way, and every call's creation is also asked for by the
    other instance (a retried request). redis-server is killed with SIGKILL a quarter into
    the burst (with writes in flight) and restarted on its AOF halfway: creations and changes
    meanwhile are spooled, each instance replays its spool, and every order is there once,
    with its full history in order and one event per change; the retried creations and the
    local ids given out while Redis was dead lead to the same orders."""
    clients = [connect(server.url), connect(server.url)]
    stores = [
        store_on(c, tmp_path / f"spool-{i}", timeout=1.0, retry_after=0.2)
        for i, c in enumerate(clients)
    ]
    calls = [f"burst-{i:04d}" for i in range(80)]
    total = len(calls) * (1 + len(STEPS))
    written = 0
    spooled_at_restart = False
    # Calls arrive one per three writes, eight at first: some before, some during the outage.
    arrivals = [asyncio.Event() for _ in calls]

    def on_write() -> None:
        nonlocal written, spooled_at_restart
        written += 1
        for arrival in arrivals[: written // 3 + 8]:
            arrival.set()
        if written == total // 4:
            server.kill()
        elif written == total // 2:
            spooled_at_restart = all(s.spool_pending for s in stores)
            server.start()

    async def call(i: int, call_id: str) -> tuple[str, str]:
        if i >= 8:
            await arrivals[i].wait()
        own, other = stores[i % 2], stores[(i + 1) % 2]
        retried = asyncio.ensure_future(
            # A retry of the call's request: the same caller (the bucket is the caller's).
            other.create_for_call(call_id, "+8210" + call_id[-4:], "retry", time.time())
        )
        given = await live_through(own, call_id, on_write)
        return given, (await retried).id

    given = await asyncio.gather(*(call(i, c) for i, c in enumerate(calls)))
    assert spooled_at_restart, "both instances spooled while redis-server was dead"
    assert any(own.startswith("L") for own, _ in given), "orders created while it was dead"
    for store in stores:
        await store.replay_spool()
        assert not store.spool_pending
    await assert_exactly_once(clients[0], calls, tmp_path)
    assert by_call_keys(server.url) == len(calls)
    for (own_id, retried_id), call_id in zip(given, calls, strict=True):
        # Whatever id a caller was given (a local id while Redis was away), it finds the order.
        real = (await stores[0].get_by_call(call_id)).id
        assert (await stores[0].get(own_id)).id == real
        assert (await stores[1].get(retried_id)).id == real
    for client in clients:
        await client.aclose()


async def reconnected(client: aioredis.Redis) -> None:
    """The connection a restarted redis-server dropped found and let go: the next is new."""
    with contextlib.suppress(aioredis.ConnectionError):
        await client.ping()


@on_asyncio
async def test_local_id_aliased_at_replay_takes_changes_through_a_second_outage(
    server, tmp_path
):
    """A call's order created while redis-server was dead gets a local id; the retried
    request created it in Redis meanwhile through the other instance, so the replay makes the
    local id an alias of that order. The call's next changes go to it in Redis; then Redis
    fails again and the change after that is spooled, checked against the order as last
    changed, not against the local draft of the first outage (which refused it: CI, the
    burst above), and replayed once."""
    clients = [connect(server.url), connect(server.url)]
    own, other = (store_on(c, tmp_path / f"spool-{i}", timeout=1.0, retry_after=0.0)
                  for i, c in enumerate(clients))
    call_id, number = "alias-0001", "+82100001"
    server.kill()
    order = await own.create_for_call(call_id, number, "Caller", time.time(),
                                      category="fault", urgency="urgent", queue="faults")
    assert order.id.startswith("L") and own.spool_pending
    server.start()
    for client in clients:
        await reconnected(client)
    retried = await other.create_for_call(call_id, number, "retry", time.time())
    assert not retried.id.startswith("L")
    assert await own.replay_spool() == 0  # the creation: Redis had the call's order
    assert not own.spool_pending
    for event, changes in STEPS[:2]:
        changed = await own.update(order.id, time.time(), event, "agent103", **changes)
        assert changed is not None and changed.id == retried.id
    server.kill()
    event, changes = STEPS[2]
    spooled = await own.update(order.id, time.time(), event, "agent103", **changes)
    assert spooled is not None and own.spool_pending
    assert [h.event for h in spooled.history] == HISTORY[:4]
    server.start()
    await reconnected(clients[0])
    await own.replay_spool()
    for event, changes in STEPS[3:]:
        assert await own.update(order.id, time.time(), event, "agent103", **changes)
    await assert_exactly_once(clients[0], [call_id], tmp_path)
    assert (await own.get(order.id)).id == retried.id
    for client in clients:
        await client.aclose()


async def acknowledged_not_on_disk(
    client: aioredis.Redis, store: WorkOrderStore, call_id: str
) -> WorkOrder:
    """The call's order created and taken through the first two ``STEPS``, every write
    acknowledged by Redis with its append-only file off: what a kill then loses, as with
    ``everysec`` while a slow fsync puts the file's writing off."""
    await client.config_set("appendonly", "no")
    order = await store.create_for_call(
        call_id, "+8210" + call_id[-4:], "Caller", time.time(),
        category="fault", urgency="urgent", queue="faults",
    )
    for event, changes in STEPS[:2]:
        assert await store.update(order.id, time.time(), event, "agent103", **changes)
    return order


@pytest.mark.parametrize("held", [True, False], ids=["held-for-the-window", "not-held"])
@on_asyncio
async def test_writes_redis_acknowledged_then_lost_in_its_crash_are_replayed(
    server, tmp_path, held
):
    """redis-server acknowledges a call's creation and its first changes, then is killed
    before they reach its append-only file: with ``appendfsync everysec`` it puts off writing
    the file while a background fsync is slow and answers meanwhile (simulated here by turning
    the file off for those writes). The next change finds Redis dead: the writes Redis
    acknowledged within the window go to the spool ahead of it, and after the restart the
    replay brings the order back whole, each change once. Without the window (``not-held``)
    the same crash loses the order and the spooled changes are refused: what it is for."""
    client = connect(server.url)
    store = store_on(client, tmp_path / "spool", timeout=1.0, retry_after=0.0,
                     unsynced_window=UNSYNCED_WINDOW_S if held else 0.0)
    call_id = "acked-0001"
    order = await acknowledged_not_on_disk(client, store, call_id)
    server.kill()
    for event, changes in STEPS[2:]:
        assert await store.update(order.id, time.time(), event, "agent103", **changes)
    assert store.spool_pending
    server.start()
    await store.replay_spool()
    assert not store.spool_pending
    if held:
        await assert_exactly_once(client, [call_id], tmp_path)
    else:
        assert await store_on(client, tmp_path / "reader").get_by_call(call_id) is None
        assert await client.llen(f"{PREFIX}wo:spool-rejected") == len(STEPS[2:])
    await client.aclose()


@on_asyncio
async def test_writes_lost_by_a_redis_restarted_between_two_writes_are_replayed(server, tmp_path):
    """The same loss with no write failing: redis-server killed and restarted between two
    writes of an idle service (or a failover to a replica without them). The periodic replay
    (``replay_spool``) sees another run id than the one that acknowledged the held writes,
    spools them again and replays them; the order's later changes follow, each once."""
    client = connect(server.url)
    store = store_on(client, tmp_path / "spool", timeout=1.0, retry_after=0.0)
    assert await store.replay_spool() == 0  # the run id that will acknowledge the writes
    call_id = "acked-0002"
    order = await acknowledged_not_on_disk(client, store, call_id)
    server.kill()
    server.start()
    for _ in range(3):  # the first try may only find the connection Redis dropped
        try:
            applied = await store.replay_spool()
            break
        except StoreUnavailable:
            continue
    assert applied == 1 + len(STEPS[:2])
    for event, changes in STEPS[2:]:
        assert await store.update(order.id, time.time(), event, "agent103", **changes)
    await assert_exactly_once(client, [call_id], tmp_path)
    await client.aclose()


@pytest.mark.parametrize("first", ["change", "lookup"])
@on_asyncio
async def test_writes_lost_by_a_restart_the_next_write_finds_are_replayed(
    server, tmp_path, first
):
    """The same restart, and the call's next change (or the lookup of its order, as the
    answer makes) comes before any periodic replay has seen the new run id: the client
    reconnects on its own, nothing fails, and Redis says there is no such order. That is
    Redis having lost a creation the store holds: every held write is spooled again, the
    change spooled behind them (the lookup answered from the local view), and the replay
    brings the order back whole, each change once. Before, the change raised
    ``UnknownWorkOrder`` and the call's flow failed (tests/integration/test_routing_faults.py,
    a waiting call lost in a crash)."""
    client = connect(server.url)
    store = store_on(client, tmp_path / "spool", timeout=1.0, retry_after=0.0)
    call_id = "acked-0003"
    order = await acknowledged_not_on_disk(client, store, call_id)
    server.kill()
    server.start()
    await reconnected(client)
    if first == "lookup":
        found = await store.get_by_call(call_id)
        assert found is not None and found.id == order.id
    for event, changes in STEPS[2:]:
        assert await store.update(order.id, time.time(), event, "agent103", **changes)
    await store.replay_spool()
    assert not store.spool_pending
    await assert_exactly_once(client, [call_id], tmp_path)
    await client.aclose()


REPLAYER = """
import asyncio, base64, os, sys
import redis.asyncio as aioredis
from privacy.datakeys import DataKey
from privacy.fields import FieldCipher
from workorders.store import WorkOrderStore

async def main():
    cipher = FieldCipher(
        DataKey("workorders-pii", 1, base64.b64decode(os.environ["PII_KEY"])),
        DataKey("blind-index", 1, base64.b64decode(os.environ["INDEX_KEY"])),
    )
    client = aioredis.Redis.from_url(sys.argv[1])
    store = WorkOrderStore(client, sys.argv[2], prefix=sys.argv[3], cipher=cipher)
    print("replaying", flush=True)
    print("applied", await store.replay_spool(), flush=True)

asyncio.run(main())
"""


@on_asyncio
async def test_process_killed_mid_replay_then_replayed_again_exactly_once(server, tmp_path):
    """A service process killed with SIGKILL in the middle of its spool replay (some
    spooled writes applied, the spool file still there) and a new process replaying the
    same spool: every write is applied once (the operation ids recorded with each write make
    the replay idempotent): one order per call, full history, one event per change."""
    spool = tmp_path / "spool"
    dead = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    cut_off = store_on(dead, spool, timeout=0.5)
    calls = [f"replay-{i:04d}" for i in range(60)]
    for call_id in calls:
        await live_through(cut_off, call_id, lambda: None)
    await dead.aclose()
    total = len(calls) * (1 + len(STEPS))
    assert sum(1 for _ in Spool(spool).records()) == total

    client = connect(server.url)
    env = {**os.environ, "PII_KEY": base64.b64encode(PII_KEY).decode(),
           "INDEX_KEY": base64.b64encode(INDEX_KEY).decode()}
    child = subprocess.Popen(
        [sys.executable, "-c", REPLAYER, server.url, str(spool), PREFIX],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while await client.xlen(f"{PREFIX}events") < total // 10:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "the replay did not start"
            await asyncio.sleep(0.002)
        # Freeze the child's writes so it is caught mid-replay for sure, then kill it.
        await client.client_pause(10_000, all=False)
        applied_when_killed = await client.xlen(f"{PREFIX}events")
        child.send_signal(signal.SIGKILL)
        child.wait()
        await client.client_unpause()
        # The child's connection gone (its paused write dropped or applied): counts are stable.
        while len(await client.client_list()) > 1:
            await asyncio.sleep(0.01)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert 0 < applied_when_killed < total
    assert Spool(spool).pending(), "the killed replay left its batch for the next one"

    applied_before = await client.xlen(f"{PREFIX}events")
    again = store_on(client, spool)
    assert await again.replay_spool() == total - applied_before
    assert not Spool(spool).pending()
    await assert_exactly_once(client, calls, tmp_path)
    # Local ids kept: no counter moved.
    assert [await client.get(k) for k in again.buckets.keys("wo:seq")] == [None] * 16
    await client.aclose()


class SleepBeforeWrite:
    """Puts redis-server to sleep (``DEBUG SLEEP``) just before the next write command of
    the store reaches it: the command is applied when Redis wakes up, long after the store
    gave up waiting for its reply. Deterministic "applied, but the reply timed out"."""

    def __init__(self, port: int, seconds: float) -> None:
        self.port = port
        self.seconds = seconds
        self.armed = False
        self.sleeper: threading.Thread | None = None

    def connection_class(self) -> type[aioredis.Connection]:
        fault = self

        class Stalling(aioredis.Connection):
            async def send_packed_command(
                self, command: Any, check_health: bool = True
            ) -> None:
                data = command if isinstance(command, bytes) else b"".join(
                    c.encode() if isinstance(c, str) else c for c in (
                        [command] if isinstance(command, str) else command
                    )
                )
                if fault.armed and (b"EXEC\r\n" in data or b"EVALSHA\r\n" in data):
                    fault.armed = False
                    fault.put_to_sleep()
                await super().send_packed_command(command, check_health)

        return Stalling

    def put_to_sleep(self) -> None:
        def sleep() -> None:
            with redis.Redis(port=self.port, socket_timeout=self.seconds + 5) as side:
                side.execute_command("DEBUG", "SLEEP", str(self.seconds))

        self.sleeper = threading.Thread(target=sleep)
        self.sleeper.start()
        # Asleep once a PING goes unanswered (it is answered after the sleep, unread); a
        # busy machine can take longer than a few ms to answer one awake, so "unanswered"
        # means for 0.25 s, well inside the sleep.
        while _answers_ping(self.port, 0.25):
            time.sleep(0.005)

    def wait_awake(self) -> None:
        assert self.sleeper is not None
        self.sleeper.join()


@on_asyncio
async def test_write_applied_but_its_reply_timed_out_is_applied_once(server, tmp_path):
    """Redis applies a creation and an update, but only after the store stopped waiting
    (redis_timeout_s): the store spooled both, with the operation ids Redis recorded with
    them. The caller got its answer within the timeout; when Redis is back the replay skips
    both: one order, one creation and one assignment in the history and on the stream, and
    the local id the caller was given leads to the real order."""
    fault = SleepBeforeWrite(server.port, seconds=2.5)
    pool = aioredis.ConnectionPool.from_url(
        server.url, socket_timeout=5, connection_class=fault.connection_class()
    )
    client = aioredis.Redis(connection_pool=pool)
    spool = tmp_path / "spool"
    # The create script loaded before (a NOSCRIPT reply would be all the sleep delays).
    await store_on(client, tmp_path / "warm", prefix="warm:").create_for_call("w", "1", "", 0)
    store = store_on(client, spool, timeout=0.3)

    fault.armed = True
    order = await store.create_for_call("slow-1", "+8210", "Min", time.time())
    # Answered while Redis still slept (its DEBUG SLEEP not yet returned). A clock around
    # the call also counted the fault's own setup, which blocks the loop until Redis is
    # asleep and took over a second on a loaded CI box.
    assert fault.sleeper is not None and fault.sleeper.is_alive(), \
        "the caller waited for the sleeping Redis"
    assert order.id.startswith("L") and store.spool_pending
    fault.wait_awake()
    real = await _eventually(lambda: client.get(store.buckets.key(
        store.buckets.of_new(CIPHER.blind_index("+8210"), "slow-1"), "wo:by-call:slow-1")))
    real_id = real.decode()
    assert not real_id.startswith("L"), "Redis applied the creation the store gave up on"
    assert await store.replay_spool() == 0

    fault.armed = True
    assigned = await store.update(order.id, time.time(), "assign", "router", agent="agent103")
    assert assigned is not None and assigned.agent == "agent103" and store.spool_pending
    fault.wait_awake()
    history = store.buckets.history_key(real_id)
    # Redis applied the update the store gave up on.
    assert await _eventually(lambda: _is(client.llen(history), 2))
    assert await store.replay_spool() == 0

    final = await store.get(order.id)
    assert final.id == real_id and [h.event for h in final.history] == ["create", "assign"]
    kinds = [f[b"kind"] for _, f in await client.xrange(f"{PREFIX}events")]
    assert kinds == [b"WOCREATE", b"WOASSIGN"]
    assert not list(spool.iterdir())
    await client.aclose()


@on_asyncio
async def test_slow_redis_burst_is_spooled_within_the_timeout(server, tmp_path):
    """Redis sleeps (DEBUG SLEEP) much longer than redis_timeout_s while a burst of writes
    arrives, three times more than the store lets talk to Redis at once: every write is
    spooled and answered within about the timeout, none waits for Redis to wake up or for the
    writes queued before it to time out one batch after another. Once Redis is awake, the
    replay makes every order exactly once."""
    client = connect(server.url, socket_timeout=10)
    # A window no slow machine outlasts, so which creations are spooled again is known.
    store = store_on(client, tmp_path / "spool", timeout=0.4, retry_after=0.2, max_in_flight=4,
                     unsynced_window=60.0)
    calls = [f"sleepy-{i:03d}" for i in range(12)]
    orders = [await store.create_for_call(c, "+8210", "Ahn", time.time()) for c in calls]

    sleeper = threading.Thread(target=_debug_sleep, args=(server.port, 2.5))
    sleeper.start()
    while _answers_ping(server.port, 0.05):
        time.sleep(0.005)
    waited: list[float] = []

    async def assign(order_id: str) -> None:
        started = time.monotonic()
        await store.update(order_id, time.time(), "assign", "router", agent="agent103")
        waited.append(time.monotonic() - started)

    await asyncio.gather(*(assign(o.id) for o in orders))
    asleep = _answers_ping(server.port, 0.05) is False
    sleeper.join()
    assert asleep, "the burst was answered while Redis still slept"
    # The 12 assignments, behind the 12 creations Redis acknowledged within the window
    # (here 60 s) before it stopped answering: spooled again in case it lost them.
    spooled = [record["op"] for record in Spool(tmp_path / "spool").records()]
    assert store.spool_pending and spooled == ["create"] * 12 + ["update"] * 12
    # Loose bound: one timeout plus scheduling, never one timeout per batch queued before.
    assert max(waited) < 2 * 0.4, waited

    await store.replay_spool()
    for step, (event, changes) in enumerate(STEPS[1:], 1):
        for order in orders:
            await store.update(order.id, time.time() + step, event, "agent103", **changes)
    await assert_exactly_once(client, calls, tmp_path)
    await client.aclose()


async def _eventually(read: Callable[[], Awaitable[Any]], timeout: float = 5.0) -> Any:
    """``read()`` once it is true: what a woken Redis does with the commands it held is not
    ordered with a new connection's first command."""
    deadline = time.monotonic() + timeout
    while not (value := await read()):
        assert time.monotonic() < deadline, "Redis never applied the held command"
        await asyncio.sleep(0.01)
    return value


async def _is(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


def _debug_sleep(port: int, seconds: float) -> None:
    with redis.Redis(port=port, socket_timeout=seconds + 5) as side:
        side.execute_command("DEBUG", "SLEEP", str(seconds))


def _answers_ping(port: int, timeout: float) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
