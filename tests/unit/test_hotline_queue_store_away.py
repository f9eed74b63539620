"""The caller in line while routing's store (Redis) cannot be reached: against a fake
Asterisk, a router that fails as the live one does (``ConnectionError``) and in-memory work
orders. No sockets, no sleeps: music on hold advances a ``task.Clock`` 0.5 s a poll.

What a call centre expects: the caller stays in the queue with the music on while routing
is asked again every poll; an outage that ends puts the call back on its way to an agent;
one that outlasts the queue's own ``max_wait_s`` overflows the call to the operator. The
work order is made once either way.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ivr.menu import MenusConfig
from ivr.speech.schema import load_intents
from ivr.testing import HANGUP, FakeAsterisk, hotline_call
from routing.live import CallRequest, Offer, QueueEntry
from routing.live_fakes import FakeRouter

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def cfg() -> SimpleNamespace:
    menus = MenusConfig.model_validate(yaml.safe_load((CONFIG / "menus.yaml").read_text()))
    return SimpleNamespace(menus=menus, intents=load_intents(CONFIG / "intents.yaml"))


def _offer(agent: str) -> Offer:
    return Offer(kind="agent", agent_id=agent, endpoint=f"PJSIP/{agent}", ring_timeout_s=15)


def _dial_answered(name: str) -> str | None:
    return {"DIALSTATUS": "ANSWER", "ANSWEREDTIME": "42"}.get(name)


class AwayOnceQueued(FakeRouter):
    """Reachable until the call is queued; then the next ``failures`` calls fail (or every
    call, with ``failures=None``): Redis dies right after ENTERQUEUE."""

    def __init__(self, offers: list[Offer | None], failures: int | None,
                 max_wait_s: float | None = None) -> None:
        super().__init__(offers, max_wait_s=max_wait_s)
        self.failures = failures

    async def enqueue(self, call: CallRequest) -> QueueEntry:
        entry = await super().enqueue(call)
        if self.failures is None:
            self.away = True
        else:
            self.fail_next = self.failures
        return entry


def _music(fake: FakeAsterisk) -> list[tuple[str, ...]]:
    return [words for words in fake.commands if words[:2] == ("SET", "MUSIC")]


def test_an_outage_at_the_first_dispatch_keeps_the_caller_in_line(cfg: SimpleNamespace) -> None:
    """Redis cannot be reached for the queue's first dispatch and the next polls (eight calls
    fail): the flow does not end; the caller hears the hold prompt and music, routing is asked
    again every poll, and once it answers the offered agent is rung. One work order, answered
    by the agent; the dialplan is told done, not sent to the operator."""
    router = AwayOnceQueued([_offer("agent103")], failures=8)
    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_answered, "GET DATA": ["5", "9"],
    })
    assert router.failed == 8
    (order,) = orders.orders.values()
    assert order.agent == "agent103" and order.status.value == "in_progress"
    assert fake.exec_calls == [("Dial", ["PJSIP/agent103", "15", "gU(hotline-answered)"])]
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert ("SET", "MUSIC", "on", "default") in _music(fake)
    assert fake.agi_status == "SUCCESS"
    assert flow.active == {}


def test_an_outage_longer_than_the_queue_wait_overflows_to_the_operator(
    cfg: SimpleNamespace,
) -> None:
    """Redis stays unreachable from the moment the call is queued: the caller is kept in line
    (music) until the queue's max_wait_s (30 s) has passed, not a poll less, then goes to the
    operator with the operator prompt; the work order is made once and says overflow. Nobody
    is rung: no offer came from the store."""
    router = AwayOnceQueued([_offer("agent103")], failures=None, max_wait_s=30.0)
    fake, orders, flow = hotline_call(cfg, router, {"STREAM FILE": ["3"]})
    queued_at = 0.0  # the fake's clock starts at 0 and only music on hold advances it
    assert fake.clock.seconds() - queued_at >= 30.0
    assert fake.clock.seconds() - queued_at < 31.0
    (order,) = orders.orders.values()
    assert order.outcome == "overflow-operator"
    assert fake.exec_calls == []
    assert fake.variables["HOTLINE_NEXT"] == "operator"
    assert router.kinds() == ["ENTERQUEUE"]  # the overflow could not be told either
    assert fake.agi_status == "SUCCESS"
    assert flow.active == {}


def test_the_store_back_before_the_queue_wait_is_over_cancels_the_overflow(
    cfg: SimpleNamespace,
) -> None:
    """An outage of 20 polls (about 10 s) in a queue whose wait is 30 s: the caller is still
    in line when Redis is back, and goes to the agent routing offers, not to the operator."""
    router = AwayOnceQueued([None, _offer("agent101")], failures=20, max_wait_s=30.0)
    fake, orders, _ = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "GET VARIABLE": _dial_answered, "GET DATA": ["4", "8"],
    })
    (order,) = orders.orders.values()
    assert order.agent == "agent101"
    assert fake.variables["HOTLINE_NEXT"] == "done"


def test_a_hangup_in_line_while_the_store_is_away_is_recorded_on_the_order(
    cfg: SimpleNamespace,
) -> None:
    """The caller hangs up while Redis is unreachable: routing cannot be told (its sweep
    settles the call later), yet the flow ends cleanly and the work order says abandoned."""
    router = AwayOnceQueued([], failures=None)
    polls = iter([None, None, HANGUP])

    fake, orders, flow = hotline_call(cfg, router, {
        "STREAM FILE": ["3"], "WAIT FOR DIGIT": lambda _timeout: next(polls),
    })
    (order,) = orders.orders.values()
    assert order.outcome == "abandoned"
    assert fake.exec_calls == []
    assert flow.active == {}
