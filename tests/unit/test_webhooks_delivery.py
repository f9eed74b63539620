"""One event to one webhook on a ``task.Clock``: verdicts per answer, the backoff schedule
with jitter and Retry-After, timeouts, and the dead-letter list at the end."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from prometheus_client import REGISTRY
from twisted.internet import defer, task
from twisted.internet.error import ConnectionRefusedError

from events.consumer import Entry
from webhooks.delivery import Answer, Delivery
from webhooks.retry import Backoff, Verdict, judge_status, retry_after_seconds
from webhooks.signature import verify
from webhooks.testing import CountedFailures, MemoryStream, ScriptedPoster

KEY = b"k" * 32
T0 = 1_764_321_600.0
ENTRY = Entry("1764321600000-0", {"kind": "WOCREATE", "time": "2026-11-28T09:00:00Z",
                                  "order_id": "1"})


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("status", "verdict", "cause"), [
    (200, Verdict.DELIVERED, "ok"), (204, Verdict.DELIVERED, "ok"),
    (500, Verdict.RETRY, "http_5xx"), (503, Verdict.RETRY, "http_5xx"),
    (429, Verdict.RETRY, "http_429"), (408, Verdict.RETRY, "http_408"),
    (400, Verdict.FINAL, "http_4xx"), (401, Verdict.FINAL, "http_4xx"),
    (404, Verdict.FINAL, "http_4xx"), (410, Verdict.FINAL, "http_4xx"),
    (301, Verdict.FINAL, "http_3xx"),
])
def test_verdicts_by_status(status, verdict, cause) -> None:
    """2xx is delivered; 5xx, 408 and 429 are tried again; any other 4xx and 3xx are final."""
    judged = judge_status(status)
    assert (judged.verdict, judged.cause) == (verdict, cause)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    """Retry-After is read as delay-seconds or as an HTTP date (relative to now); anything
    else is ignored."""
    assert retry_after_seconds("120", T0) == 120.0
    date = format_datetime(datetime.fromtimestamp(T0 + 90, UTC), usegmt=True)
    assert retry_after_seconds(date, T0) == 90.0
    assert retry_after_seconds("soon", T0) is None
    assert retry_after_seconds(None, T0) is None


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    """The wait after the n-th failure is 2 * 2**(n-1) s capped at 300 s, drawn between half
    and all of it; Retry-After is the least wait, up to the cap."""
    backoff = Backoff(attempts=10, initial_s=2, max_s=300, multiplier=2)
    assert [backoff.delay(n, 0.999999) for n in range(1, 10)] == pytest.approx(
        [2, 4, 8, 16, 32, 64, 128, 256, 300], rel=1e-5)
    assert [backoff.delay(n, 0.0) for n in range(1, 4)] == [1, 2, 4]
    assert backoff.delay(1, 0.0, retry_after_s=60) == 60
    assert backoff.delay(1, 0.0, retry_after_s=3600) == 300


def delivery(poster: ScriptedPoster, clock: task.Clock, stream: MemoryStream,
             failures: CountedFailures, attempts: int = 4, name: str = "crm") -> Delivery:
    return Delivery(
        name=name, url="https://crm.example/hook", key=KEY,
        backoff=Backoff(attempts=attempts, initial_s=2, max_s=10, multiplier=2),
        timeout_s=5, poster=poster, clock=clock, now=clock.seconds, dead_letters=stream,
        failures=failures, draw=lambda: 0.999999,
    )


def run(d: Delivery, clock: task.Clock, entry: Entry = ENTRY) -> defer.Deferred[bool]:
    return defer.ensureDeferred(d.deliver(entry))


def test_retry_then_success_follows_the_schedule_and_signs_each_attempt() -> None:
    """503, a refused connection, then 200: three attempts, 2 s and 4 s apart on the clock,
    each signed anew with its own timestamp (verifiable at that time), the event counted
    as delivered once, two failures by cause, nothing dead-lettered."""
    clock, stream, failures = task.Clock(), MemoryStream(), CountedFailures()
    clock.advance(T0)
    poster = ScriptedPoster([Answer(503), ConnectionRefusedError(), Answer(200)])
    before = (metric("hotline_webhook_deliveries_total", webhook="retry-ok"),
              metric("hotline_webhook_failures_total", webhook="retry-ok", cause="http_5xx"),
              metric("hotline_webhook_failures_total", webhook="retry-ok", cause="network"))
    d = run(delivery(poster, clock, stream, failures, name="retry-ok"), clock)
    assert len(poster.sent) == 1
    clock.advance(1.99)
    assert len(poster.sent) == 1
    clock.advance(0.01)
    assert len(poster.sent) == 2
    clock.advance(4)
    assert len(poster.sent) == 3
    assert d.result is True
    stamps = [int(sent.headers["webhook-timestamp"]) for sent in poster.sent]
    assert [s - int(T0) for s in stamps] == [0, 2, 6]
    for sent, stamp in zip(poster.sent, stamps, strict=True):
        assert verify(KEY, sent.headers, sent.body, stamp) == ENTRY.id
    assert stream.dead == []
    assert (metric("hotline_webhook_deliveries_total", webhook="retry-ok"),
            metric("hotline_webhook_failures_total", webhook="retry-ok", cause="http_5xx"),
            metric("hotline_webhook_failures_total", webhook="retry-ok", cause="network")) == (
        before[0] + 1, before[1] + 1, before[2] + 1)
    assert len(failures.errors) == 2 and failures.recoveries == 1


def test_a_4xx_is_final_and_goes_to_the_dead_letter_list() -> None:
    """A 422 is not tried again: one attempt, then a dead letter naming the event, the
    webhook, the status and the receiver's reason."""
    clock, stream, failures = task.Clock(), MemoryStream(), CountedFailures()
    poster = ScriptedPoster([Answer(422, body=b"unknown order")])
    before = metric("hotline_webhook_dead_letters_total", webhook="final")
    d = run(delivery(poster, clock, stream, failures, name="final"), clock)
    assert d.result is False and len(poster.sent) == 1
    (letter,) = stream.dead
    assert (letter.webhook, letter.id, letter.attempts) == ("final", ENTRY.id, 1)
    assert letter.reason == "HTTP 422: unknown order"
    assert letter.event == dict(ENTRY.fields)
    assert metric("hotline_webhook_dead_letters_total", webhook="final") == before + 1


def test_after_the_last_attempt_the_delivery_is_dead_lettered() -> None:
    """A receiver that keeps answering 500: four attempts (2, 4, 8 s apart), then a dead
    letter with the last reason; nothing more is sent afterwards."""
    clock, stream, failures = task.Clock(), MemoryStream(), CountedFailures()
    poster = ScriptedPoster([Answer(500)] * 10)
    d = run(delivery(poster, clock, stream, failures), clock)
    clock.pump([2, 4, 8])
    assert d.result is False and len(poster.sent) == 4
    assert [(letter.attempts, letter.reason) for letter in stream.dead] == [(4, "HTTP 500")]
    clock.advance(1000)
    assert len(poster.sent) == 4


def test_an_attempt_without_an_answer_times_out_and_is_tried_again() -> None:
    """A receiver that never answers: the attempt fails after timeout_s (5 s), counted as
    a timeout, and the next attempt follows after the backoff."""
    clock, stream, failures = task.Clock(), MemoryStream(), CountedFailures()
    poster = ScriptedPoster([None, Answer(200)])
    before = metric("hotline_webhook_failures_total", webhook="slow", cause="timeout")
    d = run(delivery(poster, clock, stream, failures, name="slow"), clock)
    clock.advance(4.9)
    assert not d.called
    clock.advance(0.1)
    assert metric("hotline_webhook_failures_total", webhook="slow", cause="timeout") == before + 1
    assert "timeout" in failures.errors[0]
    clock.advance(2)
    assert d.result is True and len(poster.sent) == 2


def test_retry_after_is_honoured() -> None:
    """A 429 with ``Retry-After: 7`` delays the next attempt 7 s, not the 2 s of the
    schedule."""
    clock, stream, failures = task.Clock(), MemoryStream(), CountedFailures()
    poster = ScriptedPoster([Answer(429, retry_after="7")])
    d = run(delivery(poster, clock, stream, failures), clock)
    clock.advance(6.9)
    assert len(poster.sent) == 1
    clock.advance(0.1)
    assert len(poster.sent) == 2 and d.result is True


def test_a_cancelled_delivery_writes_nothing() -> None:
    """Cancelled while waiting to retry (the service stops), the delivery ends with
    CancelledError and neither dead-letters nor sends again."""
    clock, stream, failures = task.Clock(), MemoryStream(), CountedFailures()
    poster = ScriptedPoster([Answer(503)])
    d = run(delivery(poster, clock, stream, failures), clock)
    d.cancel()
    assert isinstance(d.result.value, defer.CancelledError)
    d.addErrback(lambda _: None)
    clock.advance(100)
    assert stream.dead == [] and len(poster.sent) == 1
