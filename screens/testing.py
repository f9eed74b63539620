"""Fakes for the screens' unit tests (and other packages' tests of them), on the real seams:
a session store without Redis, a work-order store with the reads the desk makes, a call
reader, a board built from plain data, and :func:`screens_under_test` wiring them to the
real pages, views and templates."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from access import Identity, Unauthenticated
from access.sessions import Session, csrf_token, csrf_valid
from api.services import AgentService
from api.testing import FakeAudit, FakeRouter
from routing import core
from screens.app import Screens
from screens.board import Board, FeedEntry, figures
from screens.desk.page import DeskPage
from screens.desk.view import CallFacts
from screens.i18n import load_strings
from screens.render import Renderer
from screens.settings import ScreensSettings
from screens.sse import stream_id_key
from screens.wallboard.page import WallboardPage
from workorders.clocks import ClockPolicy
from workorders.model import WorkOrder
from workorders.testing import InMemoryWorkOrders

__all__ = ["FakeCalls", "FakeSessions", "FakeStream", "ScreensUnderTest", "StoreWithLists", "board",
           "screens_under_test"]

KEY = bytes(range(32))


class FakeSessions:
    """:class:`access.sessions.SessionStore` without Redis: ``tokens`` maps a token to whom."""

    def __init__(self, tokens: Mapping[str, Identity]) -> None:
        self.tokens = dict(tokens)
        self.sessions: dict[str, Identity] = {}

    async def login(self, token: str, now: float) -> Session:
        identity = self.tokens.get(token.strip())
        if identity is None:
            raise Unauthenticated("the token is unknown, expired or revoked")
        session_id = secrets.token_urlsafe(32)
        self.sessions[session_id] = identity
        return Session(session_id, identity, csrf_token(KEY, session_id), now + 3600)

    async def identity(self, session_id: str | None, now: float) -> Identity:
        if session_id not in self.sessions:
            raise Unauthenticated("no session: log in first")
        return self.sessions[session_id]

    def csrf(self, session_id: str) -> str:
        return csrf_token(KEY, session_id)

    def csrf_valid(self, session_id: str, presented: str | None) -> bool:
        return csrf_valid(KEY, session_id, presented)

    async def logout(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)


class StoreWithLists(InMemoryWorkOrders):
    """The in-memory store with the desk's list reads (by caller, most recent)."""

    async def by_caller(self, number: str) -> list[WorkOrder]:
        digits = "".join(c for c in number if c.isdigit())
        found = [o for o in self.orders.values()
                 if digits and "".join(c for c in o.caller_number if c.isdigit()) == digits]
        return sorted(found, key=lambda o: o.created_at)

    async def list_recent(self, n: int) -> list[WorkOrder]:
        return sorted(self.orders.values(), key=lambda o: o.created_at, reverse=True)[:n]


@dataclass
class FakeStream:
    """The events stream as the aggregate reads it, from a list of entries (never blocks)."""

    entries: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def xrange(self, name: Any, min: Any = "-", max: Any = "+",
                     count: int | None = None) -> Any:
        after = min[1:] if isinstance(min, str) and min.startswith("(") else None
        rows = [e for e in self.entries
                if after is None or stream_id_key(e[0]) > stream_id_key(after)]
        return rows[:count] if count else rows

    async def xread(self, streams: Any, count: int | None = None,
                    block: int | None = None) -> Any:
        [(name, last)] = streams.items()
        rows = [e for e in self.entries if stream_id_key(e[0]) > stream_id_key(last)]
        return [(name, rows)] if rows else []


@dataclass
class FakeCalls:
    calls: dict[str, CallFacts] = field(default_factory=dict)

    async def __call__(self, call_id: str) -> CallFacts | None:
        return self.calls.get(call_id)


def board(config: core.RoutingConfig, *, now: float = 1_800_000_000.0,
          agents: Mapping[str, Mapping[str, str]] | None = None,
          snapshot: core.Snapshot | None = None, events: Sequence[FeedEntry] = (),
          last_id: str = "0-0") -> Board:
    """A board from plain data: agents' live hashes, a snapshot, stream entries."""
    reported = [e.fields for e in events]
    day_start = now - now % 86400
    today, recent = figures(reported, config, now, day_start=day_start, interval_s=1800)
    return Board(now, last_id, config, snapshot or core.Snapshot(now, {}, []),
                 dict(agents or {}), today, recent, tuple(events))


@dataclass
class ScreensUnderTest:
    screens: Screens
    sessions: FakeSessions
    router: FakeRouter
    orders: StoreWithLists
    calls: FakeCalls
    audit: FakeAudit
    current: list[Board]


def screens_under_test(config: core.RoutingConfig, tokens: Mapping[str, Identity],
                       teams: Mapping[str, str], *, now: float = 1_800_000_000.0,
                       settings: ScreensSettings | None = None) -> ScreensUnderTest:
    settings = settings or ScreensSettings()
    renderer = Renderer(load_strings(settings.language))
    sessions = FakeSessions(tokens)
    router = FakeRouter(config)
    orders = StoreWithLists()
    calls = FakeCalls()
    audit = FakeAudit()
    agents = AgentService(router, audit, teams.get)
    current = [board(config, now=now)]

    async def current_board() -> Board:
        return current[0]

    desk = DeskPage(renderer, settings, agents, orders, calls, audit, ClockPolicy)
    screens = Screens(renderer=renderer, sessions=sessions,
                      wallboard=WallboardPage(renderer, settings, agents), desk=desk,
                      board=current_board, clock=lambda: now)
    return ScreensUnderTest(screens, sessions, router, orders, calls, audit, current)
