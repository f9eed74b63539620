"""A new call's welcome does not wait on Redis (issue 14, faults under load): only a call the
dialplan hands to the backup instance (AGI argument ``backup``) can be one the service queued
before, so only then is the router asked before the welcome."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml
from twisted.internet import task

from ivr.flows.hotline import HotlineFlow
from ivr.menu import MenusConfig
from ivr.speech.schema import load_intents
from ivr.testing import FakeAsterisk, result_of
from routing.live import Offer
from routing.live_fakes import FakeRouter
from workorders.testing import InMemoryWorkOrders

CONFIG = Path(__file__).resolve().parents[2] / "config"


class RedisHangs(FakeRouter):
    """A router whose store never answers whether a call was queued: the test fails if the
    flow asks (a real Redis would hold the caller for its socket timeout)."""

    asked = 0

    async def waiting_call(self, call_id: str) -> dict[str, str] | None:
        self.asked += 1
        raise ConnectionError("redis does not answer")


def _call(attempt: str | None) -> tuple[FakeAsterisk, RedisHangs]:
    cfg = SimpleNamespace(
        menus=MenusConfig.model_validate(yaml.safe_load((CONFIG / "menus.yaml").read_text())),
        intents=load_intents(CONFIG / "intents.yaml"),
    )
    router = RedisHangs([Offer(kind="agent", agent_id="agent103", endpoint="PJSIP/agent103",
                               ring_timeout_s=15)])
    clock = task.Clock()
    flow = HotlineFlow(config=lambda: cfg, workorders=InMemoryWorkOrders(), router=router,
                       clock=clock, sound=lambda name: f"/sounds/{name}")

    def music_on_hold(_timeout: Any) -> None:
        clock.advance(0.5)

    def dial(name: str) -> str | None:
        return {"DIALSTATUS": "ANSWER", "ANSWEREDTIME": "42"}.get(name)

    fake = FakeAsterisk(
        env={"uniqueid": "1700000000.7"}, args=[attempt] if attempt else [], clock=clock,
        answers={"WAIT FOR DIGIT": music_on_hold, "STREAM FILE": ["3"], "GET VARIABLE": dial,
                 "GET DATA": [None]},
    )
    result_of(fake.run(flow))
    return fake, router


def test_a_call_on_its_primary_attempt_is_welcomed_without_asking_redis() -> None:
    """The dialplan's first AGI says ``primary``: the flow answers and plays the welcome
    without asking the router whether the call was queued before."""
    fake, router = _call("primary")
    assert router.asked == 0
    verbs = [c[:3] for c in fake.commands if c[0] in ("ANSWER", "STREAM")]
    assert verbs[:2] == [("ANSWER",), ("STREAM", "FILE", "/sounds/welcome")]
    assert router.kinds()[0] == "ENTERQUEUE"


def test_the_backup_attempt_and_an_older_dialplan_still_ask_whether_it_was_queued() -> None:
    """On the backup (``backup``), or from a dialplan that names no attempt, the flow asks
    whether the call was queued before (to resume it); a store that cannot say makes it a new
    call, as before."""
    for attempt in ("backup", None):
        _fake, router = _call(attempt)
        assert router.asked == 1
        assert router.kinds()[0] == "ENTERQUEUE"
