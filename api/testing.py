"""Fakes for testing the API without sockets, Redis or a token store: a router, a work-order
store, an audit trail, health figures and a token table, and :func:`answer`, which drives one
request through :class:`api.app.Api` to its answer (the fakes never wait, so no reactor)."""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from access import Identity, Role, Unauthenticated
from api.app import Api, ApiRequest, ApiResponse, build_api
from audit.chain import Action
from routing import core
from workorders.model import Event, Policy, WorkOrder, apply, merge_orders
from workorders.query import Cursor, OrderFilter
from workorders.store import UnknownWorkOrder

T = TypeVar("T")

AGENT_STATES = {"login": "available", "logout": "logged_out", "pause": "paused",
                "resume": "available"}


class FakeRouter:
    """The router the API sees: ``config`` in force, agents' states in a dict, and every
    action allowed unless ``refuse`` names it. ``down``: each call raises ConnectionError."""

    def __init__(self, config: core.RoutingConfig, *, refuse: tuple[str, ...] = (),
                 down: bool = False) -> None:
        self._config = config
        self.refuse = refuse
        self.down = down
        self.states = {agent_id: {"status": "logged_out"} for agent_id in config.agents}
        self.decisions: list[dict[str, Any]] = []
        self.actions: list[tuple[str, str, str]] = []

    def config(self) -> core.RoutingConfig:
        return self._config

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    async def snapshot(self) -> core.Snapshot:
        self._check()
        return core.Snapshot(1000.0, {}, [])

    async def agents(self) -> dict[str, dict[str, str]]:
        self._check()
        return {a: {**row, "schedule": "on"} for a, row in self.states.items()}

    async def agent_action(self, agent_id: str, action: str, reason: str = ""
                           ) -> tuple[str, bool]:
        self._check()
        if agent_id not in self._config.agents:
            raise KeyError(f"unknown agent {agent_id!r}")
        self.actions.append((agent_id, action, reason))
        if action in self.refuse:
            return self.states[agent_id]["status"], False
        self.states[agent_id] = {"status": AGENT_STATES[action]}
        return AGENT_STATES[action], True


class FakeWorkOrders:
    """Orders by id and by call, changed by the real model; ``down``: each call raises
    ConnectionError (Redis away). ``find`` filters every order with the filter's own
    ``matches`` (the caller by its digits), newest first, by the same cursors as the store."""

    def __init__(self, orders: Mapping[str, WorkOrder] | None = None, *,
                 down: bool = False) -> None:
        self.orders = dict(orders or {})
        self.down = down
        self.policy = Policy()
        self.finds: list[tuple[OrderFilter, int, Cursor | None, bool]] = []

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("Redis is away")

    async def get(self, order_id: str) -> WorkOrder | None:
        self._check()
        return self.orders.get(order_id)

    async def get_by_call(self, call_id: str) -> WorkOrder | None:
        self._check()
        return next((o for o in self.orders.values() if o.call_id == call_id), None)

    async def created_between(self, start: float, end: float) -> list[WorkOrder]:
        if self.down:
            raise ConnectionError("Redis is away")
        return sorted((o for o in self.orders.values()
                       if start <= o.created_at.timestamp() < end),
                      key=lambda o: o.created_at)

    async def find(self, f: OrderFilter, now: float, *, limit: int = 50,
                   after: Cursor | None = None, history: bool = True,
                   ) -> tuple[list[WorkOrder], Cursor | None]:
        self._check()
        self.finds.append((f, limit, after, history))

        def digits(number: str) -> str:
            return "".join(c for c in number if c.isdigit())

        def position(created: float, order_id: str) -> tuple[float, bytes]:
            return -created, bytes(255 - b for b in order_id.encode())  # Redis's order, reversed

        hits = sorted(
            (o for o in self.orders.values() if f.matches(o, now)
             and (f.caller is None or digits(o.caller_number) == digits(f.caller))),
            key=lambda o: position(o.created_at.timestamp(), o.id),
        )
        if after is not None:
            mark = position(after.created, after.order_id)
            hits = [o for o in hits if position(o.created_at.timestamp(), o.id) > mark]
        page = [o if history else replace(o, history=()) for o in hits[:limit]]
        more = len(hits) > limit
        return page, Cursor(page[-1].created_at.timestamp(), page[-1].id) if more else None

    async def update(self, order_id: str, now: float, event: Event | str, actor: str,
                     **changes: Any) -> WorkOrder | None:
        self._check()
        if order_id not in self.orders:
            raise UnknownWorkOrder(order_id)
        order = apply(self.orders[order_id], event, now, actor, self.policy, **changes)
        self.orders[order_id] = order
        return order

    async def merge(self, survivor_id: str, merged_id: str, now: float, actor: str
                    ) -> tuple[WorkOrder, WorkOrder]:
        self._check()
        for order_id in (survivor_id, merged_id):
            if order_id not in self.orders:
                raise UnknownWorkOrder(order_id)
        kept, folded = merge_orders(self.orders[survivor_id], self.orders[merged_id], now,
                                    actor, self.policy)
        self.orders[kept.id], self.orders[folded.id] = kept, folded
        return kept, folded

    async def set_legal_hold(self, order_id: str, held: bool, now: float, actor: str,
                             reason: str) -> WorkOrder:
        self._check()
        if order_id not in self.orders:
            raise UnknownWorkOrder(order_id)
        order = apply(self.orders[order_id], Event.LEGAL_HOLD, now, actor, self.policy,
                      legal_hold=held, reason=reason)
        self.orders[order_id] = order
        return order


@dataclass
class FakeAudit:
    """Keeps every entry (the keyword arguments of ``record``)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    async def record(self, **entry: Any) -> str:
        # Like the audit log, refuse an action it has no name for (audit.chain.Action): a
        # route that records an unnamed action must fail here, not first in production.
        Action(entry["action"])
        self.entries.append(entry)
        return str(len(self.entries))


@dataclass
class FakeHealth:
    redis: bool = True
    ari: str = "connected"
    active_calls: int = 2
    streams: int | None = 1

    async def redis_ok(self) -> bool:
        return self.redis

    def ari_state(self) -> str:
        return self.ari

    def calls(self) -> int:
        return self.active_calls

    def speech_streams(self) -> int | None:
        return self.streams


class FakeTokens:
    """``Authorization: Bearer <token>`` looked up in a table of token -> identity."""

    def __init__(self, identities: Mapping[str, Identity]) -> None:
        self.identities = dict(identities)

    async def authenticate(self, authorization: str | None, now: float) -> Identity:
        if not authorization:
            raise Unauthenticated("no Authorization header: send Authorization: Bearer <token>")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token not in self.identities:
            raise Unauthenticated("the token is unknown, expired or revoked")
        return self.identities[token]


# The identities of the tests: two teams (north: agent101, agent102; south: agent103).
IDENTITIES = {
    "tok-agent101": Identity("agent101", Role.AGENT, team="north"),
    "tok-supervisor-north": Identity("sam", Role.SUPERVISOR, team="north"),
    "tok-quality": Identity("quinn", Role.QUALITY),
    "tok-ops": Identity("olga", Role.OPS),
    "tok-auditor": Identity("ada", Role.AUDITOR),
}
TEAMS = {"agent101": "north", "agent102": "north", "agent103": "south"}


@dataclass
class ApiUnderTest:
    api: Api
    router: FakeRouter
    orders: FakeWorkOrders
    audit: FakeAudit
    health: FakeHealth


def api_under_test(config: core.RoutingConfig, orders: Mapping[str, WorkOrder] | None = None,
                   *, router: FakeRouter | None = None, store: FakeWorkOrders | None = None,
                   max_body: int | None = None) -> ApiUnderTest:
    """The whole API over fakes, with the tokens of :data:`IDENTITIES` and :data:`TEAMS`."""
    router = router or FakeRouter(config)
    store = store or FakeWorkOrders(orders)
    audit, health = FakeAudit(), FakeHealth()
    extra: dict[str, Any] = {} if max_body is None else {"max_body": max_body}
    api = build_api(router=router, workorders_store=store, health_source=health,
                    authenticator=FakeTokens(IDENTITIES), audit=audit, clock=lambda: 1234.5,
                    teams=TEAMS.get, **extra)
    return ApiUnderTest(api, router, store, audit, health)


def run_now(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (everything it awaits is a fake) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise AssertionError("the coroutine waited for something: a fake that is not instant")


def answer(api: Api, method: str, path: str, *, token: str | None = None, body: bytes = b"",
           headers: Mapping[str, str] | None = None, address: str = "192.0.2.7"
           ) -> ApiResponse:
    """``method path?query`` as a client sends it; ``token``: sent as a bearer token."""
    from urllib.parse import parse_qs, unquote, urlsplit

    url = urlsplit(path)
    all_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if token is not None:
        all_headers["authorization"] = f"Bearer {token}"
    request = ApiRequest(
        method=method,
        parts=[unquote(p) for p in url.path.split("/") if p],
        query=parse_qs(url.query, keep_blank_values=True),
        headers=all_headers, body=body, address=address,
    )
    return run_now(api.respond(request))


def sample_orders() -> dict[str, WorkOrder]:
    """Orders ``1``-``3`` of calls ``c-1``-``c-3``, handled by agent101, agent102, agent103;
    ``4`` (call ``c-4``) not assigned yet."""
    from dataclasses import replace

    from workorders.model import Policy, create_order

    orders = {}
    for n, agent in ((1, "agent101"), (2, "agent102"), (3, "agent103"), (4, None)):
        order = create_order(str(n), f"c-{n}", f"+1555010{n}", f"Caller {n}", 1000.0 + n,
                             Policy())
        orders[str(n)] = replace(order, agent=agent)
    return orders
