"""The sweep across instances: what a dead instance, an unanswered callback or a report lost
while Redis was away leaves behind.

Cleanup across instances (every :data:`SWEEP_EVERY_S`): an offer nobody followed up within
ring timeout + :data:`OFFER_GRACE_S` (its instance died, or the agent never answered a
callback) is released, the call back at its place; a waiting call whose instance is dead and
whose channel Asterisk no longer has is removed (event ``EXITORPHANED``).

Reconciling with Asterisk: Redis holds what routing was told, Asterisk knows which calls
still exist. A report of how a call ended can be lost: Redis was down when the call flow
made it, the instance died, or a Redis crash lost its last second of writes. Then an agent
stays ``offered`` or ``on_call`` on a call that is over, and is never offered another. So,
as Asterisk's app_queue takes a member's availability from the device rather than from its
own bookkeeping, and wazo-calld rebuilds its view of calls from ARI's channels, the sweep
asks ARI about the calls routing still holds an agent on and nobody here reports on:

- an offer past ring timeout + grace whose instance lives but whose caller's channel is gone
  ends as the caller hanging up while it rang (``ABANDON``, stage ``ringing``; the agent free);
- a connected call that is not a call flow's of this process (it ended here, its flow's
  report failed, or it belongs to an earlier life of this instance or to a dead one) whose
  channel (the caller's; a callback's agent leg) has been gone for :data:`OFFER_GRACE_S`
  is completed as of when it was first found gone (``COMPLETECALLER``, or ``COMPLETEAGENT``
  for a callback, with ``source=sweep``: the leg found gone; who hung up first is not
  known), the queue's wrap-up counted from then. The grace leaves the call flow time to
  report it first, with what it knows.

Only calls in those states cost an ARI request, not every call in progress. An instance
that lives reconciles its own calls; a dead one's are anyone's. Every instance's dispatcher
sweeps; the scripts make that safe: releasing an offer, removing an orphan and completing
a call are compare-and-set in Lua, so two sweeps (or a sweep and a late report) never do it
twice, and a completion applied late never frees an agent who is on their next call.
A mixin of :class:`routing.live.LiveRouter`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from callbacks.live import CALLBACK_CHANNEL
from routing import core
from routing.live_snapshot import _s
from routing.scripts import Orphaned, ScriptCaller, event_time, result

log = logging.getLogger(__name__)

OFFER_GRACE_S = 5.0
"""Beyond the ring timeout, how long an offer may stay unanswered before the sweep frees it;
also how long a connected call's channel must be gone before the sweep completes it."""

SWEEP_EVERY_S = 2.0
"""How often a dispatcher looks for stale offers and orphaned calls."""


class Channels(Protocol):
    """What the sweep asks of Asterisk (``routing.live.Telephony`` has it)."""

    def channel_exists(self, call_id: str) -> Awaitable[bool | None]: ...


class RouterState(ScriptCaller, Protocol):
    """What the sweep uses of the router it is mixed into."""

    @property
    def instance(self) -> str: ...
    @property
    def telephony(self) -> Channels | None: ...
    @property
    def channels_gone(self) -> dict[str, float]:
        """Channels of connected calls found gone, with when they were first found gone."""
        ...

    async def _read(self) -> tuple[core.Snapshot, dict[str, tuple[bool, str]], list[str]]: ...
    async def ring_result(
        self, call_id: str, agent_id: str, outcome: str, at: float | None = None
    ) -> bool: ...
    async def completed(
        self, call_id: str, agent_id: str, by: str, source: str = "", at: float | None = None
    ) -> bool: ...


class Sweep:
    """The sweep of the live router (mixed into ``routing.live.LiveRouter``)."""

    async def sweep(
        self: RouterState,
        meta: Mapping[str, tuple[bool, str]] | None = None,
        agents: Mapping[str, core.AgentState] | None = None,
    ) -> None:
        """Free offers nobody followed up; remove waiting calls orphaned by a dead instance;
        end the calls routing holds an agent on and Asterisk no longer has. ``meta`` and
        ``agents``: the round's (:meth:`routing.live.LiveRouter._read`), read if not given."""
        cfg = self.config()
        now = self.clock()
        if meta is None or agents is None:
            snapshot, meta, _ = await self._read()
            agents = snapshot.agents
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
                # Its instance lives, and the ring is over: only a lost report leaves it here.
                if self.telephony is not None and (
                    await self.telephony.channel_exists(call_id) is False
                ):
                    await self.ring_result(call_id, agent_id, "caller_gone", now)
                    log.info("call %s: gone while offered to %s, unreported; settled",
                             call_id, agent_id)
                continue
            await self._scripts["release"](
                keys=[self._k("agent", agent_id), self._k("call", call_id), self._k("waiting"),
                      self._k("offered"), self.events_key],
                args=[agent_id, call_id, now, event_time(now), mode],
            )
            log.info("call %s: offer to %s released (%s)", call_id, agent_id, mode)
            if mode == "free":
                meta = {**meta, call_id: (False, instance)}  # waiting again: orphan check below
        if self.telephony is None:
            return
        for call_id, (is_callback, instance) in meta.items():
            if is_callback or call_id in self.local_calls:
                continue
            if instance != self.instance and await is_alive(instance):
                continue
            if await self.telephony.channel_exists(call_id) is not False:
                continue  # still up (re-entering through the backup), or Asterisk unreachable
            orphaned = await self._scripts["orphan"](
                keys=[self._k("call", call_id), self._k("waiting"), self.events_key],
                args=[call_id, instance, now, event_time(now)],
            )
            if result(Orphaned, orphaned) is Orphaned.REMOVED:
                log.info("call %s: orphaned by dead instance %s, removed", call_id, instance)
        await _end_calls_that_are_gone(self, agents, is_alive, now)


async def _end_calls_that_are_gone(
    router: RouterState,
    agents: Mapping[str, core.AgentState],
    is_alive: Callable[[str], Awaitable[bool]],
    now: float,
) -> None:
    """Complete the connected calls nobody here reports on whose channel has been gone for
    :data:`OFFER_GRACE_S` (module docstring)."""
    telephony = router.telephony
    if telephony is None:
        return
    # Agents on a call whose flow does not run here (its calls' end comes from the flow).
    busy = [(agent.agent_id, agent.call_id) for agent in agents.values()
            if agent.status is core.AgentStatus.ON_CALL and agent.call_id
            and agent.call_id not in router.local_calls]
    pipe = router.redis.pipeline(transaction=False)
    for _, call_id in busy:
        pipe.hmget(router._k("call", call_id), "status", "agent", "instance", "callback")
    rows = await pipe.execute() if busy else []
    gone: dict[str, float] = {}
    for (on_call, call_id), row in zip(busy, rows, strict=True):
        status, agent_id, instance, callback = (_s(v) for v in row)
        if status != "connected" or agent_id != on_call:
            continue
        is_callback = callback == "1"
        if not is_callback and instance != router.instance and await is_alive(instance):
            continue  # a live instance reconciles its own calls
        channel = f"{CALLBACK_CHANNEL}{call_id}" if is_callback else call_id
        if await telephony.channel_exists(channel) is not False:
            continue  # still talking, or Asterisk cannot tell: never end a call on a guess
        gone[channel] = since = router.channels_gone.get(channel, now)
        if now - since < OFFER_GRACE_S:
            continue
        by = "agent" if is_callback else "caller"
        # It ended before it was first found gone: its time, and the wrap-up's start.
        if await router.completed(call_id, agent_id, by=by, source="sweep", at=since):
            log.warning("call %s: over in Asterisk with agent %s still on it in routing (its "
                        "end was never reported); completed", call_id, agent_id)
        del gone[channel]
    router.channels_gone.clear()
    router.channels_gone.update(gone)
