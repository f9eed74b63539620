"""Who staffs a queue: the agents counted as serving it, weighted (see ``routing.core``,
estimated wait)."""

from __future__ import annotations

from collections.abc import Iterable

from routing.core.agents import AgentState, AgentStatus
from routing.core.config import QueueConfig, RoutingConfig

STAFFED_STATUSES = frozenset(
    {AgentStatus.AVAILABLE, AgentStatus.OFFERED, AgentStatus.ON_CALL, AgentStatus.WRAP_UP}
)
"""Statuses in which an agent counts as staffing its queues (logged in, not paused)."""


def serving_weight(agent: AgentState, queue: QueueConfig, config: RoutingConfig) -> float:
    """How much the agent counts toward serving the queue (module docstring, estimated
    wait): 1 if free or busy with this queue, ``1/m`` if busy with another, else 0."""
    if agent.status not in STAFFED_STATUSES or not queue.skills.fit(agent.skills):
        return 0.0
    if agent.status is AgentStatus.AVAILABLE or agent.queue in (queue.name, None):
        # A busy agent whose call's queue the shell did not record counts fully.
        return 1.0
    return 1.0 / queues_matched(agent, config)


def queues_matched(agent: AgentState, config: RoutingConfig) -> int:
    """Number of queues whose ``skills`` the agent matches (memoized per skill set)."""
    # Keyed by the skills mapping's identity (states pass it on unchanged); the entry keeps
    # the mapping alive so its id cannot be reused by another one.
    key = ("queues_matched", id(agent.skills))
    hit = config._steps_memo.get(key)
    if hit is None or hit[0] is not agent.skills:
        count = sum(1 for q in config.queues.values() if q.skills.fit(agent.skills)) or 1
        hit = config._steps_memo[key] = (agent.skills, count)
    return hit[1]


def serving_agents(
    agents: Iterable[AgentState], queue: QueueConfig, config: RoutingConfig
) -> float:
    """Weighted count of ``agents`` serving ``queue`` (what ``QueueStats.serving`` holds);
    the caller leaves out the agents off schedule."""
    return sum(serving_weight(a, queue, config) for a in agents)
