"""The routing configuration as the core reads it: queues, rules and their steps, agents'
profiles, and the policies the simulator compares (ours and the baselines).

Built and validated by ``routing.schema.load_routing_config``; frozen, so one object is one
version of the config (a reload builds a new one, and per-config memos go with the old).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from callbacks.policy import CallbackPolicy
from routing.core.agents import DEFAULT_PAUSE_REASONS, AgentState
from routing.core.derived import derived
from routing.skills import SkillExpr

OPERATOR = "operator"
"""Overflow destination and rule queue meaning "send the caller to the human operator"."""


@dataclass(frozen=True, slots=True)
class ServiceLevelTarget:
    """``target`` (fraction) of calls answered within ``threshold_s``; abandons shorter than
    ``short_abandon_s`` are left out (0 = every abandon counts)."""

    target: float = 0.8
    threshold_s: float = 20.0
    short_abandon_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Announcements:
    """What a waiting caller hears, every ``period_s`` seconds."""

    position: bool = True
    estimated_wait: bool = True
    period_s: float = 60.0


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """One queue. ``skills`` says who staffs it (estimated wait, projection) and who serves
    calls overflowed into it; ``overflow`` is another queue's name or :data:`OPERATOR`."""

    name: str
    skills: SkillExpr
    service_level: ServiceLevelTarget = ServiceLevelTarget()
    max_wait_s: float | None = None
    overflow: str | None = None
    max_length: int | None = None
    ring_timeout_s: float = 15.0
    wrapup_s: float = 0.0
    announcements: Announcements = Announcements()
    moh: str = "default"
    aht_s: float = 180.0
    callback: CallbackPolicy = field(default_factory=CallbackPolicy)


@dataclass(frozen=True, slots=True)
class Step:
    """A skill expression in force for ``timeout_s`` seconds (``None``: until the end)."""

    skills: SkillExpr
    timeout_s: float | None = None


@dataclass(frozen=True)
class Rule:
    """How calls of one request type are routed (see the module docstring for priority)."""

    request_type: str
    queue: str
    steps: tuple[Step, ...]
    priority: int = 0
    urgency_boost: Mapping[str, int] = field(default_factory=dict)
    vip_boost: int = 0
    sticky_days: float | None = None

    @derived
    def step_starts(self) -> tuple[float, ...]:
        """Wait (s) from which each step is in force."""
        starts = [0.0]
        for step in self.steps[:-1]:
            starts.append(starts[-1] + (step.timeout_s if step.timeout_s is not None else math.inf))
        return tuple(starts)

    def priority_for(self, urgency: str, vip: bool) -> int:
        return self.priority + self.urgency_boost.get(urgency, 0) + (self.vip_boost if vip else 0)


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """An agent as configured. ``schedule`` maps weekday (0 = Monday) to minute intervals
    ``(start, end)`` of the day, end exclusive."""

    agent_id: str
    name: str
    endpoint: str
    skills: Mapping[str, int]
    languages: frozenset[str] = frozenset()
    schedule: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    team: str | None = None
    """The agent's team (``agents.yaml`` ``team``): whose supervisor sees them (access/)."""

    def on_schedule(self, weekday: int, minute_of_day: int) -> bool:
        """Whether the agent is scheduled at that local weekday and minute (no schedule:
        always)."""
        if not self.schedule:
            return True
        return any(a <= minute_of_day < b for a, b in self.schedule.get(weekday, ()))

    def initial_state(self, now: float = 0.0) -> AgentState:
        return AgentState(
            agent_id=self.agent_id,
            skills=dict(self.skills),
            languages=self.languages,
            idle_since=now,
        )


@dataclass(frozen=True)
class RoutingConfig:
    """Everything the core needs, validated (built by ``routing.schema.load_routing_config``)."""

    queues: Mapping[str, QueueConfig]
    rules: Mapping[str, Rule]
    agents: Mapping[str, AgentProfile] = field(default_factory=dict)
    pause_reasons: frozenset[str] = frozenset(DEFAULT_PAUSE_REASONS)
    fallback_request_type: str = "other"
    timezone: tzinfo | None = None
    """The zone of the agents' schedules (a ``zoneinfo.ZoneInfo``); ``None``: the machine's."""
    _steps_memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def rule_for(self, request_type: str) -> Rule:
        """The rule of ``request_type``, or of the fallback type for unknown ones."""
        rule = self.rules.get(request_type)
        if rule is None:
            rule = self.rules[self.fallback_request_type]
        return rule


@dataclass(frozen=True, slots=True)
class Policy:
    """Switches that turn our routing into the baselines the simulator compares against.

    ``use_steps=False`` keeps only a rule's first step (fixed skills); ``rank_by_level=False``
    picks the longest-idle qualifying agent whatever the level.
    """

    name: str = "ours"
    relax_on_service_level: bool = True
    use_steps: bool = True
    rank_by_level: bool = True
    sticky: bool = True


OURS = Policy()
LONGEST_IDLE = Policy("longest-idle", False, False, False, False)
RING_ALL = Policy("ring-all", False, True, False, False)
