"""What one decision looks at: the waiting calls, the queues' interval figures, and the
snapshot of agents and calls with its indexes, built lazily once per snapshot."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from routing.core.agents import AgentState, AgentStatus
from routing.core.config import QueueConfig, RoutingConfig, ServiceLevelTarget
from routing.core.derived import derived
from routing.core.staffing import serving_agents

_ROUTES: dict[tuple[str, str], tuple[str, str]] = {}
"""Every ``WaitingCall.route`` seen, one tuple each (as small as the routing config)."""


@dataclass(frozen=True, slots=True)
class WaitingCall:
    """A call waiting in a queue. ``(entered_at, seq)`` is its position, kept for life."""

    call_id: str
    request_type: str
    queue: str
    entered_at: float
    seq: int = 0
    priority: int = 0
    urgency: str = "normal"
    vip: bool = False
    language: str | None = None
    sticky_agent: str | None = None
    excluded: frozenset[str] = frozenset()
    offered_to: tuple[str, ...] = ()
    route: tuple[str, str] = field(init=False, repr=False, compare=False)
    """``(request_type, queue)``: the calls of one route share steps (``Snapshot.by_group``)."""

    def __post_init__(self) -> None:
        # Computed once per call rather than once per call and decision: grouping the waiting
        # calls is most of a decision's cost. Interned, so equal routes are one object and
        # grouping compares them by identity.
        route = (self.request_type, self.queue)
        object.__setattr__(self, "route", _ROUTES.setdefault(route, route))

    @property
    def order_key(self) -> tuple[int, float, int, str]:
        """Routing order: higher priority first, then earlier position (call id last, so the
        order is total and never depends on how the calls were listed)."""
        return (-self.priority, self.entered_at, self.seq, self.call_id)


def new_call(
    config: RoutingConfig,
    call_id: str,
    request_type: str,
    now: float,
    seq: int = 0,
    *,
    urgency: str = "normal",
    vip: bool = False,
    language: str | None = None,
    sticky_agent: str | None = None,
) -> WaitingCall:
    """A call entering the queue of its request type's rule, with its priority computed."""
    rule = config.rule_for(request_type)
    return WaitingCall(
        call_id=call_id,
        request_type=rule.request_type,
        queue=rule.queue,
        entered_at=now,
        seq=seq,
        priority=rule.priority_for(urgency, vip),
        urgency=urgency,
        vip=vip,
        language=language,
        sticky_agent=sticky_agent,
    )


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of one queue over the current service-level interval (see module docstring).

    ``serving``: agents serving the queue (see the module docstring); ``None`` lets the
    snapshot count them from its agents.
    """

    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    overflowed: int = 0
    handled: int = 0
    handle_time_total: float = 0.0
    serving: float | None = None

    @property
    def service_level(self) -> float | None:
        """``answered_within / (answered + abandoned + overflowed)``; ``None`` with no calls."""
        total = self.answered + self.abandoned + self.overflowed
        return self.answered_within / total if total else None

    def aht(self, default: float) -> float:
        return self.handle_time_total / self.handled if self.handled else default

    def with_answer(self, waited: float, target: ServiceLevelTarget) -> QueueStats:
        within = 1 if waited <= target.threshold_s else 0
        return replace(
            self, answered=self.answered + 1, answered_within=self.answered_within + within
        )

    def with_abandon(self, waited: float, target: ServiceLevelTarget) -> QueueStats:
        if waited < target.short_abandon_s:
            return replace(self, abandoned_short=self.abandoned_short + 1)
        return replace(self, abandoned=self.abandoned + 1)

    def with_overflow(self) -> QueueStats:
        return replace(self, overflowed=self.overflowed + 1)

    def with_handled(self, handle_s: float) -> QueueStats:
        return replace(
            self, handled=self.handled + 1, handle_time_total=self.handle_time_total + handle_s
        )


OFF_SCHEDULE = "off_schedule"
"""How an available agent outside their schedule is shown (``Snapshot.shown_status``)."""

SHOWN_STATUSES = (*(s.value for s in AgentStatus), OFF_SCHEDULE)
"""Every value of ``Snapshot.shown_status``: the states the queue gauges count."""


@dataclass(frozen=True)
class Snapshot:
    """The state one decision looks at. Indexes are built lazily, once per snapshot.

    Treat it as immutable: the memo caches per-snapshot derived figures (projected service
    level per queue, ranked candidates per step), so decisions on one snapshot share them.
    """

    now: float
    agents: Mapping[str, AgentState]
    calls: Sequence[WaitingCall]
    stats: Mapping[str, QueueStats] = field(default_factory=dict)
    calls_sorted: bool = False
    available_ids: Collection[str] | None = None
    off_schedule: Collection[str] = frozenset()
    """Agents outside their schedule now (:func:`agents_off_schedule`): never offered a call,
    not counted as free or serving; their state is kept as it is."""
    _memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    @derived
    def ordered(self) -> Sequence[WaitingCall]:
        """Calls in routing order. A shell that keeps them sorted by ``order_key`` (e.g. a
        Redis sorted set) passes ``calls_sorted=True`` and saves the sort."""
        return self.calls if self.calls_sorted else sorted(self.calls, key=_order_key)

    @derived
    def by_group(self) -> dict[tuple[str, str], list[WaitingCall]]:
        """Calls per route (request type, queue), in routing order: calls of one group share
        steps.

        On the decision path this one pass over the calls is most of the cost (the route is
        computed once per call, not per decision); per-queue lists are merged from it.
        """
        by_group: dict[tuple[str, str], list[WaitingCall]] = {}
        get = by_group.get
        for call in self.ordered:
            route = call.route
            group = get(route)
            if group is None:
                by_group[route] = [call]
            else:
                group.append(call)
        return by_group

    def in_queue(self, queue: str) -> list[WaitingCall]:
        """Calls of one queue in routing order (memoized).

        Merged from ``by_group`` once it is built. Before that, the first queue asked for is
        filtered out of the calls: a third of the cost of grouping them all, and a decision
        about one call (``on_call_arrived``) needs no other. A second queue means a decision
        over several, so the calls are grouped then.
        """
        key = ("queue", queue)
        members = self._memo.get(key)
        if members is None:
            if "by_group" not in self.__dict__ and "filtered" not in self._memo:
                self._memo["filtered"] = queue
                members = [c for c in self.ordered if c.queue == queue]
            else:
                groups = self._groups_by_queue.get(queue, [])
                members = (
                    groups[0] if len(groups) == 1 else list(heapq.merge(*groups, key=_order_key))
                )
            self._memo[key] = members
        return members

    @derived
    def _groups_by_queue(self) -> dict[str, list[list[WaitingCall]]]:
        out: dict[str, list[list[WaitingCall]]] = {}
        for (_type, queue), group in self.by_group.items():
            out.setdefault(queue, []).append(group)
        return out

    @derived
    def by_queue(self) -> dict[str, list[WaitingCall]]:
        """Calls per queue, in routing order."""
        return {q: self.in_queue(q) for _t, q in self.by_group}

    @derived
    def sticky_agents(self) -> set[str | None]:
        """Agents some waiting call is sticky to (``None`` among them when a call is not)."""
        return {c.sticky_agent for c in self.calls}

    @derived
    def call_index(self) -> dict[str, WaitingCall]:
        return {c.call_id: c for c in self.calls}

    def call(self, call_id: str) -> WaitingCall:
        """The waiting call ``call_id`` (``KeyError`` if none): from ``call_index`` once built,
        else by a scan, cheaper than indexing every call for one lookup."""
        index: dict[str, WaitingCall] | None = self.__dict__.get("call_index")
        if index is not None:
            return index[call_id]
        for call in self.calls:
            if call.call_id == call_id:
                return call
        raise KeyError(call_id)

    @derived
    def available(self) -> list[AgentState]:
        """Available agents on schedule: those who may be offered a call. A shell that keeps
        the set of available agent ids (as the simulator and the Redis store do) passes
        ``available_ids`` and saves the scan."""
        if self.available_ids is not None:
            agents = self.agents
            free = [
                a
                for i in sorted(self.available_ids)
                if (a := agents.get(i)) is not None and a.status is AgentStatus.AVAILABLE
            ]
        else:
            free = [a for a in self.agents.values() if a.status is AgentStatus.AVAILABLE]
        if self.off_schedule:
            off = self.off_schedule
            free = [a for a in free if a.agent_id not in off]
        return free

    def may_be_offered(self, agent: AgentState) -> bool:
        """Whether ``agent`` may be offered a call now: available and on schedule."""
        return agent.status is AgentStatus.AVAILABLE and agent.agent_id not in self.off_schedule

    def free_off_schedule(self) -> list[AgentState]:
        """Available agents outside their schedule, by id (once per snapshot: explanations
        name them for every assignment)."""
        free = self._memo.get("free_off_schedule")
        if free is None:
            free = self._memo["free_off_schedule"] = [
                a
                for i in sorted(self.off_schedule)
                if (a := self.agents.get(i)) is not None and a.status is AgentStatus.AVAILABLE
            ]
        return free

    def shown_status(self, agent: AgentState) -> str:
        """The agent's status as ops see it (API, gauges): :data:`OFF_SCHEDULE` for an
        available agent outside their schedule, else the status itself."""
        if agent.status is AgentStatus.AVAILABLE and agent.agent_id in self.off_schedule:
            return OFF_SCHEDULE
        return agent.status.value

    def serving(self, queue: QueueConfig, config: RoutingConfig) -> float:
        """Agents serving ``queue``, weighted (from its stats when the shell keeps count)."""
        stats = self.stats.get(queue.name)
        if stats is not None and stats.serving is not None:
            return stats.serving
        counts: dict[str, float] | None = self._memo.get("serving")
        if counts is None:
            counts = self._memo["serving"] = {}
        if queue.name not in counts:
            agents: Iterable[AgentState] = self.agents.values()
            if self.off_schedule:
                agents = [a for a in agents if a.agent_id not in self.off_schedule]
            counts[queue.name] = serving_agents(agents, queue, config)
        return counts[queue.name]


def _order_key(call: WaitingCall) -> tuple[int, float, int, str]:
    return (-call.priority, call.entered_at, call.seq, call.call_id)
