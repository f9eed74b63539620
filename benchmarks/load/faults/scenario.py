"""A fault scenario as data, and the verdict on what the callers lived through (pure).

A :class:`Scenario` says how to break the stack (``inject``), how to mend it (``heal``), how
long the fault lasts and what kind of callers are on the line. The campaign
(:mod:`.campaign`) runs it and sums each call up as a :class:`CallOutcome`; :func:`verdict`
turns those into a :class:`FaultResult` against the issue's bar: no caller hears more than
2 s of dead air, none is dropped before reaching a human (except the calls Asterisk's own
restart drops, counted apart), no work order lost or doubled, and a new call after the heal
reaches an agent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.load.faults.campaign import World

MAX_DEAD_AIR_S = 2.0


@dataclass(frozen=True)
class Scenario:
    """One fault: ``inject`` breaks, ``heal`` mends, ``hold_s`` seconds apart."""

    name: str
    fault: str
    inject: Callable[[World], None]
    heal: Callable[[World], None]
    hold_s: float = 5.0
    inject_after_s: float = 3.0
    callers: str = "dtmf"  # dtmf: key 3 (a fault report) during the welcome; speech: say it
    overrides: dict[str, Any] = field(default_factory=dict)
    backup: bool = False  # the backup instance (FastAGI 4574) runs beside the primary
    prepare: Callable[[World], None] | None = None  # before the service starts
    cleanup: Callable[[World], None] | None = None  # after the run, fault or not
    calls: int | None = None  # at least this many callers, whatever the run asks for
    drops_calls: bool = False  # the fault itself ends the calls in progress (Asterisk's restart)
    note: str = ""


@dataclass(frozen=True)
class CallOutcome:
    """One caller's call, summed up."""

    call_id: str
    dead_air_s: float | None  # None: nothing was recorded (the call never got going)
    reached: str | None  # "PJSIP/agent103", "PJSIP/operator", or None
    dropped_by_fault: bool  # ended by the fault itself (only where the scenario says it does)
    creations: int  # WOCREATE events of the call
    orders: int  # work orders filed under the call (by-call index)
    ledger: tuple[str, ...] = ()  # problems of its order's history against the event stream
    dead_air_at_s: float = 0.0  # where the longest dead air began, from the call's start


@dataclass
class FaultResult:
    """A scenario's figures and the problems against the bar (empty: it passed)."""

    scenario: str
    fault: str
    calls: int
    longest_dead_air_s: float
    dropped: int
    dropped_by_fault: int
    orders_lost: int
    orders_doubled: int
    recovery_s: float | None
    problems: list[str]
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.problems


def verdict(scenario: Scenario, outcomes: Sequence[CallOutcome], recovery_s: float | None,
            orders_indexed: tuple[int, int] = (0, 0)) -> FaultResult:
    """Judge the outcomes of one run of ``scenario``. ``orders_indexed``: the orders in the
    index and the calls with an order, over the whole run (probe callers included): an order
    filed twice under two ids makes the first larger."""
    problems: list[str] = []
    if orders_indexed[0] != orders_indexed[1]:
        problems.append(f"{orders_indexed[0]} orders indexed for {orders_indexed[1]} calls")
    dead = [o.dead_air_s for o in outcomes if o.dead_air_s is not None]
    longest = max(dead, default=0.0)
    for o in outcomes:
        if o.dropped_by_fault:
            continue
        if o.dead_air_s is None:
            problems.append(f"{o.call_id}: nothing recorded of what the caller heard")
        elif o.dead_air_s > MAX_DEAD_AIR_S:
            problems.append(f"{o.call_id}: {o.dead_air_s:.2f} s of dead air from "
                            f"{o.dead_air_at_s:.1f} s into the call")
    dropped = [o for o in outcomes if o.reached is None and not o.dropped_by_fault]
    problems += [f"{o.call_id}: ended without reaching an agent or the operator"
                 for o in dropped]
    # A call that reached a human made its request: its order must exist. One dropped by the
    # fault may have been cut before it made one.
    lost = [o for o in outcomes if o.reached is not None and o.orders == 0]
    doubled = [o for o in outcomes if o.orders > 1 or o.creations > 1]
    extra = max(0, orders_indexed[0] - orders_indexed[1])
    problems += [f"{o.call_id}: work order lost" for o in lost]
    problems += [f"{o.call_id}: {o.orders} orders, {o.creations} creations" for o in doubled]
    problems += [f"{o.call_id}: {line}" for o in outcomes for line in o.ledger]
    if recovery_s is None:
        problems.append("no new call reached an agent after the heal")
    return FaultResult(
        scenario=scenario.name, fault=scenario.fault, calls=len(outcomes),
        longest_dead_air_s=round(longest, 2), dropped=len(dropped),
        dropped_by_fault=sum(o.dropped_by_fault for o in outcomes),
        orders_lost=len(lost), orders_doubled=len(doubled) + extra,
        recovery_s=None if recovery_s is None else round(recovery_s, 1),
        problems=problems, note=scenario.note,
    )


def table(results: Sequence[FaultResult]) -> str:
    """The README's "Faults under load" table (Markdown)."""
    lines = [
        "| fault | calls | longest dead air | dropped | orders lost / doubled "
        "| new call at an agent after the heal | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        dropped = f"{r.dropped}" + (f" (+{r.dropped_by_fault} by the fault itself)"
                                    if r.dropped_by_fault else "")
        recovery = "never" if r.recovery_s is None else f"{r.recovery_s:.1f} s"
        lines.append(
            f"| {r.fault} | {r.calls} | {r.longest_dead_air_s:.2f} s | {dropped} "
            f"| {r.orders_lost} / {r.orders_doubled} | {recovery} "
            f"| {'pass' if r.passed else 'FAIL: ' + '; '.join(r.problems[:3])} |")
    return "\n".join(lines)
