"""Repeated failures of the service's loops are logged once, then summed up."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import task

from hotline.failures import RepeatedFailure

log = logging.getLogger("test.failures")


def rounds(clock: task.Clock, failures: RepeatedFailure, seconds: float, every: float) -> None:
    for _ in range(round(seconds / every)):
        clock.advance(every)
        failures.failed("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


def test_a_failing_dispatcher_logs_its_first_failure_then_a_summary_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Four failures a second for a minute give the first line and one summary per 30 s
    (counting the failures it stands for), not 240 lines."""
    clock = task.Clock()
    failures = RepeatedFailure("dispatch", clock.seconds, log, every_s=30.0)
    with caplog.at_level(logging.WARNING, logger="test.failures"):
        failures.failed("Connection refused")
        rounds(clock, failures, 60.0, 0.25)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0].startswith("dispatch failed: Connection refused")
    assert lines[1].startswith("dispatch still failing: 120 more failures in the last 30 s")
    assert lines[2].startswith("dispatch still failing: 120 more failures in the last 30 s")
    assert failures.failing


def test_recovery_is_said_once_with_the_length_of_the_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first success after failures logs how many there were and for how long; later
    successes log nothing, and a new failure is logged at once again."""
    clock = task.Clock()
    failures = RepeatedFailure("replay", clock.seconds, log, every_s=30.0)
    with caplog.at_level(logging.WARNING, logger="test.failures"):
        failures.failed("timeout")
        rounds(clock, failures, 10.0, 5.0)
        clock.advance(5)
        failures.succeeded()
        failures.succeeded()
        clock.advance(100)
        failures.failed("refused")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "replay failed: timeout (repeats are summed up every 30 s)",
        "replay recovered after 3 failures over 15 s (last: Error 111 connecting to "
        "127.0.0.1:6379. Connection refused.)",
        "replay failed: refused (repeats are summed up every 30 s)",
    ]


def test_successes_alone_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """A healthy loop is silent."""
    clock = task.Clock()
    failures = RepeatedFailure("metrics", clock.seconds, log)
    with caplog.at_level(logging.DEBUG, logger="test.failures"):
        for _ in range(10):
            clock.advance(1)
            failures.succeeded()
    assert caplog.records == []
    assert not failures.failing
