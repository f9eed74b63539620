"""The routing core: agent state machine, choice of agent, priority, relaxation, RONA,
estimated wait and service-level arithmetic."""

import math
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from routing import core
from routing import testing as rt
from routing.core import AgentInput, AgentStatus

FAULTS = rt.queue("faults", "network | general")
FAULT_RULE = rt.rule(
    "fault", "faults", [("network >= 4", 20), ("network >= 2", 20), ("general", None)],
    priority=10,
)
GENERAL = rt.queue("general", "general")
OTHER_RULE = rt.rule("other", "general", [("general", None)])
CONFIG = rt.config([FAULTS, GENERAL], [FAULT_RULE, OTHER_RULE])


# --- agent state machine ---------------------------------------------------------------------

def test_every_pair_is_declared_or_refused():
    """Every (state, input) pair either has a declared result or raises TransitionRefused."""
    for status in AgentStatus:
        for event in AgentInput:
            agent = core.AgentState("a1", status=status, call_id="c1")
            kw = {"reason": "break", "call_id": "c2"}
            if (status, event) in core.TRANSITIONS:
                assert core.transition(agent, event, 5.0, **kw).status is (
                    core.TRANSITIONS[(status, event)][0]
                )
            else:
                with pytest.raises(core.TransitionRefused, match=f"refused in state {status}"):
                    core.transition(agent, event, 5.0, **kw)


def test_lifecycle_sets_idle_and_last_call():
    """Login, offer, answer, hang-up, wrap-up: idle_since is when the agent became available
    again, last_call_at when the call ended."""
    a = core.AgentState("a1")
    a = core.transition(a, AgentInput.LOGIN, 10.0)
    assert (a.status, a.idle_since) == (AgentStatus.AVAILABLE, 10.0)
    a = core.transition(a, AgentInput.OFFER, 20.0, call_id="c1", queue="faults")
    a = core.transition(a, AgentInput.ANSWER, 25.0)
    assert (a.status, a.call_id, a.queue) == (AgentStatus.ON_CALL, "c1", "faults")
    a = core.transition(a, AgentInput.CALL_END, 200.0)
    assert (a.status, a.last_call_at, a.queue) == (AgentStatus.WRAP_UP, 200.0, "faults")
    a = core.transition(a, AgentInput.WRAPUP_END, 210.0)
    assert (a.status, a.idle_since, a.call_id, a.queue) == (
        AgentStatus.AVAILABLE, 210.0, None, None)


def test_pause_needs_a_reason_and_offer_a_call():
    """A pause without reason and an offer without call id are refused."""
    a = core.AgentState("a1", status=AgentStatus.AVAILABLE)
    with pytest.raises(core.TransitionRefused, match="needs a reason"):
        core.transition(a, AgentInput.PAUSE, 1.0)
    with pytest.raises(core.TransitionRefused, match="needs a call id"):
        core.transition(a, AgentInput.OFFER, 1.0)
    paused = core.transition(a, AgentInput.PAUSE, 1.0, reason="lunch")
    assert (paused.status, paused.pause_reason) == (AgentStatus.PAUSED, "lunch")
    assert core.transition(paused, AgentInput.RESUME, 2.0).pause_reason is None


# --- choice of agent -------------------------------------------------------------------------

def test_best_level_then_longest_idle_then_id():
    """Among qualifying agents: the best level wins; equal levels go to the longest idle;
    equal idle to the smaller id."""
    agents = [
        rt.agent("a3", {"network": 4}, idle_since=0.0),
        rt.agent("a2", {"network": 5}, idle_since=50.0),
        rt.agent("a1", {"network": 5}, idle_since=50.0),
        rt.agent("a4", {"network": 5}, idle_since=60.0),
    ]
    snap = rt.snapshot(100.0, agents, [rt.call("c1", "fault", "faults", 95.0)])
    [a] = core.decide(snap, CONFIG)
    assert a.agent_id == "a1"
    assert [c.agent_id for c in a.why.candidates] == ["a1", "a2", "a4", "a3"]
    assert a.why.step == 0 and "best level 5" in a.why.reason


def test_longest_idle_policy_ignores_level():
    """The longest-idle baseline takes the longest idle qualifying agent whatever its level."""
    agents = [rt.agent("a1", {"network": 5}, idle_since=50.0),
              rt.agent("a2", {"network": 4}, idle_since=10.0)]
    snap = rt.snapshot(100.0, agents, [rt.call("c1", "fault", "faults", 95.0)])
    assert core.decide(snap, CONFIG, core.LONGEST_IDLE)[0].agent_id == "a2"


def test_steps_relax_with_wait():
    """A fault call waits for network >= 4 for 20 s, then takes network >= 2, then general."""
    agents = [rt.agent("junior", {"network": 2}), rt.agent("generalist", {"general": 5})]
    call = rt.call("c1", "fault", "faults", 0.0)
    assert core.decide(rt.snapshot(19.9, agents, [call]), CONFIG) == []
    [a] = core.decide(rt.snapshot(20.0, agents, [call]), CONFIG)
    assert (a.agent_id, a.why.step) == ("junior", 1)
    [a] = core.decide(rt.snapshot(40.0, agents[1:], [call]), CONFIG)
    assert (a.agent_id, a.why.step) == ("generalist", 2)


def test_earlier_step_match_beats_higher_level_on_later_step():
    """Once relaxed, an agent matching the first step still comes before a later-step match."""
    agents = [rt.agent("senior", {"network": 4}, idle_since=90.0),
              rt.agent("generalist", {"general": 5}, idle_since=0.0)]
    [a] = core.decide(rt.snapshot(100.0, agents, [rt.call("c1", "fault", "faults", 0.0)]),
                      CONFIG)
    assert a.agent_id == "senior"


def test_priority_then_position():
    """Higher priority first; equal priority in order of entry; one agent per call."""
    agents = [rt.agent("a1", {"general": 3}), rt.agent("a2", {"general": 3}, idle_since=5.0)]
    calls = [
        rt.call("old", "other", "general", 10.0, seq=1),
        rt.call("urgent", "other", "general", 50.0, seq=3, priority=10),
        rt.call("new", "other", "general", 20.0, seq=2),
    ]
    out = core.decide(rt.snapshot(60.0, agents, calls), CONFIG)
    assert [(a.call_id, a.agent_id) for a in out] == [("urgent", "a1"), ("old", "a2")]


def test_priority_from_rule_urgency_and_vip():
    """Priority = base + urgency boost + VIP boost (higher is served first)."""
    call = core.new_call(CONFIG, "c1", "fault", 0.0, urgency="urgent", vip=True)
    assert call.priority == 10 + 10 + 5
    assert core.new_call(CONFIG, "c2", "unknown-type", 0.0).queue == "general"


def test_language_and_sticky_agent():
    """A call needing a language only goes to agents speaking it; a sticky agent who is free
    and matches any step gets the first offer even before the step is in force."""
    agents = [rt.agent("en", {"network": 5}, languages=["en"]),
              rt.agent("ko", {"network": 5}, languages=["ko"], idle_since=50.0),
              rt.agent("friend", {"general": 1}, idle_since=90.0)]
    lang_call = rt.call("c1", "fault", "faults", 99.0, language="ko")
    assert core.decide(rt.snapshot(100.0, agents, [lang_call]), CONFIG)[0].agent_id == "ko"
    sticky = rt.call("c2", "fault", "faults", 99.0, sticky_agent="friend")
    [a] = core.decide(rt.snapshot(100.0, agents, [sticky]), CONFIG)
    assert a.agent_id == "friend" and "sticky" in a.why.reason


def test_event_functions_agree_with_decide():
    """on_agent_available picks the first call in routing order the agent qualifies for;
    on_call_arrived the best agent; both equal decide on a settled snapshot."""
    calls = [rt.call("f", "fault", "faults", 95.0, seq=1, priority=10),
             rt.call("g", "other", "general", 10.0, seq=2)]
    agent = rt.agent("a1", {"general": 4})
    snap = rt.snapshot(100.0, [agent], calls)
    assert core.on_agent_available(snap, "a1", CONFIG).call_id == "g"
    assert core.decide(snap, CONFIG)[0].call_id == "g"
    snap2 = rt.snapshot(100.0, [rt.agent("n", {"network": 5}), agent], calls[:1])
    assert core.on_call_arrived(snap2, "f", CONFIG).agent_id == "n"


# --- RONA ------------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", ["missed", "rejected", "busy-elsewhere"])
def test_failed_offer_pauses_agent_and_keeps_position(reason):
    """No answer, reject and busy-elsewhere pause the agent with that reason and put the call
    back at its original position, ahead of calls that came later."""
    call = rt.call("c1", "other", "general", 10.0, seq=1)
    later = rt.call("c2", "other", "general", 30.0, seq=2)
    agent = core.transition(rt.agent("a1", {"general": 3}), AgentInput.OFFER, 40.0,
                            call_id="c1")
    paused, back = core.offer_failed(agent, call, reason, 55.0)
    assert (paused.status, paused.pause_reason) == (AgentStatus.PAUSED, reason)
    assert (back.entered_at, back.seq, back.offered_to) == (10.0, 1, ("a1",))
    other = rt.agent("a2", {"general": 3})
    [a] = core.decide(rt.snapshot(56.0, [paused, other], [later, back]), CONFIG)
    assert a.call_id == "c1"
    assert core.queue_position(rt.snapshot(56.0, [], [later, back]), "c1") == 1


def test_offer_failed_refuses_unknown_reason_and_wrong_call():
    """Only the three failure reasons exist, and only for the call actually offered."""
    agent = core.transition(rt.agent("a1", {"general": 3}), AgentInput.OFFER, 1.0, call_id="x")
    with pytest.raises(ValueError, match="unknown offer failure"):
        core.offer_failed(agent, rt.call("x", "other", "general", 0.0), "bored", 2.0)
    with pytest.raises(core.TransitionRefused):
        core.offer_failed(agent, rt.call("y", "other", "general", 0.0), "missed", 2.0)


# --- service level, projection, estimated wait ---------------------------------------------

def test_service_level_arithmetic():
    """SL = answered within / (answered + abandoned after Z + overflowed); short abandons are
    left out of both."""
    target = core.ServiceLevelTarget(0.8, 20.0, short_abandon_s=5.0)
    s = core.QueueStats()
    for waited in (3.0, 19.0, 20.0, 25.0):
        s = s.with_answer(waited, target)
    s = s.with_abandon(2.0, target).with_abandon(40.0, target).with_overflow()
    assert (s.answered, s.answered_within, s.abandoned, s.abandoned_short) == (4, 3, 1, 1)
    assert s.service_level == pytest.approx(3 / 6)
    assert core.QueueStats().service_level is None


def test_estimated_wait_is_position_times_handle_over_serving():
    """EWT = (position - free) * (AHT + wrap-up) / serving agents, where an agent busy with
    another queue's call counts 1/m (m = queues its skills match), a paused one 0; nobody
    serving gives inf."""
    q = rt.queue("general", "general", aht_s=120.0, wrapup_s=30.0)
    cfg = rt.config([q, rt.queue("billing", "general")], [OTHER_RULE])
    agents = [
        rt.agent("a1", {"general": 3}, status=AgentStatus.ON_CALL, queue="general"),
        rt.agent("a2", {"general": 3}, status=AgentStatus.WRAP_UP, queue="general"),
        rt.agent("a3", {"general": 3}, status=AgentStatus.ON_CALL, queue="billing"),
        rt.agent("a4", {"general": 3}, status=AgentStatus.PAUSED),
    ]
    calls = [rt.call("c1", "other", "general", 0.0, seq=1),
             rt.call("c2", "other", "general", 5.0, seq=2)]
    snap = rt.snapshot(10.0, agents, calls)
    assert snap.serving(q, cfg) == pytest.approx(2.5)
    assert core.estimated_wait(snap, "c2", cfg) == pytest.approx(2 * 150.0 / 2.5)
    measured = {"general": core.QueueStats(handled=2, handle_time_total=180.0)}
    snap = rt.snapshot(10.0, agents, calls, measured)
    assert core.estimated_wait(snap, "c1", cfg) == pytest.approx(1 * (90.0 + 30.0) / 2.5)
    free = [*agents, rt.agent("a5", {"general": 1})]
    assert core.estimated_wait(rt.snapshot(10.0, free, calls), "c1", cfg) == 0.0
    assert math.isinf(core.estimated_wait(rt.snapshot(10.0, agents[3:], calls), "c1", cfg))


def test_projected_service_level_formula():
    """Projection = (answered within + waiting calls whose wait + estimate <= Y) /
    (answered + abandoned + overflowed + waiting)."""
    q = rt.queue("general", "general", aht_s=60.0, threshold_s=20.0)
    cfg = rt.config([q], [OTHER_RULE])
    agents = [rt.agent(f"a{i}", {"general": 3}, status=AgentStatus.ON_CALL, queue="general")
              for i in range(6)]
    # Per position 60 / 6 = 10 s: c1 waited 5 (+10 = 15 ok), c2 waited 1 (+20 = 21 late).
    calls = [rt.call("c1", "other", "general", 95.0, seq=1),
             rt.call("c2", "other", "general", 99.0, seq=2)]
    stats = {"general": core.QueueStats(answered=8, answered_within=7, abandoned=2)}
    snap = rt.snapshot(100.0, agents, calls, stats)
    assert core.projected_service_level(snap, "general", cfg) == pytest.approx((7 + 1) / 12)


def test_relaxation_when_projected_to_miss_target():
    """A queue projected below its target moves its calls one step early; the explanation
    says so. Without the projection the call keeps waiting for its first step."""
    agents = [rt.agent("junior", {"network": 2})]
    call = rt.call("c1", "fault", "faults", 95.0)
    bad = {"faults": core.QueueStats(answered=10, answered_within=5, serving=1)}
    [a] = core.decide(rt.snapshot(100.0, agents, [call], bad), CONFIG)
    assert (a.agent_id, a.why.step, a.why.relaxed) == ("junior", 1, True)
    assert a.why.projected_service_level < 0.8
    good = {"faults": core.QueueStats(answered=10, answered_within=10, serving=1)}
    assert core.decide(rt.snapshot(100.0, agents, [call], good), CONFIG) == []
    snap = rt.snapshot(100.0, agents, [call], bad)
    assert core.on_agent_available(snap, "junior", CONFIG).call_id == "c1"


def test_next_step_change_and_overflow():
    """The next step change is entry + step start; overdue calls go to the overflow."""
    q = rt.queue("faults", "network", max_wait_s=60.0, overflow="general", max_length=1)
    cfg = rt.config([q, GENERAL], [FAULT_RULE, OTHER_RULE])
    call = rt.call("c1", "fault", "faults", 100.0)
    snap = rt.snapshot(110.0, [], [call])
    assert core.next_step_change(snap, cfg) == 120.0
    assert core.next_step_change(rt.snapshot(120.0, [], [call]), cfg) == 140.0
    assert core.admission(snap, "faults", cfg) == "general"
    assert core.overdue_calls(rt.snapshot(160.0, [], [call]), cfg) == [(call, "general")]
    moved = core.overflow(call, "general", 160.0)
    assert (moved.queue, moved.seq, moved.entered_at) == ("general", 0, 160.0)
    with pytest.raises(ValueError, match="operator is not a queue"):
        core.overflow(call, "operator", 160.0)


def test_explanation_serializes():
    """An assignment's explanation is plain JSON-ready data naming step, candidates, reason."""
    snap = rt.snapshot(100.0, [rt.agent("a1", {"network": 5}, idle_since=40.0)],
                       [rt.call("c1", "fault", "faults", 90.0)])
    why = core.decide(snap, CONFIG)[0].why.as_dict()
    assert why["expression"] == "network >= 4"
    assert why["candidates"] == [{"agent": "a1", "step": 0, "level": 5, "idle_s": 60.0}]
    assert why["waited_s"] == 10.0


def test_schedule():
    """Weekly schedule: minute intervals per weekday, end exclusive; none means always."""
    p = core.AgentProfile("a1", "A", "PJSIP/a1", {"general": 1},
                          schedule={0: ((480, 1020),)})
    assert p.on_schedule(0, 480) and not p.on_schedule(0, 1020) and not p.on_schedule(1, 600)
    assert core.AgentProfile("a2", "B", "PJSIP/a2", {"general": 1}).on_schedule(6, 0)


# --- schedules -------------------------------------------------------------------------------

def _at(local: str, zone: str) -> float:
    """Epoch seconds of a local wall time (ISO, no offset) in ``zone``."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp()


WEEKDAY_9_TO_17 = {d: [(540, 1020)] for d in range(5)}
SEOUL = rt.config(
    [FAULTS, GENERAL], [FAULT_RULE, OTHER_RULE], timezone="Asia/Seoul",
    agents=[rt.profile("day", {"network": 5}, WEEKDAY_9_TO_17),
            rt.profile("night", {"network": 5}, {0: [(0, 540)], 6: [(1200, 1440)]}),
            rt.profile("anytime", {"network": 2})],
)


@pytest.mark.parametrize(
    ("local", "off"),
    [
        ("2027-01-11T08:59:59", {"day"}),           # Monday, a second before the start
        ("2027-01-11T09:00:00", {"night"}),         # the start is in (inclusive)
        ("2027-01-11T16:59:59", {"night"}),
        ("2027-01-11T17:00:00", {"day", "night"}),  # the end is out (exclusive)
        ("2027-01-16T12:00:00", {"day", "night"}),  # Saturday: no interval that day
        ("2027-01-17T23:59:00", {"day"}),           # Sunday until 24:00
        ("2027-01-18T00:00:00", {"day"}),           # and Monday from 00:00: no gap at midnight
    ],
)
def test_off_schedule_boundaries(local, off):
    """A schedule interval includes its start and excludes its end, per local weekday; an
    agent without a schedule is never off schedule."""
    assert core.agents_off_schedule(SEOUL, _at(local, "Asia/Seoul")) == off


def test_schedule_is_read_in_the_configured_time_zone():
    """The same instant is inside a 9-17 schedule in one zone and outside it in another, and
    daylight saving time moves the UTC hours of a New York schedule, not its local hours."""
    monday_9_seoul = _at("2027-01-11T09:00", "Asia/Seoul")  # Monday 00:00 UTC
    agents = [rt.profile("day", {"network": 5}, WEEKDAY_9_TO_17)]
    utc = rt.config([FAULTS], [FAULT_RULE], timezone="UTC", agents=agents)
    assert core.agents_off_schedule(SEOUL, monday_9_seoul) == {"night"}
    assert core.agents_off_schedule(utc, monday_9_seoul) == {"day"}
    new_york = rt.config([FAULTS], [FAULT_RULE], timezone="America/New_York", agents=agents)
    friday_est = _at("2027-03-12T09:00", "America/New_York")  # 14:00 UTC
    monday_edt = _at("2027-03-15T09:00", "America/New_York")  # 13:00 UTC, after the change
    assert (friday_est - monday_edt) % 86400 == 3600
    for start in (friday_est, monday_edt):
        assert core.agents_off_schedule(new_york, start) == frozenset()
        assert core.agents_off_schedule(new_york, start - 1) == {"day"}


def test_schedule_without_time_zone_uses_the_machine_zone(monkeypatch):
    """No ``timezone`` configured: schedules are read in the machine's local zone."""
    agents = [rt.profile("day", {"network": 5}, WEEKDAY_9_TO_17)]
    cfg = rt.config([FAULTS], [FAULT_RULE], agents=agents)
    monday_9_seoul = _at("2027-01-11T09:00", "Asia/Seoul")
    try:
        for zone, off in (("Asia/Seoul", set()), ("Europe/London", {"day"})):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            cfg._steps_memo.pop("off_schedule", None)
            assert core.agents_off_schedule(cfg, monday_9_seoul) == off
    finally:
        monkeypatch.undo()
        time.tzset()


def test_no_schedule_anywhere_costs_nothing():
    """Without any scheduled agent the answer is the empty set, whatever the time."""
    assert core.agents_off_schedule(CONFIG, 0.0) == frozenset()
    assert core.agents_off_schedule(rt.config([FAULTS], [FAULT_RULE], agents=[
        rt.profile("a1", {"network": 1})]), 1e9) == frozenset()


def test_off_schedule_is_worked_out_once_per_local_minute():
    """Decisions 4 times a second within one local minute share one answer."""
    t = _at("2027-01-11T10:00:00", "Asia/Seoul")
    first = core.agents_off_schedule(SEOUL, t)
    assert core.agents_off_schedule(SEOUL, t + 59.75) is first
    assert core.agents_off_schedule(SEOUL, t + 60) == first


def test_agent_off_schedule_is_never_offered_a_call():
    """The best agent, off schedule, is passed over (the explanation says so); alone, it gets
    nothing, not when it becomes available, not as the caller's sticky agent, not in a
    ring-all."""
    agents = [rt.agent("day", {"network": 5}, idle_since=0.0),
              rt.agent("anytime", {"network": 2}, idle_since=50.0)]
    call = rt.call("c1", "fault", "faults", 55.0)  # step 1 (network >= 2) in force at 100
    snap = rt.snapshot(100.0, agents, [call], off_schedule={"day"})
    [a] = core.decide(snap, CONFIG)
    assert a.agent_id == "anytime"
    assert a.why.off_schedule == ("day",)
    assert a.why.as_dict()["off_schedule"] == ["day"]
    assert [c.agent_id for c in a.why.candidates] == ["anytime"]
    assert core.eligible_agents(snap, "c1", CONFIG) == ["anytime"]
    alone = rt.snapshot(100.0, agents[:1], [call], off_schedule={"day"})
    assert core.decide(alone, CONFIG) == []
    assert core.on_agent_available(alone, "day", CONFIG) is None
    assert core.on_call_arrived(alone, "c1", CONFIG) is None
    # c2 is at step 0 (network >= 4): only its sticky agent, off schedule, would qualify.
    sticky = rt.call("c2", "fault", "faults", 99.0, sticky_agent="day")
    assert core.decide(rt.snapshot(100.0, agents, [sticky], off_schedule={"day"}), CONFIG) == []
    on = core.decide(rt.snapshot(100.0, agents, [call]), CONFIG)[0]
    assert (on.agent_id, on.why.off_schedule) == ("day", ())


def test_agents_off_schedule_are_not_counted_in_estimated_wait():
    """Free and serving counts leave out agents off schedule, whatever their state: the
    estimated wait is what the agents on schedule give, infinite with none."""
    q = rt.queue("faults", "network", aht_s=120.0, wrapup_s=0.0)
    cfg = rt.config([q, GENERAL], [FAULT_RULE, OTHER_RULE])
    calls = [rt.call(f"c{i}", "fault", "faults", 90.0 + i, seq=i) for i in range(3)]
    agents = [rt.agent("on1", {"network": 5}, status=AgentStatus.ON_CALL, queue="faults"),
              rt.agent("off1", {"network": 5}, status=AgentStatus.ON_CALL, queue="faults"),
              rt.agent("off2", {"network": 5})]
    snap = rt.snapshot(100.0, agents, calls, off_schedule={"off1", "off2"})
    assert core.free_agents(snap, q) == 0
    assert snap.serving(q, cfg) == 1.0
    assert core.estimated_wait(snap, "c2", cfg) == 3 * 120.0
    # on schedule, off2 would be free and all three serving: (3 - 1) * 120 / 3
    assert core.estimated_wait(rt.snapshot(100.0, agents, calls), "c2", cfg) == 80.0
    nobody = rt.snapshot(100.0, agents, calls, off_schedule={"on1", "off1", "off2"})
    assert core.estimated_wait(nobody, "c0", cfg) == math.inf
    assert snap.shown_status(agents[2]) == core.OFF_SCHEDULE
    assert snap.shown_status(agents[1]) == "on_call"  # finishing a call past the schedule
