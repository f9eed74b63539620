"""Running a fault scenario on the real stack, and what it takes from the stack (a World).

One run: the service starts (the backup instance too when the scenario wants it), ``calls``
callers ring in a few tenths of a second apart, the fault is injected while they are in the
menu and the queue, held, and healed. Right after the heal a new caller rings in, again until
one reaches an agent: its answer time is the recovery. Then every call is followed to its end
and summed up (:class:`~.scenario.CallOutcome`): the dead air it heard (:mod:`.hearing`), who
answered it (Asterisk's Dial events), its work orders in Redis and their history against the
event stream.
"""

from __future__ import annotations

import contextlib
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from benchmarks.load.faults.ear import CallTrace, Ear
from benchmarks.load.faults.scenario import CallOutcome, FaultResult, Scenario, verdict
from testbed.asterisk import Asterisk
from testbed.checks import events, ledger_problems, wait_for, workorder
from testbed.redis import RedisServer
from testbed.service import HotlineService, merge
from testbed.utterances import spoken
from workorders.buckets import Buckets

AGENTS = ("agent101", "agent102", "agent103", "agent104")
#: Where the testbed's orders live (the shipped workorders.yaml: 16 buckets, prefix hotline:).
BUCKETS = Buckets()
# A fault report by key 3 during the welcome, pressed again 3 s and 6 s later as a person does
# who hears the welcome start over: a key pressed during the killed instance's prompt is taken
# by that prompt (Asterisk hands it to the dead AGI) and lost, and the backup greets the caller
# anew, then waits for their words. In the queue, with an agent or in the recording notice the
# key does nothing (the callback key is 1, the notice has no opt-out key). The caller gives up
# after 45 s at the latest.
DTMF_CALLER = "w2|d3|w3|d3|w3|d3|w37|h"
SPOKEN_REQUEST = "Hi, my internet is down and I have no signal since this morning."


@dataclass(frozen=True)
class Instance:
    """An ``ivr serve`` instance: its name (and spool directory), its ports, and the config
    that sets the ports it has no option for."""

    name: str
    agi_port: int
    http_port: int
    overrides: dict[str, Any] = field(default_factory=dict)


PRIMARY = Instance("hotline-1", 4573, 8090)
# The dialplan's HOTLINE_AGI_BACKUP, with its own AudioSocket port beside the primary's.
BACKUP = Instance("hotline-2", 4574, 8091, {"service.yaml": {"audiosocket": {"port": 9093}}})

# start(agents=..., overrides=..., instance=..., agi_port=..., http_port=..., flush=...):
# the e2e ``hotline`` fixture, or the benchmark's own starter (``__main__``).
ServiceStarter = Callable[..., HotlineService]


@dataclass
class World:
    """The stack a scenario breaks: Asterisk, Redis, the service instances, the callers."""

    asterisk: Asterisk
    redis: RedisServer
    start: ServiceStarter
    spool_root: Path  # the instances' spool directories: <spool_root>/spool-<instance>
    ear: Ear
    agents: tuple[str, ...] = AGENTS  # the agents' phones the service rings
    scenario: Scenario | None = None
    services: dict[str, HotlineService] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # what a scenario keeps between steps

    @property
    def db(self) -> Redis:
        return Redis.from_url(self.redis.url, decode_responses=True)

    def spool_dir(self, instance: str = "hotline-1") -> Path:
        return self.spool_root / f"spool-{instance}"

    def start_service(self, which: Instance, flush: bool) -> HotlineService:
        overrides = merge(self.scenario.overrides if self.scenario else {}, which.overrides)
        service = self.start(agents=self.agents, overrides=overrides, flush=flush,
                             instance=which.name, agi_port=which.agi_port,
                             http_port=which.http_port)
        self.services[which.name] = service
        return service

    @property
    def primary(self) -> HotlineService:
        return self.services[PRIMARY.name]

    @contextlib.contextmanager
    def staged(self, scenario: Scenario) -> Iterator[None]:
        """The scenario's stack set up (:meth:`set_up`) for the run inside, and its cleanup
        after it, fault or not."""
        try:
            self.set_up(scenario)
            yield
        finally:
            if scenario.cleanup:
                scenario.cleanup(self)

    def set_up(self, scenario: Scenario) -> None:
        """The scenario's stack: its preparation, then the service (and the backup instance
        where the scenario wants it) on a flushed Redis."""
        self.scenario = scenario
        self.state.clear()
        if scenario.prepare:
            scenario.prepare(self)
        self.start_service(PRIMARY, flush=True)
        if scenario.backup:
            self.start_service(BACKUP, flush=False)

    def strike(self, scenario: Scenario) -> tuple[float, float]:
        """Inject the fault, hold it, heal it: when it was injected and when healed."""
        injected_at = time.time()
        scenario.inject(self)
        time.sleep(scenario.hold_s)
        scenario.heal(self)
        return injected_at, time.time()


SPEAKS_AT_S = 5.5  # into the speech prompt: a barge-in


def caller_script(world: World, kind: str) -> tuple[str, tuple[tuple[float, float], ...]]:
    """The caller's script, and when the caller speaks (seconds from the call's start)."""
    if kind == "speech":
        words = spoken(world.asterisk, SPOKEN_REQUEST)
        with wave.open(str(world.asterisk.sounds_dir / "testcalls" / (
                words.rsplit("/", 1)[1] + ".wav"))) as wav:
            length = wav.getnframes() / wav.getframerate()
        # Key 1 after the words: "yes" to the confirmation a request spoken over the question
        # gets (intents.yaml confirm_barge_in); a caller the pool turned away hears the menu,
        # where 1 is billing: either way a request, queued.
        return (f"w{SPEAKS_AT_S}|p{words}|w4|d1|w45|h",
                ((SPEAKS_AT_S, SPEAKS_AT_S + length + 0.2),))
    return DTMF_CALLER, ()


def run(world: World, scenario: Scenario, calls: int = 3, stagger_s: float = 0.4,
        call_timeout: float = 120.0) -> FaultResult:
    """Run ``scenario`` with ``calls`` concurrent callers; the service is left running."""
    with world.staged(scenario):
        script, world.state["caller_turns"] = caller_script(world, scenario.callers)
        first = time.time()
        traces = []
        for index in range(max(calls, scenario.calls or 0)):
            traces.append(world.ear.place(script, f"55591{index:02d}", f"Fault caller {index}"))
            time.sleep(stagger_s)
        time.sleep(max(0.0, first + scenario.inject_after_s - time.time()))
        injected_at, healed_at = world.strike(scenario)
        recovery_s = _recovery(world, healed_at, deadline=healed_at + 90)
        wait_for(lambda: world.ear.ended(traces), call_timeout, "every caller's call to end")
        outcomes = [_outcome(world, t, scenario, injected_at, healed_at) for t in traces]
        indexed = orders_indexed(world)
    return verdict(scenario, outcomes, recovery_s, indexed)


def _has_order(db: Any, call_id: str) -> bool:
    """Whether the call has its work order in Redis (its bucket is its caller's: ask all)."""
    return bool(db.exists(*BUCKETS.keys(f"wo:by-call:{call_id}")))


def _recovery(world: World, healed_at: float, deadline: float) -> float | None:
    """Seconds from the heal until a caller placed after it is answered by an agent."""
    while time.time() < deadline:
        probe = world.ear.place(DTMF_CALLER, "5559200", "After the fault")

        def settled(probe: CallTrace = probe) -> float | None:
            return probe.answered_at or probe.ended_at

        def ended(probe: CallTrace = probe) -> float | None:
            return probe.ended_at

        wait_for(settled, deadline - time.time() + 30,
                 "the caller after the heal to be answered or to end")
        if probe.reached_agent and probe.answered_at is not None:
            return probe.answered_at - healed_at
        wait_for(ended, 60, "the caller after the heal to end")
    return None


def order_checks(world: World, call_id: str, reached_human: bool
                 ) -> tuple[int, int, tuple[str, ...]]:
    """The call's creation events, its orders (by-call index) and what is wrong between its
    order's history and the event stream. A call that reached a human made its request:
    its order is waited for (a spooled one reaches Redis once the spool is replayed; none by
    then is lost, which the verdict says)."""
    db = world.db
    if reached_human:
        with contextlib.suppress(AssertionError):
            wait_for(lambda: _has_order(db, call_id), 60, f"the work order of {call_id}")
    stream = events(db, call_id)
    creations = sum(e["kind"] == "WOCREATE" for e in stream)
    orders = int(_has_order(db, call_id))
    ledger: list[str] = []
    if orders:
        order = wait_for(lambda: workorder(world.primary, call_id), 30,
                         f"the work order of {call_id} over HTTP")
        ledger = ledger_problems(order, [e for e in events(db)
                                         if e.get("order_id") == order["id"]])
    return creations, orders, tuple(ledger)


def orders_indexed(world: World) -> tuple[int, int]:
    """The orders in the index and the calls with an order: an order filed twice under two
    ids makes the first larger."""
    db = world.db
    return (sum(db.zcard(key) for key in BUCKETS.keys("wo:index")),
            len(list(db.scan_iter("hotline:wo:{wo*}:by-call:*"))))


def _outcome(world: World, trace: CallTrace, scenario: Scenario, injected_at: float,
             healed_at: float) -> CallOutcome:
    dropped_by_fault = (scenario.drops_calls and not trace.reached_human
                        and trace.ended_at is not None
                        and injected_at <= trace.ended_at <= healed_at + 5)
    creations, orders, ledger = order_checks(world, trace.call_id, trace.reached_human)
    dead = world.ear.dead_air(trace, world.state.get("caller_turns", ()))
    return CallOutcome(
        call_id=trace.call_id, dead_air_s=None if dead is None else dead.length_s,
        reached=trace.answered_by, dropped_by_fault=dropped_by_fault,
        creations=creations, orders=orders, ledger=ledger,
        dead_air_at_s=0.0 if dead is None else dead.start_s,
    )
