"""The benchmark's world: a config with enough agents for every desk, the tokens that open
the screens, and the calls in progress, written into the real redis-server as the call
flows write them (no Asterisk).

Calls: :class:`CallTraffic` plays the part of the instance that owns the calls (the FastAGI
sessions of ``ivr/flows/hotline.py``): for each call it creates the work order
(``WorkOrderStore.create_for_call``: ``WOCREATE``), queues the call
(``LiveRouter.enqueue``: ``ENTERQUEUE``), waits for the offer the service's dispatcher makes
(``LiveRouter.poll``), "rings" the agent and answers (``ring_result`` answered: ``CONNECT``),
starts the order (``WOASSIGN``/``WOSTART``), talks, and hangs up
(``LiveRouter.completed``: ``COMPLETECALLER``, the agent in wrap-up, ended by the service's
sweep: ``WRAPUPEND``); a new call replaces it, so ``calls`` stay in progress. Meanwhile
agents pause and resume now and then (``PAUSE``/``UNPAUSE``). It keeps its instance's
heartbeat, so the service's sweep does not take its calls for orphans.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from routing.live import CallRequest, LiveRouter

REQUESTS = (("inquiry", "billing"), ("change", "sales"), ("fault", "network"),
            ("complaint", "complaints"))
URGENCIES = ("normal", "normal", "important", "urgent")
TEMPLATES = (  # skills of the shipped agents, cycled
    {"billing": 5, "general": 3}, {"sales": 5, "billing": 2, "general": 2},
    {"network": 5, "general": 2}, {"complaints": 5, "network": 2, "general": 4},
)


def agent_id(n: int) -> str:
    return f"bench{n:03d}"


def team_of(n: int, teams: int) -> str:
    return f"team-{n % teams + 1}"


def write_agents(config_dir: Path, agents: int, teams: int) -> None:
    """``agents.yaml`` with ``agents`` agents over ``teams`` teams (skills of the shipped
    agents, cycled)."""
    table = {
        agent_id(n): {
            "name": f"Agent {n}", "endpoint": f"PJSIP/{agent_id(n)}",
            "skills": dict(TEMPLATES[n % len(TEMPLATES)]), "languages": ["ko", "en"],
            "team": team_of(n, teams),
        }
        for n in range(1, agents + 1)
    }
    (config_dir / "agents.yaml").write_text(yaml.safe_dump({"agents": table}))


@dataclass(frozen=True)
class Viewer:
    """Who opens a screen: the stream path and the token's subject."""

    user: str
    role: str
    team: str | None
    path: str  # /screens/desk/events or /screens/wallboard/events


def viewers(screens: int, wallboards: int, teams: int) -> list[Viewer]:
    """``wallboards`` wallboards (a supervisor per team in turn, every fourth one ops) and
    a desk for each of the other screens (one agent each)."""
    out = []
    for n in range(wallboards):
        if n % 4 == 3:
            out.append(Viewer(f"ops{n}", "ops", None, "/screens/wallboard/events"))
        else:
            out.append(Viewer(f"sup{n}", "supervisor", team_of(n, teams),
                              "/screens/wallboard/events"))
    for n in range(1, screens - wallboards + 1):
        out.append(Viewer(agent_id(n), "agent", team_of(n, teams), "/screens/desk/events"))
    return out


@dataclass
class CallTraffic:
    """Keeps ``calls`` calls in progress (see the module docstring)."""

    router: LiveRouter
    orders: Any  # workorders.store.WorkOrderStore
    calls: int
    talk_s: tuple[float, float] = (8.0, 20.0)
    pause_every_s: float = 2.0
    agents: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    started: int = 0
    answered: int = 0
    stopping: bool = False

    async def run(self) -> None:
        """Until ``stopping``; then lets the calls end."""
        slots = [asyncio.ensure_future(self._slot(i)) for i in range(self.calls)]
        others = [asyncio.ensure_future(self._heartbeat()), asyncio.ensure_future(self._pauses())]
        await asyncio.gather(*slots, *others)

    async def _heartbeat(self) -> None:
        key = f"{self.router.prefix}{{rt}}:instance:{self.router.instance}"
        while not self.stopping:
            await self.router.redis.set(key, "1", ex=30)
            await asyncio.sleep(5)

    async def _pauses(self) -> None:
        """An agent pauses, another resumes, every ``pause_every_s``."""
        paused: list[str] = []
        while not self.stopping:
            await asyncio.sleep(self.pause_every_s)
            if paused and self.rng.random() < 0.5:
                await self.router.agent_action(paused.pop(0), "resume")
            else:
                who = agent_id(self.rng.randint(1, self.agents))
                _status, done = await self.router.agent_action(who, "pause", "break")
                if done:
                    paused.append(who)
        for who in paused:
            await self.router.agent_action(who, "resume")

    async def _slot(self, slot: int) -> None:
        await asyncio.sleep(slot * 0.1)  # spread the first calls
        while not self.stopping:
            await self._call(slot)

    async def _call(self, slot: int) -> None:
        self.started += 1
        call_id = f"bench-{slot}-{self.started}-{self.rng.randrange(10**6)}"
        request, _skill = REQUESTS[self.rng.randrange(len(REQUESTS))]
        urgency = URGENCIES[self.rng.randrange(len(URGENCIES))]
        number = f"+8210{self.rng.randrange(10**8):08d}"
        now = time.time()
        order = await self.orders.create_for_call(
            call_id, number, "Bench Caller", now, category=request,
            urgency=urgency, transcript="my line is dead since this morning", confidence=0.9,
            menu_path=["main", request])
        await self.router.enqueue(CallRequest(call_id, request, urgency, number, now))
        agent = None
        deadline = time.time() + 120
        while time.time() < deadline and not self.stopping:
            offer = await self.router.poll(call_id)
            if offer is not None and offer.kind == "agent":
                agent = offer.agent_id
                break
            await asyncio.sleep(0.25)
        if agent is None:
            await self.router.abandon(call_id, "queue")
            return
        await asyncio.sleep(0.5)  # the softphone rings
        await self.router.ring_result(call_id, agent, "answered")
        self.answered += 1
        await self.orders.update(order.id, time.time(), "assign", "router", agent=agent)
        await self.orders.update(order.id, time.time(), "start", agent)
        talk_until = time.time() + self.rng.uniform(*self.talk_s)
        while time.time() < talk_until and not self.stopping:
            await asyncio.sleep(0.5)
        await self.router.completed(call_id, agent, "caller")

