"""A category added in the config works end to end: declared in intents.yaml, routed by a
rule of routing.yaml to a queue of its own, offered as a menu key, its call is filed as a work
order of that category in the real store and queued by the real live router (redis-server).

The flow runs on the reactor as in the service, driving a fake Asterisk; the router and the
store run as asyncio Tasks behind the service's adapters (``hotline.adapters``).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import redis.asyncio as aioredis
import yaml
from twisted.internet import task

from hotline.adapters import RouterOnReactor, WorkOrdersOnReactor
from ivr.aio import deferred
from ivr.categories import categories_of
from ivr.config import load_config
from ivr.flows.hotline import HotlineFlow
from ivr.testing import FakeAsterisk
from privacy.testing import random_field_cipher
from routing.live import LiveRouter
from routing.testing import only_available
from workorders.model import UnknownCategory
from workorders.store import WorkOrderStore

CONFIG = Path(__file__).resolve().parents[2] / "config"
CALL = "1700000000.21"
NEW = "billing-dispute"


def edited_config(tmp_path: Path, edits: dict[str, Callable[[Any], None]]) -> Path:
    """A copy of the shipped config directory, each named file changed by its edit."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    for name, change in edits.items():
        edit(target / name, change)
    return target


def edit(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


def declare(data: Any) -> None:
    data["categories"][NEW] = {
        "urgency": "important", "keywords": {"dispute": 2.0, "overcharged": 2.0},
        "examples": ["I want to dispute a charge on my bill"],
    }


@pytest.fixture
def cfg(tmp_path):
    """The shipped config plus the category ``billing-dispute`` (important), in the intents
    files of both languages, routed to a new queue ``disputes`` (billing >= 4), and key 6 of
    the main menu."""

    def queues(data):
        data["queues"]["disputes"] = {"skills": "billing >= 4", "overflow": "billing"}

    def routing(data):
        data["rules"][NEW] = {"queue": "disputes", "priority": 5,
                              "steps": [{"skills": "billing >= 4"}]}

    def menus(data):
        data["menus"]["main"]["options"]["6"] = {"label": "dispute a bill", "request": NEW}

    target = edited_config(tmp_path, {
        "intents.yaml": declare, "intents.ko.yaml": declare, "queues.yaml": queues,
        "routing.yaml": routing, "menus.yaml": menus,
    })
    return load_config(target, environ={"HOTLINE__SPOOL_DIR": str(tmp_path / "spool")})


@pytest_twisted.ensureDeferred
async def test_a_category_added_in_the_config_is_filed_and_queued(redis_server, cfg):
    """A caller pressing 6 (billing-dispute, a category the shipped code never heard of) gets
    a work order of that category with the urgency intents.yaml gives it, queued to the
    category's own queue ``disputes`` and offered to agent101 (billing 5), the one agent
    its rule qualifies."""
    assert NEW in categories_of(cfg)
    clock = task.Clock()
    clock.advance(1_800_000_000)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(redis_server.url)
    live = LiveRouter(client, lambda: cfg.routing, instance="hotline-1", prefix=prefix,
                      clock=clock.seconds)
    await deferred(only_available(live, "agent101"))
    store = WorkOrderStore.from_config(
        client, cfg.workorders, spool_dir=cfg.service.spool_dir, prefix=prefix,
        cipher=random_field_cipher(), categories=categories_of(cfg),
    )
    flow = HotlineFlow(config=lambda: cfg, workorders=WorkOrdersOnReactor(store),
                       router=RouterOnReactor(live), clock=clock,
                       sound=lambda name: f"/sounds/{name}")

    def get_variable(name):
        return {"DIALSTATUS": "ANSWER"}.get(name)

    def music_on_hold(_timeout):
        clock.advance(0.5)

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "GET VARIABLE": get_variable, "STREAM FILE": [None], "GET DATA": ["6", None],
        "WAIT FOR DIGIT": music_on_hold,
    })
    await fake.run(flow)

    assert fake.variables["HOTLINE_CATEGORY"] == NEW
    assert [(app, args[0]) for app, args in fake.exec_calls] == [("Dial", "PJSIP/agent101")]
    order = await deferred(store.get_by_call(CALL))
    assert order is not None
    assert (order.category, order.urgency.value, order.queue) == (NEW, "important", "disputes")
    assert order.menu_path == ("6",)


@pytest_twisted.ensureDeferred
async def test_a_store_refuses_a_category_its_config_does_not_know(redis_server, cfg):
    """The store takes the categories of its config, no others: an order of a category no
    file declares is refused before anything is written, naming the category and where
    categories are declared."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(redis_server.url)
    store = WorkOrderStore.from_config(
        client, cfg.workorders, spool_dir=cfg.service.spool_dir, prefix=prefix,
        cipher=random_field_cipher(), categories=categories_of(cfg),
    )
    with pytest.raises(UnknownCategory) as refused:
        await deferred(store.create_for_call(CALL, "5550100", "Caller", 0.0,
                                             category="billing-disputes"))
    assert "'billing-disputes'" in str(refused.value)
    assert "intents.yaml (categories:)" in str(refused.value)
    assert "routing.yaml (rules:)" in str(refused.value)
    assert await deferred(client.keys(f"{prefix}*")) == []


@pytest_twisted.ensureDeferred
async def test_a_reload_that_adds_a_category_makes_its_orders_accepted(redis_server, tmp_path):
    """The service's store starts with the categories of its config and follows a reload:
    a category routed from the reload on is one its orders may have."""
    from hotline.service import Hotline

    def speechless(data: Any) -> None:
        data["speech"]["enabled"] = False

    directory = edited_config(tmp_path, {"intents.yaml": speechless,
                                         "intents.ko.yaml": speechless})
    environ = {"HOTLINE_ARI_PASSWORD": "", "HOTLINE__SPOOL_DIR": str(tmp_path / "spool"),
               "HOTLINE__REDIS__KEY_PREFIX": f"'t{uuid.uuid4().hex[:8]}:'"}
    hotline = Hotline(load_config(directory, environ=environ), task.Clock(),
                      cipher=random_field_cipher(),
                      redis=aioredis.Redis.from_url(redis_server.url))
    assert NEW not in hotline.workorders.policy.categories
    edit(directory / "intents.yaml", declare)
    edit(directory / "intents.ko.yaml", declare)
    edit(directory / "routing.yaml", lambda data: data["rules"].update({NEW: {"queue": "billing"}}))
    assert hotline.reload()
    assert NEW in hotline.workorders.policy.categories
