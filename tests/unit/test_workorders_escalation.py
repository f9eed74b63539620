"""Escalation of work orders as pure data, time injected: which SLA warnings and breaches
fall due, their identities, what a sweep records, the ``wo:due`` score and the config."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from pydantic import ValidationError

# The clocks' and calendars' fixtures: a Monday 09:00 UTC, the shipped service standard,
# orders built by the model, a Berlin office week.
from test_workorders_calendar import BERLIN, CONFIG_DIR, OFFICE
from test_workorders_clocks import CLOCKS, T0, A, F, H, R, S, order, then, utc

from ivr.config import ConfigError, load_config
from workorders.calendar import BusinessHours, ClosedDates
from workorders.clocks import ClockKind, ClockPolicy
from workorders.escalation import (
    DUE_INDEX,
    DueClocks,
    EscalationPolicy,
    Level,
    due_at,
    next_due,
    owed,
)
from workorders.indexes import INDEXERS, configured, due_clocks, memberships
from workorders.model import Event, Urgency, WorkOrder
from workorders.schema import WorkOrdersConfig

ESCALATE = EscalationPolicy()
W, B = Level.WARNING, Level.BREACH


def resolved(at: float) -> WorkOrder:
    """Assigned and started at once, resolved at ``at``."""
    wo = then(then(order(), Event.ASSIGN, T0 + 60), Event.START, T0 + 120)
    return then(wo, Event.RESOLVE, at)


def schedule(wo: WorkOrder, clocks: ClockPolicy = CLOCKS,
             policy: EscalationPolicy = ESCALATE) -> dict[tuple[ClockKind, Level], datetime]:
    return {(e.clock, e.level): e.at for e in owed(wo, clocks, policy)}


def fired(wo: WorkOrder, now: float, policy: EscalationPolicy = ESCALATE) -> list[tuple]:
    return [(e.clock, e.level) for e in due_at(wo, CLOCKS, policy, now).fire]


def swept(wo: WorkOrder, now: float, policy: EscalationPolicy = ESCALATE) -> WorkOrder:
    """The order as a sweep at ``now`` leaves it: what fell due recorded."""
    return replace(wo, escalations=due_at(wo, CLOCKS, policy, now).escalations)


@pytest.mark.parametrize(
    ("wo", "clock", "start", "target_h"),
    [
        (order(), A, T0, 2),
        (order(), R, T0, 48),
        (order(Urgency.URGENT), R, T0, 1),
        (order(), S, T0, 120),
        (order(Urgency.IMPORTANT), S, T0, 72),
        (resolved(T0 + H), F, T0 + H, 24),
    ],
    ids=["assignment", "response-normal", "response-urgent", "resolution-normal",
         "resolution-important", "feedback"],
)
def test_every_clock_warns_at_80_percent_and_breaches_at_its_due_time(wo, clock, start,
                                                                     target_h):
    """Each clock kind owes a warning when 80 % of its target is counted and its breach at
    the due time: nothing before the warning, the warning then, the breach at the due time."""
    warn, breach = start + 0.8 * target_h * H, start + target_h * H
    assert schedule(wo)[clock, W] == utc(warn)
    assert schedule(wo)[clock, B] == utc(breach)
    assert (clock, W) not in fired(wo, warn - 1)
    assert (clock, W) in fired(wo, warn)
    warned = swept(wo, warn)
    assert (clock, W) not in fired(warned, breach - 1)
    assert (clock, B) in fired(warned, breach)


def test_the_warning_is_identified_by_order_clock_level_and_due_time():
    """A warning's identity is the order, the clock, the level and the due time it refers to;
    computed again (a replay, another instance, the order read back from JSON) it is the same
    warning."""
    (first,) = due_at(order(), CLOCKS, ESCALATE, T0 + 1.6 * H).fire
    assert first.identity == ("9", "assignment", "warning", "2026-03-02T11:00:00.000000Z")
    assert first.key == "assignment:warning:2026-03-02T11:00:00.000000Z"
    again = WorkOrder.from_json(order().to_json())
    assert due_at(again, CLOCKS, ESCALATE, T0 + 1.7 * H).fire == (first,)


def test_a_recorded_warning_is_not_owed_again():
    """Once the order records a warning, no later sweep fires it again; the next thing due
    is the breach."""
    warned = swept(order(), T0 + 1.6 * H)
    assert warned.escalations == ("assignment:warning:2026-03-02T11:00:00.000000Z",)
    assert fired(warned, T0 + 1.9 * H) == []
    assert due_at(order(), CLOCKS, ESCALATE, T0 + 1.6 * H).next_at == utc(T0 + 2 * H)
    assert next_due(warned, CLOCKS, ESCALATE) == utc(T0 + 2 * H)


def test_a_breach_found_first_passes_over_its_warning():
    """Found only after the due time (the watch was down), a clock fires its breach; its
    warning is recorded as passed over, never fired after the breach."""
    due = due_at(order(), CLOCKS, ESCALATE, T0 + 3 * H)
    assert [(e.clock, e.level) for e in due.fire] == [(A, B)]
    assert [(e.clock, e.level) for e in due.passed] == [(A, W)]
    assert set(due.escalations) == {e.key for e in (*due.fire, *due.passed)}


def test_an_order_resolved_before_its_warnings_gets_none():
    """Resolved within the response and resolution targets: those clocks owe nothing; only
    the feedback duty (started by the resolution) is watched from then on."""
    wo = resolved(T0 + 2 * H)
    assert {clock for clock, _ in schedule(wo)} == {F}
    assert fired(wo, T0 + 2 * H + 0.8 * 24 * H) == [(F, W)]


def test_nothing_is_owed_once_every_clock_is_met():
    """A resolved order whose customer was reached again owes nothing: no ``wo:due``."""
    wo = then(resolved(T0 + 2 * H), Event.CONTACT, T0 + 3 * H)
    wo = then(wo, Event.CLOSE, T0 + 4 * H, outcome="fixed")
    assert owed(wo, CLOCKS, ESCALATE) == ()
    assert DueClocks()(wo) == {}
    assert DUE_INDEX not in memberships(wo)


def test_hold_pauses_the_warnings_and_resume_owes_new_ones():
    """On hold, the response and resolution clocks owe nothing; resumed, their due times
    moved by the wait, so the warnings owed are new ones, due the rest of the way on."""
    wo = then(then(order(), Event.ASSIGN, T0 + 600), Event.START, T0 + 660)
    before = {e.key for e in owed(wo, CLOCKS, ESCALATE) if e.clock is R}
    held = then(wo, Event.HOLD, T0 + H)
    assert {clock for clock, _ in schedule(held)} == set()  # assignment met, others paused
    back = then(held, Event.RESUME, T0 + 11 * H)
    assert schedule(back)[R, W] == utc(T0 + 11 * H + (0.8 * 48 - 1) * H)
    assert schedule(back)[R, B] == utc(T0 + 58 * H)
    assert before.isdisjoint(e.key for e in owed(back, CLOCKS, ESCALATE))


def test_resume_after_the_warning_point_warns_at_once_about_the_new_due_time():
    """A hold taken after the warning fired moves the due time: on resume a new warning
    (naming the new due time) falls due at once, and the breach at the new due time."""
    wo = then(then(order(Urgency.URGENT), Event.ASSIGN, T0 + 60), Event.START, T0 + 120)
    warned = swept(wo, T0 + 0.8 * H)
    assert fired(warned, T0 + 0.8 * H) == []
    back = then(then(warned, Event.HOLD, T0 + 0.9 * H), Event.RESUME, T0 + 2 * H)
    (warning,) = [e for e in owed(back, CLOCKS, ESCALATE) if (e.clock, e.level) == (R, W)]
    assert warning.at == utc(T0 + 2 * H)
    assert warning.due == utc(T0 + 2.1 * H)
    assert (R, W) in fired(back, T0 + 2 * H)


def test_reopen_moves_the_due_times_and_owes_new_warnings():
    """A reopen is a new promise: the response and resolution clocks owe new warnings and
    breaches counted from the reopen, whatever the first round recorded."""
    first = swept(resolved(T0 + 2 * H), T0 + 30 * H)
    assert first.escalations  # the feedback warning
    again = then(first, Event.REOPEN, T0 + 30 * H)
    assert schedule(again)[R, W] == utc(T0 + 30 * H + 0.8 * 48 * H)
    assert schedule(again)[S, B] == utc(T0 + 150 * H)
    assert (R, W) in fired(again, T0 + 30 * H + 0.8 * 48 * H)


def test_a_change_of_urgency_moves_the_due_time_and_the_warning():
    """Raised to urgent, the response clock is due an hour after its start: the warning
    owed is the one for the new due time (a new identity)."""
    raised = then(order(), Event.UPDATE, T0 + 600, urgency="urgent")
    (warning,) = [e for e in owed(raised, CLOCKS, ESCALATE) if (e.clock, e.level) == (R, W)]
    assert (warning.due, warning.at) == (utc(T0 + H), utc(T0 + 0.8 * H))


def test_a_breach_met_late_is_still_fired_once():
    """Assigned after its due time but before any sweep looked: the breach still fires (it
    happened), marked as no longer open, and raises no urgency."""
    late = then(order(), Event.ASSIGN, T0 + 3 * H)
    policy = EscalationPolicy(raise_urgency_on_breach={A: "step"})
    due = due_at(late, CLOCKS, policy, T0 + 3 * H + 1)
    assert [(e.clock, e.level, e.clock_open) for e in due.fire] == [(A, B, False)]
    assert due.raise_to is None


def test_business_hours_count_the_warning_in_office_time():
    """In a Berlin office calendar (Mon-Fri 08-17), an important order raised on Friday at
    15:00 is warned on Tuesday at 16:12 (19.2 office hours) and due on Wednesday at 12:00."""
    clocks = ClockPolicy(calendar=BusinessHours(BERLIN, OFFICE))
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=BERLIN).timestamp()
    wo = order(Urgency.IMPORTANT, friday)
    (warning,) = [e for e in owed(wo, clocks, ESCALATE) if (e.clock, e.level) == (R, W)]
    assert warning.at == datetime(2026, 3, 10, 16, 12, tzinfo=BERLIN)
    assert warning.due == datetime(2026, 3, 11, 12, 0, tzinfo=BERLIN)
    assert warning.business_hours


def test_business_hours_warning_across_the_spring_change_and_a_closed_day():
    """Over the weekend summer time begins: the warning is still at 16:12 local on Tuesday
    (14:12 UTC, no longer 15:12); with Monday closed it moves to Wednesday."""
    friday = datetime(2026, 3, 27, 15, 0, tzinfo=BERLIN).timestamp()
    open_monday = ClockPolicy(calendar=BusinessHours(BERLIN, OFFICE))
    closed_monday = ClockPolicy(calendar=BusinessHours(
        BERLIN, OFFICE, ClosedDates(listed=[date(2026, 3, 30)])))
    wo = order(Urgency.IMPORTANT, friday)
    assert schedule(wo, open_monday)[R, W] == datetime(2026, 3, 31, 14, 12, tzinfo=UTC)
    assert schedule(wo, closed_monday)[R, W] == datetime(2026, 4, 1, 16, 12, tzinfo=BERLIN)


def test_warning_percent_per_clock_and_none_for_a_clock():
    """``warn_at_percent`` per clock kind: 50 % for the response, no warning (0) for the
    others, whose breaches are still owed."""
    policy = EscalationPolicy(warn_at_percent={A: 0, R: 50, S: 0, F: 0})
    levels = schedule(order(), policy=policy)
    assert set(levels) == {(A, B), (R, W), (R, B), (S, B)}
    assert levels[R, W] == utc(T0 + 24 * H)


@pytest.mark.parametrize(
    ("how", "urgency", "raised"),
    [
        ("step", Urgency.NORMAL, Urgency.IMPORTANT),
        ("step", Urgency.IMPORTANT, Urgency.URGENT),
        ("step", Urgency.URGENT, None),
        (Urgency.URGENT, Urgency.NORMAL, Urgency.URGENT),
        (Urgency.IMPORTANT, Urgency.URGENT, None),  # never lowered
    ],
)
def test_a_configured_breach_raises_the_urgency(how, urgency, raised):
    """A breach of a clock configured to raise the urgency raises it one step or to the
    urgency named, never lowers it; other clocks' breaches raise nothing."""
    policy = EscalationPolicy(raise_urgency_on_breach={R: how})
    wo = then(order(urgency), Event.ASSIGN, T0 + 60)
    assert due_at(wo, CLOCKS, policy, T0 + 49 * H).raise_to is raised
    assert due_at(wo, CLOCKS, EscalationPolicy(), T0 + 49 * H).raise_to is None


def test_a_warning_percent_outside_0_to_99_is_refused():
    """100 % would be the breach itself: refused, naming the clock."""
    with pytest.raises(ValueError, match="warn_at_percent of response: 100"):
        EscalationPolicy(warn_at_percent={R: 100})


def test_due_clocks_is_an_index_scored_by_the_next_time_anything_falls_due():
    """``wo:due`` holds the order scored by its soonest owed warning (shipped standard), and
    a store's configured indexer counts with its own standard in the same place."""
    assert due_clocks in INDEXERS
    assert memberships(order())[DUE_INDEX] == T0 + 1.6 * H  # the assignment warning
    slow = DueClocks(ClockPolicy(assign_within=10 * H), EscalationPolicy())
    indexers = configured(slow)
    assert slow in indexers and due_clocks not in indexers and len(indexers) == len(INDEXERS)
    assert memberships(order(), indexers)[DUE_INDEX] == T0 + 8 * H


@pytest.mark.parametrize("calendar", ["24x7", "office", "office-some-clocks"])
def test_a_new_orders_due_time_is_the_replays(calendar):
    """The shortcut every creation takes (``DueClocks.first_due``: no replay of the one
    history entry) gives the score the replay and the schedule give (``next_due``), for
    every urgency, at times all through the week and across the spring change, with
    percentages of none to 99 per clock and some clocks in office hours, some 24x7."""
    rng = random.Random(11)
    office = BusinessHours(BERLIN, OFFICE, closed_dates=ClosedDates(listed=[date(2026, 3, 30)]))
    for _ in range(150):
        kinds = frozenset(k for k in ClockKind if rng.random() < 0.5)
        clocks = ClockPolicy(
            assign_within=rng.choice([600.0, 2 * H, 30 * H]),
            response={u: rng.choice([900.0, 4 * H, 50 * H]) for u in Urgency},
            resolution={u: rng.choice([H, 8 * H, 120 * H]) for u in Urgency},
            **({} if calendar == "24x7" else {"calendar": office}),
            **({"business_clocks": kinds} if calendar == "office-some-clocks" else {}),
        )
        escalate = EscalationPolicy(warn_at_percent={
            k: rng.choice([0, 1, 50, 80, 99]) for k in ClockKind if rng.random() < 0.8})
        indexer = DueClocks(clocks, escalate)
        wo = order(rng.choice(list(Urgency)), T0 + rng.uniform(0, 40 * 24 * H))
        general = next_due(wo, clocks, escalate)
        assert indexer.first_due(wo.history[0]) == general
        assert indexer(wo) == {DUE_INDEX: general.timestamp()}
        assert indexer(wo) == {DUE_INDEX: general.timestamp()}  # the spans as kept


def test_an_order_with_more_history_or_escalations_takes_the_replay():
    """Only a creation alone with nothing escalated takes the shortcut: an order with a
    recorded escalation, or more history, is scored by the replay as before."""
    wo = order()
    warned = replace(wo, escalations=(next(iter(owed(wo, CLOCKS, ESCALATE))).key,))
    assert due_clocks(warned) == {DUE_INDEX: next_due(warned, CLOCKS, ESCALATE).timestamp()}
    assert due_clocks(warned) != due_clocks(wo)
    held = then(wo, Event.ASSIGN, T0 + H, agent="agent101")
    assert due_clocks(held) == {DUE_INDEX: next_due(held, CLOCKS, ESCALATE).timestamp()}


def test_a_sweep_reschedules_to_what_the_indexer_computes():
    """What a sweep leaves as the next due time is what the indexer computes from the order
    as recorded: the store and the watch never disagree about the score."""
    for now in (T0 + 1.6 * H, T0 + 2 * H, T0 + 40 * H, T0 + 200 * H):
        due = due_at(order(), CLOCKS, ESCALATE, now)
        score = DueClocks()(replace(order(), escalations=due.escalations)).get(DUE_INDEX)
        assert score == (due.next_at.timestamp() if due.next_at else None)


def test_shipped_config_escalates_at_80_percent_and_raises_on_response_breach():
    """The shipped ``escalation:`` section: 80 % for every clock, a response breach raises
    the urgency one step, a sweep every 30 s, the list kept 30 days."""
    config = WorkOrdersConfig.model_validate(yaml.safe_load(
        (CONFIG_DIR / "workorders.yaml").read_text()))
    assert config.escalation.policy() == EscalationPolicy(
        warn_at_percent=dict.fromkeys(ClockKind, 80), raise_urgency_on_breach={R: "step"})
    assert (config.escalation.interval_s, config.escalation.list_retention_days) == (30, 30)


def test_escalation_config_per_clock_and_raise_to_a_named_urgency():
    """Per-clock percentages override the default; ``raise_urgency_on_breach`` takes true
    (one step), an urgency, or false (off)."""
    config = WorkOrdersConfig.model_validate({"escalation": {
        "warn_at_percent": 75, "warn_at_percent_by_clock": {"resolution": 90, "feedback": 0},
        "raise_urgency_on_breach": {"response": "urgent", "resolution": True,
                                    "assignment": False}}})
    policy = config.escalation.policy()
    assert dict(policy.warn_at_percent) == {A: 75, R: 75, S: 90, F: 0}
    assert dict(policy.raise_urgency_on_breach) == {R: Urgency.URGENT, S: "step"}


@pytest.mark.parametrize(
    ("escalation", "loc", "reason"),
    [
        ({"warn_at_percent": 100}, ("warn_at_percent",), "less than 100"),
        ({"warn_at_percent": 0}, ("warn_at_percent",), "greater than 0"),
        ({"warn_at_percent_by_clock": {"response": 120}}, ("warn_at_percent_by_clock",),
         "response: 120 is not a percentage"),
        ({"warn_at_percent_by_clock": {"reply": 50}}, ("warn_at_percent_by_clock", "reply"),
         "response"),
        ({"raise_urgency_on_breach": {"response": "asap"}},
         ("raise_urgency_on_breach", "response"), "urgent"),
        ({"interval_s": 0}, ("interval_s",), "greater than 0"),
        ({"retention_days": 3}, ("retention_days",), "Extra inputs"),
    ],
)
def test_bad_escalation_config_names_key_and_reason(escalation, loc, reason):
    """Each mistake in ``escalation:`` is refused with its key and a reason."""
    with pytest.raises(ValidationError) as error:
        WorkOrdersConfig.model_validate({"escalation": escalation})
    problems = error.value.errors()
    assert any(p["loc"][1:1 + len(loc)] == loc and reason in p["msg"] for p in problems), problems


def test_config_loader_names_file_key_and_reason(tmp_path):
    """Through ``ivr check-config``'s loader, a bad percentage names workorders.yaml, the key
    and the reason."""
    config = shutil.copytree(CONFIG_DIR, tmp_path / "config")
    shipped = (config / "workorders.yaml").read_text()
    assert "  warn_at_percent_by_clock: {}\n" in shipped
    (config / "workorders.yaml").write_text(shipped.replace(
        "  warn_at_percent_by_clock: {}\n", "  warn_at_percent_by_clock: {feedback: 150}\n"))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert "workorders.yaml" in message and "escalation.warn_at_percent_by_clock" in message
    assert "feedback: 150 is not a percentage" in message


def test_the_counter_counts_by_clock_and_level():
    """``hotline_workorder_escalations_total{clock,level}`` exists at zero for every clock
    and level, and counts what it is told was fired."""
    from prometheus_client import REGISTRY

    from hotline.metrics import count_escalation

    def value(clock: str, level: str) -> float:
        return REGISTRY.get_sample_value(
            "hotline_workorder_escalations_total", {"clock": clock, "level": level}) or 0.0

    assert REGISTRY.get_sample_value(
        "hotline_workorder_escalations_total", {"clock": "feedback", "level": "breach"}
    ) is not None
    before = value("response", "warning")
    (warning,) = due_at(order(Urgency.URGENT), CLOCKS, EscalationPolicy(
        warn_at_percent={R: 80}), T0 + 0.8 * H).fire
    count_escalation(warning)
    assert value("response", "warning") == before + 1
    assert timedelta(hours=1) == warning.target


def test_the_indexer_gives_the_same_score_from_kept_clocks_as_from_a_replay():
    """The indexer keeps the clocks of recent histories and steps them by the written entry;
    through a whole life (assign, hold, resume, urgency, resolve, reopen) every score equals
    the one a fresh replay of the history gives."""
    kept, fresh = DueClocks(), DueClocks(recent=0)
    wo = order()
    steps = [(Event.ASSIGN, 600), (Event.START, 700), (Event.HOLD, H), (Event.RESUME, 5 * H),
             (Event.UPDATE, 6 * H), (Event.NOTE, 7 * H), (Event.RESOLVE, 8 * H),
             (Event.REOPEN, 9 * H), (Event.RESOLVE, 10 * H), (Event.CONTACT, 11 * H)]
    for event, at in steps:
        changed = then(wo, event, T0 + at, **({"text": "x"} if event is Event.NOTE else {}))
        assert kept(wo) == fresh(wo) and kept(changed) == fresh(changed)
        wo = WorkOrder.from_json(changed.to_json()) if event is Event.NOTE else changed
    assert kept(wo) == {}  # resolved and the customer reached: nothing owed
