"""Decoder processes (ivr.speech.decoders.ProcessEngine) as the service runs them: real
worker processes, with the fake engine so that no model is loaded."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ivr.speech.decoders import DecoderGone, ProcessEngine
from ivr.speech.engines import EngineLoadError, Transcript

FAKE = "ivr.speech.testing:FakeEngine"


def replaced(engine: ProcessEngine, victim: object) -> bool:
    """Whether ``victim`` gives way to a fresh worker within 30 s (it loads in the
    background), the engine back at two."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (len(engine.workers) < 2 or victim in engine.workers):
        time.sleep(0.05)
    return len(engine.workers) == 2 and victim not in engine.workers


@pytest.fixture
def engine():
    served = ProcessEngine(FAKE, (["my internet is down"],), processes=2)
    yield served
    served.stop()


def test_a_recognizer_in_a_worker_process_answers_as_one_in_the_service(engine) -> None:
    """Same interface, same transcript; the engine keeps the name and model the worker's
    engine reported."""
    assert (engine.name, engine.model) == ("fake", "fake")
    recognizer = engine.recognizer(8000, ["internet"])
    assert recognizer.accept(b"\0" * 320) is None
    assert recognizer.final() == Transcript("my internet is down", 0.9, "fake", "fake")
    recognizer.close()
    recognizer.close()  # idempotent


def test_recognizers_go_to_the_worker_with_the_fewest_open(engine) -> None:
    """Two callers at once decode in two processes, not both in one."""
    first, second = engine.recognizer(), engine.recognizer()
    assert sorted(w.open for w in engine.workers) == [1, 1]
    first.close()
    second.close()
    assert [w.open for w in engine.workers] == [0, 0]


def test_a_killed_worker_fails_its_callers_and_is_replaced(engine) -> None:
    """kill -9 of a worker: its recognizer's next call raises DecoderGone (that caller gets
    the DTMF menu); new recognizers go to the live worker, and a replacement is started."""
    doomed = engine.recognizer()
    victim = next(w for w in engine.workers if w.open == 1)
    os.kill(victim.pid, signal.SIGKILL)
    with pytest.raises(DecoderGone):
        doomed.accept(b"\0" * 320)
    doomed.close()
    survivor = engine.recognizer()
    assert survivor.final().text == "my internet is down"
    survivor.close()
    assert replaced(engine, victim)
    assert all(w.alive for w in engine.workers)


def test_an_engine_that_does_not_load_raises_at_start_with_the_reason() -> None:
    """A missing model in the worker is EngineLoadError in the service, as in process."""
    with pytest.raises(EngineLoadError, match="no_such_model"):
        ProcessEngine("ivr.speech.engines:model_directory", ("package:no_such_model",), 1)


def test_stopped_workers_exit() -> None:
    """Stopping the engine (the service stops) ends its processes."""
    served = ProcessEngine(FAKE, ([""],), processes=1)
    (worker,) = served.workers
    served.stop()
    assert worker._process.poll() is not None


def test_a_caller_whose_process_stays_busy_is_shed_not_kept_waiting() -> None:
    """A process still serving another caller's request after the wait bound: this caller's
    request fails with RecognizerBusy (the AudioSocket server sends that caller to the DTMF
    menu), and the process serves the next request once free."""
    from ivr.speech.pool import RecognizerBusy

    served = ProcessEngine(FAKE, (["no signal"],), processes=1, max_wait_s=0.05)
    try:
        recognizer = served.recognizer()
        (worker,) = served.workers
        # Another caller's request in progress holds the process.
        with worker._lock, pytest.raises(RecognizerBusy):
            recognizer.accept(b"\0" * 320)
        assert recognizer.final().text == "no signal"
        recognizer.close()
    finally:
        served.stop()


def test_a_worker_that_died_idle_is_passed_over_and_replaced(engine) -> None:
    """kill -9 of a worker with no caller on it: the next caller's recognizer opens on the
    live worker (the dead one found on the way is replaced), not a failure."""
    victim = engine.workers[0]
    os.kill(victim.pid, signal.SIGKILL)
    victim._process.wait()
    for _ in range(3):  # the first may meet the dead worker: it must not fail
        recognizer = engine.recognizer()
        assert recognizer.final().text == "my internet is down"
        recognizer.close()
    assert replaced(engine, victim)


def test_a_worker_found_dead_by_a_closing_recognizer_is_replaced_too(engine) -> None:
    """A caller hangs up just as its worker dies: the close finds it dead (quietly), and the
    next caller's recognizer replaces it, as for a death found mid-utterance."""
    doomed = engine.recognizer()
    victim = next(w for w in engine.workers if w.open == 1)
    os.kill(victim.pid, signal.SIGKILL)
    victim._process.wait()
    doomed.close()
    assert not victim.alive
    recognizer = engine.recognizer()
    assert recognizer.final().text == "my internet is down"
    recognizer.close()
    assert replaced(engine, victim)
