"""Live routing: the shared state in Redis, changed atomically, and the dispatcher.

Several ``ivr serve`` instances (behind one or more Asterisk servers) share one agent pool.
Every change to an agent or a waiting call is one Lua script, so two instances can never
offer one agent two calls: the ``offer`` script is a compare-and-set on both the agent
(``available``) and the call (``waiting``). Each instance runs the same dispatcher: it reads a
snapshot, asks the pure core (:func:`routing.core.decide`) who gets which call, and tries the
offers; an offer that lost a race to another instance is simply skipped.

The AGI session that owns a call polls its call hash (:meth:`LiveRouter.poll`) while the
caller hears music on hold, so the decision may come from any instance.

Keys (``P`` = key prefix, default ``hotline:``; ``{rt}`` keeps every routing key in one Redis
Cluster hash slot, so the scripts stay atomic there too):

===========================  ====================================================================
``P{rt}:agent:<id>``         hash: status, pause_reason, idle_since, last_call_at, call_id,
                             since, wrap_until
``P{rt}:agents``             set of agent ids
``P{rt}:call:<id>``          hash: request_type, queue, urgency, vip, priority, entered_at, seq,
                             status (waiting|offered|connected|overflow|done), agent, instance,
                             offered_to (JSON list), destination, why (JSON explanation)
``P{rt}:waiting``            sorted set of waiting call ids (score: entered_at)
``P{rt}:seq``                arrival counter (the position tie-break)
``P{rt}:stats:<q>:<day>``    hash of the queue's counters for the day (UTC)
``P{rt}:instance:<name>``    heartbeat of a service instance (expires when it dies)
``P events``                 the event stream (schema in ``workorders/events.py``)
===========================  ====================================================================
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routing import core
from workorders.events import event_fields, stream_key

log = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 6
"""An instance that has not refreshed its heartbeat for this long is considered dead."""


@dataclass(frozen=True)
class CallRequest:
    """What the call flow knows when it queues a call."""

    call_id: str
    request_type: str
    urgency: str
    caller_number: str
    entered_at: float
    vip: bool = False
    language: str | None = None


@dataclass(frozen=True)
class QueueEntry:
    """The caller's place after enqueueing: what to play while waiting."""

    call_id: str
    queue: str
    moh_class: str
    announce_every_s: float
    position: int
    estimated_wait_s: float | None
    resumed: bool = False  # taken over from a dead instance, original place kept


@dataclass(frozen=True)
class Offer:
    """Ring ``endpoint`` for ``ring_timeout_s`` (kind ``agent``) or leave (kind ``overflow``)."""

    kind: str
    agent_id: str = ""
    endpoint: str = ""
    ring_timeout_s: float = 15.0
    destination: str = ""


@dataclass(frozen=True)
class CallStatus:
    position: int
    estimated_wait_s: float | None


# --- Lua: every state change is one script --------------------------------------------------

_LUA_HELPERS = """
local function xadd(stream, ...)
  redis.call('XADD', stream, 'MAXLEN', '~', 1000000, '*', ...)
end
local function stat(key, field, n)
  redis.call('HINCRBYFLOAT', key, field, n)
  redis.call('EXPIRE', key, 864000)
end
"""

# KEYS: call, waiting, seq, events ; ARGV: fields-json, now, instance, iso-time, position-event
_ENQUEUE = _LUA_HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'waiting' or status == 'offered' then
  -- the same call again: an instance took it over after its first instance died
  redis.call('HSET', KEYS[1], 'instance', ARGV[3])
  return {1, redis.call('HGET', KEYS[1], 'seq')}
end
local fields = cjson.decode(ARGV[1])
local seq = redis.call('INCR', KEYS[3])
redis.call('DEL', KEYS[1])
for k, v in pairs(fields) do redis.call('HSET', KEYS[1], k, v) end
redis.call('HSET', KEYS[1], 'seq', seq, 'status', 'waiting', 'instance', ARGV[3])
redis.call('ZADD', KEYS[2], fields['entered_at'], fields['call_id'])
xadd(KEYS[4], 'kind', 'ENTERQUEUE', 'time', ARGV[4], 'call_id', fields['call_id'],
     'queue', fields['queue'], 'request_type', fields['request_type'],
     'urgency', fields['urgency'], 'caller', fields['caller_number'])
return {0, seq}
"""

# KEYS: agent, call, waiting ; ARGV: agent_id, call_id, now, why-json
_OFFER = """
local a = redis.call('HGET', KEYS[1], 'status')
if a ~= 'available' then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'waiting' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'offered', 'call_id', ARGV[2], 'since', ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'offered', 'agent', ARGV[1], 'offered_at', ARGV[3],
           'why', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1
"""

# KEYS: agent, call, waiting, stats, events
# ARGV: agent_id, call_id, outcome, now, iso, pause_reason, sl_threshold, short_abandon
_RING_RESULT = _LUA_HELPERS + """
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return 0 end
local outcome = ARGV[3]
local now = tonumber(ARGV[4])
local entered = tonumber(redis.call('HGET', KEYS[2], 'entered_at'))
local queue = redis.call('HGET', KEYS[2], 'queue')
local waited = now - entered
if outcome == 'answered' then
  redis.call('HSET', KEYS[1], 'status', 'on_call', 'since', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'connected', 'answered_at', ARGV[4])
  stat(KEYS[4], 'answered', 1)
  if waited <= tonumber(ARGV[7]) then stat(KEYS[4], 'answered_within', 1) end
  xadd(KEYS[5], 'kind', 'CONNECT', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
       'agent', ARGV[1], 'holdtime', string.format('%.3f', waited))
  return 1
end
if outcome == 'caller_gone' then
  redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'done', 'outcome', 'abandoned')
  if waited < tonumber(ARGV[8]) then stat(KEYS[4], 'abandoned_short', 1)
  else stat(KEYS[4], 'abandoned', 1) end
  xadd(KEYS[5], 'kind', 'ABANDON', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
       'agent', ARGV[1], 'waittime', string.format('%.3f', waited), 'stage', 'ringing')
  return 1
end
-- no answer, rejected, busy elsewhere, unavailable: the agent is paused with the reason and
-- the call goes back to its original position (its score is still entered_at).
redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', ARGV[6], 'call_id', '',
           'since', ARGV[4])
local offered = cjson.decode(redis.call('HGET', KEYS[2], 'offered_to') or '[]')
table.insert(offered, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '', 'offered_to', cjson.encode(offered))
redis.call('ZADD', KEYS[3], entered, ARGV[2])
local kind = 'RINGNOANSWER'
if outcome == 'rejected' then kind = 'RINGCANCELED' end
if outcome == 'busy' then kind = 'RINGBUSY' end
if outcome == 'unavailable' then kind = 'RINGUNAVAILABLE' end
xadd(KEYS[5], 'kind', kind, 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
     'agent', ARGV[1])
xadd(KEYS[5], 'kind', 'PAUSE', 'time', ARGV[5], 'agent', ARGV[1], 'reason', ARGV[6])
return 1
"""

# KEYS: agent, call, stats, events ; ARGV: agent_id, call_id, by, now, iso, wrapup_s
_COMPLETE = _LUA_HELPERS + """
if redis.call('HGET', KEYS[2], 'status') ~= 'connected' then return 0 end
local now = tonumber(ARGV[4])
local answered = tonumber(redis.call('HGET', KEYS[2], 'answered_at') or ARGV[4])
local entered = tonumber(redis.call('HGET', KEYS[2], 'entered_at'))
local queue = redis.call('HGET', KEYS[2], 'queue')
redis.call('HSET', KEYS[2], 'status', 'done', 'outcome', 'completed', 'ended_at', ARGV[4])
stat(KEYS[3], 'handled', 1)
stat(KEYS[3], 'handle_time_total', now - answered)
if redis.call('HGET', KEYS[1], 'call_id') == ARGV[2] then
  local wrap = tonumber(ARGV[6])
  if wrap > 0 then
    redis.call('HSET', KEYS[1], 'status', 'wrap_up', 'call_id', '', 'since', ARGV[4],
               'wrap_until', now + wrap, 'last_call_at', ARGV[4])
  else
    redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[4],
               'idle_since', ARGV[4], 'last_call_at', ARGV[4])
  end
end
local kind = 'COMPLETEAGENT'
if ARGV[3] == 'caller' then kind = 'COMPLETECALLER' end
xadd(KEYS[4], 'kind', kind, 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
     'agent', ARGV[1], 'holdtime', string.format('%.3f', answered - entered),
     'calltime', string.format('%.3f', now - answered))
return 1
"""

# KEYS: call, waiting, stats, events ; ARGV: call_id, stage, now, iso, short_abandon, kind, dest
_LEAVE = _LUA_HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status and ARGV[6] == 'ABANDON' then
  -- hung up before reaching a queue (welcome, menu): counted, no queue state to clean
  xadd(KEYS[4], 'kind', 'ABANDON', 'time', ARGV[4], 'call_id', ARGV[1], 'queue', '',
       'stage', ARGV[2])
  return 1
end
if status ~= 'waiting' and status ~= 'overflow' then return 0 end
local now = tonumber(ARGV[3])
local entered = tonumber(redis.call('HGET', KEYS[1], 'entered_at'))
local queue = redis.call('HGET', KEYS[1], 'queue')
local waited = now - entered
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[6] == 'ABANDON' then
  redis.call('HSET', KEYS[1], 'status', 'done', 'outcome', 'abandoned', 'ended_at', ARGV[3])
  if waited < tonumber(ARGV[5]) then stat(KEYS[3], 'abandoned_short', 1)
  else stat(KEYS[3], 'abandoned', 1) end
elseif ARGV[6] == 'EXITWITHTIMEOUT' then
  if status == 'overflow' then return 0 end
  redis.call('HSET', KEYS[1], 'status', 'overflow', 'destination', ARGV[7])
  stat(KEYS[3], 'overflowed', 1)
else
  redis.call('HSET', KEYS[1], 'status', 'done', 'outcome', string.lower(ARGV[6]))
end
xadd(KEYS[4], 'kind', ARGV[6], 'time', ARGV[4], 'call_id', ARGV[1], 'queue', queue,
     'waittime', string.format('%.3f', waited), 'stage', ARGV[2], 'destination', ARGV[7])
return 1
"""

# KEYS: agent, events ; ARGV: agent_id, action, reason, now, iso, initial-status
_AGENT = _LUA_HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  status = ARGV[6]
  redis.call('HSET', KEYS[1], 'status', status, 'idle_since', ARGV[4], 'since', ARGV[4])
end
local action = ARGV[2]
local to = nil
local idle = status == 'available' or status == 'paused' or status == 'wrap_up'
if action == 'login' and status == 'logged_out' then to = 'available'
elseif action == 'logout' and idle then to = 'logged_out'
elseif action == 'pause' and idle then to = 'paused'
elseif action == 'resume' and status == 'paused' then to = 'available'
elseif action == 'wrapup_end' and status == 'wrap_up' then to = 'available'
elseif action == 'ensure' then return {status, 'ok'}
end
if not to then return {status, 'refused'} end
redis.call('HSET', KEYS[1], 'status', to, 'since', ARGV[4])
if to == 'paused' then redis.call('HSET', KEYS[1], 'pause_reason', ARGV[3])
else redis.call('HSET', KEYS[1], 'pause_reason', '') end
if to == 'available' then redis.call('HSET', KEYS[1], 'idle_since', ARGV[4]) end
local kinds = {login='AGENTLOGIN', logout='AGENTLOGOFF', pause='PAUSE', resume='UNPAUSE',
               wrapup_end='WRAPUPEND'}
xadd(KEYS[2], 'kind', kinds[action], 'time', ARGV[5], 'agent', ARGV[1], 'reason', ARGV[3])
return {to, 'ok'}
"""


def _iso(now: float) -> str:
    return event_fields("X", now)["time"]


def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class LiveRouter:
    """The live shell around the routing core, on ``redis.asyncio``.

    ``config`` is a callable returning the current :class:`routing.core.RoutingConfig`, so a
    reload applies to calls already waiting (their next decision uses the new rules).
    """

    def __init__(
        self,
        redis: Any,
        config: Callable[[], core.RoutingConfig],
        *,
        instance: str,
        prefix: str = "hotline:",
        clock: Callable[[], float] = time.time,
        autologin: bool = True,
    ) -> None:
        self.redis = redis
        self.config = config
        self.instance = instance
        self.prefix = prefix
        self.clock = clock
        self.autologin = autologin
        self.decisions: list[dict[str, Any]] = []  # the last few, for the API and the log
        self._scripts = {
            name: redis.register_script(source)
            for name, source in (
                ("enqueue", _ENQUEUE), ("offer", _OFFER), ("ring_result", _RING_RESULT),
                ("complete", _COMPLETE), ("leave", _LEAVE), ("agent", _AGENT),
            )
        }

    # --- keys ---------------------------------------------------------------------------------

    def _k(self, *parts: str) -> str:
        return f"{self.prefix}{{rt}}:" + ":".join(parts)

    @property
    def events_key(self) -> str:
        return stream_key(self.prefix)

    def _stats_key(self, queue: str, now: float) -> str:
        return self._k("stats", queue, _day(now))

    # --- agents -------------------------------------------------------------------------------

    async def sync_agents(self) -> None:
        """Make every configured agent known in Redis (new ones logged in when autologin)."""
        now = self.clock()
        initial = "available" if self.autologin else "logged_out"
        for agent_id in self.config().agents:
            await self.redis.sadd(self._k("agents"), agent_id)
            await self._scripts["agent"](
                keys=[self._k("agent", agent_id), self.events_key],
                args=[agent_id, "ensure", "", now, _iso(now), initial],
            )

    async def agent_action(self, agent_id: str, action: str, reason: str = "") -> tuple[str, bool]:
        """login, logout, pause (with a configured reason), resume. Returns (status, done)."""
        cfg = self.config()
        if agent_id not in cfg.agents:
            raise KeyError(f"unknown agent {agent_id!r}")
        if action == "pause" and reason not in cfg.pause_reasons:
            raise ValueError(f"unknown pause reason {reason!r}; one of {sorted(cfg.pause_reasons)}")
        now = self.clock()
        status, verdict = await self._scripts["agent"](
            keys=[self._k("agent", agent_id), self.events_key],
            args=[agent_id, action, reason, now, _iso(now), "logged_out"],
        )
        return _s(status), _s(verdict) == "ok"

    # --- calls --------------------------------------------------------------------------------

    async def enqueue(self, call: CallRequest) -> QueueEntry:
        cfg = self.config()
        rule = cfg.rule_for(call.request_type)
        queue = cfg.queues[rule.queue]
        fields = {
            "call_id": call.call_id,
            "request_type": rule.request_type,
            "queue": queue.name,
            "urgency": call.urgency,
            "vip": "1" if call.vip else "0",
            "priority": str(rule.priority_for(call.urgency, call.vip)),
            "entered_at": repr(call.entered_at),
            "caller_number": call.caller_number,
            "language": call.language or "",
        }
        resumed, _seq = await self._scripts["enqueue"](
            keys=[self._k("call", call.call_id), self._k("waiting"), self._k("seq"),
                  self.events_key],
            args=[json.dumps(fields), call.entered_at, self.instance, _iso(call.entered_at)],
        )
        status = await self.status(call.call_id)
        return QueueEntry(
            call_id=call.call_id,
            queue=queue.name,
            moh_class=queue.moh,
            announce_every_s=queue.announcements.period_s
            if (queue.announcements.position or queue.announcements.estimated_wait) else 0.0,
            position=status.position if status else 1,
            estimated_wait_s=status.estimated_wait_s if status else None,
            resumed=bool(int(resumed)),
        )

    async def poll(self, call_id: str) -> Offer | None:
        """The offer for this call, if the dispatcher made one; ``None`` while it waits."""
        fields = await self.redis.hgetall(self._k("call", call_id))
        status = _s(fields.get(b"status"))
        if status == "offered":
            agent_id = _s(fields.get(b"agent"))
            cfg = self.config()
            profile = cfg.agents.get(agent_id)
            queue = cfg.queues.get(_s(fields.get(b"queue")))
            return Offer(
                kind="agent",
                agent_id=agent_id,
                endpoint=profile.endpoint if profile else f"PJSIP/{agent_id}",
                ring_timeout_s=queue.ring_timeout_s if queue else 15.0,
            )
        if status == "overflow":
            return Offer(kind="overflow", destination=_s(fields.get(b"destination")))
        return None

    async def ring_result(self, call_id: str, agent_id: str, outcome: str) -> bool:
        """What happened when the agent's phone rang (answered, no_answer, busy, rejected,
        unavailable, caller_gone)."""
        reason = {
            "no_answer": core.PAUSE_MISSED,
            "rejected": core.PAUSE_REJECTED,
            "busy": core.PAUSE_BUSY_ELSEWHERE,
            "unavailable": "unavailable",
        }.get(outcome, "")
        now = self.clock()
        queue = await self._queue_of(call_id)
        target = queue.service_level if queue else core.ServiceLevelTarget()
        done = await self._scripts["ring_result"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, outcome, now, _iso(now), reason, target.threshold_s,
                  target.short_abandon_s],
        )
        if outcome not in ("answered", "caller_gone"):
            log.info("call %s: agent %s %s -> paused (%s), call back to its place",
                     call_id, agent_id, outcome, reason)
        return bool(done)

    async def completed(self, call_id: str, agent_id: str, by: str) -> bool:
        """The conversation ended (``by`` who hung up first: agent or caller)."""
        now = self.clock()
        queue = await self._queue_of(call_id)
        done = await self._scripts["complete"](
            keys=[self._k("agent", agent_id), self._k("call", call_id),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, by, now, _iso(now), queue.wrapup_s if queue else 0],
        )
        return bool(done)

    async def abandon(self, call_id: str, stage: str) -> bool:
        """The caller hung up while waiting (in the queue, or before it in the menu)."""
        return await self._leave(call_id, stage, "ABANDON")

    async def overflowed(self, call_id: str, destination: str) -> bool:
        return await self._leave(call_id, "queue", "EXITWITHTIMEOUT", destination)

    async def _leave(self, call_id: str, stage: str, kind: str, destination: str = "") -> bool:
        now = self.clock()
        queue = await self._queue_of(call_id)
        target = queue.service_level if queue else core.ServiceLevelTarget()
        done = await self._scripts["leave"](
            keys=[self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[call_id, stage, now, _iso(now), target.short_abandon_s, kind, destination],
        )
        return bool(done)

    async def _queue_of(self, call_id: str) -> core.QueueConfig | None:
        name = _s(await self.redis.hget(self._k("call", call_id), "queue"))
        return self.config().queues.get(name)

    async def status(self, call_id: str) -> CallStatus | None:
        """Position (1-based, in routing order in its queue) and estimated wait."""
        snapshot = await self.snapshot()
        if call_id not in snapshot.call_index:
            return None
        ewt = core.estimated_wait(snapshot, call_id, self.config())
        return CallStatus(
            position=core.queue_position(snapshot, call_id),
            estimated_wait_s=None if ewt == float("inf") else ewt,
        )

    # --- the dispatcher -----------------------------------------------------------------------

    async def snapshot(self) -> core.Snapshot:
        """Agents and waiting calls as the core sees them, read in one round trip."""
        cfg = self.config()
        now = self.clock()
        agent_ids = sorted(_s(a) for a in await self.redis.smembers(self._k("agents")))
        call_ids = [_s(c) for c in await self.redis.zrange(self._k("waiting"), 0, -1)]
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hgetall(self._k("agent", agent_id))
        for call_id in call_ids:
            pipe.hgetall(self._k("call", call_id))
        for name in cfg.queues:
            pipe.hgetall(self._stats_key(name, now))
        rows = await pipe.execute()
        agents: dict[str, core.AgentState] = {}
        for agent_id, row in zip(agent_ids, rows[: len(agent_ids)], strict=True):
            profile = cfg.agents.get(agent_id)
            if profile is None or not row:
                continue  # removed from config: never offered calls again
            agents[agent_id] = _agent_state(profile, row, now)
        calls = []
        for call_id, row in zip(call_ids, rows[len(agent_ids): len(agent_ids) + len(call_ids)],
                                strict=True):
            if row and _s(row.get(b"status")) == "waiting":
                calls.append(_waiting_call(call_id, row, cfg))
        stats = {}
        for name, row in zip(cfg.queues, rows[len(agent_ids) + len(call_ids):], strict=True):
            stats[name] = core.QueueStats(
                answered=int(_f(row.get(b"answered"))),
                answered_within=int(_f(row.get(b"answered_within"))),
                abandoned=int(_f(row.get(b"abandoned"))),
                abandoned_short=int(_f(row.get(b"abandoned_short"))),
                overflowed=int(_f(row.get(b"overflowed"))),
                handled=int(_f(row.get(b"handled"))),
                handle_time_total=_f(row.get(b"handle_time_total")),
            )
        return core.Snapshot(now=now, agents=agents, calls=calls, stats=stats)

    async def dispatch(self) -> list[core.Assignment]:
        """One round: end finished wrap-ups, overflow overdue calls, make the core's offers."""
        cfg = self.config()
        await self.redis.set(self._k("instance", self.instance), "1", ex=HEARTBEAT_TTL_S)
        snapshot = await self.snapshot()
        for agent_id in await self._finished_wrapups(snapshot.now):
            await self.agent_action(agent_id, "wrapup_end")
        for call, destination in core.overdue_calls(snapshot, cfg):
            log.info("call %s waited %.0f s in %s: overflow to %s", call.call_id,
                     snapshot.now - call.entered_at, call.queue, destination)
            await self.overflowed(call.call_id, destination)
        made = []
        for assignment in core.decide(snapshot, cfg):
            why = assignment.why.as_dict()
            ok = await self._scripts["offer"](
                keys=[self._k("agent", assignment.agent_id), self._k("call", assignment.call_id),
                      self._k("waiting")],
                args=[assignment.agent_id, assignment.call_id, snapshot.now, json.dumps(why)],
            )
            if ok:
                made.append(assignment)
                record = {"call_id": assignment.call_id, "agent": assignment.agent_id,
                          "instance": self.instance, **why}
                self.decisions = [*self.decisions[-99:], record]
                log.info("offer call %s to agent %s: %s", assignment.call_id,
                         assignment.agent_id, why["reason"])
        return made

    async def _finished_wrapups(self, now: float) -> list[str]:
        out = []
        for agent_id in self.config().agents:
            row = await self.redis.hmget(self._k("agent", agent_id), "status", "wrap_until")
            if _s(row[0]) == "wrap_up" and _f(row[1]) <= now:
                out.append(agent_id)
        return out

    async def agents(self) -> dict[str, dict[str, str]]:
        """Every agent's live hash (for the API and the wallboard)."""
        out = {}
        for agent_id in self.config().agents:
            row = await self.redis.hgetall(self._k("agent", agent_id))
            out[agent_id] = {_s(k): _s(v) for k, v in row.items()}
        return out


def _s(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _agent_state(
    profile: core.AgentProfile, row: Mapping[bytes, bytes], now: float
) -> core.AgentState:
    status = _s(row.get(b"status")) or "logged_out"
    return core.AgentState(
        agent_id=profile.agent_id,
        status=core.AgentStatus(status),
        skills=profile.skills,
        languages=profile.languages,
        pause_reason=_s(row.get(b"pause_reason")) or None,
        idle_since=_f(row.get(b"idle_since"), now),
        last_call_at=_f(row.get(b"last_call_at"), 0.0) or None,
        call_id=_s(row.get(b"call_id")) or None,
    )


def _waiting_call(
    call_id: str, row: Mapping[bytes, bytes], cfg: core.RoutingConfig
) -> core.WaitingCall:
    offered = tuple(json.loads(_s(row.get(b"offered_to")) or "[]"))
    return core.WaitingCall(
        call_id=call_id,
        request_type=_s(row.get(b"request_type")),
        queue=_s(row.get(b"queue")),
        entered_at=_f(row.get(b"entered_at")),
        seq=int(_f(row.get(b"seq"))),
        priority=int(_f(row.get(b"priority"))),
        urgency=_s(row.get(b"urgency")) or "normal",
        vip=_s(row.get(b"vip")) == "1",
        language=_s(row.get(b"language")) or None,
        offered_to=offered,
    )
