"""The service's table of repeating jobs (``hotline.jobs``), on Twisted's fake clock."""

from __future__ import annotations

import asyncio
import logging

import pytest
from twisted.internet import task

from hotline.jobs import Job, Jobs
from ivr.testing import on_asyncio

log = logging.getLogger("tests.jobs")


def jobs_on(clock: task.Clock) -> Jobs:
    return Jobs(clock, clock.seconds, log)


def test_a_job_runs_every_period_and_none_means_nothing_to_do() -> None:
    """A round is called once per period (not at once unless ``now``); a round that returns
    None (switched off by config) is a tick with nothing run and nothing logged."""
    clock = task.Clock()
    jobs = jobs_on(clock)
    ticks: list[float] = []

    def round_() -> None:
        ticks.append(clock.seconds())
        return None

    jobs.start(Job("idle", 5.0, round_))
    assert ticks == []
    clock.advance(5)
    clock.advance(5)
    assert ticks == [5.0, 10.0]
    jobs.start(Job("eager", 1.0, lambda: ticks.append(-1.0) or None, now=True))
    assert ticks[-1] == -1.0
    jobs.stop()
    assert not jobs.running


def test_two_jobs_of_one_name_are_refused() -> None:
    """The name is the job's identity in the log and the failure summaries."""
    jobs = jobs_on(task.Clock())
    jobs.start(Job("dispatch", 0.25, lambda: None))
    with pytest.raises(ValueError, match="dispatch"):
        jobs.start(Job("dispatch", 1.0, lambda: None))
    jobs.stop()


async def settle() -> None:
    """Let a round's asyncio Task and its Deferred's callbacks run (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


@on_asyncio
async def test_a_failing_round_is_said_once_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis away fails every round: the first failure is logged, the loop is not stopped by
    it, and the round that succeeds again ends the run with one "recovered" line."""
    clock = task.Clock()
    jobs = jobs_on(clock)
    away = {"on": True}
    rounds: list[float] = []

    async def sweep() -> None:
        rounds.append(clock.seconds())
        if away["on"]:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    with caplog.at_level(logging.WARNING, logger="tests.jobs"):
        jobs.start(Job("escalation", 10.0, sweep))
        for _ in range(6):
            clock.advance(10)
            await settle()
        away["on"] = False
        clock.advance(10)
        await settle()
    jobs.stop()
    assert rounds == [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.jobs"]
    assert lines[0].startswith("escalation failed: Error 111")
    assert lines[-1].startswith("escalation recovered after 6 failures")
    assert len(lines) == 3  # failed, one summary 30 s on (not one a round), recovered
