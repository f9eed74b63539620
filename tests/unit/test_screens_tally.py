"""Today's figures kept event by event (screens.tally.TodayTally) against ``ivr report``'s
arithmetic over the whole day (screens.board.today_figures, the start-up path)."""

from __future__ import annotations

import random
from collections.abc import Mapping

from events import event_fields
from routing.testing import shipped_config
from screens.board import DAY_S, today_figures
from screens.tally import TodayTally

CONFIG = shipped_config()
TARGETS = {name: q.service_level for name, q in CONFIG.queues.items()}
DAY = 1_800_057_600.0  # 2027-01-16T00:00:00Z
INTERVAL = 1800.0


def recorded_day(seed: int = 13, calls: int = 600) -> list[dict[str, str]]:
    """A day of a busy hotline's reported events, in stream order: calls entering queues
    (some the hour before midnight, some whose entry is not in the stream), ring failures,
    answers, abandons short and long, overflows; a second outcome of a call, a late
    ``ENTERQUEUE`` behind its outcome (another instance's clock), abandons before any queue,
    unreadable events, a call entered "in the future" of a skewed instance."""
    rng = random.Random(seed)
    queues = [*sorted(TARGETS), "retired-queue"]
    timed: list[tuple[float, int, dict[str, str]]] = []
    n = 0

    def emit(kind: str, at: float, **fields: str) -> None:
        nonlocal n
        n += 1
        timed.append((at, n, event_fields(kind, at, **fields)))

    for i in range(calls):
        call_id, queue = f"c{i}", rng.choice(queues)
        entered = DAY - 3600 + rng.random() * (DAY_S / 2)
        wait = round(rng.expovariate(1 / 40), 3)
        shape = rng.random()
        if shape > 0.05:
            emit("ENTERQUEUE", entered, call_id=call_id, queue=queue)
        for ring in range(rng.choice([0, 0, 0, 1, 2])):
            emit("RINGNOANSWER", entered + 1 + ring, call_id=call_id, queue=queue)
        ends = entered + wait
        outcome = rng.random()
        if outcome < 0.7:
            emit("CONNECT", ends, call_id=call_id, queue=queue, holdtime=str(wait))
        elif outcome < 0.85:
            emit("ABANDON", ends, call_id=call_id, queue=queue, waittime=str(wait))
        elif outcome < 0.9:
            emit("EXITWITHTIMEOUT", ends, call_id=call_id, queue=queue, waittime=str(wait))
        elif outcome < 0.92:
            emit("CONNECT", ends, call_id=call_id, queue=queue, holdtime="soon")
        # else: still waiting
        if outcome < 0.7 and rng.random() < 0.03:
            emit("ABANDON", ends + 5, call_id=call_id, queue=queue, waittime="3")
        if 0.05 < shape < 0.08:  # another instance wrote the entry late
            timed.append((ends + 1, n, event_fields("ENTERQUEUE", entered, call_id=call_id,
                                                    queue=queue)))
        if rng.random() < 0.02:
            emit("ABANDON", entered - 2, call_id=f"{call_id}-ivr")
        if rng.random() < 0.01:
            emit("CONNECT", entered, queue=queue, holdtime="1")
    timed.sort(key=lambda x: (x[0], x[1]))
    events = [e for _at, _n, e in timed]
    late = DAY + DAY_S / 2 + 600  # after the last "now" checked below
    events.append(event_fields("ENTERQUEUE", late, call_id="skewed", queue=queues[0]))
    return events


def from_scratch(events: list[dict[str, str]], now: float) -> object:
    return today_figures(events, CONFIG, now, day_start=DAY, interval_s=INTERVAL)


def tally_of(events: list[Mapping[str, str]]) -> TodayTally:
    tally = TodayTally(TARGETS, start=DAY, interval_s=INTERVAL)
    tally.add(events)
    return tally


def test_incremental_figures_equal_the_report_over_a_recorded_day() -> None:
    """Fed the day's events a few at a time and asked for the report between, the tally's
    report equals the one computed from scratch over the events so far, at every step:
    every interval of every queue, the totals (SL, answered, abandoned, short abandons,
    ASA), abandons before a queue and skipped events."""
    events = recorded_day()
    tally = TodayTally(TARGETS, start=DAY, interval_s=INTERVAL)
    rng = random.Random(7)
    at, checked = 0, 0
    while at < len(events):
        step = rng.randint(1, 40)
        tally.add(events[at:at + step])
        at += step
        now = DAY + (DAY_S / 2) * at / len(events)
        mine = tally.report(now)
        assert mine == from_scratch(events[:at], now), f"after {at} events"
        checked += 1
    assert checked > 20
    final = tally.report(DAY + DAY_S / 2)
    assert sum(t.stats.answered for t in final.totals.values()) > 300
    assert final.abandoned_before_queue > 0 and final.skipped_events > 0


def test_a_late_entry_moves_its_call_to_the_interval_it_entered() -> None:
    """An answered call first placed by its answer's time less its wait is moved when its
    ``ENTERQUEUE`` (written late by another instance) says it entered in an earlier
    interval: it leaves the later row and counts in the earlier one, as in the report."""
    queue = sorted(TARGETS)[0]
    answered = event_fields("CONNECT", DAY + 1805, call_id="a", queue=queue, holdtime="2")
    entered = event_fields("ENTERQUEUE", DAY + 1700, call_id="a", queue=queue)
    tally = tally_of([answered])
    assert [r.offered for r in tally.report(DAY + 3000).intervals[queue]] == [0, 1]
    tally.add([entered])
    report = tally.report(DAY + 3000)
    assert [r.offered for r in report.intervals[queue]] == [1, 0]
    assert report == from_scratch([answered, entered], DAY + 3000)


def test_a_call_entered_after_now_counts_once_now_passes_it() -> None:
    """A call whose entry is stamped after "now" (an instance's clock ahead) is left out
    until now passes it, then counted, as the report over the same events does."""
    queue = sorted(TARGETS)[0]
    early = event_fields("ENTERQUEUE", DAY + 100, call_id="b", queue=queue)
    ahead = event_fields("ENTERQUEUE", DAY + 130, call_id="c", queue=queue)
    tally = tally_of([early, ahead])
    assert tally.report(DAY + 120).totals[queue].offered == 1
    assert tally.report(DAY + 140).totals[queue].offered == 2
    assert tally.report(DAY + 140) == from_scratch([early, ahead], DAY + 140)
