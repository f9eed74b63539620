"""Routing benchmark: decision latency in the core, simulator speed, validation, comparison.

    .venv/bin/python -m benchmarks.routing.bench_decide [--quick]

1. Decision latency with 1,000 agents, 50 skills, 500 waiting calls (20 request types, three
   steps each). Every timed decision starts from a *fresh* :class:`routing.core.Snapshot` (the
   shell builds one per decision round), so index building is inside the figure:
   - ``agent available``: :func:`on_agent_available` for one agent just freed;
   - ``call arrived``: :func:`on_call_arrived` for one new call while 40 agents are free;
   - ``decide (settled)``: the full :func:`decide` over the 500 calls with one free agent;
   - ``... unsorted``: the same with calls given in random order (the core sorts them).
2. Simulator speed: simulated calls per CPU second on both scenarios (policy ``ours``).
3. Validation (pooled scenario vs Erlang C) and comparison (multi-skill scenario, our routing
   against the longest-idle and ring-all baselines on identical callers).
"""

from __future__ import annotations

import argparse
import bisect
import gc
import random
import time
from pathlib import Path

from routing import core, erlang, simulator
from routing import testing as rt
from routing.core import AgentStatus


def _order_key(call: core.WaitingCall) -> tuple:
    return call.order_key


SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
N_AGENTS = 1000
N_SKILLS = 50
N_CALLS = 500
N_TYPES = 20


def build_world(seed: int = 1) -> tuple[core.RoutingConfig, list[core.AgentState],
                                         list[core.WaitingCall]]:
    """A large center: 20 queues/request types over 50 skills, 1,000 agents (5 skills each),
    500 waiting calls, every agent busy, paused or in wrap-up."""
    rng = random.Random(seed)
    skills = [f"s{i:02d}" for i in range(N_SKILLS)]
    queues, rules = [], []
    for t in range(N_TYPES):
        main, alt = skills[t], skills[N_TYPES + t]
        q = rt.queue(f"q{t:02d}", f"{main} | {alt} | general", aht_s=240.0, wrapup_s=10.0)
        queues.append(q)
        rules.append(rt.rule(
            f"type{t:02d}", q.name,
            [(f"{main} >= 4", 20.0), (f"{main} >= 2 | {alt} >= 3", 30.0), ("general >= 2", None)],
            priority=rng.choice([0, 0, 0, 5, 10]),
        ))
    config = rt.config(queues, rules)
    agents = []
    busy = [AgentStatus.ON_CALL] * 8 + [AgentStatus.WRAP_UP, AgentStatus.PAUSED]
    for i in range(N_AGENTS):
        own = {s: rng.randint(1, 5) for s in rng.sample(skills, 5)}
        if rng.random() < 0.5:
            own["general"] = rng.randint(1, 5)
        status = rng.choice(busy)
        agents.append(rt.agent(f"agent{i:04d}", own, status=status,
                               idle_since=rng.uniform(0, 1000),
                               queue=rng.choice(queues).name if status != AgentStatus.PAUSED
                               else None))
    now = 2000.0
    calls = [
        core.new_call(config, f"call{i:04d}", rng.choice(rules).request_type,
                      now - rng.uniform(0, 15), i)
        for i in range(N_CALLS)
    ]
    return config, agents, calls


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return (samples[int(0.50 * len(samples))] * 1e6,
            samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1e6)


class _Timer:
    """CPU time (this thread) and wall time of each timed block: on a busy machine the wall
    figure includes waiting for a core, the CPU figure is what the decision costs."""

    def __init__(self) -> None:
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def __enter__(self) -> None:
        self._c = time.thread_time()
        self._w = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.wall.append(time.perf_counter() - self._w)
        self.cpu.append(time.thread_time() - self._c)

    def row(self, label: str) -> tuple[str, float, float, float, float]:
        return (label, *_percentiles(self.cpu), *_percentiles(self.wall))


def bench_latency(iterations: int) -> list[tuple[str, float, float, float, float]]:
    """Latency rows; the garbage collector is paused while timing, as ``timeit`` does (a
    collection pass is the process's cost, not one decision's)."""
    gc.disable()
    try:
        return _bench_latency(iterations)
    finally:
        gc.enable()


def _bench_latency(iterations: int) -> list[tuple[str, float, float, float, float]]:
    config, agents, calls = build_world()
    now = 2000.0
    agent_map = {a.agent_id: a for a in agents}
    ordered = sorted(calls, key=_order_key)
    # The shell keeps QueueStats.serving current (as the simulator does), so a decision
    # does not count 1,000 agents per queue.
    stats = {q.name: core.QueueStats(answered=100, answered_within=85,
                                     serving=core.serving_agents(agents, q, config))
             for q in config.queues.values()}
    rng = random.Random(2)
    rows = []

    timer = _Timer()
    for _ in range(iterations):
        freed = rng.choice(agents)
        view = dict(agent_map)
        view[freed.agent_id] = core.AgentState(freed.agent_id, AgentStatus.AVAILABLE,
                                               freed.skills, idle_since=now)
        with timer:
            snap = core.Snapshot(now, view, ordered, stats, calls_sorted=True,
                                 available_ids=(freed.agent_id,))
            core.on_agent_available(snap, freed.agent_id, config)
    rows.append(timer.row("agent available"))

    timer = _Timer()
    for _ in range(iterations):
        free = rng.sample(agents, 40)
        view = dict(agent_map)
        for a in free:
            view[a.agent_id] = core.AgentState(a.agent_id, AgentStatus.AVAILABLE, a.skills,
                                               idle_since=a.idle_since)
        new = core.new_call(config, "new", rng.choice(list(config.rules)), now, 10_000)
        # The shell keeps waiting calls sorted (a Redis sorted set): the new one is inserted.
        with_new = list(ordered)
        bisect.insort(with_new, new, key=_order_key)
        ids = [a.agent_id for a in free]
        with timer:
            snap = core.Snapshot(now, view, with_new, stats, calls_sorted=True,
                                 available_ids=ids)
            core.on_call_arrived(snap, "new", config)
    rows.append(timer.row("call arrived (40 free)"))

    for label, sorted_flag in (("decide, 1 free", True), ("decide, 1 free, unsorted", False)):
        timer = _Timer()
        for _ in range(iterations // 2):
            freed = rng.choice(agents)
            view = dict(agent_map)
            view[freed.agent_id] = core.AgentState(freed.agent_id, AgentStatus.AVAILABLE,
                                                   freed.skills, idle_since=now)
            given = ordered if sorted_flag else rng.sample(calls, len(calls))
            with timer:
                snap = core.Snapshot(now, view, given, stats, calls_sorted=sorted_flag,
                                     available_ids=(freed.agent_id,))
                core.decide(snap, config)
        rows.append(timer.row(label))
    return rows


def bench_simulator(replications: int) -> list[tuple[str, int, float, float]]:
    rows = []
    for name in ("erlang_c_pooled", "multi_skill"):
        scenario = simulator.load_scenario(SCENARIOS / f"{name}.yaml")
        t0 = time.process_time()
        out = simulator.simulate(scenario, seed=1, policy="ours", replications=replications)
        cpu = time.process_time() - t0
        rows.append((name, out["calls"], cpu, out["calls"] / cpu))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)
    iterations = 400 if args.quick else 4000

    print(f"Decision latency: {N_AGENTS} agents, {N_SKILLS} skills, {N_CALLS} waiting calls, "
          f"{N_TYPES} request types (us, fresh snapshot per decision)")
    print(f"{'decision':26} {'cpu p50':>8} {'cpu p99':>8} {'wall p50':>9} {'wall p99':>9}")
    for label, c50, c99, w50, w99 in bench_latency(iterations):
        print(f"{label:26} {c50:8.1f} {c99:8.1f} {w50:9.1f} {w99:9.1f}")

    print("\nSimulator speed (policy ours)")
    print(f"{'scenario':18} {'calls':>8} {'cpu s':>7} {'calls/cpu s':>12}")
    for name, calls, cpu, rate in bench_simulator(1):
        print(f"{name:18} {calls:8d} {cpu:7.2f} {rate:12.0f}")

    pooled = simulator.load_scenario(SCENARIOS / "erlang_c_pooled.yaml")
    sim = simulator.simulate(pooled, seed=1)["overall"]
    c = erlang.erlang_c(14, 200 / 3600, 180, 20)
    print("\nValidation: 14 agents, 200 calls/h, AHT 180 s, SL within 20 s")
    print(f"{'':14} {'SL':>8} {'ASA s':>8} {'occupancy':>10}")
    print(f"{'Erlang C':14} {c.service_level:8.4f} {c.asa:8.2f} {c.occupancy:10.3f}")
    print(f"{'simulated':14} {sim['service_level']:8.4f} {sim['asa_s']:8.2f} "
          f"{sim['occupancy']:10.3f}   ({sim['offered']} calls)")

    multi = simulator.load_scenario(SCENARIOS / "multi_skill.yaml")
    print("\nComparison: multi_skill.yaml (26 agents, 5 request types, same callers)")
    print(f"{'policy':14} {'SL':>8} {'ASA s':>8} {'abandon':>8} {'EWT MAE s':>10}")
    for name in simulator.POLICIES:
        o = simulator.simulate(multi, seed=1, policy=name)["overall"]
        print(f"{name:14} {o['service_level']:8.4f} {o['asa_s']:8.2f} {o['abandonment']:8.4f} "
              f"{o['estimated_wait_mae_s']:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
