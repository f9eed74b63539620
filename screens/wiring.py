"""Mounting the screens into ``ivr serve``'s site: built from the running service's router,
work-order store (and the reader of its clocks at risk), audit trail, token store and Redis;
nothing of its own listens."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from twisted.web import server

from access import team_of
from access.sessions import SessionStore, TokenAuthority
from api.services import AgentService
from hotline.text import as_text
from routing import core
from routing.numbers import CALLBACK_NUMBER, NumberCipher, PlainNumbers, opened
from screens.aggregate import Aggregate
from screens.app import Screens
from screens.desk.page import DeskPage
from screens.desk.view import CallFacts
from screens.i18n import load_strings
from screens.render import Renderer
from screens.risk import RiskReader
from screens.settings import load_settings
from screens.wallboard.page import WallboardPage
from screens.web import FrontResource, ScreensResource
from workorders.buckets import scored
from workorders.clocks import ClockPolicy
from workorders.model import WorkOrder

__all__ = ["CallHashes", "OpenOrders", "PooledAgents", "attach_screens"]


class CallHashes:
    """A call's routing hash (``P{rt}:call:<id>``, documented in :mod:`routing.live`), its
    callback number opened (sealed in Redis: :mod:`routing.numbers`)."""

    def __init__(self, redis: Any, prefix: str, numbers: NumberCipher | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.numbers: NumberCipher = numbers if numbers is not None else PlainNumbers()

    async def __call__(self, call_id: str) -> CallFacts | None:
        row = await self.redis.hgetall(f"{self.prefix}{{rt}}:call:{call_id}")
        if not row:
            return None
        text = {as_text(k): as_text(v) for k, v in row.items()}
        text[CALLBACK_NUMBER] = opened(self.numbers, call_id, CALLBACK_NUMBER,
                                       text.get(CALLBACK_NUMBER, ""))
        return CallFacts.from_hash(call_id, text)


class PooledAgents:
    """The live routing state as the aggregate reads it, with the agents' hashes
    (``P{rt}:agent:<id>``, :mod:`routing.live`) in one pipelined round trip, and only those
    that changed.

    The routing snapshot (read first, each round) knows which changed: its copy of the pool
    (``routing/live_snapshot.py``) keeps each agent's :class:`~routing.core.AgentState`
    object until that agent's hash changes, so an agent whose object is the one seen at its
    last read has the hash read then. Every ``full_read_s`` (and after a config reload) all
    are read again, whatever the snapshot says. Rounds come several times a second; reading
    a few hundred hashes in each was most of what a round cost Redis and the service."""

    def __init__(self, router: Any, redis: Any, prefix: str, full_read_s: float = 10.0) -> None:
        self.router = router
        self.redis = redis
        self.prefix = prefix
        self.full_read_s = full_read_s
        self._snapshot: core.Snapshot | None = None  # the last one handed out
        self._rows: dict[str, tuple[core.AgentState | None, dict[str, str]]] = {}
        self._full_at = float("-inf")
        self._config: core.RoutingConfig | None = None

    def config(self) -> core.RoutingConfig:
        return cast(core.RoutingConfig, self.router.config())

    async def snapshot(self) -> core.Snapshot:
        self._snapshot = cast(core.Snapshot, await self.router.snapshot())
        return self._snapshot

    async def agents(self) -> dict[str, dict[str, str]]:
        cfg = self.config()
        now = self.router.clock()
        off = core.agents_off_schedule(cfg, now)
        seen = self._snapshot.agents if self._snapshot is not None else None
        full = seen is None or cfg is not self._config or now - self._full_at >= self.full_read_s
        names = [a for a in cfg.agents
                 if full or a not in self._rows or seen is None
                 or self._rows[a][0] is not seen.get(a)]
        if names:
            async with self.redis.pipeline(transaction=False) as pipe:
                for agent_id in names:
                    pipe.hgetall(f"{self.prefix}{{rt}}:agent:{agent_id}")
                rows = await pipe.execute()
            for agent_id, row in zip(names, rows, strict=True):
                state = seen.get(agent_id) if seen is not None else None
                self._rows[agent_id] = (state, {as_text(k): as_text(v) for k, v in row.items()})
        if full:
            self._full_at, self._config = now, cfg
            for gone in set(self._rows) - set(cfg.agents):
                del self._rows[gone]
        return {
            agent_id: {**self._rows[agent_id][1], "schedule": "off" if agent_id in off else "on"}
            for agent_id in cfg.agents
        }


class OpenOrders:
    """An agent's open orders: the ``wo:agent-open:<agent>`` index of every bucket (the store
    keeps it with every write, ``workorders.indexes``), merged newest first, each order read
    through the store."""

    def __init__(self, redis: Any, store: Any, prefix: str, limit: int = 100) -> None:
        self.redis = redis
        self.store = store
        self.prefix = prefix
        self.limit = limit

    async def __call__(self, agent_id: str) -> list[WorkOrder]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self.store.buckets.keys(f"wo:agent-open:{agent_id}"):
                pipe.zrevrange(key, 0, self.limit - 1, withscores=True)
            replies = await pipe.execute()
        newest = [member for _score, member in reversed(scored(replies))][: self.limit]
        orders = await asyncio.gather(*(self.store.get(order_id) for order_id in newest))
        return [o for o in orders if o is not None]


def attach_screens(site: server.Site, hotline: Any, session_key: bytes | None) -> Aggregate:
    """Put the screens in front of ``site``'s API resource; the aggregate, for stopping.

    Without a session key or a token store (a service with no tokens), sign-in is closed:
    the login page says so and every other path refuses."""
    cfg = hotline.config()
    prefix = cfg.service.redis.key_prefix
    settings = load_settings(cfg.directory)
    renderer = Renderer(load_strings(settings.language))
    sessions = None
    tokens = hotline.authenticator
    if session_key is not None and callable(getattr(tokens, "check", None)):
        # the token store (access.tokens.TokenStore): it checks a session's token on each use
        sessions = SessionStore(hotline.redis, session_key, cast(TokenAuthority, tokens),
                                prefix=prefix)
    clock = hotline.reactor.seconds

    def clock_policy() -> ClockPolicy:
        return cast(ClockPolicy, hotline.config().workorders.clock_policy())

    risk = RiskReader(hotline.redis, hotline.workorders, clock_policy, prefix=prefix,
                      warning_s=settings.clock_warning_s, buckets=hotline.workorders.buckets)
    aggregate = Aggregate(hotline.redis, PooledAgents(hotline.router, hotline.redis, prefix),
                          prefix=prefix, clock=clock, interval_s=settings.chart_interval_s,
                          risk=risk)

    def teams(agent_id: str) -> str | None:
        return team_of(hotline.router.config(), agent_id)

    agents = AgentService(hotline.router, hotline.audit, teams)
    screens = Screens(
        renderer=renderer, sessions=sessions,
        wallboard=WallboardPage(renderer, settings, agents),
        desk=DeskPage(renderer, settings, agents, hotline.workorders,
                      CallHashes(hotline.redis, prefix, hotline.router.numbers), hotline.audit,
                      clock_policy,
                      OpenOrders(hotline.redis, hotline.workorders, prefix)),
        board=aggregate.current, clock=clock,
    )
    site.resource = FrontResource(site.resource, ScreensResource(screens, aggregate))
    return aggregate
