"""The Lua scripts of live routing: one ``.lua`` file each, loaded as package resources, and
the named results they answer.

Every change to the shared routing state is one script, atomic in Redis (``routing/live.py``
says why). Scripts that change state start with the shared prelude (``routing/lua/prelude.lua``:
the change log, the event stream, the queue counters), prepended here at load; the snapshot
script only reads and has none. The routing scripts live in ``routing/lua/``, the callbacks'
beside their policy in ``callbacks/``.

Each script answers a name (or a table that starts with one), never a bare 0/1/2; the enums
below are those names, so the Python side compares names, and an answer no enum knows is an
error rather than a silently falsy number.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from string import Template
from typing import Any, Protocol, TypeVar

from events import event_fields
from routing import core
from routing.numbers import NumberCipher

CHANGES_KEPT = 10_000
"""Versions of the change log kept: a copy further behind than that is read again in full
(at 4 rounds a second and a few changes per call, minutes of a busy hotline)."""

ROUTING_LUA: Traversable = resources.files("routing") / "lua"
"""The folder of the routing scripts and the prelude."""


def lua_source(folder: Traversable, name: str, *, prelude: bool = True) -> str:
    """The source of ``<folder>/<name>.lua``, after the prelude unless ``prelude`` is false."""
    body = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if not prelude:
        return body
    helpers = ROUTING_LUA.joinpath("prelude.lua").read_text(encoding="utf-8")
    return Template(helpers).substitute(changes_kept=CHANGES_KEPT) + body


def event_time(now: float) -> str:
    """The ``time`` field of an event at ``now``, as the scripts take it (their ``iso`` ARGV)."""
    return event_fields("X", now)["time"]


SCRIPTS = {
    **{
        name: lua_source(ROUTING_LUA, name)
        for name in (
            "enqueue", "offer", "ring_result", "complete", "leave", "agent", "release",
            "orphan", "device", "mark_changed",
        )
    },
    "snapshot": lua_source(ROUTING_LUA, "snapshot", prelude=False),
}
"""The routing scripts' sources by the name the router registers them under."""


class ScriptCaller(Protocol):
    """What the parts of the live router mixed into ``routing.live.LiveRouter``
    (``callbacks/live.py``, ``routing/live_sweep.py``) use to run their scripts."""

    @property
    def redis(self) -> Any: ...
    @property
    def clock(self) -> Callable[[], float]: ...
    @property
    def config(self) -> Callable[[], core.RoutingConfig]: ...
    @property
    def local_calls(self) -> set[str]: ...
    @property
    def events_key(self) -> str: ...
    @property
    def numbers(self) -> NumberCipher: ...
    @property
    def _scripts(self) -> Mapping[str, Callable[..., Awaitable[Any]]]: ...

    def _k(self, *parts: str) -> str: ...


_Result = TypeVar("_Result", bound=StrEnum)


def result(kind: type[_Result], reply: bytes | str) -> _Result:
    """A script's answer as its named result (``ValueError`` for a name ``kind`` lacks)."""
    return kind(reply.decode() if isinstance(reply, bytes) else reply)


class Enqueued(StrEnum):
    """``enqueue.lua``: the call joined the queue, or an instance took over the same call."""

    ENTERED = "entered"
    RESUMED = "resumed"


class Offered(StrEnum):
    """``offer.lua``: the compare-and-set on the agent and the call."""

    OFFERED = "offered"
    AGENT_NOT_AVAILABLE = "agent-not-available"
    CALL_NOT_WAITING = "call-not-waiting"


class Rang(StrEnum):
    """``ring_result.lua``: what the ring of an agent's phone did to the agent and the call."""

    CONNECTED = "connected"
    ALREADY_CONNECTED = "already-connected"  # the answer reported twice, counted once
    ABANDONED = "abandoned"  # the caller hung up while the agent's phone rang
    REQUEUED = "requeued"  # agent paused, the call back at its place
    NOT_OFFERED = "not-offered"  # the call is not offered to this agent


class Completed(StrEnum):
    """``complete.lua``: the end of a conversation."""

    COMPLETED = "completed"
    NOT_CONNECTED = "not-connected"


class Left(StrEnum):
    """``leave.lua``: a call leaving the queue without an agent."""

    LEFT = "left"
    ABANDONED_BEFORE_QUEUE = "abandoned-before-queue"  # counted; no queue state to clean
    NOT_WAITING = "not-waiting"
    ALREADY_OVERFLOWED = "already-overflowed"


class AgentActed(StrEnum):
    """``agent.lua`` (second element, after the agent's status): whether the act applied."""

    OK = "ok"
    REFUSED = "refused"


class DeviceChanged(StrEnum):
    """``device.lua`` (second element, after the agent's status)."""

    CHANGED = "changed"
    UNCHANGED = "unchanged"


class Released(StrEnum):
    """``release.lua``: an offer nobody followed up."""

    RELEASED = "released"
    NOT_OFFERED = "not-offered"  # not, or no longer, offered to this agent


class Orphaned(StrEnum):
    """``orphan.lua``: a waiting call of a dead instance."""

    REMOVED = "removed"
    NOT_WAITING = "not-waiting"
    TAKEN_OVER = "taken-over"  # another instance owns it now
    CALLBACK = "callback"  # nobody holds the line of a callback: it waits for its turn
