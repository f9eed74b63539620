"""The verdict on a fault run against the issue's bar, and the README's table."""

from __future__ import annotations

from benchmarks.load.faults.scenario import CallOutcome, Scenario, table, verdict


def _nothing(world: object) -> None:
    """No action."""


SCENARIO = Scenario("redis-kill", "redis-server `kill -9`", _nothing, _nothing)


def call(call_id: str = "c1", dead_air_s: float | None = 0.5, reached: str | None = "agent",
         dropped_by_fault: bool = False, creations: int = 1, orders: int = 1,
         ledger: tuple[str, ...] = ()) -> CallOutcome:
    return CallOutcome(call_id, dead_air_s, reached, dropped_by_fault, creations, orders, ledger)


def test_a_clean_run_passes_with_its_figures() -> None:
    """Short dead air, everyone answered, one order each, recovered: no problem, and the
    figures are the worst call's."""
    result = verdict(SCENARIO, [call("a", 0.4), call("b", 1.9)], 6.2, (3, 3))
    assert result.passed
    assert (result.longest_dead_air_s, result.dropped, result.recovery_s) == (1.9, 0, 6.2)


def test_each_breach_of_the_bar_is_a_problem() -> None:
    """Dead air over 2 s, a call that reached nobody, a lost order, a doubled order, a
    history that does not match its events, a call whose sound was not recorded (unmeasured
    is not silent) and no recovery each fail the run."""
    result = verdict(SCENARIO, [
        call("long", 2.5),
        call("dropped", reached=None, orders=0, creations=0),
        call("lost", orders=0, creations=0),
        call("doubled", creations=2),
        call("ledger", ledger=("history [] against events ['WOCREATE']",)),
        call("deaf", dead_air_s=None),
    ], None, (4, 4))
    assert not result.passed
    assert (result.dropped, result.orders_lost, result.orders_doubled) == (1, 1, 1)
    text = " ".join(result.problems)
    for fragment in ("long: 2.50 s", "dropped: ended", "lost: work order lost",
                     "doubled: 1 orders, 2 creations", "ledger: history",
                     "no new call reached an agent", "deaf: nothing recorded"):
        assert fragment in text


def test_calls_the_fault_itself_ends_are_counted_apart() -> None:
    """A call Asterisk's restart cut (dropped by the fault) is neither dropped nor judged on
    its dead air or its missing order."""
    result = verdict(SCENARIO, [call("cut", 3.0, reached=None, dropped_by_fault=True, orders=0,
                                     creations=0)], 4.0, (0, 0))
    assert result.passed
    assert (result.dropped, result.dropped_by_fault) == (0, 1)


def test_more_orders_indexed_than_calls_is_a_doubled_order() -> None:
    """An order filed twice under two ids shows as more orders in the index than calls with
    an order."""
    result = verdict(SCENARIO, [call()], 3.0, (2, 1))
    assert not result.passed and result.orders_doubled == 1


def test_table_has_one_row_per_fault() -> None:
    """The README table: the fault, dead air, drops, orders, recovery and the verdict."""
    text = table([verdict(SCENARIO, [call()], 5.0, (1, 1))])
    assert text.splitlines()[2] == (
        "| redis-server `kill -9` | 1 | 0.50 s | 0 | 0 / 0 | 5.0 s | pass |")
