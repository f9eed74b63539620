"""Webhooks end to end on the reactor: work-order events from a real redis-server POSTed by
treq to a real twisted.web receiver on 127.0.0.1, read through the webhook's consumer group.

Pinned: a delivery a receiver can verify; a retry then success; a 4xx refused for good into
the dead-letter list and re-driven from there; a receiver that is down retried then
dead-lettered; a deliverer stopped before its acknowledgement delivering the same event again
after its restart. Backoffs are shortened to hundredths of a second.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import pytest_twisted
import redis.asyncio as aioredis
from twisted.internet import reactor, task, threads
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

import events
from hotline.cli import main as ivr
from hotline.failures import RepeatedFailure
from ivr.aio import deferred
from privacy.testing import random_field_cipher
from testbed.redis import free_port
from webhooks.deadletter import DeadLetters
from webhooks.deliverer import Webhooks
from webhooks.schema import RetrySettings, WebhooksConfig, WebhookSettings, decode_secret
from webhooks.signature import verify
from workorders.store import WorkOrderStore

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
KEY = decode_secret(SECRET)
T0 = 1_764_321_600.0
log = logging.getLogger(__name__)


class Receiver(Resource):
    """A webhook receiver answering each POST with the next status of ``script`` (then 200);
    ``"hold"`` leaves the request unanswered."""

    isLeaf = True

    def __init__(self, script: list[int | str] | None = None) -> None:
        super().__init__()
        self.script = list(script or [])
        self.requests: list[tuple[dict[str, str], bytes]] = []

    def render_POST(self, request: Any) -> Any:
        body = request.content.read()
        headers = {name.decode().lower(): values[0].decode()
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        self.requests.append((headers, body))
        answer = self.script.pop(0) if self.script else 200
        if answer == "hold":
            return NOT_DONE_YET
        request.setResponseCode(answer)
        return b"refused: no such order" if answer == 422 else b"ok"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Any:
    resource = Receiver()
    port = reactor.listenTCP(0, Site(resource), interface="127.0.0.1")
    resource.url = f"http://127.0.0.1:{port.getHost().port}/hooks"
    yield resource
    port.stopListening()


def webhooks(redis: aioredis.Redis, prefix: str, url: str, attempts: int = 4) -> Webhooks:
    config = WebhooksConfig(webhooks={"crm": WebhookSettings(
        url=url, secret_env="CRM_SECRET", timeout_s=2,
        retry=RetrySettings(attempts=attempts, initial_s=0.02, max_s=0.05),
    )})
    hooks = Webhooks.from_config(
        config, redis, reactor, instance="hotline-1", prefix=prefix,
        failures=lambda what: RepeatedFailure(what, reactor.seconds, log),
        environ={"CRM_SECRET": SECRET},
    )
    assert hooks is not None
    return hooks


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "timed out"
        await task.deferLater(reactor, 0.02)


async def started(hooks: Webhooks, redis: aioredis.Redis, prefix: str) -> None:
    """Start and wait for the group (it starts at "$": events before it are not delivered)."""
    hooks.start()

    async def group_exists() -> bool:
        try:
            groups = await deferred(redis.xinfo_groups(f"{prefix}events"))
        except Exception:
            return False
        return any(g["name"] == b"webhooks:crm" for g in groups)

    await until(group_exists)


async def pending(redis: aioredis.Redis, prefix: str) -> int:
    return int((await deferred(redis.xpending(f"{prefix}events", "webhooks:crm")))["pending"])


async def emit(redis: aioredis.Redis, prefix: str, kind: str, order_id: str) -> str:
    entry_id = await deferred(events.emit(redis, kind, T0, prefix=prefix, order_id=order_id))
    return entry_id.decode()


@pytest_twisted.ensureDeferred
async def test_work_order_events_arrive_signed(redis_server, prefix, receiver, tmp_path):
    """A work order created and assigned through the real store reaches the receiver as
    WOCREATE then WOASSIGN (routing events on the stream are not sent), each with a valid
    Standard Webhooks signature over its body, the stream id as webhook-id, and no personal
    data; both entries are acknowledged."""
    redis = aioredis.Redis.from_url(redis_server.url)
    hooks = webhooks(redis, prefix, receiver.url)
    await started(hooks, redis, prefix)
    store = WorkOrderStore(redis, tmp_path / "spool", prefix=prefix, cipher=random_field_cipher())
    order = await deferred(store.create_for_call(
        "1764.1", "+821012345678", "Kim Caller", T0, category="fault", urgency="urgent"))
    await deferred(events.emit(redis, "CONNECT", T0, prefix=prefix, call_id="1764.1"))
    await deferred(store.update(order.id, T0 + 60, "assign", "supervisor", agent="agent101"))
    await until(lambda: len(receiver.requests) == 2)
    bodies = receiver.bodies()
    assert [b["type"] for b in bodies] == ["WOCREATE", "WOASSIGN"]
    assert bodies[1]["data"]["agent"] == "agent101"
    assert bodies[1]["data"]["details"] == {"agent": "agent101", "from": "pending",
                                            "to": "assigned"}
    stream_ids = [e[0].decode() for e in await deferred(redis.xrange(f"{prefix}events"))]
    for (headers, body), entry_id in zip(receiver.requests, stream_ids[::2], strict=True):
        assert verify(KEY, headers, body, time.time()) == entry_id
        assert headers["content-type"] == "application/json"
        assert b"821012345678" not in body and b"Kim" not in body
    await until(lambda: _zero(pending(redis, prefix)))
    await hooks.stop()
    await deferred(redis.aclose())


async def _zero(count: Awaitable[int]) -> bool:
    return await count == 0


@pytest_twisted.ensureDeferred
async def test_a_retry_then_success(redis_server, prefix, receiver):
    """A receiver answering 503 then 500 then 200 gets the same event three times (same
    webhook-id, each attempt signed anew); it is acknowledged once accepted, and nothing is
    dead-lettered."""
    receiver.script = [503, 500]
    redis = aioredis.Redis.from_url(redis_server.url)
    hooks = webhooks(redis, prefix, receiver.url)
    await started(hooks, redis, prefix)
    entry_id = await emit(redis, prefix, "WORESOLVE", "7")
    await until(lambda: len(receiver.requests) == 3)
    assert {h["webhook-id"] for h, _ in receiver.requests} == {entry_id}
    for headers, body in receiver.requests:
        verify(KEY, headers, body, time.time())
    await until(lambda: _zero(pending(redis, prefix)))
    assert await deferred(redis.llen(f"{prefix}webhooks:dead:crm")) == 0
    await hooks.stop()
    await deferred(redis.aclose())


@pytest_twisted.ensureDeferred
async def test_a_4xx_is_final_then_redriven(redis_server, prefix, receiver, monkeypatch, capsys):
    """A 422 is not retried: the event goes to webhooks:dead:crm with the reason, the next
    event is delivered after it; ``ivr webhooks dead`` lists the letter, and ``ivr webhooks
    redrive`` sends it back: the running deliverer delivers it again (same webhook-id) and
    both lists end empty."""
    receiver.script = [422]
    redis = aioredis.Redis.from_url(redis_server.url)
    hooks = webhooks(redis, prefix, receiver.url)
    await started(hooks, redis, prefix)
    refused = await emit(redis, prefix, "WOCREATE", "1")
    accepted = await emit(redis, prefix, "WOCREATE", "2")
    await until(lambda: len(receiver.requests) == 2)
    assert [h["webhook-id"] for h, _ in receiver.requests] == [refused, accepted]
    (letter,) = await deferred(DeadLetters(redis, prefix).read("crm"))
    assert (letter.id, letter.attempts, letter.reason) == (
        refused, 1, "HTTP 422: refused: no such order")
    assert letter.event["order_id"] == "1"

    monkeypatch.setenv("HOTLINE__REDIS__URL", redis_server.url)
    monkeypatch.setenv("HOTLINE__REDIS__KEY_PREFIX", f'"{prefix}"')  # YAML: a string
    config_dir = _config_with_crm(monkeypatch)
    # The command runs its own asyncio loop (asyncio.run), as from a shell: in a thread here.
    dead = ["--config", config_dir, "webhooks", "dead", "crm"]
    assert await threads.deferToThread(ivr, dead) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["id"] == refused
    assert await threads.deferToThread(
        ivr, ["--config", config_dir, "webhooks", "redrive", "crm"]) == 0
    assert capsys.readouterr().out.startswith("1 dead letters of crm sent back")

    await until(lambda: len(receiver.requests) == 3)
    assert receiver.requests[2][0]["webhook-id"] == refused
    verify(KEY, *receiver.requests[2], time.time())

    async def lists_empty() -> bool:
        return (await deferred(redis.llen(f"{prefix}webhooks:dead:crm"))
                + await deferred(redis.llen(f"{prefix}webhooks:redrive:crm"))) == 0

    await until(lists_empty)
    await hooks.stop()
    await deferred(redis.aclose())


def _config_with_crm(monkeypatch: pytest.MonkeyPatch) -> str:
    """The shipped config directory with a crm webhook (the CLI checks the name)."""
    import shutil
    import tempfile

    from ivr.config import DEFAULT_CONFIG_DIR

    target = tempfile.mkdtemp(prefix="hotline-webhooks-")
    shutil.copytree(DEFAULT_CONFIG_DIR, target, dirs_exist_ok=True)
    with open(f"{target}/webhooks.yaml", "w") as file:
        file.write("webhooks:\n  crm:\n    url: https://crm.example/hook\n"
                   "    secret_env: CRM_SECRET\n")
    return target


@pytest_twisted.ensureDeferred
async def test_a_receiver_that_is_down_ends_in_the_dead_letter_list(redis_server, prefix):
    """Nobody listening at the URL: the connection is refused on each of the four attempts,
    then the event is dead-lettered with the network reason and acknowledged."""
    redis = aioredis.Redis.from_url(redis_server.url)
    hooks = webhooks(redis, prefix, f"http://127.0.0.1:{free_port()}/hooks")
    await started(hooks, redis, prefix)
    entry_id = await emit(redis, prefix, "WOCLOSE", "3")

    async def dead() -> bool:
        return await deferred(redis.llen(f"{prefix}webhooks:dead:crm")) == 1

    await until(dead)
    (letter,) = await deferred(DeadLetters(redis, prefix).read("crm"))
    assert (letter.id, letter.attempts) == (entry_id, 4)
    assert letter.reason.startswith("network:") and "refused" in letter.reason.lower()
    await until(lambda: _zero(pending(redis, prefix)))
    await hooks.stop()
    await deferred(redis.aclose())


@pytest_twisted.ensureDeferred
async def test_a_deliverer_stopped_before_its_ack_delivers_again_after_restart(
    redis_server, prefix, receiver
):
    """The receiver holds the first POST; the deliverer is stopped meanwhile (a service
    going down before the acknowledgement): the entry stays pending for hotline-1. A new
    deliverer for the same instance delivers the same event again (same webhook-id), then
    the next one, and the pending list ends empty."""
    receiver.script = ["hold"]
    redis = aioredis.Redis.from_url(redis_server.url)
    first = webhooks(redis, prefix, receiver.url)
    await started(first, redis, prefix)
    held = await emit(redis, prefix, "WOCREATE", "1")
    await until(lambda: len(receiver.requests) == 1)
    await first.stop()
    assert await pending(redis, prefix) == 1
    after = await emit(redis, prefix, "WOASSIGN", "1")

    again = webhooks(redis, prefix, receiver.url)
    again.start()
    await until(lambda: len(receiver.requests) == 3)
    assert [h["webhook-id"] for h, _ in receiver.requests] == [held, held, after]
    await until(lambda: _zero(pending(redis, prefix)))
    await again.stop()
    await deferred(redis.aclose())
