"""Builders for tests of code that uses the routing core (ours and the shells').

Small, explicit configs and states, so a test shows the whole situation it pins down.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from routing import core
from routing.skills import parse


def queue(
    name: str,
    skills: str = "general",
    *,
    target: float = 0.8,
    threshold_s: float = 20.0,
    aht_s: float = 180.0,
    wrapup_s: float = 0.0,
    max_wait_s: float | None = None,
    overflow: str | None = None,
    max_length: int | None = None,
) -> core.QueueConfig:
    """A queue with the given skills and service-level target."""
    return core.QueueConfig(
        name=name,
        skills=parse(skills),
        service_level=core.ServiceLevelTarget(target, threshold_s),
        max_wait_s=max_wait_s,
        overflow=overflow,
        max_length=max_length,
        wrapup_s=wrapup_s,
        aht_s=aht_s,
    )


def rule(
    request_type: str,
    queue_name: str,
    steps: Sequence[tuple[str, float | None]],
    *,
    priority: int = 0,
    urgency_boost: Mapping[str, int] | None = None,
    vip_boost: int = 5,
) -> core.Rule:
    """A rule from ``(expression, timeout_s)`` pairs."""
    return core.Rule(
        request_type=request_type,
        queue=queue_name,
        steps=tuple(core.Step(parse(expr), timeout) for expr, timeout in steps),
        priority=priority,
        urgency_boost=dict(urgency_boost if urgency_boost is not None else {"urgent": 10}),
        vip_boost=vip_boost,
    )


def config(
    queues: Sequence[core.QueueConfig],
    rules: Sequence[core.Rule],
    *,
    agents: Sequence[core.AgentProfile] = (),
    timezone: str | None = None,
) -> core.RoutingConfig:
    """A routing config; the first rule doubles as the ``other`` fallback if none is given.
    ``timezone``: an IANA name for the agents' schedules (``None``: the machine's zone)."""
    by_type = {r.request_type: r for r in rules}
    fallback = "other" if "other" in by_type else rules[0].request_type
    return core.RoutingConfig(
        queues={q.name: q for q in queues},
        rules=by_type,
        agents={p.agent_id: p for p in agents},
        fallback_request_type=fallback,
        timezone=ZoneInfo(timezone) if timezone else None,
    )


def profile(
    agent_id: str,
    skills: Mapping[str, int],
    schedule: Mapping[int, Sequence[tuple[int, int]]] | None = None,
) -> core.AgentProfile:
    """An agent as configured; ``schedule``: weekday (0 = Monday) to minute intervals."""
    return core.AgentProfile(
        agent_id, agent_id, f"PJSIP/{agent_id}", dict(skills),
        schedule={day: tuple(spans) for day, spans in (schedule or {}).items()},
    )


def agent(
    agent_id: str,
    skills: Mapping[str, int],
    *,
    status: core.AgentStatus = core.AgentStatus.AVAILABLE,
    idle_since: float = 0.0,
    languages: Sequence[str] = (),
    queue: str | None = None,
) -> core.AgentState:
    """An agent state (available by default)."""
    call_id = "busy" if status in (core.AgentStatus.OFFERED, core.AgentStatus.ON_CALL) else None
    return core.AgentState(
        agent_id=agent_id,
        status=status,
        skills=dict(skills),
        languages=frozenset(languages),
        idle_since=idle_since,
        call_id=call_id,
        queue=queue,
    )


def call(
    call_id: str,
    request_type: str,
    queue_name: str,
    entered_at: float,
    *,
    seq: int = 0,
    priority: int = 0,
    language: str | None = None,
    sticky_agent: str | None = None,
) -> core.WaitingCall:
    """A waiting call."""
    return core.WaitingCall(
        call_id=call_id,
        request_type=request_type,
        queue=queue_name,
        entered_at=entered_at,
        seq=seq,
        priority=priority,
        language=language,
        sticky_agent=sticky_agent,
    )


def snapshot(
    now: float,
    agents: Sequence[core.AgentState],
    calls: Sequence[core.WaitingCall],
    stats: Mapping[str, core.QueueStats] | None = None,
    *,
    off_schedule: Collection[str] = frozenset(),
) -> core.Snapshot:
    """A snapshot from lists; ``off_schedule``: the agents outside their schedule now."""
    return core.Snapshot(
        now, {a.agent_id: a for a in agents}, list(calls), dict(stats or {}),
        off_schedule=frozenset(off_schedule),
    )


async def only_available(router: Any, *agent_ids: str) -> None:
    """Sync a live router's agents from its config and pause all but ``agent_ids``."""
    await router.sync_agents()
    for agent_id in router.config().agents:
        if agent_id not in agent_ids:
            await router.agent_action(agent_id, "pause", "break")


SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config"


def shipped_config(edit: Callable[[dict[str, Any]], None] | None = None) -> core.RoutingConfig:
    """The shipped queues, agents and routing files, with faults routed to ``network >= 2``
    (agent103 and agent104 qualify), changed by ``edit`` ({"queues": ..., "agents": ...,
    "routing": ...}, the parsed YAML) before they are validated."""
    import yaml

    from routing.schema import load_routing_config

    files = {n: yaml.safe_load((SHIPPED_CONFIG / f"{n}.yaml").read_text())
             for n in ("queues", "agents", "routing")}
    files["routing"]["rules"]["fault"]["steps"] = [{"skills": "network >= 2"}]
    if edit is not None:
        edit(files)
    return load_routing_config(files["queues"], files["agents"], files["routing"])


class ScriptRunner:
    """Runs one live-routing Lua script on its own, as the router calls it: EVAL of its
    source with its KEYS then the change log's two keys (``<prefix>version``,
    ``<prefix>changed``), every key under ``prefix``. Replies come back decoded (bytes to
    str, nested tables to lists), so a test compares them with the scripts' names.

    ``redis`` is a synchronous ``redis.Redis`` client (the tests' real redis-server).
    """

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        """A key under the prefix: ``key("call", "c1")`` -> ``<prefix>call:c1``."""
        return self.prefix + ":".join(parts)

    def __call__(self, source: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        every_key = [*keys, self.key("version"), self.key("changed")]
        return _decoded(self.redis.eval(source, len(every_key), *every_key, *args))

    def hash(self, *parts: str) -> dict[str, str]:
        """The hash at ``key(*parts)``, decoded."""
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(self.key(*parts)).items()}

    def events(self) -> list[dict[str, str]]:
        """The entries of the event stream ``<prefix>events``, oldest first, decoded."""
        return [
            {k.decode(): v.decode() for k, v in fields.items()}
            for _id, fields in self.redis.xrange(self.key("events"))
        ]

    def changes(self) -> list[str]:
        """The names in the change log (``a:<agent>``, ``c:<call>``), in version order."""
        return [name.decode() for name in self.redis.zrange(self.key("changed"), 0, -1)]


@contextmanager
def script_runner(url: str) -> Iterator[ScriptRunner]:
    """A :class:`ScriptRunner` on its own client of the redis-server at ``url``, under a key
    prefix of its own (so tests sharing one server never see each other's keys)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        yield ScriptRunner(client, f"t{uuid.uuid4().hex[:8]}:{{rt}}:")
    finally:
        client.close()


def _decoded(reply: Any) -> Any:
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, list):
        return [_decoded(item) for item in reply]
    return reply
