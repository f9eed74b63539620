"""Live routing: the shared state in Redis, changed atomically, and the dispatcher.

Several ``ivr serve`` instances (behind one or more Asterisk servers) share one agent pool.
Every change to an agent or a waiting call is one Lua script, so two instances can never
offer one agent two calls: the ``offer`` script is a compare-and-set on both the agent
(``available``) and the call (``waiting``). Each instance runs the same dispatcher: it reads a
snapshot, asks the pure core (:func:`routing.core.decide`) who gets which call, and tries the
offers; an offer that lost a race to another instance is simply skipped.
The scripts are files in ``routing/lua/`` (loaded by ``routing/scripts.py``), each answering
a named result.

Callbacks (virtual hold) keep the caller's place in the waiting set: ``callbacks/live.py``
(mixed into :class:`LiveRouter`) and its scripts in ``callbacks/``.

Cleanup across instances (offers nobody followed up, calls orphaned by a dead instance) and
reconciling with Asterisk (an agent left on a call whose end was never reported, e.g. while
Redis was away): ``routing/live_sweep.py``.

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
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callbacks.live import SCRIPTS as CALLBACK_SCRIPTS
from callbacks.live import Callback as Callback  # re-exported: the flows import it from here
from callbacks.live import CallbackRouting
from events import events_key_for
from routing import core
from routing.live_snapshot import PoolCopy, _f, _pairs, _s
from routing.live_sweep import OFFER_GRACE_S as OFFER_GRACE_S  # re-exported
from routing.live_sweep import SWEEP_EVERY_S, Sweep
from routing.numbers import CALLER, NumberCipher, PlainNumbers, sealed
from routing.scripts import CHANGES_KEPT as CHANGES_KEPT  # re-exported
from routing.scripts import (
    SCRIPTS,
    AgentActed,
    Completed,
    DeviceChanged,
    Enqueued,
    Left,
    Offered,
    Rang,
    event_time,
    result,
)

log = logging.getLogger(__name__)

STORE_AWAY: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""What the router's calls raise while Redis cannot be reached (refused, reset, no answer
within the socket timeout; ``OSError`` covers the builtin ConnectionError and TimeoutError):
a call flow waits and asks again rather than end the call."""

HEARTBEAT_TTL_S = 6
"""An instance that has not refreshed its heartbeat for this long is considered dead."""

FULL_READ_EVERY_S = 60.0
"""A dispatcher reads the whole state at least this often even when the change log says little
changed: a bound on how long a write that bypassed the scripts (a repair by hand) can leave
its copy wrong. (A Redis that crashed and came back without its last writes is another
redis-server process, which the log's epoch as readers see it names: copies are read whole
at once then.) A stale copy can cost a missed or a refused offer, never a double one: offers
are compare-and-set in Lua."""

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
    # The queue's own bound on a wait (``max_wait_s``; None: none): while Redis cannot be
    # reached the flow keeps the caller in line at most this long, then overflows them.
    max_wait_s: float | None = None


@dataclass(frozen=True)
class Offer:
    """Ring ``endpoint`` for ``ring_timeout_s`` (kind ``agent``) or leave (kind ``overflow``);
    kind ``lost``: the store has no record of the call it queued (a Redis crash lost its
    last acknowledged writes, or a failover to a replica without them), so no dispatcher will
    ever offer it: the flow queues it again, at its place."""

    kind: str
    agent_id: str = ""
    endpoint: str = ""
    ring_timeout_s: float = 15.0
    destination: str = ""


@dataclass(frozen=True)
class CallStatus:
    position: int
    estimated_wait_s: float | None


class Telephony(Protocol):
    """What live routing asks of Asterisk (ARI in the service, a fake in tests)."""

    def originate_callback(
        self, call_id: str, agent_endpoint: str, number: str, ring_timeout_s: float
    ) -> Awaitable[Any]: ...

    def channel_exists(self, call_id: str) -> Awaitable[bool | None]: ...



def _with_change_log(
    script: Callable[..., Awaitable[Any]], log_keys: list[str]
) -> Callable[..., Awaitable[Any]]:
    """The registered script, called with the change log's keys after its own (every script
    finds them as its last two KEYS), so no caller can leave them out."""

    def run(*, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        return script(keys=[*keys, *log_keys], args=args)

    return run


#: The hash tag of every routing key: one Redis Cluster slot, so every script stays atomic.
ROUTING_TAG = "rt"


def _day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class LiveRouter(CallbackRouting, Sweep):
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
        cluster: bool = False,
        numbers: NumberCipher | None = None,
    ) -> None:
        self.redis = redis
        self.cluster = cluster
        # Seals the caller's and the callback numbers before Redis and the events see them.
        self.numbers: NumberCipher = numbers if numbers is not None else PlainNumbers()
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
        self.channels_gone: dict[str, float] = {}  # the sweep's: channel -> first seen gone
        self._copy = PoolCopy()  # this instance's copy of the shared state (live_snapshot.py)
        self._copy_lock = asyncio.Lock()  # one read at a time brings the copy forward
        log_keys = [self._k("version"), self._k("changed")]
        self._scripts = {
            name: _with_change_log(redis.register_script(source), log_keys)
            for name, source in {**SCRIPTS, **CALLBACK_SCRIPTS}.items()
        }

    # --- keys ---------------------------------------------------------------------------------

    def _k(self, *parts: str) -> str:
        return f"{self.prefix}{{{ROUTING_TAG}}}:" + ":".join(parts)

    @property
    def events_key(self) -> str:
        """``hotline:events`` on one Redis; on a cluster the ``{rt}`` slot's outbox, which
        ``events.relay`` drains into it (a script may not write outside its slot)."""
        return events_key_for(ROUTING_TAG, cluster=self.cluster, prefix=self.prefix)

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
                args=[agent_id, "ensure", "", now, event_time(now), initial],
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
            args=[agent_id, action, reason, now, event_time(now), "logged_out"],
        )
        return _s(status), result(AgentActed, verdict) is AgentActed.OK

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
            "caller_number": sealed(self.numbers, call.call_id, CALLER, call.caller_number),
            "language": call.language or "",
            "dialled_number": call.dialled_number,
        }
        self.local_calls.add(call.call_id)
        entered, _seq = await self._scripts["enqueue"](
            keys=[self._k("call", call.call_id), self._k("waiting"), self._k("seq"),
                  self.events_key],
            args=[json.dumps(fields), call.entered_at, self.instance, event_time(call.entered_at)],
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
            resumed=result(Enqueued, entered) is Enqueued.RESUMED,
            callback_key=queue.callback.key if queue.callback.enabled else "",
            callback_number=queue.callback.number,
            max_wait_s=queue.max_wait_s,
        )

    async def poll(self, call_id: str) -> Offer | None:
        """The offer for this call, if the dispatcher made one; ``None`` while it waits."""
        fields = await self.redis.hgetall(self._k("call", call_id))
        if not fields:
            return Offer(kind="lost")
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
        rang = await self._scripts["ring_result"](
            keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, outcome, now, event_time(now), reason, target.threshold_s,
                  target.short_abandon_s],
        )
        if outcome == "caller_gone":
            self.local_calls.discard(call_id)
        if outcome not in ("answered", "caller_gone"):
            log.info("call %s: agent %s %s -> paused (%s), call back to its place",
                     call_id, agent_id, outcome, reason)
        return result(Rang, rang) is not Rang.NOT_OFFERED

    async def answered(self, call_id: str, at: float | None = None) -> bool:
        """The agent offered this call answered (ARI ``Dial`` event, live): CONNECT now, the
        agent on call, while the conversation runs."""
        agent_id = _s(await self.redis.hget(self._k("call", call_id), "agent"))
        if not agent_id:
            return False
        return await self.ring_result(call_id, agent_id, "answered", at)

    async def completed(
        self, call_id: str, agent_id: str, by: str, source: str = "", at: float | None = None
    ) -> bool:
        """The conversation ended (``by`` who hung up first: agent or caller); ``at``: when,
        if not now (wrap-up counts from then). ``source``: ``sweep`` when the sweep, not the
        call flow, found it over (``routing/live_sweep.py``). Applied once: a second report
        finds the call no longer connected and changes nothing, so it never frees an agent
        who is on their next call."""
        self.local_calls.discard(call_id)
        now = self.clock() if at is None else at
        queue = await self._queue_of(call_id)
        done = await self._scripts["complete"](
            keys=[self._k("agent", agent_id), self._k("call", call_id),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[agent_id, call_id, by, now, event_time(now), queue.wrapup_s if queue else 0,
                  source],
        )
        return result(Completed, done) is Completed.COMPLETED

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
        left = await self._scripts["leave"](
            keys=[self._k("call", call_id), self._k("waiting"),
                  self._stats_key(queue.name if queue else "?", now), self.events_key],
            args=[call_id, stage, now, event_time(now), target.short_abandon_s, kind, destination],
        )
        return result(Left, left) in (Left.LEFT, Left.ABANDONED_BEFORE_QUEUE)

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
            args=[agent_id, state, now, event_time(now)],
        )
        if result(DeviceChanged, changed) is DeviceChanged.CHANGED:
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
            offered = await self._scripts["offer"](
                keys=[self._k("agent", assignment.agent_id), self._k("call", assignment.call_id),
                      self._k("waiting"), self._k("offered")],
                args=[assignment.agent_id, assignment.call_id, snapshot.now, json.dumps(why)],
            )
            if result(Offered, offered) is Offered.OFFERED:
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
            await self.sweep(meta, snapshot.agents)
        return made

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
