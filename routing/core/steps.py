"""Which of a rule's steps is in force for a call: the plan of each route (derived once per
config), the step its wait gives, one further when the queue's projection is below target,
and when the next step comes into force."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from routing.core.config import OURS, Policy, RoutingConfig, Step
from routing.core.estimate import projected_service_level
from routing.core.snapshot import Snapshot, WaitingCall


@dataclass(frozen=True, slots=True)
class _RoutePlan:
    """What the config says about the calls of one route, derived once per config.

    ``anchors[k]``: the skills of which a qualifying agent has at least one, for steps
    ``0..k`` (see ``SkillExpr.anchors``), so agents lacking all of them are skipped without
    evaluating an expression; ``expressions[k]``: the explanation's text for steps ``0..k``.
    """

    steps: tuple[Step, ...]
    starts: tuple[float, ...]
    anchors: tuple[frozenset[str], ...]
    expressions: tuple[str, ...]


def _route_plan(route: tuple[str, str], config: RoutingConfig, use_steps: bool) -> _RoutePlan:
    """The plan of the calls of ``route`` (``WaitingCall.route``), memoized in the config."""
    key = (route, use_steps)
    plan: _RoutePlan | None = config._steps_memo.get(key)
    if plan is None:
        request_type, queue = route
        rule = config.rule_for(request_type)
        steps: tuple[Step, ...]
        starts: tuple[float, ...]
        if queue != rule.queue:
            steps, starts = (Step(config.queues[queue].skills),), (0.0,)
        elif not use_steps:
            steps, starts = rule.steps[:1], (0.0,)
        else:
            steps, starts = rule.steps, rule.step_starts
        anchors: list[frozenset[str]] = []
        expressions: list[str] = []
        for k, step in enumerate(steps):
            anchors.append(step.skills.anchors().union(*anchors[-1:]))
            expressions.append(" ; ".join(str(s.skills) for s in steps[: k + 1]))
        # One plan per key for the config's life: decisions memoize candidates by its id().
        plan = config._steps_memo[key] = _RoutePlan(
            steps, starts, tuple(anchors), tuple(expressions)
        )
    return plan


def steps_for(
    call: WaitingCall, config: RoutingConfig, policy: Policy = OURS
) -> tuple[tuple[Step, ...], tuple[float, ...]]:
    """The steps that apply to ``call`` and the wait from which each is in force.

    A call in its rule's queue follows the rule's steps (only the first under
    ``use_steps=False``); a call overflowed into another queue follows that queue's skills.
    """
    plan = _route_plan(call.route, config, policy.use_steps)
    return plan.steps, plan.starts


def _wait_step(starts: tuple[float, ...], entered_at: float, now: float) -> int:
    """Last step with ``entered_at + start <= now``. The sum is compared, never ``now -
    entered_at``, so a timer set for ``entered_at + start`` finds the step changed."""
    k = max(bisect.bisect_right(starts, now - entered_at) - 1, 0)
    while k + 1 < len(starts) and entered_at + starts[k + 1] <= now:
        k += 1
    while k > 0 and entered_at + starts[k] > now:
        k -= 1
    return k


def step_in_force(
    snapshot: Snapshot, call: WaitingCall, config: RoutingConfig, policy: Policy = OURS
) -> tuple[int, bool]:
    """(step index in force for ``call`` now, whether it was advanced by the projection)."""
    return _step_in_force(
        snapshot, call, _route_plan(call.route, config, policy.use_steps), config, policy
    )


def _step_in_force(
    snapshot: Snapshot, call: WaitingCall, plan: _RoutePlan, config: RoutingConfig, policy: Policy
) -> tuple[int, bool]:
    k = _wait_step(plan.starts, call.entered_at, snapshot.now)
    if (
        policy.relax_on_service_level
        and k < len(plan.steps) - 1
        and projected_service_level(snapshot, call.queue, config)
        < config.queues[call.queue].service_level.target
    ):
        return k + 1, True
    return k, False


def next_step_change(snapshot: Snapshot, config: RoutingConfig, policy: Policy = OURS) -> float:
    """The earliest future time at which a waiting call's step changes (``inf``: never).

    The shell sets a timer for it and decides again then, so relaxation happens on time.
    """
    soonest = math.inf
    for call in snapshot.calls:
        starts = _route_plan(call.route, config, policy.use_steps).starts
        i = _wait_step(starts, call.entered_at, snapshot.now) + 1
        if i < len(starts):
            soonest = min(soonest, call.entered_at + starts[i])
    return soonest
