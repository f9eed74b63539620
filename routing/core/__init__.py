"""The routing core: who gets which call, as pure functions over plain data.

No I/O, no clock: every function that needs the time takes ``now`` (seconds, any epoch). The
live service (``routing/live.py`` over Redis) and the simulator (``routing/simulator.py``) both
call these functions, so what the simulator measures is what production does.

The core is a package of one concern per module, each importing only those before it:

- ``agents``: agent states, the transition table, pause reasons;
- ``config``: queues, rules and steps, agents' profiles, policies (the callback policy is
  ``callbacks.policy``, re-exported here);
- ``schedule``: agents' weekly schedules, who is off schedule now;
- ``staffing``: who serves a queue, weighted;
- ``snapshot``: waiting calls, queue figures, the snapshot one decision looks at;
- ``estimate``: position, estimated wait, projected service level;
- ``steps``: the step in force for a call, relaxation, the next step change;
- ``decision``: who gets which call, and why;
- ``fallback``: failed offers, admission, overflow.

Import from ``routing.core``, which re-exports the public names of them all.

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

from callbacks.policy import CallbackCallerId, CallbackNumber, CallbackPolicy
from callerid import DISPLAY_NAME_FORBIDDEN, PRESENTABLE_NUMBER, PRESENTABLE_NUMBER_PATTERN
from routing.core.agents import (
    DEFAULT_PAUSE_REASONS,
    PAUSE_BUSY_ELSEWHERE,
    PAUSE_MISSED,
    PAUSE_REJECTED,
    SYSTEM_PAUSE_REASONS,
    TRANSITIONS,
    AgentInput,
    AgentState,
    AgentStatus,
    TransitionRefused,
    transition,
)
from routing.core.config import (
    LONGEST_IDLE,
    OPERATOR,
    OURS,
    RING_ALL,
    AgentProfile,
    Announcements,
    Policy,
    QueueConfig,
    RoutingConfig,
    Rule,
    ServiceLevelTarget,
    Step,
)
from routing.core.decision import (
    EXPLAIN_CANDIDATES,
    Assignment,
    Candidate,
    Explanation,
    _decide_by_agents,
    _decide_by_calls,
    decide,
    eligible_agents,
    on_agent_available,
    on_call_arrived,
)
from routing.core.estimate import (
    estimated_wait,
    free_agents,
    projected_service_level,
    queue_position,
)
from routing.core.fallback import admission, offer_failed, overdue_calls, overflow
from routing.core.schedule import agents_off_schedule, local_week_minute
from routing.core.snapshot import (
    OFF_SCHEDULE,
    SHOWN_STATUSES,
    QueueStats,
    Snapshot,
    WaitingCall,
    new_call,
)
from routing.core.staffing import (
    STAFFED_STATUSES,
    queues_matched,
    serving_agents,
    serving_weight,
)
from routing.core.steps import next_step_change, step_in_force, steps_for
from routing.skills import SkillExpr

__all__ = [
    "DEFAULT_PAUSE_REASONS",
    "DISPLAY_NAME_FORBIDDEN",
    "EXPLAIN_CANDIDATES",
    "LONGEST_IDLE",
    "OFF_SCHEDULE",
    "OPERATOR",
    "OURS",
    "PAUSE_BUSY_ELSEWHERE",
    "PAUSE_MISSED",
    "PAUSE_REJECTED",
    "PRESENTABLE_NUMBER",
    "PRESENTABLE_NUMBER_PATTERN",
    "RING_ALL",
    "SHOWN_STATUSES",
    "STAFFED_STATUSES",
    "SYSTEM_PAUSE_REASONS",
    "TRANSITIONS",
    "AgentInput",
    "AgentProfile",
    "AgentState",
    "AgentStatus",
    "Announcements",
    "Assignment",
    "CallbackCallerId",
    "CallbackNumber",
    "CallbackPolicy",
    "Candidate",
    "Explanation",
    "Policy",
    "QueueConfig",
    "QueueStats",
    "RoutingConfig",
    "Rule",
    "ServiceLevelTarget",
    "SkillExpr",
    "Snapshot",
    "Step",
    "TransitionRefused",
    "WaitingCall",
    "_decide_by_agents",
    "_decide_by_calls",
    "admission",
    "agents_off_schedule",
    "decide",
    "eligible_agents",
    "estimated_wait",
    "free_agents",
    "local_week_minute",
    "new_call",
    "next_step_change",
    "offer_failed",
    "on_agent_available",
    "on_call_arrived",
    "overdue_calls",
    "overflow",
    "projected_service_level",
    "queue_position",
    "queues_matched",
    "serving_agents",
    "serving_weight",
    "step_in_force",
    "steps_for",
    "transition",
]
