"""What the desks read, and when (screens.desk.page.DeskPage.data): a desk reads its orders
when its call changes or a work-order event touches what it shows, and keeps them
otherwise, so a busy floor's order events do not make every desk read again. Over the
in-memory store, counting its reads."""

from __future__ import annotations

from typing import Any

from api.testing import run_now
from routing.testing import shipped_config
from screens.board import FeedEntry
from screens.testing import board, screens_under_test
from workorders.model import Event, WorkOrder

NOW = 1_800_000_000.0
CONFIG = shipped_config()


class Counted:
    """An agent's open orders from the fake store, counting who asked."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.asked: list[str] = []

    async def __call__(self, agent_id: str) -> list[WorkOrder]:
        self.asked.append(agent_id)
        return [o for o in self.store.orders.values() if o.agent == agent_id]


def _wo(n: int, kind: str, order: WorkOrder) -> FeedEntry:
    return FeedEntry(f"{int(NOW * 1000)}-{n}", {
        "kind": kind, "order_id": order.id, "call_id": order.call_id, "agent": order.agent or ""})


def test_a_work_order_event_makes_only_the_desks_it_touches_read_again() -> None:
    """Two desks read once; a note on agent101's order makes agent101's desk read again and
    not agent102's; an event about an order nobody shows touches no desk."""
    ut = screens_under_test(CONFIG, {}, {})
    desk = ut.screens.desk
    mine = Counted(ut.orders)
    desk.open_orders = mine
    store = ut.orders
    first = run_now(store.create_for_call("c-1", "+15550100", "Alice", NOW - 60))
    first = run_now(store.update(first.id, NOW - 50, Event.ASSIGN, "router", agent="agent101"))
    other = run_now(store.create_for_call("c-9", "+15550199", "Bob", NOW - 60))
    assert first is not None

    feed: list[FeedEntry] = [_wo(1, "WOASSIGN", first)]
    for agent in ("agent101", "agent102"):
        run_now(desk.data(board(CONFIG, now=NOW, events=feed), agent))
    assert mine.asked == ["agent101", "agent102"]
    for agent in ("agent101", "agent102"):
        run_now(desk.data(board(CONFIG, now=NOW + 1, events=feed), agent))
    assert mine.asked == ["agent101", "agent102"]  # nothing new: kept

    feed = [*feed, _wo(2, "WONOTE", first)]
    for agent in ("agent101", "agent102"):
        run_now(desk.data(board(CONFIG, now=NOW + 2, events=feed), agent))
    assert mine.asked == ["agent101", "agent102", "agent101"]

    feed = [*feed, _wo(3, "WOCREATE", other)]
    for agent in ("agent101", "agent102"):
        run_now(desk.data(board(CONFIG, now=NOW + 3, events=feed), agent))
    assert mine.asked == ["agent101", "agent102", "agent101"]


def test_a_fragment_is_rendered_again_only_when_its_view_model_changed() -> None:
    """The same view model for the same view gives the same text without a rendering; a
    changed model, or another view, is rendered."""
    from screens.i18n import load_strings
    from screens.render import Fragments, Renderer

    class Counting(Renderer):
        calls = 0

        def render(self, name: str, **context: Any) -> str:
            Counting.calls += 1
            return super().render(name, **context)

    fragments = Fragments(Counting(load_strings()))
    first = fragments.render("agent101", "_message.html", error=False, message="ready")
    assert fragments.render("agent101", "_message.html", error=False, message="ready") == first
    assert Counting.calls == 1
    fragments.render("agent101", "_message.html", error=False, message="paused")
    fragments.render("agent102", "_message.html", error=False, message="paused")
    assert Counting.calls == 3
