"""A webhook's deliverer over an in-memory stream on a ``task.Clock``: the kinds filter,
acknowledgement after delivery only, order, re-driven letters first, the heartbeat that keeps
a long delivery from being claimed, and a stop that leaves the delivery unacknowledged."""

from __future__ import annotations

import json

import pytest
from twisted.internet import defer, task

from events.consumer import Entry
from webhooks.deadletter import DeadLetter
from webhooks.deliverer import WebhookDeliverer, matches
from webhooks.delivery import Answer, Delivery
from webhooks.retry import Backoff
from webhooks.testing import CountedFailures, MemoryStream, ScriptedPoster


def entry(n: int, kind: str) -> Entry:
    return Entry(f"{n}-0", {"kind": kind, "time": "2026-11-28T09:00:00Z"})


def deliverer(
    stream: MemoryStream, poster: ScriptedPoster, clock: task.Clock,
    kinds: tuple[str, ...] = ("WO*",), keep_every_s: float = 200,
) -> WebhookDeliverer:
    delivery = Delivery(
        name="crm", url="https://crm.example/hook", key=b"k" * 32,
        backoff=Backoff(attempts=3, initial_s=2, max_s=10), timeout_s=5, poster=poster,
        clock=clock, now=clock.seconds, dead_letters=stream, failures=CountedFailures(),
        draw=lambda: 0.999999,
    )
    return WebhookDeliverer("crm", kinds, stream, delivery, clock, CountedFailures(),
                            keep_every_s=keep_every_s)


def kinds_sent(poster: ScriptedPoster) -> list[str]:
    return [json.loads(sent.body)["type"] for sent in poster.sent]


@pytest.mark.parametrize(("kinds", "kind", "wanted"), [
    (("WO*",), "WOCREATE", True), (("WO*",), "CONNECT", False),
    (("WOCREATE", "WORESOLVE"), "WORESOLVE", True), (("WOCREATE",), "WOCREATED", False),
    (("*",), "ENTERQUEUE", True), (("RING?USY",), "RINGBUSY", True),
])
def test_the_kinds_filter(kinds, kind, wanted) -> None:
    """Kinds are shell patterns on the whole upper-case name."""
    assert matches(kinds, kind) is wanted


def test_matching_events_are_delivered_in_order_and_every_entry_acknowledged() -> None:
    """Of a batch mixing routing and work-order events, only WO* ones are POSTed, in
    stream order; the others are acknowledged without a POST; every entry ends acknowledged,
    each delivered one only after its delivery."""
    stream = MemoryStream([entry(1, "ENTERQUEUE"), entry(2, "WOCREATE"), entry(3, "CONNECT"),
                           entry(4, "WOASSIGN"), entry(5, "COMPLETEAGENT")])
    poster, clock = ScriptedPoster(), task.Clock()
    d = defer.ensureDeferred(deliverer(stream, poster, clock).round())
    assert d.called
    assert kinds_sent(poster) == ["WOCREATE", "WOASSIGN"]
    assert stream.acked == ["1-0", "2-0", "3-0", "4-0", "5-0"]


def test_an_entry_is_acknowledged_only_once_its_delivery_is_over() -> None:
    """While the first event is being retried (503, waiting 2 s), it is not acknowledged and
    the next event is not sent: one event at a time, in order."""
    stream = MemoryStream([entry(1, "WOCREATE"), entry(2, "WOASSIGN")])
    poster, clock = ScriptedPoster([Answer(503)]), task.Clock()
    defer.ensureDeferred(deliverer(stream, poster, clock).round())
    assert kinds_sent(poster) == ["WOCREATE"] and stream.acked == []
    clock.advance(2)
    assert kinds_sent(poster) == ["WOCREATE", "WOCREATE", "WOASSIGN"]
    assert stream.acked == ["1-0", "2-0"]


def test_a_dead_lettered_event_is_acknowledged_and_the_next_follows() -> None:
    """A 400 sends the event to the dead-letter list; it is acknowledged (dealt with) and
    the next event is delivered."""
    stream = MemoryStream([entry(1, "WOCREATE"), entry(2, "WOASSIGN")])
    poster, clock = ScriptedPoster([Answer(400)]), task.Clock()
    defer.ensureDeferred(deliverer(stream, poster, clock).round())
    assert [letter.id for letter in stream.dead] == ["1-0"]
    assert stream.acked == ["1-0", "2-0"] and kinds_sent(poster) == ["WOCREATE", "WOASSIGN"]


def test_redriven_letters_come_before_new_events() -> None:
    """A letter sent back by ``ivr webhooks redrive`` is delivered before the stream is read,
    and taken off the re-drive list only then."""
    letter = DeadLetter("crm", "9-0", {"kind": "WOCLOSE", "time": "t"}, "HTTP 500", 3, "t")
    stream = MemoryStream([entry(10, "WOCREATE")], redrive=[letter.to_json()])
    poster, clock = ScriptedPoster(), task.Clock()
    hook = deliverer(stream, poster, clock)
    defer.ensureDeferred(hook.round())
    assert kinds_sent(poster) == ["WOCLOSE"] and stream.redrive == [] and stream.acked == []
    assert poster.sent[0].headers["webhook-id"] == "9-0"  # the receiver can deduplicate
    defer.ensureDeferred(hook.round())
    assert kinds_sent(poster) == ["WOCLOSE", "WOCREATE"]


def test_a_long_delivery_keeps_its_entry_from_being_claimed() -> None:
    """While an event is retried (three 5 s timeouts, 2 s and 4 s apart: 21 s), its entry's
    idle time is reset every keep_every_s (8 s: XCLAIM to itself), so no other instance
    takes a live delivery over."""
    stream = MemoryStream([entry(1, "WOCREATE")])
    poster, clock = ScriptedPoster([None, None, None]), task.Clock()
    defer.ensureDeferred(deliverer(stream, poster, clock, keep_every_s=8).round())
    clock.pump([1] * 30)
    assert stream.kept == ["1-0", "1-0"]
    assert stream.acked == ["1-0"] and stream.dead  # three timeouts: given up, dealt with
    clock.advance(1000)
    assert stream.kept == ["1-0", "1-0"]  # the heartbeat ends with the delivery


def test_stop_abandons_the_delivery_unacknowledged() -> None:
    """Stopped while its event waits to be retried, the deliverer ends at once: the entry
    is not acknowledged (delivered again after the restart) and nothing is dead-lettered."""
    poster, clock = ScriptedPoster([Answer(503)]), task.Clock()
    stream = MemoryStream([entry(1, "WOCREATE")], clock=clock)
    hook = deliverer(stream, poster, clock)
    hook.start()
    stopped = hook.stop()
    assert stopped.called
    clock.advance(100)
    assert stream.acked == [] and stream.dead == [] and len(poster.sent) == 1


def test_a_failing_stream_is_retried_from_the_pending_entries() -> None:
    """Redis failing an acknowledgement: the failure is logged (once, then summed up), the
    reader goes back to its pending entries, and the round runs again a second later."""
    clock = task.Clock()
    stream = MemoryStream([entry(1, "WOCREATE")], clock=clock)
    calls = {"n": 0}
    real_ack = stream.ack

    def flaky_ack(*ids: str) -> defer.Deferred[None]:
        calls["n"] += 1
        if calls["n"] == 1:
            return defer.fail(ConnectionError("redis away"))
        return real_ack(*ids)

    stream.ack = flaky_ack  # type: ignore[method-assign]
    poster = ScriptedPoster()
    hook = deliverer(stream, poster, clock)
    hook.start()
    assert stream.failures == 1 and stream.acked == []
    assert hook.failures.errors == ["ConnectionError: redis away"]  # type: ignore[attr-defined]
    clock.advance(1)
    assert stream.acked == ["1-0"] and len(poster.sent) == 2  # at least once: sent again
    hook.stop()


def test_the_service_builds_one_deliverer_per_configured_webhook() -> None:
    """No webhooks.yaml, or one with none configured: nothing is built (nothing runs in
    ``ivr serve``). Each configured webhook gets its deliverer, reading through the group
    ``webhooks:<name>`` as the service's instance, with its kinds and its secret."""
    from redis.asyncio import Redis

    from webhooks.deliverer import StreamOnReactor, Webhooks
    from webhooks.schema import WebhooksConfig, WebhookSettings

    clock = task.Clock()
    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never reached: nothing is started

    def build(config: WebhooksConfig | None) -> Webhooks | None:
        return Webhooks.from_config(
            config, redis, clock, instance="hotline-2", prefix="p:",
            failures=lambda what: CountedFailures(), environ={"S": "whsec_" + "QUFB" * 8},
        )

    assert build(None) is None and build(WebhooksConfig()) is None
    hooks = build(WebhooksConfig(webhooks={
        "crm": WebhookSettings(url="https://crm.example/h", secret_env="S", kinds=["WOCLOSE"]),
        "erp": WebhookSettings(url="https://erp.example/h", secret_env="S"),
    }))
    assert hooks is not None
    crm, erp = hooks.deliverers
    assert (crm.name, crm.kinds, erp.kinds) == ("crm", ("WOCLOSE",), ("WO*",))
    assert isinstance(crm.stream, StreamOnReactor)
    group = crm.stream.group
    assert (group.group, group.consumer, group.stream) == ("webhooks:crm", "hotline-2", "p:events")
    assert crm.delivery.key == b"AAA" * 8
    assert crm.keep_every_s == 200
