"""Live routing: the shared state in Redis, changed atomically, and the dispatcher.

Several ``ivr serve`` instances (behind one or more Asterisk servers) share one agent pool.
Every change to an agent or a waiting call is one Lua script, so two instances can never
offer one agent two calls: the ``offer`` script is a compare-and-set on both the agent
(``available``) and the call (``waiting``). Each instance runs the same dispatcher: it reads a
snapshot, asks the pure core (:func:`routing.core.decide`) who gets which call, and tries the
offers; an offer that lost a race to another instance is simply skipped.

Callbacks (virtual hold): the caller leaves a number and hangs up; the call stays in the
waiting set at its original place, marked ``callback``. When the dispatcher's offer script
wins the agent for it (so exactly one instance places it), that instance originates the agent
first (ARI, ``extension s@hotline-callback``); once the agent answers, the ``callback`` FastAGI
flow dials the customer and bridges them. A customer who does not answer puts the call back
at its place, due again after ``retry_delay_s``, until ``attempts`` are spent.

Cleanup across instances (every :data:`SWEEP_EVERY_S`): an offer nobody followed up within
ring timeout + :data:`OFFER_GRACE_S` (its instance died, or the agent never answered a
callback) is released, the call back at its place; a waiting call whose instance is dead and
whose channel Asterisk no longer has is removed (event ``EXITORPHANED``).

Softphone availability (:meth:`LiveRouter.device_state`, fed by ARI ``DeviceStateChanged``):
in use, busy or ringing while the agent has no call of ours -> paused ``busy-elsewhere``; idle
again -> resumed if that (or ``unavailable``) was the reason; UNAVAILABLE (unregistered,
unreachable) -> paused ``unavailable``, not logged out, so the agent is back by themselves
when the phone is; logging in and out stays the agent's explicit act.

Schedules: each round's snapshot carries the agents outside their weekly schedule
(:func:`routing.core.agents_off_schedule`, in the agents' configured time zone). Their state in
Redis is left alone (logging in and out stays the agent's act); the core simply offers them
nothing and counts them nowhere, and ``agents()`` shows them ``schedule: off``.

Snapshots: each instance keeps a copy of the agents and waiting calls and brings it forward
with what the change log recorded since its last read, in one Lua script (a consistent cut,
as a full read is); see ``routing/live_snapshot.py``. A dispatcher round, an enqueue and a
position announcement read only what changed, not 1,500 hashes.

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
                             offered_to (JSON list), destination, why (JSON explanation),
                             dialled_number (what the caller dialled, "" if unknown);
                             callbacks also: callback=1, callback_number, callback_attempts,
                             callback_next_at (status ``dialing`` while the customer rings)
``P{rt}:waiting``            sorted set of waiting call ids (score: entered_at)
``P{rt}:offered``            sorted set of offered call ids (score: offered_at), swept for
                             offers nobody follows up (dead instance, unanswered callback)
``P{rt}:seq``                arrival counter (the position tie-break)
``P{rt}:version``            hash: version (bumped by every script that changes an agent or a
                             call), epoch (new when the log starts over), floor (older
                             versions dropped from the log)
``P{rt}:changed``            sorted set: ``a:<agent id>`` / ``c:<call id>``, score: the version
                             that last changed it (the change log)
``P{rt}:stats:<q>:<day>``    hash of the queue's counters for the day (UTC)
``P{rt}:instance:<name>``    heartbeat of a service instance (expires when it dies)
``P events``                 the event stream (schema in ``events``)
===========================  ====================================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from events import event_fields, stream_key
from routing import core
from routing.live_snapshot import PoolCopy, _f, _pairs, _s

log = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 6
"""An instance that has not refreshed its heartbeat for this long is considered dead."""

OFFER_GRACE_S = 5.0
"""Beyond the ring timeout, how long an offer may stay unanswered before the sweep frees it."""

SWEEP_EVERY_S = 2.0
"""How often a dispatcher looks for stale offers and orphaned calls."""

CHANGES_KEPT = 10_000
"""Versions of the change log kept: a copy further behind than that is read again in full
(at 4 rounds a second and a few changes per call, minutes of a busy hotline)."""

FULL_READ_EVERY_S = 60.0
"""A dispatcher reads the whole state at least this often even when the change log says little
changed: a bound on how long a write that bypassed the scripts (a repair by hand), or one a
Redis crash lost after this instance saw it, can leave its copy wrong. A stale copy can cost
a missed or a refused offer, never a double one: offers are compare-and-set in Lua."""

BUSY_STATES = frozenset({"INUSE", "BUSY", "RINGING", "RINGINUSE", "ONHOLD"})
PAUSE_UNAVAILABLE = "unavailable"


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
    dialled_number: str = ""  # what the caller dialled (agi_dnid), shown to them on a callback


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
    callback_key: str = ""  # the key that leaves a callback number ("": not offered)
    callback_number: core.CallbackNumber = field(default_factory=core.CallbackNumber)


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


@dataclass(frozen=True)
class Callback:
    """A callback the dispatcher offered to an agent: what the ``callback`` flow needs."""

    call_id: str
    agent_id: str
    number: str
    attempt: int
    ring_timeout_s: float
    caller_id: core.CallbackCallerId | None = None  # shown to the customer (None: their own)


class Telephony(Protocol):
    """What live routing asks of Asterisk (ARI in the service, a fake in tests)."""

    def originate_callback(
        self, call_id: str, agent_endpoint: str, number: str, ring_timeout_s: float
    ) -> Awaitable[Any]: ...

    def channel_exists(self, call_id: str) -> Awaitable[bool | None]: ...


# --- Lua: every state change is one script --------------------------------------------------

# The change log (see routing/live_snapshot.py): every script that changes an agent or a waiting
# call calls changed('a:<agent id>', 'c:<call id>', ...) once; the pool's version goes up by
# one and each name is recorded at it. Its keys are the last two KEYS of every script (the
# router appends them). A new log (first change, or the keys were lost) gets a new epoch, so
# readers of the old one start over; entries older than CHANGES_KEPT versions are dropped and
# the floor says so.
_LUA_HELPERS = """
local VERSION, CHANGED = KEYS[#KEYS - 1], KEYS[#KEYS]
local function changed(...)
  local v = redis.call('HINCRBY', VERSION, 'version', 1)
  if v == 1 then
    local t = redis.call('TIME')
    redis.call('HSET', VERSION, 'epoch', t[1] .. '.' .. t[2], 'floor', 0)
    redis.call('DEL', CHANGED)
  end
  for _, what in ipairs({...}) do redis.call('ZADD', CHANGED, v, what) end
  if v % 1000 == 0 then
    redis.call('ZREMRANGEBYSCORE', CHANGED, '-inf', v - CHANGES_KEPT)
    redis.call('HSET', VERSION, 'floor', v - CHANGES_KEPT)
  end
end
local function xadd(stream, ...)
  redis.call('XADD', stream, 'MAXLEN', '~', 1000000, '*', ...)
end
local function stat(key, field, n)
  redis.call('HINCRBYFLOAT', key, field, n)
  redis.call('EXPIRE', key, 864000)
end
""".replace("CHANGES_KEPT", str(CHANGES_KEPT))

# KEYS: call, waiting, seq, events ; ARGV: fields-json, now, instance, iso-time, position-event
_ENQUEUE = _LUA_HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
local fields = cjson.decode(ARGV[1])
changed('c:' .. fields['call_id'])
if status == 'waiting' or status == 'offered' then
  -- the same call again: an instance took it over after its first instance died
  redis.call('HSET', KEYS[1], 'instance', ARGV[3])
  return {1, redis.call('HGET', KEYS[1], 'seq')}
end
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

# KEYS: agent, call, waiting, offered ; ARGV: agent_id, call_id, now, why-json
_OFFER = _LUA_HELPERS + """
local a = redis.call('HGET', KEYS[1], 'status')
if a ~= 'available' then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'waiting' then return 0 end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
redis.call('HSET', KEYS[1], 'status', 'offered', 'call_id', ARGV[2], 'since', ARGV[3])
redis.call('HSET', KEYS[2], 'status', 'offered', 'agent', ARGV[1], 'offered_at', ARGV[3],
           'why', ARGV[4])
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[2])
return 1
"""

# KEYS: agent, call, waiting, stats, events
# ARGV: agent_id, call_id, outcome, now, iso, pause_reason, sl_threshold, short_abandon
_RING_RESULT = _LUA_HELPERS + """
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return 0 end
local outcome = ARGV[3]
-- The answer is reported twice: live (ARI Dial event) and when Dial returns; count it once.
if outcome == 'answered' and redis.call('HGET', KEYS[2], 'status') == 'connected' then
  return 1
end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
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
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
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
changed('c:' .. ARGV[1])
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

# KEYS: agent, events, agents ; ARGV: agent_id, action, reason, now, iso, initial-status
_AGENT = _LUA_HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
local action = ARGV[2]
-- One changed() per script, whichever of the steps below changed the agent.
local added = action == 'ensure' and redis.call('SADD', KEYS[3], ARGV[1]) == 1
if not status then
  status = ARGV[6]
  redis.call('HSET', KEYS[1], 'status', status, 'idle_since', ARGV[4], 'since', ARGV[4])
  added = true
end
local to = nil
local idle = status == 'available' or status == 'paused' or status == 'wrap_up'
if action == 'login' and status == 'logged_out' then to = 'available'
elseif action == 'logout' and idle then to = 'logged_out'
elseif action == 'pause' and idle then to = 'paused'
elseif action == 'resume' and status == 'paused' then to = 'available'
elseif action == 'wrapup_end' and status == 'wrap_up' then to = 'available'
end
if to or added then changed('a:' .. ARGV[1]) end
if action == 'ensure' and not to then return {status, 'ok'} end
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

# KEYS: call, events ; ARGV: call_id, number, now, iso
_CALLBACK_REQUEST = _LUA_HELPERS + """
if redis.call('HGET', KEYS[1], 'status') ~= 'waiting' then return 0 end
changed('c:' .. ARGV[1])
-- no instance owns it any more: whichever dispatcher wins an agent for it places it
redis.call('HSET', KEYS[1], 'callback', '1', 'callback_number', ARGV[2],
           'callback_attempts', 0, 'callback_at', ARGV[3], 'callback_next_at', 0,
           'instance', '')
xadd(KEYS[2], 'kind', 'CALLBACKREQUEST', 'time', ARGV[4], 'call_id', ARGV[1],
     'queue', redis.call('HGET', KEYS[1], 'queue'), 'number', ARGV[2])
return 1
"""

# KEYS: agent, call, waiting, stats, events
# ARGV: agent_id, call_id, step, now, iso, sl_threshold, attempts, retry_delay, detail
_CALLBACK_STEP = _LUA_HELPERS + """
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return 0 end
local status = redis.call('HGET', KEYS[2], 'status')
local now = tonumber(ARGV[4])
local queue = redis.call('HGET', KEYS[2], 'queue')
local step = ARGV[3]
if step == 'agent_answered' then
  if status ~= 'offered' then return 0 end
  changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
  local n = redis.call('HINCRBY', KEYS[2], 'callback_attempts', 1)
  redis.call('HSET', KEYS[1], 'status', 'on_call', 'since', ARGV[4])
  redis.call('HSET', KEYS[2], 'status', 'dialing')
  xadd(KEYS[5], 'kind', 'CALLBACKATTEMPT', 'time', ARGV[5], 'call_id', ARGV[2],
       'queue', queue, 'agent', ARGV[1], 'attempt', n,
       'number', redis.call('HGET', KEYS[2], 'callback_number'))
  return n
end
if status ~= 'dialing' then return 0 end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
local entered = tonumber(redis.call('HGET', KEYS[2], 'entered_at'))
if step == 'customer_answered' then
  local answered = tonumber(ARGV[9])
  redis.call('HSET', KEYS[2], 'status', 'connected', 'answered_at', answered)
  stat(KEYS[4], 'answered', 1)
  if answered - entered <= tonumber(ARGV[6]) then stat(KEYS[4], 'answered_within', 1) end
  xadd(KEYS[5], 'kind', 'CONNECT', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
       'agent', ARGV[1], 'holdtime', string.format('%.3f', answered - entered),
       'callback', '1')
  return 1
end
-- the customer did not answer (or the agent hung up first): the agent is free again, the
-- call goes back to its place, due again after the retry delay, until attempts are spent
redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[4],
           'idle_since', ARGV[4])
local n = tonumber(redis.call('HGET', KEYS[2], 'callback_attempts') or '0')
xadd(KEYS[5], 'kind', 'CALLBACKFAILED', 'time', ARGV[5], 'call_id', ARGV[2], 'queue', queue,
     'agent', ARGV[1], 'attempt', n, 'reason', ARGV[9])
if n >= tonumber(ARGV[7]) then
  redis.call('HSET', KEYS[2], 'status', 'done', 'outcome', 'callback-failed', 'agent', '',
             'ended_at', ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[2])
  stat(KEYS[4], 'abandoned', 1)
  xadd(KEYS[5], 'kind', 'EXITCALLBACKFAILED', 'time', ARGV[5], 'call_id', ARGV[2],
       'queue', queue, 'attempts', n)
  return 2
end
redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '',
           'callback_next_at', now + tonumber(ARGV[8]))
redis.call('ZADD', KEYS[3], entered, ARGV[2])
return 1
"""

# An offer nobody followed up: the agent is freed ('free': the owner died, not their fault)
# or paused missed ('missed': a callback the agent did not answer); the call keeps its place.
# KEYS: agent, call, waiting, offered, events ; ARGV: agent_id, call_id, now, iso, mode
_RELEASE = _LUA_HELPERS + """
redis.call('ZREM', KEYS[4], ARGV[2])
if redis.call('HGET', KEYS[2], 'status') ~= 'offered' then return 0 end
if redis.call('HGET', KEYS[2], 'agent') ~= ARGV[1] then return 0 end
changed('a:' .. ARGV[1], 'c:' .. ARGV[2])
local queue = redis.call('HGET', KEYS[2], 'queue')
if redis.call('HGET', KEYS[1], 'call_id') == ARGV[2] then
  if ARGV[5] == 'missed' then
    redis.call('HSET', KEYS[1], 'status', 'paused', 'pause_reason', 'missed', 'call_id', '',
               'since', ARGV[3])
    xadd(KEYS[5], 'kind', 'RINGNOANSWER', 'time', ARGV[4], 'call_id', ARGV[2],
         'queue', queue, 'agent', ARGV[1])
    xadd(KEYS[5], 'kind', 'PAUSE', 'time', ARGV[4], 'agent', ARGV[1], 'reason', 'missed')
  else
    redis.call('HSET', KEYS[1], 'status', 'available', 'call_id', '', 'since', ARGV[3])
    xadd(KEYS[5], 'kind', 'OFFERRELEASED', 'time', ARGV[4], 'call_id', ARGV[2],
         'queue', queue, 'agent', ARGV[1])
  end
end
local offered = cjson.decode(redis.call('HGET', KEYS[2], 'offered_to') or '[]')
table.insert(offered, ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'waiting', 'agent', '', 'offered_to', cjson.encode(offered))
redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[2], 'entered_at'), ARGV[2])
return 1
"""

# KEYS: call, waiting, events ; ARGV: call_id, dead-instance, now, iso
_ORPHAN = _LUA_HELPERS + """
if redis.call('HGET', KEYS[1], 'status') ~= 'waiting' then return 0 end
if redis.call('HGET', KEYS[1], 'instance') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'callback') == '1' then return 0 end
changed('c:' .. ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'done', 'outcome', 'orphaned', 'ended_at', ARGV[3])
xadd(KEYS[3], 'kind', 'EXITORPHANED', 'time', ARGV[4], 'call_id', ARGV[1],
     'queue', redis.call('HGET', KEYS[1], 'queue'), 'instance', ARGV[2])
return 1
"""

# KEYS: agent, events ; ARGV: agent_id, device-state, now, iso
_DEVICE = _LUA_HELPERS + """
local status = redis.call('HGET', KEYS[1], 'status')
local reason = redis.call('HGET', KEYS[1], 'pause_reason') or ''
local state = ARGV[2]
local busy = state == 'INUSE' or state == 'BUSY' or state == 'RINGING' or
             state == 'RINGINUSE' or state == 'ONHOLD'
local to, why = nil, ''
if busy and status == 'available' then to, why = 'paused', 'busy-elsewhere'
elseif state == 'UNAVAILABLE' and (status == 'available' or
    (status == 'paused' and reason == 'busy-elsewhere')) then to, why = 'paused', 'unavailable'
elseif state == 'NOT_INUSE' and status == 'paused' and
    (reason == 'busy-elsewhere' or reason == 'unavailable') then to = 'available'
end
if not to then return {status or '', 0} end
changed('a:' .. ARGV[1])
redis.call('HSET', KEYS[1], 'status', to, 'pause_reason', why, 'since', ARGV[3])
if to == 'available' then
  redis.call('HSET', KEYS[1], 'idle_since', ARGV[3])
  xadd(KEYS[2], 'kind', 'UNPAUSE', 'time', ARGV[4], 'agent', ARGV[1], 'reason', reason,
       'source', 'device')
else
  xadd(KEYS[2], 'kind', 'PAUSE', 'time', ARGV[4], 'agent', ARGV[1], 'reason', why,
       'source', 'device')
end
return {to, 1}
"""

# The routing state in one script call, JSON-encoded by Redis: redis-py parses RESP in Python
# (no hiredis), and parsing ~1,500 hashes' replies cost ~90 ms per snapshot in the benchmark;
# one JSON string parses in C. It is a consistent cut of the state. Given the (epoch, version)
# the reader's copy is at, it returns only the agents and calls changed since (``full`` false;
# a name whose agent left the agents set or whose call left the waiting set comes with an
# empty hash or no score); everything when the copy cannot be brought forward (see
# routing/live_snapshot.py). Agent and call keys are derived from ARGV[1] (they share the {rt}
# hash slot, as every key here does). Queue stats are read whole every time (a few hashes).
# KEYS: agents, waiting, stats..., version, changed ; ARGV: key prefix ("P{rt}:"), epoch, version
_SNAPSHOT = """
local VERSION, CHANGED = KEYS[#KEYS - 1], KEYS[#KEYS]
local log = redis.call('HMGET', VERSION, 'version', 'epoch', 'floor')
local version, epoch = log[1] or '0', log[2] or ''
local since = tonumber(ARGV[3])
local stats = {}
for i = 3, #KEYS - 2 do stats[i - 2] = redis.call('HGETALL', KEYS[i]) end
local agents, calls = {}, {}
if since >= 0 and epoch == ARGV[2] and since >= tonumber(log[3] or '0')
    and since <= tonumber(version) then
  for _, what in ipairs(redis.call('ZRANGEBYSCORE', CHANGED, '(' .. since, '+inf')) do
    local id = string.sub(what, 3)
    if string.sub(what, 1, 1) == 'a' then
      local row = {}
      if redis.call('SISMEMBER', KEYS[1], id) == 1 then
        row = redis.call('HGETALL', ARGV[1] .. 'agent:' .. id)
      end
      agents[#agents + 1] = {id, row}
    else
      calls[#calls + 1] = {id, redis.call('ZSCORE', KEYS[2], id),
                           redis.call('HGETALL', ARGV[1] .. 'call:' .. id)}
    end
  end
  return cjson.encode({full = false, version = version, epoch = epoch, agents = agents,
                       calls = calls, stats = stats})
end
for i, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  agents[i] = {id, redis.call('HGETALL', ARGV[1] .. 'agent:' .. id)}
end
local ids = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #ids, 2 do
  calls[#calls + 1] = {ids[i], ids[i + 1], redis.call('HGETALL', ARGV[1] .. 'call:' .. ids[i])}
end
return cjson.encode({full = true, version = version, epoch = epoch, agents = agents,
                     calls = calls, stats = stats})
"""

# KEYS: version, changed ; ARGV: names ('a:<agent id>', 'c:<call id>', ...)
_MARK_CHANGED = _LUA_HELPERS + """
changed(unpack(ARGV))
return 1
"""


def _iso(now: float) -> str:
    return event_fields("X", now)["time"]


def _with_change_log(script: Any, log_keys: list[str]) -> Callable[..., Awaitable[Any]]:
    """The registered script, called with the change log's keys after its own (every script
    finds them as its last two KEYS), so no caller can leave them out."""

    def run(*, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        return script(keys=[*keys, *log_keys], args=args)

    return run


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
        telephony: Telephony | None = None,
    ) -> None:
        self.redis = redis
        self.config = config
        self.instance = instance
        self.prefix = prefix
        self.clock = clock
        self.autologin = autologin
        self.telephony = telephony
        self.decisions: list[dict[str, Any]] = []  # the last few, for the API and the log
        # Calls whose AGI session runs in this process: the orphan sweep leaves them alone
        # even when they carry this instance's name from an earlier life of the process.
        self.local_calls: set[str] = set()
        self._last_sweep = float("-inf")
        self._copy = PoolCopy()  # this instance's copy of the shared state (live_snapshot.py)
        self._copy_lock = asyncio.Lock()  # one read at a time brings the copy forward
        log_keys = [self._k("version"), self._k("changed")]
        self._scripts = {
            name: _with_change_log(redis.register_script(source), log_keys)
            for name, source in (
                ("enqueue", _ENQUEUE), ("offer", _OFFER), ("ring_result", _RING_RESULT),
                ("complete", _COMPLETE), ("leave", _LEAVE), ("agent", _AGENT),
                ("callback_request", _CALLBACK_REQUEST), ("callback_step", _CALLBACK_STEP),
                ("release", _RELEASE), ("orphan", _ORPHAN), ("device", _DEVICE),
                ("snapshot", _SNAPSHOT), ("mark_changed", _MARK_CHANGED),
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
            await self._scripts["agent"](
                keys=[self._k("agent", agent_id), self.events_key, self._k("agents")],
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
            keys=[self._k("agent", agent_id), self.events_key, self._k("agents")],
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
            "dialled_number": call.dialled_number,
        }
        self.local_calls.add(call.call_id)
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
            callback_key=queue.callback.key if queue.callback.enabled else "",
            callback_number=queue.callback.number,
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

    async def ring_result(
        self, call_id: str, agent_id: str, outcome: str, at: float | None = None
    ) -> bool:
        """What happened when the agent's phone rang (answered, no_answer, busy, rejected,
        unavailable, caller_gone); ``at``: when it happened, if not now (the moment of the
        answer, which the speed of answer and the service level are measured to)."""
        reason = {
            "no_answer": core.PAUSE_MISSED,
            "rejected": core.PAUSE_REJECTED,
            "busy": core.PAUSE_BUSY_ELSEWHERE,
            "unavailable": "unavailable",
        }.get(outcome, "")
        now = self.clock() if at is None else at
        queue = await self._queue_of(call_id)
        target = queue.service_level if queue else core.ServiceLevelTarget()
        done = await self._scripts["ring_result"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, outcome, now, _iso(now), reason, target.threshold_s,
                  target.short_abandon_s],
        )
        if outcome == "caller_gone":
            self.local_calls.discard(call_id)
        if outcome not in ("answered", "caller_gone"):
            log.info("call %s: agent %s %s -> paused (%s), call back to its place",
                     call_id, agent_id, outcome, reason)
        return bool(done)

    async def answered(self, call_id: str, at: float | None = None) -> bool:
        """The agent offered this call answered (ARI ``Dial`` event, live): CONNECT now, the
        agent on call, while the conversation runs."""
        agent_id = _s(await self.redis.hget(self._k("call", call_id), "agent"))
        if not agent_id:
            return False
        return await self.ring_result(call_id, agent_id, "answered", at)

    async def completed(self, call_id: str, agent_id: str, by: str) -> bool:
        """The conversation ended (``by`` who hung up first: agent or caller)."""
        self.local_calls.discard(call_id)
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
        if kind != "EXITWITHTIMEOUT":
            self.local_calls.discard(call_id)
        now = self.clock()
        queue = await self._queue_of(call_id)
        target = queue.service_level if queue else core.ServiceLevelTarget()
        done = await self._scripts["leave"](
            keys=[self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[call_id, stage, now, _iso(now), target.short_abandon_s, kind, destination],
        )
        return bool(done)

    # --- callbacks (virtual hold) ---------------------------------------------------------------

    async def request_callback(self, call_id: str, number: str) -> bool:
        """The waiting caller leaves ``number`` and hangs up; the call keeps its place.
        False when it is no longer waiting (an agent was offered it in the meantime)."""
        now = self.clock()
        done = await self._scripts["callback_request"](
            keys=[self._k("call", call_id), self.events_key],
            args=[call_id, number, now, _iso(now)],
        )
        if done:
            self.local_calls.discard(call_id)
        return bool(done)

    async def callback_offer(self, call_id: str) -> Callback | None:
        """The callback as offered to its agent (``None`` unless it is offered or dialing)."""
        row = await self.redis.hgetall(self._k("call", call_id))
        if _s(row.get(b"callback")) != "1" or _s(row.get(b"status")) not in (
            "offered", "dialing"
        ):
            return None
        queue = self.config().queues.get(_s(row.get(b"queue")))
        policy = queue.callback if queue else core.CallbackPolicy()
        return Callback(
            call_id=call_id, agent_id=_s(row.get(b"agent")),
            number=_s(row.get(b"callback_number")),
            attempt=int(_f(row.get(b"callback_attempts"))),
            ring_timeout_s=policy.ring_timeout_s,
            caller_id=policy.presented(_s(row.get(b"dialled_number"))),
        )

    async def callback_step(
        self, call_id: str, agent_id: str, step: str, detail: str | float = ""
    ) -> int:
        """``agent_answered`` (returns the attempt number), ``customer_answered`` (detail:
        when, epoch seconds) or ``customer_failed`` (detail: why; returns 2 when the attempts
        are spent and the callback is given up, 1 when it will be retried). 0: refused."""
        now = self.clock()
        queue = await self._queue_of(call_id)
        policy = queue.callback if queue else core.CallbackPolicy()
        target = queue.service_level if queue else core.ServiceLevelTarget()
        done = await self._scripts["callback_step"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, step, now, _iso(now), target.threshold_s, policy.attempts,
                  policy.retry_delay_s, detail],
        )
        return int(done)

    async def callback_unanswered(self, call_id: str) -> bool:
        """The agent's leg of a callback ended unanswered (ARI ``ChannelDestroyed``): if the
        offer still stands the agent is paused missed and the callback is back at its place.
        A no-op once the agent answered, and when another instance already did it."""
        row = await self.redis.hmget(self._k("call", call_id), "status", "agent", "callback")
        status, agent_id, callback = (_s(v) for v in row)
        if status != "offered" or callback != "1":
            return False
        now = self.clock()
        return bool(await self._scripts["release"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._k("offered"), self.events_key],
            args=[agent_id, call_id, now, _iso(now), "missed"],
        ))

    async def waiting_call(self, call_id: str) -> dict[str, str] | None:
        """The call's record if it is queued (waiting or offered) and not a callback: a call
        re-entering through the backup instance resumes it instead of starting over."""
        row = await self.redis.hgetall(self._k("call", call_id))
        fields = {_s(k): _s(v) for k, v in row.items()}
        if fields.get("status") not in ("waiting", "offered") or fields.get("callback") == "1":
            return None
        return fields

    # --- softphone availability -----------------------------------------------------------------

    def agent_for_device(self, device: str) -> str | None:
        """The agent whose softphone endpoint is ``device`` (e.g. ``PJSIP/agent101``)."""
        for agent_id, profile in self.config().agents.items():
            if profile.endpoint == device:
                return agent_id
        return None

    async def device_state(self, agent_id: str, state: str) -> str | None:
        """Apply a softphone device state (ARI ``DeviceStateChanged``); the agent's new status
        when it changed, else ``None``."""
        now = self.clock()
        to, changed = await self._scripts["device"](
            keys=[self._k("agent", agent_id), self.events_key],
            args=[agent_id, state, now, _iso(now)],
        )
        if int(changed):
            log.info("agent %s: softphone %s -> %s", agent_id, state, _s(to))
            return _s(to)
        return None

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
        return (await self._read())[0]

    async def _read(self) -> tuple[core.Snapshot, dict[str, tuple[bool, str]], list[str]]:
        """The snapshot, per waiting call (callback?, owning instance), and the agents whose
        wrap-up is over. A callback not due yet (retry delay) is left out of the snapshot:
        nobody may be offered it.

        Only what changed since this instance's last read crosses the wire (the change log,
        ``routing/live_snapshot.py``); all of it on the first read, when the log cannot bring
        the copy forward, and every :data:`FULL_READ_EVERY_S`."""
        cfg = self.config()
        now = self.clock()
        stats_keys = [self._stats_key(name, now) for name in cfg.queues]
        async with self._copy_lock:
            copy = self._copy
            epoch, version = copy.since()
            if now - copy.full_at >= FULL_READ_EVERY_S:
                version = -1
            try:
                raw = await self._scripts["snapshot"](
                    keys=[self._k("agents"), self._k("waiting"), *stats_keys],
                    args=[self._k(""), epoch, version],
                )
                state = json.loads(raw)
                copy.apply(state, now)
            except BaseException:
                copy.reset()  # whatever Redis did meanwhile (a restart?): read it all next time
                raise
            agents, calls, meta, wrapped_up = copy.build(cfg, now)
        # A call whose instance died has nobody to ring the agent for it: it is not offered
        # (the agent would be blocked for a ring timeout) until the backup instance takes it
        # over (enqueue names the new owner) or the sweep removes it.
        owners = sorted({owner for callback, owner in meta.values()
                         if not callback and owner and owner != self.instance})
        if owners:
            pipe = self.redis.pipeline(transaction=False)
            for owner in owners:
                pipe.exists(self._k("instance", owner))
            dead = {o for o, up in zip(owners, await pipe.execute(), strict=True) if not up}
            if dead:
                calls = [c for c in calls if meta[c.call_id][1] not in dead]
        rows = [_pairs(flat) for flat in state["stats"] or ()]
        stats = {}
        for name, row in zip(cfg.queues, rows, strict=True):
            stats[name] = core.QueueStats(
                answered=int(_f(row.get("answered"))),
                answered_within=int(_f(row.get("answered_within"))),
                abandoned=int(_f(row.get("abandoned"))),
                abandoned_short=int(_f(row.get("abandoned_short"))),
                overflowed=int(_f(row.get("overflowed"))),
                handled=int(_f(row.get("handled"))),
                handle_time_total=_f(row.get("handle_time_total")),
            )
        snapshot = core.Snapshot(
            now=now, agents=agents, calls=calls, stats=stats,
            off_schedule=core.agents_off_schedule(cfg, now),
        )
        return snapshot, meta, wrapped_up

    async def dispatch(self) -> list[core.Assignment]:
        """One round: end finished wrap-ups, overflow overdue calls, make the core's offers."""
        cfg = self.config()
        await self.redis.set(self._k("instance", self.instance), "1", ex=HEARTBEAT_TTL_S)
        snapshot, meta, wrapped_up = await self._read()
        for agent_id in wrapped_up:
            await self.agent_action(agent_id, "wrapup_end")
        for call, destination in core.overdue_calls(snapshot, cfg):
            if meta.get(call.call_id, (False, ""))[0]:
                continue  # nobody holds the line: a callback waits for its turn, however long
            log.info("call %s waited %.0f s in %s: overflow to %s", call.call_id,
                     snapshot.now - call.entered_at, call.queue, destination)
            await self.overflowed(call.call_id, destination)
        made = []
        for assignment in core.decide(snapshot, cfg):
            why = assignment.why.as_dict()
            ok = await self._scripts["offer"](
                keys=[self._k("agent", assignment.agent_id), self._k("call", assignment.call_id),
                      self._k("waiting"), self._k("offered")],
                args=[assignment.agent_id, assignment.call_id, snapshot.now, json.dumps(why)],
            )
            if ok:
                made.append(assignment)
                record = {"call_id": assignment.call_id, "agent": assignment.agent_id,
                          "instance": self.instance, **why}
                self.decisions = [*self.decisions[-99:], record]
                log.info("offer call %s to agent %s: %s", assignment.call_id,
                         assignment.agent_id, why["reason"])
                if meta.get(assignment.call_id, (False, ""))[0]:
                    # our offer script won the agent: this instance, and only it, places it
                    await self._place_callback(assignment.call_id)
        if snapshot.now - self._last_sweep >= SWEEP_EVERY_S:
            self._last_sweep = snapshot.now
            await self.sweep(meta)
        return made

    async def _place_callback(self, call_id: str) -> None:
        offer = await self.callback_offer(call_id)
        if offer is None:
            return
        profile = self.config().agents.get(offer.agent_id)
        if self.telephony is None or profile is None:
            log.warning("callback %s: no way to place it here; left to the sweep", call_id)
            return
        try:
            queue = await self._queue_of(call_id)
            await self.telephony.originate_callback(
                call_id, profile.endpoint, offer.number, queue.ring_timeout_s if queue else 15.0
            )
            log.info("callback %s: ringing agent %s first, then %s", call_id, offer.agent_id,
                     offer.number)
        except Exception as exc:  # Asterisk said no: the agent is unreachable
            log.warning("callback %s: originate to %s failed: %s", call_id, profile.endpoint, exc)
            await self.ring_result(call_id, offer.agent_id, "unavailable")

    async def sweep(self, meta: Mapping[str, tuple[bool, str]] | None = None) -> None:
        """Free offers nobody followed up; remove waiting calls orphaned by a dead instance."""
        cfg = self.config()
        now = self.clock()
        if meta is None:
            meta = (await self._read())[1]
        alive: dict[str, bool] = {self.instance: True}

        async def is_alive(instance: str) -> bool:
            if instance not in alive:
                alive[instance] = bool(await self.redis.exists(self._k("instance", instance)))
            return alive[instance]

        for raw, offered_at in await self.redis.zrange(self._k("offered"), 0, -1,
                                                       withscores=True):
            call_id = _s(raw)
            row = await self.redis.hmget(self._k("call", call_id), "status", "agent", "queue",
                                         "instance", "callback")
            status, agent_id, queue_name, instance, callback = (_s(v) for v in row)
            if status != "offered":
                await self.redis.zrem(self._k("offered"), call_id)
                continue
            queue = cfg.queues.get(queue_name)
            ring = queue.ring_timeout_s if queue else 15.0
            if now - offered_at < ring + OFFER_GRACE_S:
                continue
            if callback == "1":
                mode = "missed"  # the agent's phone rang out and nobody took the callback
            elif not await is_alive(instance):
                mode = "free"
            else:
                continue
            await self._scripts["release"](
                keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                      self._k("offered"), self.events_key],
                args=[agent_id, call_id, now, _iso(now), mode],
            )
            log.info("call %s: offer to %s released (%s)", call_id, agent_id, mode)
            if mode == "free":
                meta = {**meta, call_id: (False, instance)}  # waiting again: orphan check below
        if self.telephony is None:
            return
        for call_id, (callback, instance) in meta.items():
            if callback or call_id in self.local_calls:
                continue
            if instance != self.instance and await is_alive(instance):
                continue
            if await self.telephony.channel_exists(call_id) is not False:
                continue  # still up (re-entering through the backup), or Asterisk unreachable
            if await self._scripts["orphan"](
                keys=[self._k("call", call_id), self._k("waiting"), self.events_key],
                args=[call_id, instance, now, _iso(now)],
            ):
                log.info("call %s: orphaned by dead instance %s, removed", call_id, instance)

    async def mark_changed(self, agents: Iterable[str] = (), calls: Iterable[str] = ()) -> None:
        """Record in the change log that these agents' or calls' hashes (or their place in the
        agents or waiting set) were written outside the scripts (a benchmark, a repair by
        hand), so every instance's next snapshot reads them again."""
        names = [*(f"a:{a}" for a in agents), *(f"c:{c}" for c in calls)]
        if names:
            await self._scripts["mark_changed"](keys=[], args=names)

    async def agents(self) -> dict[str, dict[str, str]]:
        """Every agent's live hash (for the API and the wallboard), plus ``schedule``: ``on``,
        or ``off`` outside the agent's schedule (never offered a call then)."""
        cfg = self.config()
        off = core.agents_off_schedule(cfg, self.clock())
        out = {}
        for agent_id in cfg.agents:
            row = await self.redis.hgetall(self._k("agent", agent_id))
            out[agent_id] = {_s(k): _s(v) for k, v in row.items()}
            out[agent_id]["schedule"] = "off" if agent_id in off else "on"
        return out
