"""The step table's arithmetic: percentiles, completions, accuracy, decision time."""

from __future__ import annotations

import pytest

from benchmarks.load.audio import Underrun
from benchmarks.load.fleet import CallOutcome
from benchmarks.load.table import (
    TRAILING_SILENCE_S,
    first_prompt_split,
    markdown,
    percentile,
    step_row,
)


def outcome(index: int, kind: str = "keys", reached: str = "agent",
            **fields: object) -> CallOutcome:
    out = CallOutcome(index, kind, f"load-s-{index}", None, invite_at=100.0,
                      answered_at=100.05, first_prompt_at=100.2)
    out.reached = reached
    for name, value in fields.items():
        setattr(out, name, value)
    return out


def test_percentile_nearest_rank() -> None:
    """Nearest rank: p50 of 1..10 is 5, p99 is 10; nothing gives None."""
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 99)) == (5.0, 10.0)
    assert percentile([], 50) is None


def test_row_counts_what_the_callers_went_through() -> None:
    """Completed calls are those that reached someone or hung up as planned; set-up
    failures and drops are counted apart; first-prompt times are INVITE to first audio."""
    outs = [outcome(0), outcome(1, reached="operator"), outcome(2, reached="hung-up"),
            outcome(3, reached="callback"), outcome(4, reached="dropped"),
            outcome(5, reached="failed", answered_at=None, first_prompt_at=None)]
    row = step_row(6, outs, {"asterisk": 10.0}, {"asterisk": 50.0}, 1.5, 60.0)
    assert (row.calls, row.completed, row.set_up_failures, row.dropped) == (6, 4, 1, 1)
    assert row.first_prompt_p50_ms == 200.0 and row.first_prompt_p99_ms == 200.0
    assert row.reached["agent"] == 1


def test_first_prompt_split_into_its_pieces() -> None:
    """The time to first prompt splits into SIP set-up, the caller's first RTP packet after
    the answer, Asterisk's first packet after that (Answer()'s wait, FastAGI, the welcome's
    start) and the prompt's lead-in; a caller that only sent after Asterisk did has no piece
    of its own (the wait is Asterisk's); the row keeps each piece's p50."""
    out = outcome(0, first_sent_at=100.07, first_packet_at=100.16)
    split = first_prompt_split(out)
    assert split["sip"] == pytest.approx(0.05)
    assert split["caller_first_rtp"] == pytest.approx(0.02)
    assert split["answer_to_play"] == pytest.approx(0.09)
    assert split["lead_in"] == pytest.approx(0.04)
    late = first_prompt_split(outcome(1, first_sent_at=100.17, first_packet_at=100.16))
    assert late["caller_first_rtp"] is None
    assert late["answer_to_play"] == pytest.approx(0.11)
    row = step_row(1, [out], {}, {})
    assert row.first_prompt_split_p50_ms == {
        "sip": 50.0, "caller_first_rtp": 20.0, "answer_to_play": 90.0, "lead_in": 40.0}


def test_decision_time_and_accuracy_of_speakers() -> None:
    """Speech end to decision has the endpointer's trailing silence taken out (the raw p99
    keeps it); accuracy counts decided speakers whose category matches the label, and those
    asking for a person who reached the operator."""
    outs = [
        outcome(0, "speak", category="fault", expected_category="fault",
                speech_end_at=110.0, decided_at=110.0 + TRAILING_SILENCE_S + 0.1),
        outcome(1, "speak", category="inquiry", expected_category="fault",
                speech_end_at=110.0, decided_at=110.0 + TRAILING_SILENCE_S + 0.3),
        outcome(2, "speak", category=None, expected_category="fault"),
        outcome(3, "speak", "operator", category="other", expected_category="operator"),
        outcome(4, "speak", "agent", category="other", expected_category="operator"),
    ]
    row = step_row(5, outs, {}, {})
    assert row.decision_p50_ms == 100.0 and row.decision_p99_ms == 300.0
    assert row.decision_raw_p99_ms == 1000.0
    assert (row.accuracy, row.accuracy_of) == (50.0, 4)


def test_audio_columns() -> None:
    """Underruns are summed over calls; the longest dead air is the longest single stretch."""
    outs = [outcome(0, underruns=[Underrun(1, 0.1), Underrun(2, 0.0, lost=True)],
                    dead_air=[(0.0, 2.5)]),
            outcome(1, dead_air=[(5.0, 8.0)]), outcome(2)]
    row = step_row(3, outs, {}, {})
    assert (row.underruns, row.calls_with_underruns, row.longest_dead_air_s) == (2, 1, 3.0)
    table = markdown([row])
    assert table.count("\n") == 2 and "| 3 |" in table
