"""Agents as the router sees them: their states, what can happen to them, and pause reasons.

The state machine is a table (:data:`TRANSITIONS`): every input allowed in every state is
declared, and anything else is refused (:class:`TransitionRefused`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

PAUSE_MISSED = "missed"
PAUSE_REJECTED = "rejected"
PAUSE_BUSY_ELSEWHERE = "busy-elsewhere"
SYSTEM_PAUSE_REASONS = frozenset({PAUSE_MISSED, PAUSE_REJECTED, PAUSE_BUSY_ELSEWHERE})
DEFAULT_PAUSE_REASONS = (
    PAUSE_MISSED,
    PAUSE_REJECTED,
    PAUSE_BUSY_ELSEWHERE,
    "break",
    "lunch",
    "training",
    "meeting",
    "after-call-work",
)


class AgentStatus(StrEnum):
    """Where an agent is. ``offered`` means the softphone is ringing with one of our calls."""

    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"
    OFFERED = "offered"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"
    PAUSED = "paused"


class AgentInput(StrEnum):
    """What can happen to an agent (explicit commands, softphone events, call events)."""

    LOGIN = "login"
    LOGOUT = "logout"
    PAUSE = "pause"
    RESUME = "resume"
    OFFER = "offer"
    ANSWER = "answer"
    NO_ANSWER = "no_answer"
    REJECT = "reject"
    BUSY_ELSEWHERE = "busy_elsewhere"
    CANCEL = "cancel"
    CALL_END = "call_end"
    WRAPUP_END = "wrapup_end"


_GIVEN = "<given>"  # the pause reason comes from the caller of transition()
_KEEP = "<keep>"  # the pause reason stays as it was

TRANSITIONS: Mapping[tuple[AgentStatus, AgentInput], tuple[AgentStatus, str | None]] = {
    # logged out: only a login brings the agent in.
    (AgentStatus.LOGGED_OUT, AgentInput.LOGIN): (AgentStatus.AVAILABLE, None),
    (AgentStatus.AVAILABLE, AgentInput.LOGOUT): (AgentStatus.LOGGED_OUT, None),
    (AgentStatus.AVAILABLE, AgentInput.PAUSE): (AgentStatus.PAUSED, _GIVEN),
    (AgentStatus.AVAILABLE, AgentInput.OFFER): (AgentStatus.OFFERED, None),
    # the softphone went busy with a call that is not ours (device state from ARI).
    (AgentStatus.AVAILABLE, AgentInput.BUSY_ELSEWHERE): (AgentStatus.PAUSED, PAUSE_BUSY_ELSEWHERE),
    (AgentStatus.OFFERED, AgentInput.ANSWER): (AgentStatus.ON_CALL, None),
    (AgentStatus.OFFERED, AgentInput.NO_ANSWER): (AgentStatus.PAUSED, PAUSE_MISSED),
    (AgentStatus.OFFERED, AgentInput.REJECT): (AgentStatus.PAUSED, PAUSE_REJECTED),
    (AgentStatus.OFFERED, AgentInput.BUSY_ELSEWHERE): (AgentStatus.PAUSED, PAUSE_BUSY_ELSEWHERE),
    # the caller hung up (or another agent won a ring-all) while this phone rang.
    (AgentStatus.OFFERED, AgentInput.CANCEL): (AgentStatus.AVAILABLE, None),
    # the softphone unregistered while ringing: the call goes back, the agent is out.
    (AgentStatus.OFFERED, AgentInput.LOGOUT): (AgentStatus.LOGGED_OUT, None),
    (AgentStatus.ON_CALL, AgentInput.CALL_END): (AgentStatus.WRAP_UP, None),
    (AgentStatus.WRAP_UP, AgentInput.WRAPUP_END): (AgentStatus.AVAILABLE, None),
    (AgentStatus.WRAP_UP, AgentInput.PAUSE): (AgentStatus.PAUSED, _GIVEN),
    (AgentStatus.WRAP_UP, AgentInput.LOGOUT): (AgentStatus.LOGGED_OUT, None),
    (AgentStatus.PAUSED, AgentInput.RESUME): (AgentStatus.AVAILABLE, None),
    (AgentStatus.PAUSED, AgentInput.PAUSE): (AgentStatus.PAUSED, _GIVEN),
    (AgentStatus.PAUSED, AgentInput.BUSY_ELSEWHERE): (AgentStatus.PAUSED, _KEEP),
    (AgentStatus.PAUSED, AgentInput.LOGOUT): (AgentStatus.LOGGED_OUT, None),
}
"""Every allowed (state, input) pair and its result; any other pair is refused."""


class TransitionRefused(ValueError):
    """An input that the agent's current state does not accept."""


@dataclass(frozen=True, slots=True)
class AgentState:
    """One agent as the router sees it.

    ``idle_since`` is when the agent last became available (longest idle = smallest);
    ``call_id`` is the call offered to or connected with the agent, if any; ``queue`` is that
    call's queue, kept through wrap-up (it tells which queue the agent is serving).
    """

    agent_id: str
    status: AgentStatus = AgentStatus.LOGGED_OUT
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()
    pause_reason: str | None = None
    idle_since: float = 0.0
    last_call_at: float | None = None
    call_id: str | None = None
    queue: str | None = None


def transition(
    agent: AgentState,
    event: AgentInput,
    now: float,
    *,
    reason: str | None = None,
    call_id: str | None = None,
    queue: str | None = None,
) -> AgentState:
    """Apply ``event`` to ``agent`` at ``now``; raise :class:`TransitionRefused` if not allowed.

    ``reason`` is required for :attr:`AgentInput.PAUSE`; ``call_id`` (and the call's
    ``queue``) for :attr:`AgentInput.OFFER`.
    """
    try:
        status, rule = TRANSITIONS[(agent.status, event)]
    except KeyError:
        raise TransitionRefused(
            f"agent {agent.agent_id}: {event.value} refused in state {agent.status.value}"
        ) from None
    if rule == _GIVEN:
        if not reason:
            raise TransitionRefused(f"agent {agent.agent_id}: {event.value} needs a reason")
        pause_reason: str | None = reason
    elif rule == _KEEP:
        pause_reason = agent.pause_reason
    else:
        pause_reason = rule
    if event is AgentInput.OFFER:
        if not call_id:
            raise TransitionRefused(f"agent {agent.agent_id}: offer needs a call id")
        new_call: str | None = call_id
        new_queue: str | None = queue
    elif status in (AgentStatus.OFFERED, AgentStatus.ON_CALL):
        new_call, new_queue = agent.call_id, agent.queue
    elif status is AgentStatus.WRAP_UP:
        new_call, new_queue = None, agent.queue
    else:
        new_call = new_queue = None
    became_available = status is AgentStatus.AVAILABLE and agent.status is not status
    # Built directly rather than with dataclasses.replace: this runs on every simulated event.
    return AgentState(
        agent.agent_id,
        status,
        agent.skills,
        agent.languages,
        pause_reason,
        now if became_available else agent.idle_since,
        now if event is AgentInput.CALL_END else agent.last_call_at,
        new_call,
        new_queue,
    )
