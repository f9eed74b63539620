"""The step table: one row per load step, from the calls' outcomes and the processes' CPU.
Pure (the row is computed from plain data), so the arithmetic is unit tested."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.load.fleet import CallOutcome

# The endpointer waits this long after the last voiced frame before it calls it the end of
# speech (config/intents.yaml speech.endpointing.trailing_silence_ms): part of what a caller
# waits, not of the recognizer's work.
TRAILING_SILENCE_S = 0.7
PROCESSES = ("asterisk", "ivr serve", "redis-server")


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class StepRow:
    concurrent: int
    calls: int
    speaking: int
    completed: int  # reached an agent, the operator, a callback, or hung up as planned
    set_up_failures: int
    dropped: int
    reached: dict[str, int]
    first_prompt_p50_ms: float | None
    first_prompt_p99_ms: float | None
    decision_p50_ms: float | None  # caller's last voiced frame -> decision, minus trailing s.
    decision_p99_ms: float | None
    decision_raw_p99_ms: float | None  # the same with the endpointer's trailing silence
    accuracy: float | None
    accuracy_of: int
    queue_wait_p50_s: float | None
    queue_wait_max_s: float | None
    underruns: int
    calls_with_underruns: int
    longest_dead_air_s: float
    # p50 of each piece of the time to first prompt (see first_prompt_split)
    first_prompt_split_p50_ms: dict[str, float | None] = field(default_factory=dict)
    cpu_pct: dict[str, float] = field(default_factory=dict)  # % of the box
    rss_mb: dict[str, float] = field(default_factory=dict)
    load_average: float | None = None
    wall_s: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


FIRST_PROMPT_PIECES = ("sip", "caller_first_rtp", "answer_to_play", "lead_in")


def first_prompt_split(out: CallOutcome) -> dict[str, float | None]:
    """One call's time to first prompt in consecutive pieces, seconds (None: not measured):

    * ``sip`` - INVITE to the 200 OK (digest challenge, second INVITE, Answer());
    * ``caller_first_rtp`` - the 200 OK to the caller's first RTP packet (the phone's own
      start; None when the caller sent nothing before Asterisk did);
    * ``answer_to_play`` - from there to Asterisk's first packet: the rest of Answer()'s wait
      for the caller's media (up to 500 ms), FastAGI connect and environment, the service's
      first reads, the welcome's STREAM FILE;
    * ``lead_in`` - Asterisk's first packet to the first audible one (the prompt's own
      leading silence).
    """
    def span(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else end - start

    caller = out.first_sent_at
    if caller is not None and out.first_packet_at is not None and caller > out.first_packet_at:
        caller = None  # it only answered Asterisk's first packet
    return {
        "sip": span(out.invite_at, out.answered_at),
        "caller_first_rtp": span(out.answered_at, caller),
        "answer_to_play": span(caller if caller is not None else out.answered_at,
                               out.first_packet_at),
        "lead_in": span(out.first_packet_at, out.first_prompt_at),
    }


def step_row(
    concurrent: int, outcomes: Sequence[CallOutcome], cpu_pct: Mapping[str, float],
    rss_mb: Mapping[str, float], load_average: float | None = None, wall_s: float = 0.0,
) -> StepRow:
    """One row of the table from a step's outcomes (``reached`` filled in)."""
    reached = Counter(out.reached for out in outcomes)
    completed = sum(reached[kind] for kind in ("agent", "operator", "callback", "hung-up"))
    first = [t for out in outcomes if (t := out.time_to_first_prompt_s) is not None]
    decisions = [out.decided_at - out.speech_end_at for out in outcomes
                 if out.decided_at is not None and out.speech_end_at is not None]
    speakers = [out for out in outcomes if out.kind == "speak" and out.category is not None]
    correct = sum(understood(out) for out in speakers)
    waits = [out.queue_wait_s for out in outcomes if out.queue_wait_s is not None]
    dead = [b - a for out in outcomes for a, b in out.dead_air]
    splits = [first_prompt_split(out) for out in outcomes]
    return StepRow(
        concurrent=concurrent,
        calls=len(outcomes),
        speaking=sum(out.kind == "speak" for out in outcomes),
        completed=completed,
        set_up_failures=reached["failed"],
        dropped=reached["dropped"],
        reached=dict(sorted(reached.items())),
        first_prompt_p50_ms=_ms(percentile(first, 50)),
        first_prompt_p99_ms=_ms(percentile(first, 99)),
        first_prompt_split_p50_ms={
            piece: _ms(percentile([v for split in splits if (v := split[piece]) is not None], 50))
            for piece in FIRST_PROMPT_PIECES},
        decision_p50_ms=_ms(_minus(percentile(decisions, 50), TRAILING_SILENCE_S)),
        decision_p99_ms=_ms(_minus(percentile(decisions, 99), TRAILING_SILENCE_S)),
        decision_raw_p99_ms=_ms(percentile(decisions, 99)),
        accuracy=round(100 * correct / len(speakers), 1) if speakers else None,
        accuracy_of=len(speakers),
        queue_wait_p50_s=percentile(waits, 50),
        queue_wait_max_s=max(waits) if waits else None,
        underruns=sum(len(out.underruns) for out in outcomes),
        calls_with_underruns=sum(bool(out.underruns) for out in outcomes),
        longest_dead_air_s=round(max(dead), 2) if dead else 0.0,
        cpu_pct={name: round(value, 1) for name, value in cpu_pct.items()},
        rss_mb={name: round(value, 1) for name, value in rss_mb.items()},
        load_average=load_average,
        wall_s=round(wall_s, 1),
    )


def understood(out: CallOutcome) -> bool:
    """The hotline decided what the caller said: the work order's category is the sentence's
    label, or, for a caller asking for a person (label ``operator``, whose work order is
    filed as ``other``), the call went to the operator."""
    if out.expected_category == "operator":
        return out.reached == "operator"
    return out.category == out.expected_category


def _minus(value: float | None, by: float) -> float | None:
    return None if value is None else max(0.0, value - by)


def _cell(value: object, suffix: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}{suffix}"
    return f"{value}{suffix}"


def markdown(rows: Sequence[StepRow]) -> str:
    """The step table as a Markdown table (what ``run`` prints and the README shows)."""
    head = ["concurrent", "calls", "completed", "set-up failures", "dropped",
            "first prompt p50 / p99 ms", "speech end → decision p50 / p99 ms",
            "accuracy", "queue wait p50 / max s", "underruns (calls)",
            "longest dead air s", *(f"CPU {name} %" for name in PROCESSES),
            "RSS ast / ivr / redis MB", "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [
            str(row.concurrent), f"{row.calls} ({row.speaking} speaking)", str(row.completed),
            str(row.set_up_failures), str(row.dropped),
            f"{_cell(row.first_prompt_p50_ms)} / {_cell(row.first_prompt_p99_ms)}",
            f"{_cell(row.decision_p50_ms)} / {_cell(row.decision_p99_ms)}",
            f"{_cell(row.accuracy, '%')} of {row.accuracy_of}",
            f"{_cell(row.queue_wait_p50_s)} / {_cell(row.queue_wait_max_s)}",
            f"{row.underruns} ({row.calls_with_underruns})", _cell(row.longest_dead_air_s),
            *(_cell(row.cpu_pct.get(name)) for name in PROCESSES),
            " / ".join(_cell(row.rss_mb.get(name)) for name in PROCESSES),
            _cell(row.load_average),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
