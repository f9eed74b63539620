"""Discrete-event simulation of the contact center, driving the live routing core.

Every routing choice goes through :func:`routing.core.decide` (or, for the ring-all
baseline, :func:`routing.core.eligible_agents`) on a :class:`routing.core.Snapshot` of the
simulated state, and every agent state change through :func:`routing.core.transition`: the
simulator owns only time, randomness and bookkeeping. Time is simulated (a heap of events), so
days of traffic run in seconds.

Modelled: Poisson arrivals per request type with per-interval rates; handle times exponential
or log-normal, scaled by the agent's level in the request type's skill (``level_speed``);
caller patience exponential or unlimited; agents with skills and shifts (the simulator's
working hours: simulated time has no calendar, so an agents file with weekly schedules is
refused; a shift's end logs the agent out after the call in progress, as the end of a schedule
stops offers in production); wrap-up per queue; ring time (``answer_delay``) and no-answer
probability (RONA after the queue's ring timeout, then the agent pauses ``missed`` for
``missed_pause_s``); maximum wait and overflow.

Identical arrivals across policies: arrivals and each call's own draws (handle time, patience,
urgency, VIP) come from random streams seeded by the scenario seed alone, so ``--policy all``
compares the policies on the same callers.

Metric definitions (per queue, over the whole run):

- ``service_level``: answered within the queue's threshold / (answered + abandoned after the
  short-abandon limit + overflowed), as in :mod:`routing.core`.
- ``asa_s``: mean wait of answered calls (entry to answer, ring time included).
- ``avg_wait_all_s``: mean wait of every counted call, abandoned ones up to abandonment (the
  Erlang A "ASA" of :mod:`routing.erlang`).
- ``abandonment``: abandoned (after the short limit) / offered (every call that entered).
- ``estimated_wait_mae_s`` / ``estimated_wait_bias_s``: mean absolute and mean signed error
  (estimate - actual) of the estimated wait announced at entry, over answered calls that had
  to wait (a call answered at once was told nothing).
- ``occupancy`` (pool): time agents spent on calls and in wrap-up / time they were logged in.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from routing import core, erlang
from routing.core import AgentInput, AgentState, AgentStatus, Policy, Snapshot, WaitingCall
from routing.schema import load_routing_config

POLICIES: dict[str, Policy] = {
    "ours": core.OURS,
    "longest-idle": core.LONGEST_IDLE,
    "ring-all": core.RING_ALL,
}

# ----------------------------------------------------------------------------- scenario


Sampler = Callable[[random.Random], float]


def _sampler(spec: dict | float | None, what: str) -> Sampler | None:
    """A distribution from YAML: a number (fixed), ``{dist: exponential, mean_s}``,
    ``{dist: lognormal, mean_s, sigma}``, ``{dist: uniform, low_s, high_s}``, ``{dist: none}``."""
    if spec is None:
        return None
    if isinstance(spec, int | float):
        value = float(spec)
        return lambda _rng: value
    dist = spec.get("dist", "exponential")
    if dist == "none":
        return None
    if dist == "fixed":
        value = float(spec["value_s"])
        return lambda _rng: value
    if dist == "exponential":
        rate = 1.0 / float(spec["mean_s"])
        return lambda rng: rng.expovariate(rate)
    if dist == "lognormal":
        sigma = float(spec["sigma"])
        mu = math.log(float(spec["mean_s"])) - sigma * sigma / 2
        return lambda rng: rng.lognormvariate(mu, sigma)
    if dist == "uniform":
        low, high = float(spec["low_s"]), float(spec["high_s"])
        return lambda rng: rng.uniform(low, high)
    raise ValueError(f"{what}: unknown distribution {dist!r}")


def _mean(spec: dict | float | None) -> float | None:
    if spec is None:
        return None
    if isinstance(spec, int | float):
        return float(spec)
    dist = spec.get("dist", "exponential")
    if dist == "none":
        return None
    if dist == "fixed":
        return float(spec["value_s"])
    if dist == "uniform":
        return (float(spec["low_s"]) + float(spec["high_s"])) / 2
    return float(spec["mean_s"])


@dataclass
class Stream:
    """Arrivals of one request type: ``rates`` are (start_s, end_s, calls per hour)."""

    request_type: str
    rates: list[tuple[float, float, float]]
    handle: Sampler
    handle_mean: float
    patience: Sampler | None
    patience_mean: float | None
    skill: str | None
    urgency: dict[str, float]
    vip_fraction: float


@dataclass
class SimAgent:
    profile: core.AgentProfile
    shifts: list[tuple[float, float]]


@dataclass
class Scenario:
    name: str
    config: core.RoutingConfig
    streams: list[Stream]
    agents: list[SimAgent]
    duration_s: float
    answer_delay: Sampler | None
    no_answer_prob: float
    missed_pause_s: float
    level_speed: dict[int, float]
    sl_interval_s: float
    replications: int = 1


DEFAULT_LEVEL_SPEED = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario YAML (format in ``benchmarks/scenarios/*.yaml``)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    return scenario_from_dict(data, base=path.parent, name=path.stem)


def scenario_from_dict(data: dict, base: Path = Path("."), name: str = "scenario") -> Scenario:
    """Build a scenario from its parsed YAML; routing files may be inline or referenced."""
    routing = data.get("routing", {})

    def section(key: str) -> dict:
        value = routing.get(key)
        if isinstance(value, str):
            return yaml.safe_load((base / value).read_text())
        return value or {}

    agents_data = data.get("agents")
    sim_agents_specs: list[dict] = []
    if isinstance(agents_data, list):
        agent_section: dict[str, Any] = {"agents": {}}
        for group in agents_data:
            count = int(group.get("count", 1))
            prefix = group.get("id", "agent")
            for i in range(count):
                agent_id = prefix if count == 1 else f"{prefix}{i + 1:03d}"
                agent_section["agents"][agent_id] = {
                    "name": agent_id,
                    "endpoint": f"PJSIP/{agent_id}",
                    "skills": group["skills"],
                    "languages": group.get("languages", []),
                }
                sim_agents_specs.append({"id": agent_id, "shifts": group.get("shifts")})
    else:
        agent_section = section("agents")
    config = load_routing_config(section("queues"), agent_section, section("routing"))
    scheduled = sorted(a for a, p in config.agents.items() if p.schedule)
    if scheduled:
        # Simulated time has no calendar: working hours are shifts (seconds from the start),
        # which log agents in and out. Ignoring a schedule would simulate agents that
        # production never offers a call.
        raise ValueError(
            f"agents {', '.join(scheduled)}: weekly schedules are not simulated; give the "
            "scenario's agents shifts instead"
        )
    shifts_by_id = {s["id"]: s.get("shifts") for s in sim_agents_specs}
    duration = float(data["duration_s"])
    agents = [
        SimAgent(
            profile,
            [(float(a), float(b) if b is not None else math.inf)
             for a, b in (shifts_by_id.get(agent_id) or [[0, None]])],
        )
        for agent_id, profile in config.agents.items()
    ]
    streams = []
    for t in data["traffic"]:
        if "intervals" in t:
            rates = [(float(i["start_s"]), float(i["end_s"]), float(i["per_hour"]))
                     for i in t["intervals"]]
        else:
            rates = [(0.0, duration, float(t["per_hour"]))]
        handle = _sampler(t["handle"], "handle")
        if handle is None:
            raise ValueError("traffic.handle: a handle-time distribution is required")
        streams.append(
            Stream(
                request_type=t["request_type"],
                rates=rates,
                handle=handle,
                handle_mean=_mean(t["handle"]) or 0.0,
                patience=_sampler(t.get("patience"), "patience"),
                patience_mean=_mean(t.get("patience")),
                skill=t.get("skill"),
                urgency={str(k): float(v) for k, v in (t.get("urgency") or {}).items()},
                vip_fraction=float(t.get("vip_fraction", 0.0)),
            )
        )
    behaviour = data.get("behaviour", {})
    speed = behaviour.get("level_speed")
    return Scenario(
        name=data.get("name", name),
        config=config,
        streams=streams,
        agents=agents,
        duration_s=duration,
        answer_delay=_sampler(behaviour.get("answer_delay"), "answer_delay"),
        no_answer_prob=float(behaviour.get("no_answer_prob", 0.0)),
        missed_pause_s=float(behaviour.get("missed_pause_s", 60.0)),
        level_speed={int(k): float(v) for k, v in speed.items()} if speed else DEFAULT_LEVEL_SPEED,
        sl_interval_s=float(behaviour.get("sl_interval_s", 1800.0)),
        replications=int(data.get("replications", 1)),
    )


# ----------------------------------------------------------------------------- results


@dataclass
class QueueTally:
    offered: int = 0
    answered: int = 0
    answered_within: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    overflowed: int = 0
    wait_answered: float = 0.0
    wait_all: float = 0.0
    counted: int = 0
    est_abs_error: float = 0.0
    est_error: float = 0.0
    est_n: int = 0

    def merge(self, other: QueueTally) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def report(self) -> dict[str, Any]:
        denominator = self.answered + self.abandoned + self.overflowed
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "abandoned_short": self.abandoned_short,
            "overflowed": self.overflowed,
            "service_level": _ratio(self.answered_within, denominator),
            "asa_s": _ratio(self.wait_answered, self.answered),
            "avg_wait_all_s": _ratio(self.wait_all, self.counted),
            "abandonment": _ratio(self.abandoned, self.offered),
            "estimated_wait_mae_s": _ratio(self.est_abs_error, self.est_n),
            "estimated_wait_bias_s": _ratio(self.est_error, self.est_n),
        }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


@dataclass
class RunResult:
    policy: str
    queues: dict[str, QueueTally]
    busy_s: float
    logged_in_s: float
    calls: int
    events: int
    rona: int

    def report(self) -> dict[str, Any]:
        total = QueueTally()
        for tally in self.queues.values():
            total.merge(tally)
        return {
            "queues": {name: t.report() for name, t in sorted(self.queues.items())},
            "overall": {
                **total.report(),
                "occupancy": _ratio(self.busy_s, self.logged_in_s),
                "rona": self.rona,
            },
        }


# ----------------------------------------------------------------------------- engine


@dataclass
class _Call:
    call_id: str
    stream: Stream
    arrived: float
    handle_base: float
    patience: float
    urgency: str
    vip: bool
    counted_queue: str
    state: str = "waiting"  # waiting | ringing | connected | gone
    estimate: float | None = None
    ringing: list[str] = field(default_factory=list)
    generation: int = 0


class Simulation:
    """One run of one policy. Call :meth:`run`; the result tallies per queue."""

    def __init__(self, scenario: Scenario, seed: int, policy: Policy) -> None:
        self.sc = scenario
        self.config = scenario.config
        self.policy = policy
        self.ring_all = policy is core.RING_ALL or policy.name == "ring-all"
        self.seed = seed
        # Per-call draws and arrivals: seeded by scenario seed only (identical across policies).
        self.call_rng = random.Random(f"calls-{seed}")
        self.behaviour_rng = random.Random(f"behaviour-{seed}-{policy.name}")
        self.now = 0.0
        self.heap: list[tuple[float, int, str, Any]] = []
        self.seq = 0
        self.agents: dict[str, AgentState] = {}
        self.available: set[str] = set()
        self.shift_end: dict[str, float] = {}
        self.shifts = {a.profile.agent_id: a.shifts for a in scenario.agents}
        self.staffs = {
            a.profile.agent_id: [q.name for q in self.config.queues.values()
                                 if q.skills.fit(a.profile.skills)]
            for a in scenario.agents
        }
        self.serving = dict.fromkeys(self.config.queues, 0.0)
        self.waiting: dict[str, WaitingCall] = {}
        self.calls: dict[str, _Call] = {}
        self.tally: dict[str, QueueTally] = {name: QueueTally() for name in self.config.queues}
        self.interval_stats: dict[str, core.QueueStats] = {}
        self.interval_index = -1
        self.busy_since: dict[str, float] = {}
        self.login_since: dict[str, float] = {}
        self.busy_s = 0.0
        self.logged_in_s = 0.0
        self.step_timer = math.inf
        self.events = 0
        self.rona = 0
        self.call_count = 0

    # -- event plumbing

    def at(self, when: float, kind: str, payload: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (when, self.seq, kind, payload))

    def run(self) -> RunResult:
        for stream_index, stream in enumerate(self.sc.streams):
            rng = random.Random(f"arrivals-{self.seed}-{stream_index}")
            self._next_arrival(stream_index, stream, rng, 0.0)
        for sim_agent in self.sc.agents:
            self.agents[sim_agent.profile.agent_id] = sim_agent.profile.initial_state()
            for start, end in sim_agent.shifts:
                self.at(start, "login", sim_agent.profile.agent_id)
                if math.isfinite(end):
                    self.at(end, "logout", sim_agent.profile.agent_id)
        handlers = {
            "arrival": self._on_arrival,
            "abandon": self._on_abandon,
            "max_wait": self._on_max_wait,
            "answer": self._on_answer,
            "no_answer": self._on_no_answer,
            "call_end": self._on_call_end,
            "wrapup_end": self._on_wrapup_end,
            "resume": self._on_resume,
            "login": self._on_login,
            "logout": self._on_logout,
            "step": self._on_step,
        }
        while self.heap:
            when, _seq, kind, payload = heapq.heappop(self.heap)
            if when > self.sc.duration_s and not self.calls:
                break  # arrivals are over and every call has left
            self.now = when
            self.events += 1
            handlers[kind](payload)
        self._close_agent_clocks()
        return RunResult(self.policy.name, self.tally, self.busy_s, self.logged_in_s,
                         self.call_count, self.events, self.rona)

    def _next_arrival(self, index: int, stream: Stream, rng: random.Random, t: float) -> None:
        # Piecewise-constant rates: draw in the current interval, restart at its end if the
        # draw overshoots (memorylessness makes this exact).
        while True:
            interval = next(((a, b, r) for a, b, r in stream.rates if a <= t < b), None)
            if interval is None:
                later = [a for a, _b, _r in stream.rates if a > t]
                if not later:
                    return
                t = min(later)
                continue
            _start, end, per_hour = interval
            if per_hour <= 0:
                t = end
                continue
            t_next = t + rng.expovariate(per_hour / 3600.0)
            if t_next < end:
                self.at(t_next, "arrival", (index, rng))
                return
            t = end

    # -- agents

    def _set_agent(self, agent: AgentState) -> None:
        old = self.agents[agent.agent_id]
        self.agents[agent.agent_id] = agent
        # Keep QueueStats.serving current so snapshots need not count agents.
        for queue in self.staffs[agent.agent_id]:
            q = self.config.queues[queue]
            delta = (core.serving_weight(agent, q, self.config)
                     - core.serving_weight(old, q, self.config))
            if delta:
                # Rounded so that weights 1/m added and removed come back to exactly 0.
                self.serving[queue] = round(self.serving[queue] + delta, 9)
                stats = self._stats(queue)
                self.interval_stats[queue] = replace(stats, serving=self.serving[queue])
        if agent.status is AgentStatus.AVAILABLE:
            self.available.add(agent.agent_id)
        else:
            self.available.discard(agent.agent_id)
        busy_old = old.status in (AgentStatus.ON_CALL, AgentStatus.WRAP_UP)
        busy_new = agent.status in (AgentStatus.ON_CALL, AgentStatus.WRAP_UP)
        if busy_new and not busy_old:
            self.busy_since[agent.agent_id] = self.now
        elif busy_old and not busy_new:
            self.busy_s += self.now - self.busy_since.pop(agent.agent_id)
        in_old = old.status is not AgentStatus.LOGGED_OUT
        in_new = agent.status is not AgentStatus.LOGGED_OUT
        if in_new and not in_old:
            self.login_since[agent.agent_id] = self.now
        elif in_old and not in_new:
            self.logged_in_s += self.now - self.login_since.pop(agent.agent_id)

    def _close_agent_clocks(self) -> None:
        for _agent_id, since in self.busy_since.items():
            self.busy_s += self.now - since
        for _agent_id, since in self.login_since.items():
            self.logged_in_s += self.now - since
        self.busy_since.clear()
        self.login_since.clear()

    def _apply(self, agent_id: str, event: AgentInput, **kw: Any) -> AgentState:
        agent = core.transition(self.agents[agent_id], event, self.now, **kw)
        self._set_agent(agent)
        if agent.status is AgentStatus.AVAILABLE and self._shift_over(agent_id):
            agent = core.transition(agent, AgentInput.LOGOUT, self.now)
            self._set_agent(agent)
        return agent

    def _on_login(self, agent_id: str) -> None:
        self.shift_end[agent_id] = next(
            (b for a, b in self._shifts(agent_id) if a <= self.now < b), math.inf
        )
        if self.agents[agent_id].status is AgentStatus.LOGGED_OUT:
            self._apply(agent_id, AgentInput.LOGIN)
            self._dispatch()

    def _shifts(self, agent_id: str) -> list[tuple[float, float]]:
        return self.shifts[agent_id]

    def _on_logout(self, agent_id: str) -> None:
        # An agent in a call finishes it (and its wrap-up) first; see _on_wrapup_end.
        if self.agents[agent_id].status in (AgentStatus.AVAILABLE, AgentStatus.PAUSED):
            self._apply(agent_id, AgentInput.LOGOUT)

    def _shift_over(self, agent_id: str) -> bool:
        return self.now >= self.shift_end.get(agent_id, math.inf)

    def _on_resume(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        if agent.status is AgentStatus.PAUSED:
            if self._shift_over(agent_id):
                self._apply(agent_id, AgentInput.LOGOUT)
            else:
                self._apply(agent_id, AgentInput.RESUME)
                self._dispatch()

    # -- interval statistics that the core's projection reads

    def _stats(self, queue: str) -> core.QueueStats:
        index = int(self.now // self.sc.sl_interval_s)
        if index != self.interval_index:
            self.interval_index = index
            self.interval_stats = {
                name: core.QueueStats(serving=count) for name, count in self.serving.items()
            }
        return self.interval_stats[queue]

    def _set_stats(self, queue: str, stats: core.QueueStats) -> None:
        self._stats(queue)
        self.interval_stats[queue] = stats

    def _snapshot(self) -> Snapshot:
        self._stats(next(iter(self.config.queues)))  # roll the interval if needed
        return Snapshot(self.now, self.agents, list(self.waiting.values()), self.interval_stats,
                        available_ids=self.available)

    # -- calls

    def _on_arrival(self, payload: tuple[int, random.Random]) -> None:
        index, rng = payload
        stream = self.sc.streams[index]
        self._next_arrival(index, stream, rng, self.now)
        crng = self.call_rng
        handle_base = stream.handle(crng)
        patience = stream.patience(crng) if stream.patience else math.inf
        urgency = "normal"
        u = crng.random()
        for level, share in stream.urgency.items():
            if u < share:
                urgency = level
                break
            u -= share
        vip = crng.random() < stream.vip_fraction
        self.call_count += 1
        call_id = f"c{self.call_count}"
        waiting = core.new_call(self.config, call_id, stream.request_type, self.now,
                                self.call_count, urgency=urgency, vip=vip)
        if waiting.queue == core.OPERATOR:
            return  # handled by the operator, outside the queues
        sim_call = _Call(call_id, stream, self.now, handle_base, patience, urgency, vip,
                         counted_queue=waiting.queue)
        self.tally[waiting.queue].offered += 1
        destination = self._admission(waiting.queue)
        if destination is not None:
            self._leave_overflow(sim_call, destination, waiting)
            return
        self.calls[call_id] = sim_call
        self.waiting[call_id] = waiting
        if math.isfinite(patience):
            self.at(self.now + patience, "abandon", call_id)
        self._arm_max_wait(waiting)
        self._dispatch()
        if call_id in self.waiting:
            sim_call.estimate = core.estimated_wait(self._snapshot(), call_id, self.config)

    def _admission(self, queue_name: str) -> str | None:
        queue = self.config.queues[queue_name]
        if queue.max_length is None:
            return None  # no need to build a snapshot for a queue without a length limit
        return core.admission(self._snapshot(), queue_name, self.config)

    def _arm_max_wait(self, waiting: WaitingCall) -> None:
        queue = self.config.queues[waiting.queue]
        if queue.max_wait_s is not None:
            sim_call = self.calls[waiting.call_id]
            sim_call.generation += 1
            self.at(waiting.entered_at + queue.max_wait_s, "max_wait",
                    (waiting.call_id, sim_call.generation))

    def _leave_overflow(self, sim_call: _Call, destination: str, waiting: WaitingCall) -> None:
        if destination == core.OPERATOR or destination not in self.config.queues:
            tally = self.tally[sim_call.counted_queue]
            tally.overflowed += 1
            tally.counted += 1
            tally.wait_all += self.now - sim_call.arrived
            self._set_stats(waiting.queue, self._stats(waiting.queue).with_overflow())
            sim_call.state = "gone"
            self.calls.pop(sim_call.call_id, None)
            self.waiting.pop(sim_call.call_id, None)
            return
        moved = core.overflow(waiting, destination, self.now)
        self.calls[sim_call.call_id] = sim_call
        self.waiting[sim_call.call_id] = moved
        self._arm_max_wait(moved)
        self._dispatch()

    def _on_max_wait(self, payload: tuple[str, int]) -> None:
        call_id, generation = payload
        sim_call = self.calls.get(call_id)
        if sim_call is None or sim_call.generation != generation or call_id not in self.waiting:
            return
        waiting = self.waiting.pop(call_id)
        queue = self.config.queues[waiting.queue]
        self._leave_overflow(sim_call, queue.overflow or core.OPERATOR, waiting)

    def _on_abandon(self, call_id: str) -> None:
        sim_call = self.calls.get(call_id)
        if sim_call is None or sim_call.state not in ("waiting", "ringing"):
            return
        waited = self.now - sim_call.arrived
        queue_name = (self.waiting[call_id].queue if call_id in self.waiting
                      else sim_call.counted_queue)
        target = self.config.queues[sim_call.counted_queue].service_level
        tally = self.tally[sim_call.counted_queue]
        if waited < target.short_abandon_s:
            tally.abandoned_short += 1
        else:
            tally.abandoned += 1
            tally.counted += 1
            tally.wait_all += waited
        self._set_stats(queue_name, self._stats(queue_name).with_abandon(waited, target))
        for agent_id in sim_call.ringing:
            if self.agents[agent_id].status is AgentStatus.OFFERED:
                self._apply(agent_id, AgentInput.CANCEL)
        sim_call.ringing = []
        sim_call.state = "gone"
        self.waiting.pop(call_id, None)
        del self.calls[call_id]
        self._dispatch()

    # -- offers

    def _dispatch(self) -> None:
        if not self.available or not self.waiting:
            return
        snapshot = self._snapshot()
        if self.ring_all:
            taken: set[str] = set()
            for call in snapshot.ordered:
                agents = [a for a in core.eligible_agents(snapshot, call.call_id, self.config,
                                                          self.policy) if a not in taken]
                if agents:
                    taken.update(agents)
                    self._ring(call, agents)
        else:
            for assignment in core.decide(snapshot, self.config, self.policy):
                self._ring(self.waiting[assignment.call_id], [assignment.agent_id])
        self._arm_step_timer(snapshot)

    def _arm_step_timer(self, snapshot: Snapshot | None = None) -> None:
        if not self.waiting:
            return
        # A snapshot taken before this round's offers may name calls now ringing: at worst
        # one spare decision round at their step change.
        when = core.next_step_change(snapshot or self._snapshot(), self.config, self.policy)
        if math.isfinite(when) and when < self.step_timer:
            self.step_timer = when
            self.at(when, "step", when)

    def _on_step(self, when: float) -> None:
        if when == self.step_timer:
            self.step_timer = math.inf
        self._dispatch()
        self._arm_step_timer()

    def _ring(self, call: WaitingCall, agent_ids: list[str]) -> None:
        sim_call = self.calls[call.call_id]
        del self.waiting[call.call_id]
        sim_call.state = "ringing"
        sim_call.ringing = list(agent_ids)
        ring_timeout = self.config.queues[call.queue].ring_timeout_s
        rng = self.behaviour_rng
        best: tuple[float, str] | None = None
        for agent_id in agent_ids:
            self._apply(agent_id, AgentInput.OFFER, call_id=call.call_id, queue=call.queue)
            answers = rng.random() >= self.sc.no_answer_prob
            delay = self.sc.answer_delay(rng) if self.sc.answer_delay else 0.0
            if answers and delay < ring_timeout and (best is None or delay < best[0]):
                best = (delay, agent_id)
        sim_call.generation += 1
        if best is None:
            self.at(self.now + ring_timeout, "no_answer", (call, sim_call.generation))
        else:
            self.at(self.now + best[0], "answer", (call, best[1], sim_call.generation))

    def _on_answer(self, payload: tuple[WaitingCall, str, int]) -> None:
        call, agent_id, generation = payload
        sim_call = self.calls.get(call.call_id)
        if sim_call is None or sim_call.generation != generation or sim_call.state != "ringing":
            return
        for other in sim_call.ringing:
            if other != agent_id:
                self._apply(other, AgentInput.CANCEL)
        sim_call.ringing = []
        agent = self._apply(agent_id, AgentInput.ANSWER)
        sim_call.state = "connected"
        waited = self.now - sim_call.arrived
        target = self.config.queues[sim_call.counted_queue].service_level
        tally = self.tally[sim_call.counted_queue]
        tally.answered += 1
        tally.counted += 1
        tally.wait_answered += waited
        tally.wait_all += waited
        if waited <= target.threshold_s:
            tally.answered_within += 1
        if sim_call.estimate is not None and math.isfinite(sim_call.estimate):
            error = sim_call.estimate - waited
            tally.est_n += 1
            tally.est_error += error
            tally.est_abs_error += abs(error)
        self._set_stats(call.queue, self._stats(call.queue).with_answer(waited, target))
        level = agent.skills.get(sim_call.stream.skill, 0) if sim_call.stream.skill else 3
        handle = sim_call.handle_base * self.sc.level_speed.get(level, 1.0)
        self.at(self.now + handle, "call_end", (agent_id, call, handle))
        self._dispatch()

    def _on_no_answer(self, payload: tuple[WaitingCall, int]) -> None:
        call, generation = payload
        sim_call = self.calls.get(call.call_id)
        if sim_call is None or sim_call.generation != generation or sim_call.state != "ringing":
            return
        if self.ring_all:
            # Ring-all stops ringing everyone and tries again; nobody is paused.
            for agent_id in sim_call.ringing:
                self._apply(agent_id, AgentInput.CANCEL)
            back = call
        else:
            agent_id = sim_call.ringing[0]
            self.rona += 1
            paused, back = core.offer_failed(self.agents[agent_id], call, core.PAUSE_MISSED,
                                             self.now)
            self._set_agent(paused)
            self.at(self.now + self.sc.missed_pause_s, "resume", agent_id)
        sim_call.ringing = []
        sim_call.state = "waiting"
        self.waiting[call.call_id] = back
        self._dispatch()

    def _on_call_end(self, payload: tuple[str, WaitingCall, float]) -> None:
        agent_id, call, handle = payload
        self._apply(agent_id, AgentInput.CALL_END)
        self._set_stats(call.queue, self._stats(call.queue).with_handled(handle))
        self.calls.pop(call.call_id, None)
        wrapup = self.config.queues[call.queue].wrapup_s
        self.at(self.now + wrapup, "wrapup_end", agent_id)

    def _on_wrapup_end(self, agent_id: str) -> None:
        if self._shift_over(agent_id):
            self._apply(agent_id, AgentInput.LOGOUT)
            return
        self._apply(agent_id, AgentInput.WRAPUP_END)
        self._dispatch()


# ----------------------------------------------------------------------------- predictions


def erlang_prediction(scenario: Scenario) -> dict[str, Any]:
    """Erlang C (and A with finite patience) for the whole pool as one queue.

    Meaningful for a single-skill pooled scenario: every agent takes every call, one queue,
    stationary rates. Uses the time-averaged arrival rate, the mean handle time, the agents
    logged in at time 0 and the first queue's threshold.
    """
    total_rate = 0.0
    weighted_handle = 0.0
    for s in scenario.streams:
        calls = sum((min(b, scenario.duration_s) - a) * r / 3600 for a, b, r in s.rates)
        total_rate += calls / scenario.duration_s
        weighted_handle += calls / scenario.duration_s * s.handle_mean
    if total_rate <= 0:
        return {}
    aht = weighted_handle / total_rate
    agents = sum(1 for a in scenario.agents if any(s <= 0 < e for s, e in a.shifts))
    queue = next(iter(scenario.config.queues.values()))
    threshold = queue.service_level.threshold_s
    out: dict[str, Any] = {
        "agents": agents,
        "calls_per_hour": round(total_rate * 3600, 3),
        "aht_s": round(aht, 3),
        "threshold_s": threshold,
    }
    try:
        c = erlang.erlang_c(agents, total_rate, aht, threshold)
        out["erlang_c"] = {"p_wait": c.p_wait, "service_level": c.service_level,
                           "asa_s": c.asa, "occupancy": c.occupancy}
    except ValueError as exc:
        out["erlang_c"] = {"error": str(exc)}
    patience = {s.patience_mean for s in scenario.streams}
    if len(patience) == 1 and None not in patience:
        (mean_patience,) = patience
        a = erlang.erlang_a(agents, total_rate, aht, mean_patience, threshold)
        out["erlang_a"] = {"p_wait": a.p_wait, "service_level": a.service_level,
                           "avg_wait_all_s": a.asa, "abandonment": a.abandonment,
                           "occupancy": a.occupancy}
    return out


# ----------------------------------------------------------------------------- entry point


def simulate(scenario: Scenario, seed: int = 1, policy: str = "ours",
             replications: int | None = None) -> dict[str, Any]:
    """Run ``replications`` seeds (``seed``, ``seed+1``, ...) of one policy, pooled."""
    reps = replications or scenario.replications
    tallies: dict[str, QueueTally] = {name: QueueTally() for name in scenario.config.queues}
    busy = logged = 0.0
    calls = events = rona = 0
    for r in range(reps):
        result = Simulation(scenario, seed + r, POLICIES[policy]).run()
        for name, tally in result.queues.items():
            tallies[name].merge(tally)
        busy += result.busy_s
        logged += result.logged_in_s
        calls += result.calls
        events += result.events
        rona += result.rona
    pooled = RunResult(policy, tallies, busy, logged, calls, events, rona)
    return {**pooled.report(), "calls": calls, "events": events}


def main(argv: list[str]) -> int:
    """``ivr simulate SCENARIO.yaml [--seed N] [--policy P] [--replications R]``: print JSON."""
    parser = argparse.ArgumentParser(prog="ivr simulate", description=__doc__.split("\n")[0])
    parser.add_argument("scenario", help="scenario YAML (see benchmarks/scenarios/)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy", choices=[*POLICIES, "all"], default="ours")
    parser.add_argument("--replications", type=int, default=None,
                        help="seeds to pool (default: the scenario's)")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as exc:
        print(f"ivr simulate: {args.scenario}: {exc}", file=sys.stderr)
        return 2
    names = list(POLICIES) if args.policy == "all" else [args.policy]
    out = {
        "scenario": scenario.name,
        "seed": args.seed,
        "replications": args.replications or scenario.replications,
        "duration_s": scenario.duration_s,
        "policies": {name: simulate(scenario, args.seed, name, args.replications)
                     for name in names},
        "prediction": erlang_prediction(scenario),
    }
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
