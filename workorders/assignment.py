"""Who takes a work order the back office assigns: a pure choice over plain data.

The same rules as calls (``routing.core``): the order's category is a request type, its rule
(``RoutingConfig.rule_for``) gives the steps of skill expressions (``routing.core.steps_for``,
the call's route: an order whose queue differs from its rule's follows that queue's skills, as
an overflowed call does), and an agent qualifies when their skills fit any step
(``SkillExpr.fit``, the fit level), when they speak the caller's language (as a call's
``language`` is matched) and when their weekly schedule covers ``now``
(``routing.core.agents_off_schedule``). No relaxation by wait: the back office has the whole
assignment target, so every step counts from the start.

Among the qualified agents: the fewest open orders first (``wo:agent-open:<agent>``, the load
the shell reads), then the earliest step matched and the best fit level (as calls rank
agents), then the agent id, so the choice is total and the same on every instance.

Nobody qualifies -> a :class:`Choice` without an agent and the reason, checked in this order
(the first that empties the field is the one a supervisor can act on):

- ``no-agents``: the routing config names no agent at all;
- ``no-skill``: no agent's skills fit any step of the order's rule;
- ``no-language``: agents have the skills, none speaks the caller's language;
- ``off-schedule``: qualified agents exist, none is on schedule now.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from routing.core import (
    AgentProfile,
    RoutingConfig,
    Step,
    WaitingCall,
    agents_off_schedule,
    steps_for,
)
from workorders.model import WorkOrder


class Unassignable(StrEnum):
    """Why nobody can take the order now (the supervisor's list shows it)."""

    NO_AGENTS = "no-agents"
    NO_SKILL = "no-skill"
    NO_LANGUAGE = "no-language"
    OFF_SCHEDULE = "off-schedule"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A qualified agent, with what ranked them."""

    agent_id: str
    open_orders: int
    step: int  # the earliest step of the rule the agent's skills fit
    level: int  # the fit level in that step (1-5)

    @property
    def rank(self) -> tuple[int, int, int, str]:
        return (self.open_orders, self.step, -self.level, self.agent_id)


@dataclass(frozen=True, slots=True)
class Choice:
    """The agent chosen (``agent_id``), or why nobody was (``reason`` and ``detail``)."""

    agent_id: str | None
    reason: Unassignable | None = None
    detail: str = ""
    candidates: tuple[Candidate, ...] = ()  # qualified and on schedule, best first


def choose_agent(
    order: WorkOrder,
    config: RoutingConfig,
    open_orders: Mapping[str, int],
    now: float,
    *,
    exclude: Collection[str] = (),
) -> Choice:
    """The agent who should take ``order`` at ``now`` (see the module docstring).

    ``open_orders``: each agent's open orders (missing: none); ``exclude``: agents who may not
    take it (e.g. the one who just gave it back)."""
    if not config.agents:
        return Choice(None, Unassignable.NO_AGENTS, "routing config has no agents")
    steps = _steps_of(order, config)
    skilled = [
        (profile, match)
        for profile in config.agents.values()
        if profile.agent_id not in exclude and (match := _first_fit(profile, steps))[1]
    ]
    expressions = " ; ".join(str(step.skills) for step in steps)
    if not skilled:
        return Choice(None, Unassignable.NO_SKILL,
                      f"category {order.category.value}: no agent fits {expressions}")
    speaking = [(p, m) for p, m in skilled if _speaks(p, order.language)]
    if not speaking:
        return Choice(None, Unassignable.NO_LANGUAGE,
                      f"no agent fitting {expressions} speaks {order.language}")
    off = agents_off_schedule(config, now)
    ranked = sorted(
        (
            Candidate(p.agent_id, max(0, open_orders.get(p.agent_id, 0)), step, level)
            for p, (step, level) in speaking
            if p.agent_id not in off
        ),
        key=_rank,
    )
    if not ranked:
        names = ", ".join(sorted(p.agent_id for p, _ in speaking))
        return Choice(None, Unassignable.OFF_SCHEDULE, f"qualified but off schedule: {names}")
    return Choice(ranked[0].agent_id, candidates=tuple(ranked))


def _steps_of(order: WorkOrder, config: RoutingConfig) -> tuple[Step, ...]:
    """The steps routing would apply to a call of this order's category and queue."""
    rule = config.rule_for(order.category.value)
    queue = order.queue if order.queue and order.queue in config.queues else rule.queue
    route = WaitingCall(order.call_id, rule.request_type, queue, order.created_at.timestamp())
    steps, _ = steps_for(route, config)
    return steps


def _first_fit(profile: AgentProfile, steps: tuple[Step, ...]) -> tuple[int, int]:
    """(earliest step the agent's skills fit, fit level); (-1, 0) when none."""
    for index, step in enumerate(steps):
        level = step.skills.fit(profile.skills)
        if level:
            return index, level
    return -1, 0


def _speaks(profile: AgentProfile, language: str | None) -> bool:
    # As routing matches a call's language (routing.core.decision): none asked, anyone.
    return language is None or language in profile.languages


def _rank(candidate: Candidate) -> tuple[int, int, int, str]:
    return candidate.rank
