"""Shedding speech load: a caller whose audio no recognizer worker takes within the pool's
wait bound goes to the DTMF menu at once (outcome ``busy``), counted, instead of waiting in
silence behind other callers' audio (issue 14, the recognizer pool saturated)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ivr.speech.audiosocket import AudioSocketServer, SpeechResult
from ivr.speech.classifier import IntentClassifier
from ivr.speech.pool import SHED_REASONS, RecognizerBusy, SpeechPool
from ivr.speech.schema import EndpointingConfig, IntentsConfig, SpeechEngineConfig
from ivr.speech.testing import FakeEngine, stream_call, tone_frame

INTENTS = IntentsConfig.model_validate(
    {"categories": {
        "fault": {"urgency": "urgent", "examples": ["my internet is down"]},
        "other": {"urgency": "normal", "examples": ["where is your store"]},
        "operator": {"urgency": "normal", "keywords": {"agent": 3}},
    }}
)


class BusyWorkers:
    """Worker threads that run nothing until the test lets them (``run_all``)."""

    def __init__(self) -> None:
        self.queued: list[tuple[Callable[[], Any], Deferred[Any]]] = []
        self.ran = 0

    def __call__(self, job: Callable[[], Any]) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.queued.append((job, d))
        return d

    def run_all(self) -> None:
        while self.queued:
            job, d = self.queued.pop(0)
            self.ran += 1
            d.callback(job())


def pool(max_streams: int = 2, wait_s: float = 0.5) -> tuple[SpeechPool, BusyWorkers, Clock]:
    workers, clock = BusyWorkers(), Clock()
    return SpeechPool(max_streams, workers, clock, wait_s), workers, clock


def test_a_job_no_worker_starts_in_time_fails_busy_and_never_runs() -> None:
    """A job still queued when the wait bound passes fails with RecognizerBusy at that
    moment; when a worker reaches it later it does not run (the load is shed)."""
    speech, workers, clock = pool()
    lease = speech.try_acquire()
    assert lease is not None
    ran: list[str] = []
    failures: list[Failure] = []
    lease.submit(lambda: ran.append("decode")).addErrback(failures.append)
    clock.advance(0.49)
    assert failures == []
    clock.advance(0.01)
    assert failures and isinstance(failures[0].value, RecognizerBusy)
    assert lease.starved and speech.shed["workers"] == 1
    workers.run_all()
    assert ran == []


def test_a_job_started_in_time_is_not_bounded_however_long_it_runs() -> None:
    """The bound is on the wait for a worker, not on the work: a job a worker took in time
    delivers its result, and its timer is gone."""
    speech, workers, clock = pool()
    lease = speech.try_acquire()
    assert lease is not None
    results: list[str] = []
    lease.submit(lambda: "transcript").addCallback(results.append)
    clock.advance(0.3)
    workers.run_all()
    clock.advance(5)
    assert results == ["transcript"]
    assert not lease.starved and clock.getDelayedCalls() == []


def test_a_starved_lease_fails_later_recognition_at_once_but_still_cleans_up() -> None:
    """After one job waited too long, the lease's later recognizer jobs fail at once without
    running; clean-up (bounded=False) still runs whenever a worker gets to it."""
    speech, workers, clock = pool()
    lease = speech.try_acquire()
    assert lease is not None
    lease.submit(lambda: None).addErrback(lambda _f: None)
    clock.advance(0.5)
    ran: list[str] = []
    failures: list[Failure] = []
    lease.submit(lambda: ran.append("feed")).addErrback(failures.append)
    lease.submit(lambda: ran.append("close"), bounded=False)
    workers.run_all()
    assert ran == ["close"]
    assert len(failures) == 1 and isinstance(failures[0].value, RecognizerBusy)


def test_no_new_lease_while_a_starved_one_is_out() -> None:
    """While the workers are behind (a starved lease not given back yet) a new caller gets no
    lease, counted as shed for workers; once it is released, leases are granted again."""
    speech, _workers, clock = pool(max_streams=4)
    lease = speech.try_acquire()
    assert lease is not None
    lease.submit(lambda: None).addErrback(lambda _f: None)
    clock.advance(0.5)
    assert speech.try_acquire() is None
    assert speech.shed["workers"] == 2  # the starved caller, and the one refused
    lease.release()
    lease.release()
    assert speech.try_acquire() is not None


def test_every_slot_taken_is_counted_as_shed_for_slots() -> None:
    """The existing refusal (every slot taken) is counted too, with its own reason, in the
    pool and in the process-wide metric."""
    speech, _workers, _clock = pool(max_streams=1)
    before = SHED_REASONS["slots"]._value.get()
    assert speech.try_acquire() is not None
    assert speech.try_acquire() is None
    assert speech.shed["slots"] == 1
    assert SHED_REASONS["slots"]._value.get() == before + 1


def test_the_wait_bound_must_be_positive_and_is_configured_in_ms() -> None:
    """A pool that sheds every job is a configuration error; intents.yaml's
    speech.recognizer_wait_ms defaults to 500 ms and refuses values below 50 ms."""
    with pytest.raises(ValueError):
        SpeechPool(1, BusyWorkers(), Clock(), 0)
    assert SpeechEngineConfig().recognizer_wait_ms == 500
    with pytest.raises(ValueError):
        SpeechEngineConfig(recognizer_wait_ms=10)


def test_a_caller_whose_audio_waits_for_a_worker_goes_to_the_menu_at_once() -> None:
    """On the AudioSocket: the caller speaks, no worker takes the recognizer's first job
    within the bound, and the step ends ``busy`` at that moment (the flow plays the menu),
    the socket closes; the slot comes back only once the workers caught up."""
    speech, workers, clock = pool(max_streams=1)
    server = AudioSocketServer(
        FakeEngine(("my internet is down",)), IntentClassifier(INTENTS), speech,
        cast(IReactorTime, clock),
        EndpointingConfig(trailing_silence_ms=700),
    )
    d, transport = stream_call(server, clock, tone_frame() * 20, trailing_silence_s=0.6)
    results: list[SpeechResult] = []
    d.addCallback(results.append)
    assert [r.outcome for r in results] == ["busy"]
    assert transport.disconnecting
    assert speech.in_use == 1
    workers.run_all()
    assert speech.in_use == 0 and speech.try_acquire() is not None
