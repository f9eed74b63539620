"""``ivr report``'s arithmetic over hand-made event streams, its chart and its stream reader."""

from __future__ import annotations

import base64
import re

import pytest

from events import event_fields
from hotline.report import (
    compute_report,
    parse_interval,
    parse_time,
    read_events,
    render_html,
    render_png,
)
from routing.core import ServiceLevelTarget

T0 = parse_time("2026-11-28T10:00:00Z")
assert T0 is not None
TARGET = ServiceLevelTarget(target=0.8, threshold_s=20, short_abandon_s=5)


def enter(call: str, at: float, queue: str = "faults") -> dict[str, str]:
    return event_fields("ENTERQUEUE", T0 + at, call_id=call, queue=queue)


def connect(call: str, entered: float, wait: float, queue: str = "faults") -> dict[str, str]:
    return event_fields("CONNECT", T0 + entered + wait, call_id=call, queue=queue,
                        agent="agent103", holdtime=f"{wait:.3f}")


def leave(kind: str, call: str, entered: float, wait: float, queue: str = "faults"
          ) -> dict[str, str]:
    return event_fields(kind, T0 + entered + wait, call_id=call, queue=queue,
                        waittime=f"{wait:.3f}", stage="queue")


def test_service_level_speed_of_answer_and_abandonment_follow_the_core_definition() -> None:
    """Six calls in one queue (target 80 % within 20 s, abandons under 5 s left out):
    answered after 10 s, exactly 20 s and 25 s, abandoned after 3 s (short) and 40 s, one
    overflowed. Service level = 2 within / (3 answered + 1 abandoned + 1 overflowed) = 0.4;
    ASA = (10 + 20 + 25) / 3; abandonment = 1 / (6 offered - 1 short) = 0.2."""
    events = [
        enter("a", 0), connect("a", 0, 10),
        enter("b", 60), connect("b", 60, 20),
        enter("c", 120), connect("c", 120, 25),
        enter("d", 180), leave("ABANDON", "d", 180, 3),
        enter("e", 240), leave("ABANDON", "e", 240, 40),
        enter("f", 300), leave("EXITWITHTIMEOUT", "f", 300, 300),
    ]
    report = compute_report(events, {"faults": TARGET}, start=T0, end=T0 + 3600,
                            interval_s=900)
    total = report.totals["faults"]
    assert total.offered == 6
    assert (total.stats.answered, total.stats.answered_within) == (3, 2)
    assert (total.stats.abandoned, total.stats.abandoned_short) == (1, 1)
    assert total.stats.overflowed == 1
    assert total.service_level == pytest.approx(0.4)
    assert total.asa_s == pytest.approx(55 / 3)
    assert total.abandon_rate == pytest.approx(0.2)
    assert total.waiting == 0


def test_every_abandon_counts_when_no_short_threshold() -> None:
    """With ``exclude_abandons_under_s`` 0 a 1-second abandon counts against the service
    level: 1 answered in time, 1 abandoned -> 50 %."""
    events = [enter("a", 0), connect("a", 0, 5), enter("b", 10), leave("ABANDON", "b", 10, 1)]
    target = ServiceLevelTarget(target=0.8, threshold_s=20, short_abandon_s=0)
    report = compute_report(events, {"faults": target}, start=T0, end=T0 + 900)
    assert report.totals["faults"].service_level == pytest.approx(0.5)
    assert report.totals["faults"].abandon_rate == pytest.approx(0.5)


def test_a_call_counts_in_the_interval_it_entered_the_queue() -> None:
    """A call entering at 10:14:50 and answered at 10:15:20 is offered and answered in the
    10:00 row, so no row ever shows more answered than offered; rows start at :00/:15/:30."""
    events = [enter("a", 14 * 60 + 50), connect("a", 14 * 60 + 50, 30),
              enter("b", 16 * 60), connect("b", 16 * 60, 4)]
    report = compute_report(events, {"faults": TARGET}, start=T0 + 7 * 60, end=T0 + 3600,
                            interval_s=900)
    rows = report.intervals["faults"]
    assert [r.start - T0 for r in rows] == [0, 900, 1800, 2700]
    assert [(r.offered, r.stats.answered, r.stats.answered_within) for r in rows[:2]] == [
        (1, 1, 0), (1, 1, 1)]
    assert rows[2].service_level is None and rows[2].asa_s is None
    listed = report.as_dict()["intervals"]
    assert [row["start"] for row in listed] == ["2026-11-28T10:00:00Z", "2026-11-28T10:15:00Z"]


def test_only_the_first_outcome_of_a_call_in_a_queue_counts() -> None:
    """A caller sent to the operator who hangs up during the transfer (EXITWITHTIMEOUT, then
    ABANDON in the same queue) is one overflowed call, not also an abandon."""
    events = [enter("a", 0), leave("EXITWITHTIMEOUT", "a", 0, 300),
              leave("ABANDON", "a", 0, 302)]
    total = compute_report(events, {"faults": TARGET}, start=T0, end=T0 + 900).totals["faults"]
    assert (total.offered, total.stats.overflowed, total.stats.abandoned) == (1, 1, 0)


def test_a_call_overflowed_into_another_queue_is_offered_there_again() -> None:
    """billing overflows to general after 60 s, where the call is answered 5 s later: billing
    has one overflowed call (service level 0), general one answered in time (100 %)."""
    events = [enter("a", 0, "billing"), leave("EXITWITHTIMEOUT", "a", 0, 60, "billing"),
              enter("a", 60, "general"), connect("a", 60, 5, "general")]
    targets = {"billing": TARGET, "general": TARGET}
    report = compute_report(events, targets, start=T0, end=T0 + 900)
    assert report.totals["billing"].service_level == 0
    assert report.totals["general"].service_level == 1
    assert report.totals["general"].asa_s == pytest.approx(5)


def test_calls_that_entered_before_the_report_are_left_out() -> None:
    """An answer at 10:00:30 for a call that entered at 09:59:50 (its ENTERQUEUE read or
    not) belongs to the interval before the report; an answer whose ENTERQUEUE was not read
    but whose wait places its entry inside the report counts."""
    early = event_fields("CONNECT", T0 + 30, call_id="early", queue="faults", holdtime="40")
    late = event_fields("CONNECT", T0 + 130, call_id="late", queue="faults", holdtime="30")
    report = compute_report([early, late], {"faults": TARGET}, start=T0, end=T0 + 900)
    assert report.totals["faults"].offered == 1
    assert report.totals["faults"].asa_s == pytest.approx(30)


def test_waiting_ring_failures_and_hangups_before_a_queue() -> None:
    """A call still waiting is offered with no outcome (no service level yet); RONA events
    are counted per call's interval; a hang-up in the menu (ABANDON without a queue) is
    counted apart and makes no queue row; other event kinds are ignored."""
    events = [
        enter("a", 0),
        event_fields("RINGNOANSWER", T0 + 20, call_id="a", queue="faults", agent="agent103"),
        event_fields("PAUSE", T0 + 20, agent="agent103", reason="missed"),
        event_fields("ABANDON", T0 + 5, call_id="m", queue="", stage="menu"),
        event_fields("WOCREATE", T0 + 5, call_id="m", order_id="WO-1"),
    ]
    report = compute_report(events, {"faults": TARGET, "billing": TARGET}, start=T0,
                            end=T0 + 900)
    faults = report.totals["faults"]
    assert (faults.offered, faults.waiting, faults.ring_failures) == (1, 1, 1)
    assert faults.service_level is None
    assert report.abandoned_before_queue == 1
    assert set(report.totals) == {"faults", "billing"}
    assert report.active_queues() == ["faults"]
    summary = report.as_dict()
    assert summary["queues"]["billing"]["offered"] == 0
    assert summary["queues"]["faults"]["target"] == {
        "percent": 80.0, "within_s": 20, "exclude_abandons_under_s": 5}


def test_events_without_a_readable_time_or_wait_are_skipped_and_counted() -> None:
    """Entries a consumer cannot place in time (no ``time``) or an outcome without its wait
    are skipped, and the summary says how many, instead of failing the whole report."""
    events = [{"kind": "ENTERQUEUE", "call_id": "a", "queue": "faults"},
              enter("b", 0), {**connect("b", 0, 5), "holdtime": "soon"}]
    report = compute_report(events, {"faults": TARGET}, start=T0, end=T0 + 900)
    assert report.skipped_events == 2
    assert report.totals["faults"].offered == 1


def test_parse_interval_and_time() -> None:
    """Intervals are a number with s/m/h/d (bare: seconds); times are the stream's ISO form,
    naive ones taken as UTC; nonsense is refused with the accepted form named."""
    assert [parse_interval(t) for t in ("15m", "1h", "30s", "900", "0.5h", "1d")] == [
        900, 3600, 30, 900, 1800, 86400]
    for bad in ("", "0m", "15 minutes", "-5m"):
        with pytest.raises(ValueError, match="15m"):
            parse_interval(bad)
    assert parse_time("2026-11-28T10:00:00.000000Z") == T0
    assert parse_time("2026-11-28T10:00:00") == T0
    assert parse_time("2026-11-28T19:00:00+09:00") == T0
    assert parse_time("yesterday") is None


def test_bad_report_bounds_are_refused() -> None:
    """A zero interval or an end before the start is a usage error, not an empty report."""
    with pytest.raises(ValueError, match="interval"):
        compute_report([], {}, start=T0, end=T0 + 60, interval_s=0)
    with pytest.raises(ValueError, match="end after"):
        compute_report([], {}, start=T0, end=T0, interval_s=60)


def _png_ok(data: bytes) -> bool:
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


def test_chart_renders_with_calls_and_without() -> None:
    """The chart is a PNG both for a busy period and for one without any call (which says
    so instead of drawing empty axes)."""
    busy = compute_report([enter("a", 0), connect("a", 0, 12)], {"faults": TARGET},
                          start=T0, end=T0 + 3600)
    empty = compute_report([], {"faults": TARGET}, start=T0, end=T0 + 3600)
    assert _png_ok(render_png(busy))
    assert _png_ok(render_png(empty))


def test_html_page_is_self_contained_and_escapes_names() -> None:
    """The HTML embeds the chart as a data: URI (one file to mail around) and escapes queue
    names, so a name from the stream cannot inject markup."""
    events = [enter("a", 0, "<b>q</b>"), connect("a", 0, 12, "<b>q</b>")]
    page = render_html(compute_report(events, {"faults": TARGET}, start=T0, end=T0 + 900))
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert embedded and _png_ok(base64.b64decode(embedded[1]))
    assert "<b>q</b>" not in page and "&lt;b&gt;q&lt;/b&gt;" in page
    assert "<td>100.0%</td>" in page and "<td>12.0</td>" in page


class FakeStream:
    """``xrange`` over a list of (id, fields), with redis-py's bounds and COUNT."""

    def __init__(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        self.entries = entries
        self.calls: list[tuple[str, str, int]] = []

    def xrange(self, key: str, min: str, max: str, count: int) -> list:
        self.calls.append((min, max, count))

        def ms_seq(entry_id: str) -> tuple[int, int]:
            ms, seq = entry_id.lstrip("(").split("-")
            return int(ms), int(seq)

        low, high = ms_seq(min), ms_seq(max)
        rows = [e for e in self.entries
                if (ms_seq(e[0].decode()) > low if min.startswith("(")
                    else ms_seq(e[0].decode()) >= low) and ms_seq(e[0].decode()) <= high]
        return rows[:count]


def test_read_events_pages_through_the_stream_by_entry_id() -> None:
    """The reader starts an hour before the report (to see the ENTERQUEUE of early calls),
    pages with an exclusive continuation id so no entry is read twice, and decodes bytes."""
    start_ms = int(T0 * 1000)
    entries = [(f"{start_ms + i}-0".encode(), {b"kind": b"ENTERQUEUE", b"n": str(i).encode()})
               for i in range(5)]
    stream = FakeStream(entries)
    rows = read_events(stream, "hotline:events", T0, T0 + 60, batch=2)
    assert [r["n"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert stream.calls[0][0] == f"{start_ms - 3_600_000}-0"
    assert stream.calls[1][0] == f"({start_ms + 1}-0"
    assert len(stream.calls) == 3
