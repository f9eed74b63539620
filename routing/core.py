"""The routing core: who gets which call, as pure functions over plain data.

No I/O, no clock: every function that needs the time takes ``now`` (seconds, any epoch). The
live service (``routing/live.py`` over Redis) and the simulator (``routing/simulator.py``) both
call these functions, so what the simulator measures is what production does.

Terms (the README copies these definitions):

- **Skill level**: 1-5 per skill and agent, higher is better; an agent without a skill has
  level 0 in it. A *skill expression* (``routing/skills.py``) says who qualifies and yields the
  agent's *fit level* for the call.
- **Priority**: an integer, **higher is served first**. A call's priority is its rule's base
  priority plus the urgency boost for its urgency plus the VIP boost when the caller is a VIP.
  Calls are ordered by priority (descending), then by *position*: the time they first entered
  the queue, then an arrival sequence number. A call that goes back to the queue after a
  failed offer keeps its position, so it is not sent to the end of the line.
- **Steps**: a rule's ordered skill expressions. Step ``k`` is in force from
  ``start_k = timeout_0 + ... + timeout_(k-1)`` seconds of wait. While step ``k`` is in force the
  call may go to any agent matching any of steps ``0..k`` (relaxation widens, never narrows).
- **Agent choice** among qualifying available agents: the earliest step the agent matches,
  then the best fit level, then the longest idle (earliest ``idle_since``, the time the agent
  last became available), then agent id (deterministic tie-break). A sticky agent (the agent
  who last served this caller within the rule's ``sticky_days``) who is available and matches
  any step of the rule gets the first offer.
- **Service level** of a queue over an interval: ``answered within Y s / (answered +
  abandoned after Z s + overflowed)``. Callers who hang up before ``Z`` seconds (``Z`` =
  ``short_abandon_s``, 0 = count every abandon) are left out of numerator and denominator;
  calls sent to the overflow destination count as not answered in time. Wait is measured from
  entering the queue to the agent answering (ring time included).
- **Projected service level** (drives relaxation): the interval's figures so far plus the
  calls waiting now, each counted as answered in time when its wait so far plus its estimated
  remaining wait is at most ``Y``::

      (answered_within + waiting_projected_within) / (answered + abandoned + overflowed + waiting)

  When it falls below the target, every call of that queue is treated as one step further
  than its wait alone would give (``Policy.relax_on_service_level``).
- **Estimated wait** of the call at position ``p`` (1-based, in routing order within its
  queue) with ``n`` agents serving the queue, ``f`` of them free:
  ``max(p - f, 0) * (AHT + wrap-up) / n``. Under Erlang C's assumptions (all agents busy,
  exponential handle times) this is exactly the expected time until ``p`` agents free up.
  ``n`` counts the agents whose skills match the queue's ``skills`` expression, each with a
  weight: 1 when available or busy (ringing, talking, wrapping up) with a call of this
  queue; ``1/m`` when busy with another queue's call, ``m`` being the number of queues the
  agent's skills match (in a shared pool such an agent comes back to this queue for about
  that share of its calls); 0 when paused or logged out. AHT is the interval's measured
  mean handle time, or the queue's configured ``aht_s`` before any call was handled. The
  simulator reports the error against the actual wait.
- **Schedule**: an agent's weekly working hours (``AgentProfile.schedule``), in the config's
  time zone (``RoutingConfig.timezone``; ``None`` = the machine's). A logged-in agent outside
  them is *off schedule*: never offered a call (not even as a sticky agent), listed as passed
  over in the explanations of the decisions they would have qualified for, and not counted
  among the free or serving agents of any queue (estimated wait, projected service level). A
  call in progress when the schedule ends is finished, wrap-up included. An agent without a
  schedule is always on schedule. The shell computes who is off schedule once per snapshot
  (:func:`agents_off_schedule`), converting ``now`` to the local week once, not per agent.
"""

from __future__ import annotations

import bisect
import heapq
import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from enum import StrEnum
from operator import attrgetter
from typing import Any

from callerid import DISPLAY_NAME_FORBIDDEN as DISPLAY_NAME_FORBIDDEN
from callerid import PRESENTABLE_NUMBER
from callerid import PRESENTABLE_NUMBER_PATTERN as PRESENTABLE_NUMBER_PATTERN
from routing.skills import SkillExpr


class _derived:
    """A value computed on first access and stored on the instance.

    Like ``functools.cached_property`` without its per-access lock (Python 3.11), which costs
    more than the values it guards on the decision path; writes the instance ``__dict__``
    directly, so it works on frozen dataclasses.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        value = self.fn(obj)
        obj.__dict__[self.name] = value
        return value


OPERATOR = "operator"
"""Overflow destination and rule queue meaning "send the caller to the human operator"."""

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


# --------------------------------------------------------------------------- agent states


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


# --------------------------------------------------------------------------- configuration


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
class CallbackNumber:
    """The number a caller may leave for a callback: ``min_digits`` to ``max_digits`` digits,
    starting with one of ``prefixes`` (any, when empty); the caller has ``retries`` rounds to
    confirm or enter one, each keypress awaited ``timeout_s`` seconds."""

    min_digits: int = 7
    max_digits: int = 15
    prefixes: tuple[str, ...] = ()
    retries: int = 3
    timeout_s: float = 6.0

    def problem(self, number: str) -> str | None:
        """Why ``number`` cannot be called back (None: it can). A caller ID's leading ``+``
        is not counted (keys cannot enter one): the rule applies to the digits after it."""
        digits = number.removeprefix("+")
        if not digits.isascii() or not digits.isdigit():
            return "not only digits"
        if len(digits) < self.min_digits:
            return f"fewer than {self.min_digits} digits"
        if len(digits) > self.max_digits:
            return f"more than {self.max_digits} digits"
        if self.prefixes and not digits.startswith(self.prefixes):
            return f"does not start with {' or '.join(self.prefixes)}"
        return None


@dataclass(frozen=True, slots=True)
class CallbackCallerId:
    """Who the customer's phone shows calling when a callback rings it: ``number`` (digits,
    optional leading ``+``) and an optional display ``name`` (validated by the schema)."""

    number: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """Virtual hold: a waiting caller presses ``key`` to be called back instead, keeping the
    place in line. A callback whose customer does not answer is tried ``attempts`` times in
    all, ``retry_delay_s`` apart (the live shell places them; the core only orders them).
    ``number`` says which numbers the caller may leave (the IVR checks them)."""

    enabled: bool = True
    key: str = "1"
    attempts: int = 3
    retry_delay_s: float = 120.0
    ring_timeout_s: float = 30.0
    number: CallbackNumber = CallbackNumber()
    caller_id: CallbackCallerId | None = None

    def presented(self, dialled_number: str = "") -> CallbackCallerId | None:
        """What the customer's phone shows for a callback: the configured ``caller_id``,
        else the number the caller dialled (the hotline's own, which they recognise and can
        call back) if it is known and presentable; ``None``: nothing known, the customer leg
        keeps the agent leg's caller ID (the customer's own number)."""
        if self.caller_id is not None:
            return self.caller_id
        if PRESENTABLE_NUMBER.match(dialled_number):
            return CallbackCallerId(dialled_number)
        return None


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
    callback: CallbackPolicy = CallbackPolicy()


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

    @_derived
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
    _steps_memo: dict = field(default_factory=dict, compare=False, repr=False)

    def rule_for(self, request_type: str) -> Rule:
        """The rule of ``request_type``, or of the fallback type for unknown ones."""
        rule = self.rules.get(request_type)
        if rule is None:
            rule = self.rules[self.fallback_request_type]
        return rule


def local_week_minute(now: float, zone: tzinfo | None) -> tuple[int, int]:
    """(weekday, 0 = Monday; minute of the day) of ``now`` (epoch seconds) in ``zone``, the
    machine's local zone when ``None``. Daylight saving time follows the zone's rules."""
    if zone is None:
        local = time.localtime(now)
        return local.tm_wday, local.tm_hour * 60 + local.tm_min
    when = datetime.fromtimestamp(now, zone)
    return when.weekday(), when.hour * 60 + when.minute


def agents_off_schedule(config: RoutingConfig, now: float) -> frozenset[str]:
    """The configured agents whose schedule does not cover ``now`` (see the module docstring).

    For the shell to pass as ``Snapshot.off_schedule``, once per snapshot: ``now`` is
    converted to the local week once, and the answer is kept per local minute (schedules
    change only on minute boundaries), so a dispatcher deciding 4 times a second recomputes
    it once a minute. Free when no agent has a schedule.
    """
    memo = config._steps_memo
    scheduled = memo.get("scheduled")
    if scheduled is None:
        scheduled = memo["scheduled"] = tuple(p for p in config.agents.values() if p.schedule)
    if not scheduled:
        return frozenset()
    week_minute = local_week_minute(now, config.timezone)
    hit = memo.get("off_schedule")
    if hit is None or hit[0] != week_minute:
        weekday, minute = week_minute
        off = frozenset(p.agent_id for p in scheduled if not p.on_schedule(weekday, minute))
        hit = memo["off_schedule"] = (week_minute, off)
    return hit[1]


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


# --------------------------------------------------------------------------- calls and stats

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


# --------------------------------------------------------------------------- snapshot

OFF_SCHEDULE = "off_schedule"
"""How an available agent outside their schedule is shown (``Snapshot.shown_status``)."""

SHOWN_STATUSES = (*(s.value for s in AgentStatus), OFF_SCHEDULE)
"""Every value of ``Snapshot.shown_status``: the states the queue gauges count."""

STAFFED_STATUSES = frozenset(
    {AgentStatus.AVAILABLE, AgentStatus.OFFERED, AgentStatus.ON_CALL, AgentStatus.WRAP_UP}
)
"""Statuses in which an agent counts as staffing its queues (logged in, not paused)."""


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
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @_derived
    def ordered(self) -> Sequence[WaitingCall]:
        """Calls in routing order. A shell that keeps them sorted by ``order_key`` (e.g. a
        Redis sorted set) passes ``calls_sorted=True`` and saves the sort."""
        return self.calls if self.calls_sorted else sorted(self.calls, key=_order_key)

    @_derived
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

    @_derived
    def _groups_by_queue(self) -> dict[str, list[list[WaitingCall]]]:
        out: dict[str, list[list[WaitingCall]]] = {}
        for (_type, queue), group in self.by_group.items():
            out.setdefault(queue, []).append(group)
        return out

    @_derived
    def by_queue(self) -> dict[str, list[WaitingCall]]:
        """Calls per queue, in routing order."""
        return {q: self.in_queue(q) for _t, q in self.by_group}

    @_derived
    def sticky_agents(self) -> set[str | None]:
        """Agents some waiting call is sticky to (``None`` among them when a call is not)."""
        return {c.sticky_agent for c in self.calls}

    @_derived
    def call_index(self) -> dict[str, WaitingCall]:
        return {c.call_id: c for c in self.calls}

    def call(self, call_id: str) -> WaitingCall:
        """The waiting call ``call_id`` (``KeyError`` if none): from ``call_index`` once built,
        else by a scan, cheaper than indexing every call for one lookup."""
        index = self.__dict__.get("call_index")
        if index is not None:
            return index[call_id]
        for call in self.calls:
            if call.call_id == call_id:
                return call
        raise KeyError(call_id)

    @_derived
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
        counts = self._memo.get("serving")
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


# --------------------------------------------------------------------------- estimates


def queue_position(snapshot: Snapshot, call_id: str) -> int:
    """1-based position of the call in its queue's routing order."""
    call = snapshot.call(call_id)
    return snapshot.in_queue(call.queue).index(call) + 1


def _per_call_seconds(snapshot: Snapshot, queue: QueueConfig) -> float:
    stats = snapshot.stats.get(queue.name) or QueueStats()
    return stats.aht(queue.aht_s) + queue.wrapup_s


def free_agents(snapshot: Snapshot, queue: QueueConfig) -> int:
    """Available agents whose skills match the queue's ``skills``."""
    key = ("free", queue.name)
    count = snapshot._memo.get(key)
    if count is None:
        # Set operations in C pass over the agents lacking every anchor skill (most of them).
        anchors, fit = queue.skills.anchors(), queue.skills.fit
        count = sum(
            1 for a in snapshot.available if not anchors.isdisjoint(a.skills) and fit(a.skills)
        )
        snapshot._memo[key] = count
    return count


def _wait_ahead(
    snapshot: Snapshot, queue: QueueConfig, position: int, config: RoutingConfig
) -> float:
    serving = snapshot.serving(queue, config)
    if serving == 0:
        return math.inf
    behind_free = position - free_agents(snapshot, queue)
    if behind_free <= 0:
        return 0.0
    return behind_free * _per_call_seconds(snapshot, queue) / serving


def estimated_wait(snapshot: Snapshot, call_id: str, config: RoutingConfig) -> float:
    """Estimated remaining wait (s): ``max(position - free, 0) * (AHT + wrap-up) / serving``.

    ``free`` is the number of available agents matching the queue's skills (0 whenever the
    router has settled, since it would have offered them the call); ``inf`` when nobody
    serves the queue. See the module docstring.
    """
    call = snapshot.call(call_id)
    queue = config.queues[call.queue]
    return _wait_ahead(snapshot, queue, queue_position(snapshot, call_id), config)


def projected_service_level(snapshot: Snapshot, queue_name: str, config: RoutingConfig) -> float:
    """Projected service level of the queue (formula in the module docstring); 1.0 when there
    is nothing to count yet."""
    key = ("projected", queue_name)
    cached = snapshot._memo.get(key)
    if cached is not None:
        return cached
    queue = config.queues[queue_name]
    stats = snapshot.stats.get(queue_name) or QueueStats()
    waiting = snapshot.in_queue(queue_name)
    within = 0
    serving = snapshot.serving(queue, config) if waiting else 0
    if serving:
        # Inline _wait_ahead: this loop runs over every waiting call of the queue.
        free = free_agents(snapshot, queue)
        per_position = _per_call_seconds(snapshot, queue) / serving
        latest = snapshot.now - queue.service_level.threshold_s
        # The first ``free`` calls have nothing ahead of them; the rest wait for their
        # position behind the free agents: ``max(position - free, 0) * per_position``.
        for call in waiting[:free]:
            if latest <= call.entered_at:
                within += 1
        for ahead, call in enumerate(waiting[free:], 1):
            if ahead * per_position + latest <= call.entered_at:
                within += 1
    total = stats.answered + stats.abandoned + stats.overflowed + len(waiting)
    result = (stats.answered_within + within) / total if total else 1.0
    snapshot._memo[key] = result
    return result


# --------------------------------------------------------------------------- decisions


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

    def as_dict(self) -> dict:
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
    plan = config._steps_memo.get(key)
    if plan is None:
        request_type, queue = route
        rule = config.rule_for(request_type)
        if queue != rule.queue:
            steps, starts = (Step(config.queues[queue].skills),), (0.0,)
        elif not use_steps:
            steps, starts = rule.steps[:1], (0.0,)
        else:
            steps, starts = rule.steps, rule.step_starts
        anchors, expressions = [], []
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
) -> list[tuple[tuple, AgentState, int, int]]:
    """Available agents matching any of steps 0..k, best first (memoized per snapshot)."""
    memo_key = ("ranked", id(plan), k, policy.rank_by_level)
    cached = snapshot._memo.get(memo_key)
    if cached is not None:
        return cached
    steps, anchors = plan.steps, plan.anchors[k]
    ranked = []
    for agent in snapshot.available:
        if anchors.isdisjoint(agent.skills):
            continue
        j, level = _first_match(agent, steps, k)
        if j < 0:
            continue
        if policy.rank_by_level:
            key: tuple = (j, -level, agent.idle_since, agent.agent_id)
        else:
            key = (agent.idle_since, agent.agent_id)
        ranked.append((key, agent, j, level))
    ranked.sort(key=_rank_key)
    snapshot._memo[memo_key] = ranked
    return ranked


def _rank_key(entry: tuple[tuple, AgentState, int, int]) -> tuple:
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
    best_key: tuple | None = None
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
    oldest = snapshot._memo.get(key)
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


# ------------------------------------------------------------------ failed offers and overflow

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
