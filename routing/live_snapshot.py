"""One instance's copy of the shared routing state, kept current from the change log.

Every Lua script in :mod:`routing.live` that changes an agent or a waiting call bumps the
pool's *version* and records what it changed (``a:<agent id>``, ``c:<call id>``) at that
version. The snapshot script, given the version this copy is at, returns only the agents and
calls recorded since, read in the same script: the copy plus those changes is the state at
the new version, a consistent cut as the full read is. It returns everything instead when the
copy cannot be brought forward: first read, a log started over (its *epoch* changed: the log
keys were lost, or Redis is another process: a crash that lost its last writes puts the log
back versions that new changes then reuse), or a copy older than the log keeps (``floor``).

The copy also keeps the core's objects (:class:`routing.core.AgentState`,
:class:`routing.core.WaitingCall`) built from each hash until the hash or the config object
changes, so a round converts what changed, not 1,500 hashes.

No I/O here: :class:`PoolCopy` applies decoded replies and builds the parts of a snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hotline.text import as_text
from routing import core

Row = tuple[str, ...]
"""A hash as the snapshot script returns it: flat ``(field, value, field, value, ...)``."""


def _s(value: Any) -> str:
    return "" if value is None else as_text(value)


def _f(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _pairs(flat: Any) -> dict[str, str]:
    """A hash as the snapshot script returns it (flat [field, value, ...]) as a dict."""
    if not flat:
        return {}
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _row(flat: Any) -> Row:
    return tuple(flat or ())  # cjson encodes an empty table as {}


def agent_state(profile: core.AgentProfile, row: Mapping[str, str], now: float) -> core.AgentState:
    status = _s(row.get("status")) or "logged_out"
    return core.AgentState(
        agent_id=profile.agent_id,
        status=core.AgentStatus(status),
        skills=profile.skills,
        languages=profile.languages,
        pause_reason=_s(row.get("pause_reason")) or None,
        idle_since=_f(row.get("idle_since"), now),
        last_call_at=_f(row.get("last_call_at"), 0.0) or None,
        call_id=_s(row.get("call_id")) or None,
    )


def waiting_call(call_id: str, row: Mapping[str, str]) -> core.WaitingCall:
    offered = tuple(json.loads(_s(row.get("offered_to")) or "[]"))
    return core.WaitingCall(
        call_id=call_id,
        request_type=_s(row.get("request_type")),
        queue=_s(row.get("queue")),
        entered_at=_f(row.get("entered_at")),
        seq=int(_f(row.get("seq"))),
        priority=int(_f(row.get("priority"))),
        urgency=_s(row.get("urgency")) or "normal",
        vip=_s(row.get("vip")) == "1",
        language=_s(row.get("language")) or None,
        offered_to=offered,
    )


class _CallFacts:
    """What a round needs of one call in the waiting set, from its hash (built once)."""

    __slots__ = ("call", "callback", "instance", "next_at", "waiting")

    def __init__(self, call_id: str, row: Row) -> None:
        fields = _pairs(row)
        self.waiting = fields.get("status") == "waiting"
        self.callback = fields.get("callback") == "1"
        self.instance = fields.get("instance", "")
        self.next_at = _f(fields.get("callback_next_at")) if self.callback else 0.0
        self.call = waiting_call(call_id, fields) if self.waiting else None


class PoolCopy:
    """The agents and waiting calls as of ``version`` of the change log (module docstring).

    ``reads`` counts the replies applied, ``full`` and ``delta``, for tests and the benchmark.
    """

    def __init__(self) -> None:
        self.reads = {"full": 0, "delta": 0}
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next read is a full one."""
        self.epoch = ""
        self.version = -1
        self.full_at = float("-inf")  # when the last full read was applied (the caller's clock)
        self._agents: dict[str, Row] = {}  # every id in the agents set
        self._calls: dict[str, tuple[float, Row]] = {}  # the waiting set: score, hash
        self._order: list[str] = []  # the waiting set's order (score, then id)
        self._agent_ids: list[str] | None = []  # sorted; None: to sort again
        self._cfg: Any = None
        self._agent_memo: dict[str, tuple[core.AgentState, float]] = {}  # and wrap_until
        self._call_memo: dict[str, _CallFacts] = {}

    def since(self) -> tuple[str, int]:
        """(epoch, version) for the snapshot script: what this copy has seen."""
        return self.epoch, self.version

    def apply(self, state: Mapping[str, Any], now: float) -> None:
        """Bring the copy to the reply's version: a full reply replaces it, a delta reply
        replaces the agents and calls it names."""
        if state["full"]:
            self.reset()
            self.full_at = now
            self.reads["full"] += 1
            for agent_id, flat in state["agents"] or ():
                self._agents[agent_id] = _row(flat)
            for call_id, score, flat in state["calls"] or ():
                self._calls[call_id] = (float(score), _row(flat))
                self._order.append(call_id)
            self._agent_ids = None
        else:
            self.reads["delta"] += 1
            reorder = False
            for agent_id, flat in state["agents"] or ():
                row = _row(flat)
                self._agent_memo.pop(agent_id, None)
                if not row:
                    if self._agents.pop(agent_id, None) is not None:
                        self._agent_ids = None
                    continue
                if agent_id not in self._agents:
                    self._agent_ids = None
                self._agents[agent_id] = row
            for call_id, score, flat in state["calls"] or ():
                self._call_memo.pop(call_id, None)
                old = self._calls.get(call_id)
                if score is False or score is None:
                    if old is not None:
                        del self._calls[call_id]
                        reorder = True
                    continue
                value = float(score)
                self._calls[call_id] = (value, _row(flat))
                reorder = reorder or old is None or old[0] != value
            if reorder:
                # A sorted set orders by score, then by member bytes; UTF-8 bytes sort as
                # code points do, so Python's str order is the same.
                calls = self._calls
                self._order = sorted(calls, key=lambda call_id: (calls[call_id][0], call_id))
        self.epoch = _s(state["epoch"])
        self.version = int(state["version"])

    def build(
        self, cfg: core.RoutingConfig, now: float
    ) -> tuple[dict[str, core.AgentState], list[core.WaitingCall], dict[str, tuple[bool, str]],
               list[str]]:
        """The snapshot's agents and calls, per waiting call (callback?, owning instance), and
        the agents whose wrap-up is over, as :meth:`routing.live.LiveRouter._read` returns
        them. A callback not due yet is left out of the calls (nobody may be offered it)."""
        if cfg is not self._cfg:  # a reload: every object is built again from the hashes
            self._cfg, self._agent_memo, self._call_memo = cfg, {}, {}
        if self._agent_ids is None:
            self._agent_ids = sorted(self._agents)
        memo = self._agent_memo
        agents: dict[str, core.AgentState] = {}
        wrapped_up = []
        wrap_up = core.AgentStatus.WRAP_UP
        for agent_id in self._agent_ids:
            hit = memo.get(agent_id)
            if hit is None:
                profile = cfg.agents.get(agent_id)
                flat = self._agents[agent_id]
                if profile is None or not flat:
                    continue  # removed from config: never offered calls again
                row = _pairs(flat)
                hit = (agent_state(profile, row, now), _f(row.get("wrap_until")))
                if "idle_since" in row:
                    memo[agent_id] = hit  # else it depends on now: not reusable
            agent, wrap_until = hit
            agents[agent_id] = agent
            if agent.status is wrap_up and wrap_until <= now:
                wrapped_up.append(agent_id)
        calls: list[core.WaitingCall] = []
        meta: dict[str, tuple[bool, str]] = {}
        facts_memo = self._call_memo
        for call_id in self._order:
            facts = facts_memo.get(call_id)
            if facts is None:
                facts = facts_memo[call_id] = _CallFacts(call_id, self._calls[call_id][1])
            if facts.call is None:  # not waiting
                continue
            meta[call_id] = (facts.callback, facts.instance)
            if facts.callback and facts.next_at > now:
                continue
            calls.append(facts.call)
        return agents, calls, meta, wrapped_up
