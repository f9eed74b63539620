"""Property tests of the routing decision over random snapshots (hypothesis)."""

from dataclasses import replace

from hypothesis import example, given, settings
from hypothesis import strategies as st

from routing import core
from routing import testing as rt
from routing.core import AgentStatus

SKILLS = ["billing", "sales", "network", "general"]
QUEUES = [
    rt.queue("billing", "billing | general"),
    rt.queue("faults", "network | general"),
    rt.queue("general", "general"),
]
RULES = [
    rt.rule("inquiry", "billing", [("billing >= 4", 20), ("billing >= 2", 20), ("general", None)]),
    rt.rule(
        "fault",
        "faults",
        [("network >= 4 & general", 15), ("network | general >= 3", None)],
        priority=10,
    ),
    rt.rule("other", "general", [("general >= 3", 30), ("general", None)]),
]
CONFIG = rt.config(QUEUES, RULES)
STATUSES = [
    AgentStatus.AVAILABLE,
    AgentStatus.AVAILABLE,
    AgentStatus.ON_CALL,
    AgentStatus.PAUSED,
    AgentStatus.WRAP_UP,
]

agent_st = st.builds(
    lambda i, skills, status, idle, langs: rt.agent(
        f"a{i:02d}", skills, status=status, idle_since=idle, languages=langs
    ),
    st.integers(0, 99),
    st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1),
    st.sampled_from(STATUSES),
    st.floats(0, 100).map(lambda x: round(x, 1)),
    st.lists(st.sampled_from(["ko", "en"]), max_size=2),
)
call_st = st.builds(
    lambda i, rt_type, entered, prio, lang: core.WaitingCall(
        call_id=f"c{i:03d}",
        request_type=rt_type,
        queue=CONFIG.rule_for(rt_type).queue,
        entered_at=entered,
        seq=i,
        priority=prio,
        language=lang,
    ),
    st.integers(0, 999),
    st.sampled_from(["inquiry", "fault", "other"]),
    st.floats(0, 200).map(lambda x: round(x, 1)),
    st.sampled_from([0, 0, 5, 10]),
    st.sampled_from([None, None, "ko"]),
)
stats_st = st.dictionaries(
    st.sampled_from(["billing", "faults", "general"]),
    st.builds(
        lambda a, w, ab: core.QueueStats(answered=a, answered_within=min(w, a), abandoned=ab),
        st.integers(0, 50),
        st.integers(0, 50),
        st.integers(0, 10),
    ),
)


@st.composite
def snapshots(draw):
    agents = {a.agent_id: a for a in draw(st.lists(agent_st, max_size=15))}
    calls = {c.call_id: c for c in draw(st.lists(call_st, max_size=15))}
    return core.Snapshot(200.0, agents, list(calls.values()), draw(stats_st))


def _allowed(snapshot, assignment, policy=core.OURS):
    call = snapshot.call_index[assignment.call_id]
    agent = snapshot.agents[assignment.agent_id]
    steps, _ = core.steps_for(call, CONFIG, policy)
    k, _ = core.step_in_force(snapshot, call, CONFIG, policy)
    return any(s.skills.fit(agent.skills) for s in steps[: k + 1])


@settings(max_examples=120, deadline=None)
@given(snapshots())
def test_no_agent_twice_and_only_available_agents(snapshot):
    """No agent gets two calls, no call two agents, and only available agents are offered."""
    out = core.decide(snapshot, CONFIG)
    assert len({a.agent_id for a in out}) == len(out)
    assert len({a.call_id for a in out}) == len(out)
    for a in out:
        assert snapshot.agents[a.agent_id].status is AgentStatus.AVAILABLE


@settings(max_examples=120, deadline=None)
@given(snapshots())
def test_agent_satisfies_step_in_force(snapshot):
    """Every assigned agent matches a step in force for the call and speaks its language."""
    for a in core.decide(snapshot, CONFIG):
        call = snapshot.call_index[a.call_id]
        assert _allowed(snapshot, a)
        if call.language:
            assert call.language in snapshot.agents[a.agent_id].languages


@settings(max_examples=80, deadline=None)
@given(snapshots())
def test_deterministic(snapshot):
    """The same snapshot (even with agents and calls listed in another order) gives the same
    decision."""
    first = core.decide(snapshot, CONFIG)
    shuffled = core.Snapshot(
        snapshot.now,
        dict(reversed(list(snapshot.agents.items()))),
        list(reversed(snapshot.calls)),
        snapshot.stats,
    )
    assert first == core.decide(shuffled, CONFIG)


@settings(max_examples=120, deadline=None)
@given(snapshots())
def test_settled_after_decide(snapshot):
    """After the offers, no remaining free agent may take a remaining call that ranks before
    any assigned one: priority order is kept."""
    out = core.decide(snapshot, CONFIG)
    taken_agents = {a.agent_id for a in out}
    taken_calls = {a.call_id for a in out}
    left_agents = [a for a in snapshot.available if a.agent_id not in taken_agents]
    for call in snapshot.calls:
        if call.call_id in taken_calls:
            continue
        for agent in left_agents:
            probe = core.Assignment(call.call_id, agent.agent_id, None)  # type: ignore[arg-type]
            fits = call.language is None or call.language in agent.languages
            assert not (fits and _allowed(snapshot, probe)), (call, agent)


@settings(max_examples=120, deadline=None)
@given(snapshots(), st.sampled_from([core.OURS, core.LONGEST_IDLE, core.RING_ALL]))
def test_event_function_matches_decide_when_settled(snapshot, policy):
    """On a settled snapshot, an agent becoming available gets what decide would give it."""
    settled_agents = dict(snapshot.agents)
    for a in core.decide(snapshot, CONFIG, policy):
        settled_agents[a.agent_id] = core.AgentState(
            a.agent_id, AgentStatus.ON_CALL, snapshot.agents[a.agent_id].skills
        )
    remaining = [
        c
        for c in snapshot.calls
        if c.call_id not in {a.call_id for a in core.decide(snapshot, CONFIG, policy)}
    ]
    newcomer = rt.agent(
        "zz", {"general": 3, "network": 4, "billing": 2}, idle_since=150.0, languages=["ko"]
    )
    settled_agents["zz"] = newcomer
    snap = core.Snapshot(snapshot.now, settled_agents, remaining, snapshot.stats)
    via_decide = [a for a in core.decide(snap, CONFIG, policy) if a.agent_id == "zz"]
    via_event = core.on_agent_available(snap, "zz", CONFIG, policy)
    assert [a.call_id for a in via_decide] == ([via_event.call_id] if via_event else [])


@settings(max_examples=150, deadline=None)
@given(snapshots(), st.sampled_from([core.OURS, core.LONGEST_IDLE, core.RING_ALL]))
def test_agent_walk_equals_call_walk(snapshot, policy):
    """decide's two walks (over calls, over free agents) give the same offers."""
    by_calls = core._decide_by_calls(snapshot, CONFIG, policy)
    by_agents = core._decide_by_agents(snapshot, CONFIG, policy)
    assert by_calls == by_agents


@st.composite
def sticky_snapshots(draw):
    """Snapshots where some calls are sticky to one of the agents (or to an absent one)."""
    snapshot = draw(snapshots())
    ids = [*snapshot.agents, "gone"]
    calls = [
        replace(c, sticky_agent=draw(st.sampled_from(ids))) if draw(st.booleans()) else c
        for c in snapshot.calls
    ]
    return core.Snapshot(snapshot.now, snapshot.agents, calls, snapshot.stats)


def _first_call_by_definition(snapshot, agent, policy):
    """The first call in routing order whose step in force the agent matches, or which is
    sticky to it while it matches any step; the language must fit."""
    for call in sorted(snapshot.calls, key=lambda c: c.order_key):
        if call.language is not None and call.language not in agent.languages:
            continue
        steps, _ = core.steps_for(call, CONFIG, policy)
        k, _ = core.step_in_force(snapshot, call, CONFIG, policy)
        fits = [bool(s.skills.fit(agent.skills)) for s in steps]
        if any(fits[: k + 1]) or (
            policy.sticky and call.sticky_agent == agent.agent_id and any(fits)
        ):
            return call
    return None


GENERALIST = rt.agent("a01", {"general": 3})
# The group's head (priority 10) has not waited for the generalist's step, an older call of
# lower priority behind it has: the group must be scanned.
OLDER_BEHIND_HEAD = core.Snapshot(
    200.0,
    {"a01": GENERALIST},
    [
        rt.call("c1", "inquiry", "billing", 190.0, seq=1, priority=10),
        rt.call("c2", "inquiry", "billing", 100.0, seq=2),
    ],
)
# Nobody waited long enough for the generalist, but the call is sticky to it.
STICKY_TO_GENERALIST = core.Snapshot(
    200.0, {"a01": GENERALIST}, [rt.call("c1", "inquiry", "billing", 195.0, sticky_agent="a01")]
)


@settings(max_examples=200, deadline=None)
@given(sticky_snapshots(), st.sampled_from([core.OURS, core.LONGEST_IDLE, core.RING_ALL]))
@example(OLDER_BEHIND_HEAD, core.OURS)
@example(OLDER_BEHIND_HEAD, core.LONGEST_IDLE)
@example(STICKY_TO_GENERALIST, core.OURS)
def test_agent_available_takes_the_first_call_it_may(snapshot, policy):
    """on_agent_available picks, by definition, the first call in routing order the agent may
    take: passing over groups of calls unscanned (nobody waited long enough, none sticky to
    the agent) never skips a call it may take."""
    for agent in snapshot.available:
        expected = _first_call_by_definition(snapshot, agent, policy)
        fresh = core.Snapshot(snapshot.now, snapshot.agents, snapshot.calls, snapshot.stats)
        got = core.on_agent_available(fresh, agent.agent_id, CONFIG, policy)
        assert (got.call_id if got else None) == (expected.call_id if expected else None)


@settings(max_examples=120, deadline=None)
@given(snapshots(), st.permutations(["billing", "faults", "general"]))
def test_queue_lists_agree_whichever_index_comes_first(snapshot, queues):
    """A queue's calls in routing order are the same whether filtered out of the calls (first
    queue asked for) or merged from the groups, and a call is found with or without the
    index."""
    expected = {
        q: [c for c in sorted(snapshot.calls, key=lambda c: c.order_key) if c.queue == q]
        for q in queues
    }
    fresh = core.Snapshot(snapshot.now, snapshot.agents, snapshot.calls, snapshot.stats)
    assert [fresh.in_queue(q) for q in queues] == [expected[q] for q in queues]
    for call in snapshot.calls:
        assert fresh.call(call.call_id) is call
    assert len(fresh.call_index) == len(snapshot.calls)  # built: lookups now use it
    for call in snapshot.calls:
        assert fresh.call(call.call_id) is call


def test_route_follows_the_call_when_it_moves():
    """A call's route (request type, queue) is derived from its fields, so an overflowed call
    is grouped, and gets steps, by its new queue."""
    call = rt.call("c1", "inquiry", "billing", 10.0)
    moved = core.overflow(call, "general", 20.0)
    assert (call.route, moved.route) == (("inquiry", "billing"), ("inquiry", "general"))
    assert moved == replace(call, queue="general", entered_at=20.0)
    assert core.steps_for(moved, CONFIG)[0] == (core.Step(QUEUES[2].skills),)


@st.composite
def scheduled_snapshots(draw):
    """Sticky snapshots where some agents (in any state) are off schedule, and the same
    snapshot with those agents logged out instead."""
    snapshot = draw(sticky_snapshots())
    off = frozenset(a for a in snapshot.agents if draw(st.booleans()))
    scheduled = core.Snapshot(snapshot.now, snapshot.agents, snapshot.calls, snapshot.stats,
                              off_schedule=off)
    logged_out = {
        i: replace(a, status=AgentStatus.LOGGED_OUT, call_id=None, queue=None) if i in off else a
        for i, a in snapshot.agents.items()
    }
    return scheduled, core.Snapshot(snapshot.now, logged_out, snapshot.calls, snapshot.stats)


def _offers(assignments):
    return [(a.call_id, a.agent_id, a.why.step, a.why.relaxed) for a in assignments]


# The caller's sticky agent is free but off schedule; another free agent does not qualify yet.
STICKY_OFF_SCHEDULE = (
    core.Snapshot(200.0, {"a01": GENERALIST, "a02": rt.agent("a02", {"billing": 5})},
                  [rt.call("c1", "inquiry", "billing", 195.0, sticky_agent="a01")],
                  off_schedule=frozenset({"a01"})),
    core.Snapshot(200.0, {"a01": replace(GENERALIST, status=AgentStatus.LOGGED_OUT),
                          "a02": rt.agent("a02", {"billing": 5})},
                  [rt.call("c1", "inquiry", "billing", 195.0, sticky_agent="a01")]),
)


@settings(max_examples=200, deadline=None)
@given(scheduled_snapshots(), st.sampled_from([core.OURS, core.LONGEST_IDLE, core.RING_ALL]))
@example(STICKY_OFF_SCHEDULE, core.OURS)
def test_off_schedule_routes_as_if_logged_out(pair, policy):
    """An agent off schedule is never offered a call, and every routing figure is what it
    would be with that agent logged out: offers (both walks), each agent's first call,
    ring-all lists, estimated waits and projected service levels."""
    scheduled, logged_out = pair
    out = core.decide(scheduled, CONFIG, policy)
    assert not {a.agent_id for a in out} & set(scheduled.off_schedule)
    assert _offers(out) == _offers(core.decide(logged_out, CONFIG, policy))
    assert out == core._decide_by_agents(
        core.Snapshot(scheduled.now, scheduled.agents, scheduled.calls, scheduled.stats,
                      off_schedule=scheduled.off_schedule), CONFIG, policy)
    for agent_id in scheduled.agents:
        got = core.on_agent_available(scheduled, agent_id, CONFIG, policy)
        if agent_id in scheduled.off_schedule:
            assert got is None
        else:
            want = core.on_agent_available(logged_out, agent_id, CONFIG, policy)
            assert _offers([got] if got else []) == _offers([want] if want else [])
    for call in scheduled.calls:
        assert core.eligible_agents(scheduled, call.call_id, CONFIG, policy) == (
            core.eligible_agents(logged_out, call.call_id, CONFIG, policy))
        assert core.estimated_wait(scheduled, call.call_id, CONFIG) == (
            core.estimated_wait(logged_out, call.call_id, CONFIG))
    for queue in CONFIG.queues:
        assert core.projected_service_level(scheduled, queue, CONFIG) == (
            core.projected_service_level(logged_out, queue, CONFIG))
