"""The sweep across instances: what a dead instance or an unanswered callback leaves behind.

Cleanup across instances (every :data:`SWEEP_EVERY_S`): an offer nobody followed up within
ring timeout + :data:`OFFER_GRACE_S` (its instance died, or the agent never answered a
callback) is released, the call back at its place; a waiting call whose instance is dead and
whose channel Asterisk no longer has is removed (event ``EXITORPHANED``).

Every instance's dispatcher sweeps; the scripts make that safe: releasing
an offer and removing an orphan are compare-and-set in Lua, so two sweeps never do it twice.
A mixin of :class:`routing.live.LiveRouter`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Mapping
from typing import Protocol

from routing import core
from routing.live_snapshot import _s
from routing.scripts import Orphaned, ScriptCaller, event_time, result

log = logging.getLogger(__name__)

OFFER_GRACE_S = 5.0
"""Beyond the ring timeout, how long an offer may stay unanswered before the sweep frees it."""

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

    async def _read(self) -> tuple[core.Snapshot, dict[str, tuple[bool, str]], list[str]]: ...


class Sweep:
    """The sweep of the live router (mixed into ``routing.live.LiveRouter``)."""

    async def sweep(self: RouterState, meta: Mapping[str, tuple[bool, str]] | None = None) -> None:
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

