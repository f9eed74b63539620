"""The fault campaign with real SIP callers: the load benchmark's fleet (SIPp signalling, one
RTP endpoint per call, :mod:`benchmarks.load.fleet`) on the line while a fault hits.

One run: the service starts (and its backup where the scenario wants it); the fleet keeps
``concurrent`` callers up for about ``seconds`` (a third speak their request, the rest press
a key: every one of them wants a human, and answers again as people do,
:func:`answers_again`); ``fault_at_s`` after the first INVITE, when the
fleet is at its full size, the fault is injected, held and healed. Right after the heal a
probe caller (SIP too, pressing 3) rings in, again until one reaches an agent: its wait is
the recovery. What each caller heard is what its own RTP endpoint received, from the first
prompt to the agent's answer, leaving out its own sentence (``CallOutcome.owed_dead_air``);
who answered, and when, from the answering phones' own logs (the agents' and the
operator's: independent of the service and of Redis, which is what a fault takes away); the
calls' ids from their work orders (:mod:`benchmarks.load.evidence`) and the orders from
Redis, as the Local-channel campaign (:mod:`.campaign`) checks them. The verdict is the
same (:func:`.scenario.verdict`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks.load.evidence import Evidence, answers_by_tag, apply_evidence, gather
from benchmarks.load.faults.campaign import (
    World,
    order_checks,
    orders_indexed,
)
from benchmarks.load.faults.scenario import CallOutcome, FaultResult, Scenario, verdict
from benchmarks.load.fleet import CallerFleet
from benchmarks.load.fleet import CallOutcome as SipCall
from benchmarks.load.mix import KEY_AT_S, CallerPlan, Sentence, plan_mix
from testbed.checks import events as stream_events
from testbed.checks import workorder

#: Callers who each want a human: a third say why they call, the others press a key.
MIX = {"speak": 1 / 3, "keys": 2 / 3}
PROBE_SIP_PORT = 5082  # beside the fleet's 5081: the probe rings while the fleet still runs
CALL_S = 25.0  # about how long one caller of the mix stays on the line (sizes the fleet)
#: Shorter quiet stretches are the pauses within and between prompts.
QUIET_MIN_S = 0.3
HUMAN = ("agent", "operator")
AGAIN_AT_S = (25.0, 45.0)  # from the first prompt: a caller without a human yet answers again
PhoneLine = tuple[str, str, str]  # a softphone log's (kind, SIP call id, detail)
PhoneLogs = Callable[[], dict[str, list[PhoneLine]]]  # phone name -> its log so far


@dataclass(frozen=True)
class SipLoad:
    """How the fleet loads the stack during a fault."""

    concurrent: int
    seconds: float
    sentences: Sequence[Sentence]
    speech: dict[str, list[bytes]]  # sentence text -> 20 ms mu-law frames
    log_dir: Path
    fault_at_s: float = 8.0  # from the first INVITE: the fleet ramps up in 5 s
    seed: int = 1

    def plans(self, scenario: Scenario) -> list[CallerPlan]:
        count = max(self.concurrent, round(self.concurrent * self.seconds / CALL_S))
        mix = {"speak": 1.0} if scenario.callers == "speech" else MIX
        plans = plan_mix(count, mix, self.sentences, self.seed, step=_step(scenario.name))
        return [replace(plan, keys=answers_again(plan)) for plan in plans]


def answers_again(plan: CallerPlan) -> tuple[tuple[float, str], ...]:
    """The plan's keys and the ones a person adds when the hotline asks again: 3 (a fault
    report) at ``AGAIN_AT_S`` (the instance that had their request may have died and the
    backup started their call over; in the queue and with an agent the key does nothing).
    A speaker's "yes" to the confirmation of words spoken over the question (key 1, 4 s after
    them; billing in the menu if the pool turned them away, as the Local-channel campaign's
    speakers do) is their media's own (:class:`benchmarks.load.media.CallerMedia`)."""
    return tuple(sorted([*plan.keys, *((at, "3") for at in AGAIN_AT_S)]))


def _step(name: str) -> str:
    """A scenario's name as the tag's step (``evidence.TAG``: no hyphen inside)."""
    return name.replace("-", ".")


def longest_quiet(call: SipCall) -> tuple[float, float] | None:
    """The longest owed stretch of dead air the caller heard, as (length, seconds into the
    call); None when the caller received nothing at all."""
    if call.packets == 0:
        return None
    spans = call.owed_dead_air(QUIET_MIN_S)
    if not spans:
        return 0.0, 0.0
    start, end = max(spans, key=lambda span: span[1] - span[0])
    return end - start, start - (call.invite_at or start)


def dropped_by(call: SipCall, scenario: Scenario, injected_at: float,
               healed_at: float) -> bool:
    """Whether the fault itself ended (or refused) this call: only a scenario that drops
    calls (Asterisk's restart) does, and only calls it met while it lasted."""
    if not scenario.drops_calls or call.reached in HUMAN:
        return False
    window = (injected_at, healed_at + 5)
    return any(at is not None and window[0] <= at <= window[1]
               for at in (call.ended_at, call.invite_at))


def answered_by(logs: dict[str, list[PhoneLine]]) -> dict[str, tuple[str, float]]:
    """Each fleet caller a human answered: tag -> (the phone's name, when it answered)."""
    found: dict[str, tuple[str, float]] = {}
    for phone, lines in logs.items():
        for tag, at in answers_by_tag(lines).items():
            if tag not in found or at < found[tag][1]:
                found[tag] = (phone, at)
    return found


def heard_by_humans(calls: Sequence[SipCall], humans: dict[str, tuple[str, float]]) -> None:
    """Who answered each call and when, by the phones themselves where they logged it (the
    event stream may have lost it with Redis), and its owed dead air up to that answer."""
    for call in calls:
        if call.tag in humans:
            phone, at = humans[call.tag]
            call.reached = "operator" if phone == "operator" else "agent"
            call.agent = "" if phone == "operator" else phone
            call.connected_at = at
        call.dead_air = call.owed_dead_air()


def recovery_s(calls: Sequence[SipCall], healed_at: float) -> float | None:
    """Seconds from the heal until a caller placed after it was answered by an agent."""
    answers = [c.connected_at - healed_at for c in calls
               if c.reached == "agent" and c.connected_at is not None
               and c.invite_at is not None and c.invite_at >= healed_at]
    return min(answers, default=None)


def judged(call: SipCall, call_id: str | None, dropped_by_fault: bool,
           orders: tuple[int, int, tuple[str, ...]]) -> CallOutcome:
    """A fleet caller as the verdict reads a call (``reached`` as Asterisk names the phone)."""
    quiet = longest_quiet(call)
    creations, count, ledger = orders
    return CallOutcome(
        call_id=call_id or call.tag,
        dead_air_s=None if quiet is None else round(quiet[0], 2),
        reached=(f"PJSIP/{call.agent}" if call.reached == "agent"
                 else "PJSIP/operator" if call.reached == "operator" else None),
        dropped_by_fault=dropped_by_fault, creations=creations, orders=count, ledger=ledger,
        dead_air_at_s=0.0 if quiet is None else round(quiet[1], 1),
    )


class _Fleet(threading.Thread):
    """The fleet on a thread of its own (it runs its own event loop) while the fault hits."""

    def __init__(self, fleet: CallerFleet, concurrent: int, timeout_s: float) -> None:
        super().__init__(daemon=True, name="fault-fleet")
        self.fleet, self.concurrent, self.timeout_s = fleet, concurrent, timeout_s
        self.calls: list[SipCall] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.calls = self.fleet.run(concurrency=self.concurrent,
                                        rate=max(1.0, self.concurrent / 5),
                                        timeout_s=self.timeout_s)
        except BaseException as error:  # re-raised by the campaign's thread
            self.error = error


def run_sip(world: World, scenario: Scenario, load: SipLoad,
            phone_logs: PhoneLogs) -> FaultResult:
    """Run ``scenario`` under the fleet; the service is left running. ``phone_logs``:
    the answering phones' logs so far (agents and the operator)."""
    with world.staged(scenario):
        plans = load.plans(scenario)
        fleet = _Fleet(CallerFleet(plans, load.log_dir / scenario.name, load.speech),
                       load.concurrent, timeout_s=load.seconds * 3 + 180)
        first = time.time()
        fleet.start()
        time.sleep(max(0.0, first + load.fault_at_s - time.time()))
        injected_at, healed_at = world.strike(scenario)
        probes = _probe(world, scenario, load, healed_at, phone_logs)
        fleet.join()
        if fleet.error is not None:
            raise fleet.error
        calls = fleet.calls
        evidence = _settled_evidence(world, calls, phone_logs)
        apply_evidence(calls, evidence)
        heard_by_humans(calls, answered_by(phone_logs()))
        call_of_tag = {tag: call_id for call_id, tag in evidence.tag_of_call.items()}
        outcomes = []
        for call in calls:
            call_id = call_of_tag.get(call.tag)
            human = call.reached in HUMAN
            checks = (order_checks(world, call_id, human) if call_id is not None
                      else (0, 0, ()))
            outcomes.append(judged(call, call_id,
                                   dropped_by(call, scenario, injected_at, healed_at), checks))
        recovered = recovery_s([*calls, *probes], healed_at)
        indexed = orders_indexed(world)
    return verdict(scenario, outcomes, recovered, indexed)


def _evidence(world: World, phone_logs: PhoneLogs) -> Evidence:
    """What the stack recorded of every call so far (this scenario's Redis was flushed)."""
    service = world.primary
    return gather(stream_events(world.db), lambda call_id: workorder(service, call_id),
                  service.log_path.read_text(errors="replace"),
                  phone_logs().get("operator", []))


def _settled_evidence(world: World, calls: Sequence[SipCall],
                      phone_logs: PhoneLogs, timeout_s: float = 60.0) -> Evidence:
    """The evidence once every answered caller's order is in Redis, or ``timeout_s`` on (a
    spooled order reaches Redis when the spool is replayed; one that never does is lost,
    which the verdict says, and its caller cannot be followed to an agent either)."""
    deadline = time.time() + timeout_s
    while True:
        evidence = _evidence(world, phone_logs)
        mapped = set(evidence.tag_of_call.values())
        if all(c.tag in mapped for c in calls if c.answered_at is not None) \
                or time.time() > deadline:
            return evidence
        time.sleep(2.0)


def _probe(world: World, scenario: Scenario, load: SipLoad, healed_at: float,
           phone_logs: PhoneLogs, deadline_s: float = 90.0
           ) -> list[SipCall]:
    """SIP callers placed one after another from the heal on, pressing 3 (a fault report),
    until one is answered by an agent or ``deadline_s`` is over."""
    probes: list[SipCall] = []
    attempt = 0
    while time.time() < healed_at + deadline_s:
        plan = CallerPlan(0, "keys", f"load-probe.{_step(scenario.name)}.{attempt}-0",
                          keys=((KEY_AT_S, "3"),), hang_up_after_s=60.0)
        fleet = CallerFleet([plan], load.log_dir / f"{scenario.name}-probe-{attempt}",
                            sip_port=PROBE_SIP_PORT)
        (call,) = fleet.run(concurrency=1, rate=1.0, timeout_s=90.0)
        apply_evidence([call], _evidence(world, phone_logs))
        heard_by_humans([call], answered_by(phone_logs()))
        probes.append(call)
        if call.reached == "agent":
            break
        attempt += 1
    return probes
