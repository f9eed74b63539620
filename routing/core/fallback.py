"""When the first plan fails: a failed offer (the call back at its place, the agent paused),
a full queue (admission), a wait too long (overflow)."""

from __future__ import annotations

from dataclasses import replace

from routing.core.agents import (
    PAUSE_BUSY_ELSEWHERE,
    PAUSE_MISSED,
    PAUSE_REJECTED,
    AgentInput,
    AgentState,
    TransitionRefused,
    transition,
)
from routing.core.config import OPERATOR, RoutingConfig
from routing.core.snapshot import Snapshot, WaitingCall

_FAILURE_INPUT = {
    PAUSE_MISSED: AgentInput.NO_ANSWER,
    PAUSE_REJECTED: AgentInput.REJECT,
    PAUSE_BUSY_ELSEWHERE: AgentInput.BUSY_ELSEWHERE,
}


def offer_failed(
    agent: AgentState, call: WaitingCall, reason: str, now: float
) -> tuple[AgentState, WaitingCall]:
    """RONA, reject or busy elsewhere: the agent is paused with ``reason`` and the call goes
    back with its original position (``entered_at``, ``seq``) and the agent noted in
    ``offered_to``."""
    try:
        event = _FAILURE_INPUT[reason]
    except KeyError:
        raise ValueError(
            f"unknown offer failure {reason!r}; one of {sorted(_FAILURE_INPUT)}"
        ) from None
    if agent.call_id != call.call_id:
        raise TransitionRefused(f"agent {agent.agent_id} was not offered call {call.call_id}")
    paused = transition(agent, event, now)
    return paused, replace(call, offered_to=(*call.offered_to, agent.agent_id))


def admission(snapshot: Snapshot, queue_name: str, config: RoutingConfig) -> str | None:
    """``None`` if a new call may join the queue, else where to send it (queue full)."""
    queue = config.queues[queue_name]
    if queue.max_length is not None and len(snapshot.in_queue(queue_name)) >= (queue.max_length):
        return queue.overflow or OPERATOR
    return None


def overdue_calls(snapshot: Snapshot, config: RoutingConfig) -> list[tuple[WaitingCall, str]]:
    """Calls that waited their queue's ``max_wait_s`` in it, with their overflow destination."""
    out = []
    for call in snapshot.ordered:
        queue = config.queues[call.queue]
        if queue.max_wait_s is not None and snapshot.now - call.entered_at >= queue.max_wait_s:
            out.append((call, queue.overflow or OPERATOR))
    return out


def overflow(call: WaitingCall, destination: str, now: float) -> WaitingCall:
    """The call moved into queue ``destination``; its wait there starts ``now`` but it keeps
    its priority and sequence (``destination`` must be a queue, not the operator)."""
    if destination == OPERATOR:
        raise ValueError("the operator is not a queue; hand the call to the operator instead")
    return replace(call, queue=destination, entered_at=now)
