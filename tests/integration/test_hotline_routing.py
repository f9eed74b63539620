"""The hotline flow handing its calls to the real live router, against a real redis-server:
what the caller chose in the IVR (their language) is what routing decides on.

The flow runs on the reactor as in the service, driving a fake Asterisk; the router is the
asyncio ``routing.live.LiveRouter`` behind the service's adapter (``hotline.adapters``), so each
router call runs as an asyncio Task, as redis.asyncio needs. Work orders are in memory.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import pytest_twisted
import redis.asyncio as aioredis
import yaml
from twisted.internet import task

from hotline.adapters import RouterOnReactor
from ivr.aio import deferred
from ivr.config import load_config
from ivr.flows.hotline import HotlineFlow
from ivr.testing import FakeAsterisk
from routing.live import LiveRouter
from routing.testing import only_available
from workorders.testing import InMemoryWorkOrders

CONFIG = Path(__file__).resolve().parents[2] / "config"
CALL = "1700000000.11"


@pytest.fixture
def cfg(tmp_path):
    """The shipped config with the Korean line switched on (as README tells ops to), faults
    routed to ``network >= 2``, and two agents who both qualify: agent103 (network 5, the
    better match) speaks English only, agent104 (network 2) Korean only."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)

    def edit(name, change):
        path = target / name
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data, allow_unicode=True))

    def korean_line(menus):
        menus["languages"] = {"ko": {"entry": "main-ko"}}
        menus["menus"]["main"]["options"]["9"] = {"label": "Korean", "language": "ko"}

    def languages(agents):
        agents["agents"]["agent103"]["languages"] = ["en"]
        agents["agents"]["agent104"]["languages"] = ["ko"]

    def faults(routing):
        routing["rules"]["fault"]["steps"] = [{"skills": "network >= 2"}]

    edit("menus.yaml", korean_line)
    edit("agents.yaml", languages)
    edit("routing.yaml", faults)
    return load_config(target, environ={})


@pytest.mark.parametrize(("language", "agent"), [("ko", "agent104"), ("en", "agent103")])
@pytest_twisted.ensureDeferred
async def test_the_callers_language_decides_which_agent_is_rung(
    redis_server, cfg, language, agent
):
    """A caller on the Korean line (HOTLINE_LANGUAGE=ko) pressing 3 (a fault) is offered to
    the Korean-speaking agent104 only, never to agent103, free at the same time and the
    better skill match but English-only; on the English line the same call goes to
    agent103. The work order names the agent rung."""
    clock = task.Clock()
    clock.advance(1_800_000_000)
    live = LiveRouter(aioredis.Redis.from_url(redis_server.url), lambda: cfg.routing,
                      instance="hotline-1", prefix=f"t{uuid.uuid4().hex[:8]}:",
                      clock=clock.seconds)
    await deferred(only_available(live, "agent103", "agent104"))
    orders = InMemoryWorkOrders()
    flow = HotlineFlow(config=lambda: cfg, workorders=orders, router=RouterOnReactor(live),
                       clock=clock, sound=lambda name: f"/sounds/{name}")

    def get_variable(name):
        return {"HOTLINE_LANGUAGE": language, "DIALSTATUS": "ANSWER"}.get(name)

    def music_on_hold(_timeout):
        clock.advance(0.5)

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "GET VARIABLE": get_variable, "STREAM FILE": [None], "GET DATA": ["3", None],
        "WAIT FOR DIGIT": music_on_hold,
    })
    await fake.run(flow)

    assert fake.variables["HOTLINE_CATEGORY"] == "fault"
    assert [(app, args[0]) for app, args in fake.exec_calls] == [("Dial", f"PJSIP/{agent}")]
    (order,) = orders.orders.values()
    assert (order.language, order.agent) == (language, agent)
