"""The decision: which free agent gets which waiting call, and why.

Walks the calls in routing order (or, with few free agents, the agents' first eligible
calls: the same answer) and ranks the qualifying agents; every assignment carries its
:class:`Explanation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from routing.core.agents import AgentState
from routing.core.config import OURS, RING_ALL, Policy, RoutingConfig, Step
from routing.core.estimate import projected_service_level
from routing.core.snapshot import Snapshot, WaitingCall, _order_key
from routing.core.steps import _route_plan, _RoutePlan, _step_in_force


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent considered for a call: the earliest step it matches, its fit level there,
    and how long it has been idle."""

    agent_id: str
    step: int
    level: int
    idle_s: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an agent got a call: enough to answer the question afterwards from the log."""

    request_type: str
    queue: str
    step: int
    expression: str
    waited_s: float
    relaxed: bool
    projected_service_level: float | None
    candidates: tuple[Candidate, ...]
    reason: str
    off_schedule: tuple[str, ...] = ()
    """Free agents who qualified for the call but were passed over: outside their schedule."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_type": self.request_type,
            "queue": self.queue,
            "step": self.step,
            "expression": self.expression,
            "waited_s": round(self.waited_s, 3),
            "relaxed": self.relaxed,
            "projected_service_level": self.projected_service_level,
            "candidates": [
                {
                    "agent": c.agent_id,
                    "step": c.step,
                    "level": c.level,
                    "idle_s": round(c.idle_s, 3),
                }
                for c in self.candidates
            ],
            "reason": self.reason,
            "off_schedule": list(self.off_schedule),
        }


@dataclass(frozen=True, slots=True)
class Assignment:
    """Offer ``call_id`` to ``agent_id``; ``why`` explains the choice."""

    call_id: str
    agent_id: str
    why: Explanation


EXPLAIN_CANDIDATES = 5
"""How many ranked candidates an explanation keeps."""

_Ranked = tuple[tuple[Any, ...], AgentState, int, int]
"""A qualifying agent with its rank key, the earliest step it matches and its fit level."""


def _first_match(agent: AgentState, steps: tuple[Step, ...], upto: int) -> tuple[int, int]:
    """(earliest step index <= upto the agent matches, fit level); (-1, 0) when none."""
    skills = agent.skills
    for j in range(upto + 1):
        level = steps[j].skills.fit(skills)
        if level:
            return j, level
    return -1, 0


def _ranked(
    snapshot: Snapshot, plan: _RoutePlan, k: int, policy: Policy
) -> list[_Ranked]:
    """Available agents matching any of steps 0..k, best first (memoized per snapshot)."""
    memo_key = ("ranked", id(plan), k, policy.rank_by_level)
    cached: list[_Ranked] | None = snapshot._memo.get(memo_key)
    if cached is not None:
        return cached
    steps, anchors = plan.steps, plan.anchors[k]
    ranked: list[_Ranked] = []
    for agent in snapshot.available:
        if anchors.isdisjoint(agent.skills):
            continue
        j, level = _first_match(agent, steps, k)
        if j < 0:
            continue
        if policy.rank_by_level:
            key: tuple[Any, ...] = (j, -level, agent.idle_since, agent.agent_id)
        else:
            key = (agent.idle_since, agent.agent_id)
        ranked.append((key, agent, j, level))
    ranked.sort(key=_rank_key)
    snapshot._memo[memo_key] = ranked
    return ranked


def _rank_key(entry: _Ranked) -> tuple[Any, ...]:
    return entry[0]


def _fits_call(agent: AgentState, call: WaitingCall) -> bool:
    if agent.agent_id in call.excluded:
        return False
    return call.language is None or call.language in agent.languages


def _sticky_match(
    snapshot: Snapshot, call: WaitingCall, steps: tuple[Step, ...], taken: set[str]
) -> Candidate | None:
    agent = snapshot.agents.get(call.sticky_agent or "")
    if (
        agent is None
        or not snapshot.may_be_offered(agent)
        or agent.agent_id in taken
        or not _fits_call(agent, call)
    ):
        return None
    j, level = _first_match(agent, steps, len(steps) - 1)
    if j < 0:
        return None
    return Candidate(agent.agent_id, j, level, snapshot.now - agent.idle_since)


def _best_agent(
    snapshot: Snapshot,
    call: WaitingCall,
    config: RoutingConfig,
    policy: Policy,
    taken: set[str],
) -> Assignment | None:
    plan = _route_plan(call.route, config, policy.use_steps)
    k, relaxed = _step_in_force(snapshot, call, plan, config, policy)
    chosen: Candidate | None = None
    reason = ""
    if policy.sticky and call.sticky_agent:
        chosen = _sticky_match(snapshot, call, plan.steps, taken)
        if chosen is not None:
            reason = "sticky agent: served this caller recently"
    shown: list[Candidate] = []
    for _key, agent, j, level in _ranked(snapshot, plan, k, policy):
        if agent.agent_id in taken or not _fits_call(agent, call):
            continue
        shown.append(Candidate(agent.agent_id, j, level, snapshot.now - agent.idle_since))
        if len(shown) >= EXPLAIN_CANDIDATES:
            break
    if chosen is None:
        if not shown:
            return None
        chosen = shown[0]
        if policy.rank_by_level:
            reason = (
                f"earliest step {chosen.step}, best level {chosen.level}, "
                f"then longest idle ({chosen.idle_s:.0f} s), then id"
            )
        else:
            reason = f"longest idle ({chosen.idle_s:.0f} s), then id"
    queue = config.queues[call.queue]
    projected = (
        projected_service_level(snapshot, call.queue, config)
        if policy.relax_on_service_level
        else None
    )
    passed_over = _passed_over(snapshot, call, plan, k, taken) if snapshot.off_schedule else ()
    why = Explanation(
        request_type=call.request_type,
        queue=queue.name,
        step=k,
        expression=plan.expressions[k],
        waited_s=snapshot.now - call.entered_at,
        relaxed=relaxed,
        projected_service_level=projected,
        candidates=tuple(shown),
        reason=reason,
        off_schedule=passed_over,
    )
    return Assignment(call.call_id, chosen.agent_id, why)


def _passed_over(
    snapshot: Snapshot, call: WaitingCall, plan: _RoutePlan, k: int, taken: set[str]
) -> tuple[str, ...]:
    """Free agents off schedule who would qualify for ``call`` at step ``k`` (for its
    explanation); looked for only when some agent is off schedule."""
    return tuple(
        agent.agent_id
        for agent in snapshot.free_off_schedule()
        if agent.agent_id not in taken
        and _fits_call(agent, call)
        and _first_match(agent, plan.steps, k)[0] >= 0
    )


def decide(snapshot: Snapshot, config: RoutingConfig, policy: Policy = OURS) -> list[Assignment]:
    """Every offer to make now: calls in routing order, each to its best free agent.

    No agent appears twice; the result depends only on the snapshot (deterministic). Two
    equivalent walks give the same answer: over the calls when free agents are many, over
    the free agents when they are few (the usual case under load: a few agents, a long queue).
    """
    available = len(snapshot.available)
    if not available or not snapshot.calls:
        return []
    if available * 4 < len(snapshot.calls):
        return _decide_by_agents(snapshot, config, policy)
    return _decide_by_calls(snapshot, config, policy)


def _decide_by_calls(snapshot: Snapshot, config: RoutingConfig, policy: Policy) -> list[Assignment]:
    available = len(snapshot.available)
    taken: set[str] = set()
    out: list[Assignment] = []
    for call in snapshot.ordered:
        assignment = _best_agent(snapshot, call, config, policy, taken)
        if assignment is None:
            continue
        out.append(assignment)
        taken.add(assignment.agent_id)
        if len(taken) == available:
            break
    return out


def _decide_by_agents(
    snapshot: Snapshot, config: RoutingConfig, policy: Policy
) -> list[Assignment]:
    """Greedy by call order, found from the agents' side: the earliest call that any free
    agent may take is the earliest of each agent's first eligible call."""
    taken_agents: set[str] = set()
    taken_calls: set[str] = set()
    firsts = {
        a.agent_id: _first_call_for(snapshot, a, config, policy, taken_calls)
        for a in snapshot.available
    }
    out: list[Assignment] = []
    while True:
        pending = [c for c in firsts.values() if c is not None]
        if not pending:
            return out
        call = min(pending, key=_order_key)
        assignment = _best_agent(snapshot, call, config, policy, taken_agents)
        if assignment is None:  # cannot happen: some free agent qualified for this call
            raise AssertionError(f"no agent for call {call.call_id} though one qualified")
        out.append(assignment)
        taken_agents.add(assignment.agent_id)
        taken_calls.add(call.call_id)
        del firsts[assignment.agent_id]
        for agent_id, first in firsts.items():
            if first is not None and first.call_id == call.call_id:
                firsts[agent_id] = _first_call_for(
                    snapshot, snapshot.agents[agent_id], config, policy, taken_calls
                )


def on_call_arrived(
    snapshot: Snapshot, call_id: str, config: RoutingConfig, policy: Policy = OURS
) -> Assignment | None:
    """Best agent for one call. Equals ``decide`` when the snapshot was settled (no free agent
    qualified for any other waiting call) before this call arrived or its step changed."""
    return _best_agent(snapshot, snapshot.call(call_id), config, policy, set())


def _relaxed(snapshot: Snapshot, queue_name: str, config: RoutingConfig) -> bool:
    return (
        projected_service_level(snapshot, queue_name, config)
        < config.queues[queue_name].service_level.target
    )


def _first_call_for(
    snapshot: Snapshot,
    agent: AgentState,
    config: RoutingConfig,
    policy: Policy,
    skip: set[str],
) -> WaitingCall | None:
    """The first call in routing order (not in ``skip``) that ``agent`` may take now.

    Per group of calls sharing steps, the agent qualifies from the wait at which the earliest
    step it matches comes into force (one step earlier when the queue is relaxed), so each
    group is scanned only to its first such call; the projection is computed only when a
    call qualifies by relaxation alone.
    """
    best: WaitingCall | None = None
    best_key: tuple[Any, ...] | None = None
    now = snapshot.now
    agent_id = agent.agent_id
    skills = agent.skills
    for route, calls in snapshot.by_group.items():
        if best_key is not None and _order_key(calls[0]) >= best_key:
            break  # groups come in the order of their first calls: no later one can win
        plan = _route_plan(route, config, policy.use_steps)
        if plan.anchors[-1].isdisjoint(skills):
            continue  # the usual case: an agent has the skills of few routes
        j, _level = _first_match(agent, plan.steps, len(plan.steps) - 1)
        if j < 0:
            continue
        need = plan.starts[j]
        relaxed_need = plan.starts[j - 1] if j > 0 and policy.relax_on_service_level else None
        if _none_waited(
            snapshot, route, calls, need if relaxed_need is None else relaxed_need
        ) and not (policy.sticky and agent_id in snapshot.sticky_agents):
            continue  # a generalist matches a late step of every route: not in force yet
        for call in calls:
            if not (
                call.entered_at + need <= now or (policy.sticky and call.sticky_agent == agent_id)
            ):
                if relaxed_need is None or call.entered_at + relaxed_need > now:
                    continue
                if best_key is not None and _order_key(call) >= best_key:
                    break  # no need to project the queue for a call that cannot win
                if not _relaxed(snapshot, route[1], config):
                    relaxed_need = None
                    continue
                need, relaxed_need = relaxed_need, None
            if call.call_id in skip or not _fits_call(agent, call):
                continue
            key = _order_key(call)
            if best_key is None or key < best_key:
                best, best_key = call, key
            break
    return best


def _none_waited(
    snapshot: Snapshot, route: tuple[str, str], calls: list[WaitingCall], wait: float
) -> bool:
    """Whether no call of the group has waited ``wait`` seconds (the sum is compared, as in
    ``_wait_step``), answered without a scan in the usual case."""
    head = calls[0]
    if head.entered_at + wait <= snapshot.now:
        return False
    if head.priority == calls[-1].priority:
        return True  # one priority: routing order is entering order, the head waited longest
    key = ("oldest", route)
    oldest: float | None = snapshot._memo.get(key)
    if oldest is None:
        oldest = snapshot._memo[key] = min(map(_ENTERED_AT, calls))
    return oldest + wait > snapshot.now


_ENTERED_AT = attrgetter("entered_at")


def on_agent_available(
    snapshot: Snapshot, agent_id: str, config: RoutingConfig, policy: Policy = OURS
) -> Assignment | None:
    """The first call in routing order that this agent qualifies for. Equals ``decide`` when
    the snapshot was settled before the agent became available."""
    agent = snapshot.agents[agent_id]
    if not snapshot.may_be_offered(agent):
        return None
    call = _first_call_for(snapshot, agent, config, policy, set())
    if call is None:
        return None
    return _best_agent(snapshot, call, config, policy, set())


def eligible_agents(
    snapshot: Snapshot, call_id: str, config: RoutingConfig, policy: Policy = RING_ALL
) -> list[str]:
    """Every free agent the call may ring now, best first (ring-all offers to all of them)."""
    call = snapshot.call(call_id)
    plan = _route_plan(call.route, config, policy.use_steps)
    k, _ = _step_in_force(snapshot, call, plan, config, policy)
    return [
        a.agent_id for _key, a, _j, _l in _ranked(snapshot, plan, k, policy) if _fits_call(a, call)
    ]
