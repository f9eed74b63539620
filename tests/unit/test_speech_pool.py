"""The speech pool: a hard cap on concurrent recognitions and ordered work per call."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import pytest_twisted

from ivr.speech.pool import SpeechPool
from ivr.speech.testing import ManualRunner


def test_try_acquire_fails_at_once_when_every_slot_is_taken() -> None:
    """With max_streams leases out, try_acquire returns None immediately (the caller goes to
    the DTMF menu); a released lease frees its slot, and release is idempotent."""
    pool = SpeechPool(2, ManualRunner())
    first, second = pool.try_acquire(), pool.try_acquire()
    assert first is not None and second is not None
    assert pool.try_acquire() is None
    first.release()
    first.release()
    assert pool.in_use == 1
    assert pool.try_acquire() is not None


def test_jobs_of_one_lease_run_one_at_a_time_in_order() -> None:
    """A recognizer is not thread-safe and audio must arrive in order: the second job of a
    lease is not handed to a worker until the first one finished."""
    runner = ManualRunner()
    lease = SpeechPool(1, runner).try_acquire()
    assert lease is not None
    ran: list[int] = []
    results: list[int] = []
    lease.submit(lambda: ran.append(1) or 1).addCallback(results.append)
    lease.submit(lambda: ran.append(2) or 2).addCallback(results.append)
    assert len(runner.queued) == 1
    runner.run_next()
    assert len(runner.queued) == 1
    runner.run_next()
    assert ran == [1, 2] and results == [1, 2]


def test_a_failing_job_fails_its_deferred_and_does_not_block_the_next() -> None:
    """An exception in one job errbacks that job's Deferred only; later jobs still run."""
    runner = ManualRunner()
    lease = SpeechPool(1, runner).try_acquire()
    assert lease is not None
    failures: list[Any] = []
    later: list[str] = []

    def boom() -> None:
        raise RuntimeError("decoder crashed")

    lease.submit(boom).addErrback(failures.append)
    lease.submit(lambda: "ok").addCallback(later.append)
    runner.run_next()
    runner.run_next()
    assert failures[0].check(RuntimeError)
    assert later == ["ok"]


def test_drained_fires_after_every_job_submitted_so_far() -> None:
    """drained() is how the slot is released only after the recognizer was closed."""
    runner = ManualRunner()
    lease = SpeechPool(1, runner).try_acquire()
    assert lease is not None
    lease.submit(lambda: None)
    done: list[None] = []
    lease.drained().addCallback(done.append)
    assert done == []
    runner.run_next()
    assert done == [None]


def test_pool_needs_at_least_one_stream() -> None:
    """A pool that could never serve a call is a configuration error."""
    with pytest.raises(ValueError):
        SpeechPool(0, ManualRunner())


@pytest_twisted.inlineCallbacks
def test_threaded_pool_runs_jobs_off_the_reactor_thread():
    """With the real reactor, jobs run on worker threads (decoding never blocks the reactor)
    and their results come back on the reactor thread."""
    from twisted.internet import reactor

    pool = SpeechPool.threaded(reactor, threads=2, max_streams=3)
    assert pool.max_streams == 3
    lease = pool.try_acquire()
    assert lease is not None
    worker = yield lease.submit(threading.current_thread)
    assert worker is not threading.main_thread()
    assert threading.current_thread() is threading.main_thread()
    lease.release()


def test_the_default_stream_count_is_three_times_higher_off_the_pool_threads() -> None:
    """Twelve callers a core when pocketsphinx decodes in processes the reactor drives (the
    60-caller measurement, README "Load") and when a whole-utterance engine keeps the audio on
    the reactor (Moonshine's 24 streams on 2 cores); four a core for an engine fed on the
    pool's threads, where more slots only turn the menu at once into a shed after the caller
    spoke. Languages sharing the pool get the most any of their engines takes."""
    from ivr.speech.pool import default_streams

    assert default_streams(2, ["processes"]) == 24
    assert default_streams(2, ["whole"]) == 24
    assert default_streams(2, ["threads"]) == 8
    assert default_streams(1, ["processes"]) == 12
    assert default_streams(2, ["whole", "threads"]) == 24
    assert default_streams(2, []) == 8
