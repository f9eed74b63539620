"""Back-office assignment, pure: who takes an order not handled live (routing's skills,
levels, languages and schedules; the fewest open orders), why nobody can, and which orders
are the back office's; the model's back_office and repeat events; the answer's ARI handler."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pydantic
import pytest

from ivr.flows.hotline.answer import AssignOnAnswer, endpoint_of
from ivr.testing import on_asyncio
from routing.testing import config, profile, queue, rule
from workorders.assignment import Unassignable, choose_agent
from workorders.indexes import memberships
from workorders.model import (
    Event,
    Policy,
    Status,
    TransitionRefused,
    WorkOrder,
    WorkOrderError,
    apply,
    back_office_reason,
    create_order,
)
from workorders.schema import WorkOrdersConfig

# Monday 2 March 2026, 10:00 UTC.
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC).timestamp()
POLICY = Policy(categories=frozenset({"billing", "fault", "other"}))
NINE_TO_FIVE = {0: [(9 * 60, 17 * 60)]}  # Mondays only
EVENINGS = {0: [(18 * 60, 22 * 60)]}


def routing(*agents, steps=(("billing >= 3", 30.0), ("billing", None))):
    return config(
        [queue("billing-q", "billing"), queue("general-q", "general")],
        [rule("billing", "billing-q", list(steps)),
         rule("other", "general-q", [("general", None)])],
        agents=list(agents),
        timezone="UTC",
    )


def speaking(agent, *languages):
    return replace(agent, languages=frozenset(languages))


def order(category="billing", language=None, **fields) -> WorkOrder:
    return create_order("7", "c1", "+15550100", "Eve", T0, POLICY, category=category,
                        language=language, **fields)


def test_fewest_open_orders_wins_over_a_better_level():
    """Among qualified agents on schedule the one with the fewest open orders takes it, even
    if another fits better (the back office balances load)."""
    cfg = routing(profile("a1", {"billing": 5}), profile("a2", {"billing": 3}))
    choice = choose_agent(order(), cfg, {"a1": 4, "a2": 1}, T0)
    assert choice.agent_id == "a2"
    assert [c.agent_id for c in choice.candidates] == ["a2", "a1"]


def test_equal_load_ranks_by_step_then_level_then_id():
    """With equal loads, routing's ranking decides: the earliest step matched, then the best
    fit level, then the agent id (a total order, the same on every instance)."""
    cfg = routing(
        profile("a1", {"billing": 2}),  # only the relaxed step
        profile("a2", {"billing": 3}),
        profile("a3", {"billing": 4}),
        profile("a0", {"billing": 4}),
    )
    choice = choose_agent(order(), cfg, {}, T0)
    assert [(c.agent_id, c.step, c.level) for c in choice.candidates] == [
        ("a0", 0, 4), ("a3", 0, 4), ("a2", 0, 3), ("a1", 1, 2),
    ]


def test_missing_load_counts_as_none_and_excluded_agents_are_skipped():
    """An agent absent from the load holds no open order; an excluded agent never gets it."""
    cfg = routing(profile("a1", {"billing": 5}), profile("a2", {"billing": 5}))
    assert choose_agent(order(), cfg, {"a1": 1}, T0).agent_id == "a2"
    assert choose_agent(order(), cfg, {}, T0, exclude={"a1"}).agent_id == "a2"


def test_skills_follow_the_rule_of_the_category_and_the_fallback():
    """The order's category picks routing's rule; an unknown one uses the fallback rule,
    as a call would."""
    cfg = routing(profile("bill", {"billing": 5}), profile("gen", {"general": 1}))
    assert choose_agent(order("billing"), cfg, {}, T0).agent_id == "bill"
    assert choose_agent(order("other"), cfg, {}, T0).agent_id == "gen"


def test_nobody_with_the_skill():
    """No agent's skills fit any step: reason no-skill, the expressions in the detail."""
    cfg = routing(profile("gen", {"general": 5}))
    choice = choose_agent(order(), cfg, {}, T0)
    assert (choice.agent_id, choice.reason) == (None, Unassignable.NO_SKILL)
    assert "billing >= 3 ; billing" in choice.detail


def test_nobody_speaks_the_language():
    """Skilled agents exist but none speaks the caller's language: reason no-language."""
    cfg = routing(speaking(profile("a1", {"billing": 5}), "en"))
    choice = choose_agent(order(language="ko"), cfg, {}, T0)
    assert choice.reason is Unassignable.NO_LANGUAGE
    assert choose_agent(order(language="en"), cfg, {}, T0).agent_id == "a1"


def test_nobody_on_schedule_and_the_schedule_decides():
    """Qualified agents off schedule now are never chosen; all off: reason off-schedule,
    naming them. The same agents on schedule take it."""
    cfg = routing(profile("late", {"billing": 5}, EVENINGS), profile("day", {"billing": 1},
                                                                      NINE_TO_FIVE))
    assert choose_agent(order(), cfg, {"day": 9}, T0).agent_id == "day"
    evening = T0 + 9 * 3600  # 19:00: only "late" works
    assert choose_agent(order(), cfg, {}, evening).agent_id == "late"
    night = T0 + 13 * 3600  # 23:00
    choice = choose_agent(order(), cfg, {}, night)
    assert choice.reason is Unassignable.OFF_SCHEDULE and "day, late" in choice.detail


def test_no_agents_configured():
    """A routing config without agents: reason no-agents."""
    assert choose_agent(order(), routing(), {}, T0).reason is Unassignable.NO_AGENTS


def test_back_office_reason_reads_the_outcome_or_the_mark():
    """Pending orders whose call ended without an agent, or sent to the back office, are the
    back office's; a pending order still in its call, or an assigned one, is not."""
    fresh = order()
    assert back_office_reason(fresh) is None
    for outcome, reason in (("abandoned", "abandoned"), ("callback-failed", "callback-failed"),
                            ("overflow-operator", "overflow"), ("operator-asked", "operator")):
        assert back_office_reason(apply(fresh, "update", T0, "ivr", POLICY,
                                        outcome=outcome)) == reason
    assert back_office_reason(apply(fresh, "update", T0, "ivr", POLICY,
                                    outcome="callback-pending")) is None
    marked = apply(fresh, "back_office", T0, "ivr", POLICY, reason="out-of-hours")
    assert back_office_reason(marked) == "out-of-hours"
    assert "wo:backoffice" in memberships(marked) and "wo:backoffice" not in memberships(fresh)
    taken = apply(marked, "assign", T0 + 1, "backoffice", POLICY, agent="a1")
    assert back_office_reason(taken) is None and "wo:backoffice" not in memberships(taken)
    assert taken.back_office == "out-of-hours"  # why it went there stays


def test_agent_hands_an_order_in_progress_to_the_back_office():
    """An agent marks the order "needs back office": pending again, no agent, the reason
    and the text in the history; an unknown reason or a closed order is refused."""
    working = apply(apply(order(), "assign", T0, "router", POLICY, agent="a1"),
                    "start", T0, "a1", POLICY)
    handed = apply(working, Event.BACK_OFFICE, T0 + 60, "a1", POLICY,
                   reason="needs-back-office", text="needs a technician visit")
    assert (handed.status, handed.agent, handed.back_office) == (
        Status.PENDING, None, "needs-back-office")
    assert handed.history[-1].details == {
        "reason": "needs-back-office", "text": "needs a technician visit",
        "from": "in_progress", "to": "pending"}
    with pytest.raises(WorkOrderError, match="reason must be one of"):
        apply(working, Event.BACK_OFFICE, T0, "a1", POLICY, reason="bored")
    resolved = apply(working, "resolve", T0, "a1", POLICY)
    with pytest.raises(TransitionRefused, match="back_office"):
        apply(resolved, Event.BACK_OFFICE, T0, "a1", POLICY, reason="needs-back-office")


def test_repeat_counts_a_contact_and_keeps_the_status():
    """A repeat contact adds one to contacts with the new call id in the history, in any
    open status; it needs the call id; a resolved order takes none."""
    held = apply(apply(order(), "assign", T0, "r", POLICY, agent="a1"), "hold", T0, "a1",
                 POLICY, waiting_on="customer", reason="meter reading")
    again = apply(held, Event.REPEAT, T0 + 5, "ivr", POLICY, call_id="c2")
    assert (again.contacts, again.status, again.history[-1].details) == (
        2, Status.ON_HOLD, {"call_id": "c2"})
    assert WorkOrder.from_json(again.to_json()).contacts == 2
    with pytest.raises(WorkOrderError, match="call id"):
        apply(held, Event.REPEAT, T0, "ivr", POLICY)
    with pytest.raises(TransitionRefused, match="repeat"):
        apply(_resolved(), Event.REPEAT, T0, "ivr", POLICY, call_id="c3")


def _resolved() -> WorkOrder:
    working = apply(apply(order(), "assign", T0, "r", POLICY, agent="a1"), "start", T0, "a1",
                    POLICY)
    return apply(working, "resolve", T0, "a1", POLICY)


def test_repeat_window_and_back_office_settings_are_validated():
    """repeat_contact_window_hours is 0 (off) or more, 24 by default; the back office's wait
    must leave room within the assignment target."""
    assert WorkOrdersConfig().repeat_contact_window_hours == 24
    assert WorkOrdersConfig(repeat_contact_window_hours=0).repeat_contact_window_hours == 0
    with pytest.raises(pydantic.ValidationError, match="repeat_contact_window_hours"):
        WorkOrdersConfig(repeat_contact_window_hours=-1)
    with pytest.raises(pydantic.ValidationError, match="wait_minutes"):
        WorkOrdersConfig.model_validate({"backoffice": {"wait_minutes": 120}})
    with pytest.raises(pydantic.ValidationError, match="retry_minutes"):
        WorkOrdersConfig.model_validate({"backoffice": {"retry_minutes": 0}})


def test_channel_names_give_the_endpoint():
    """An ARI channel name is its endpoint plus a sequence suffix."""
    assert endpoint_of("PJSIP/agent103-0000000a") == "PJSIP/agent103"
    assert endpoint_of("PJSIP/trunk-a-00000001") == "PJSIP/trunk-a"
    assert endpoint_of("PJSIP/agent103") == "PJSIP/agent103"


class _Answers:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, float]] = []

    async def answered(self, call_id: str, agent: str, now: float) -> None:
        self.seen.append((call_id, agent, now))


@on_asyncio
async def test_ari_answer_assigns_the_agent_of_the_peer_channel():
    """ARI Dial ANSWER of a hotline call: the agent whose softphone answered takes the
    order at that moment; other statuses, peers that are no agent (the operator) and events
    without a caller change nothing."""
    answers = _Answers()
    agents = {"PJSIP/agent103": "agent103"}
    handler = AssignOnAnswer(answers, agents.get, lambda: T0 + 42)

    def dial(status: str, peer: str, caller: str = "1700000000.5") -> object:
        return handler.on_dial({"dialstatus": status, "caller": {"id": caller},
                                "peer": {"name": peer}})

    assert dial("RINGING", "PJSIP/agent103-00000001") is None
    assert dial("ANSWER", "PJSIP/operator-00000002") is None
    assert dial("ANSWER", "PJSIP/agent103-00000003", caller="") is None
    task = dial("ANSWER", "PJSIP/agent103-00000004")
    assert isinstance(task, asyncio.Future)
    await task
    assert answers.seen == [("1700000000.5", "agent103", T0 + 42)]
