"""Decoder processes driven by the reactor (ivr.speech.decoderstream), as ``ivr serve`` runs
them: real worker processes and the real reactor, with the fake engine so that no model is
loaded."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import Classification
from ivr.speech.decoders import DecoderGone, ProcessEngine
from ivr.speech.engines import Transcript
from ivr.speech.live import open_live
from ivr.speech.pool import RecognizerBusy, SpeechPool
from ivr.speech.testing import audio_frames, silence_frame, stream_call, tone_frame, uuid_frame

FAKE = "ivr.speech.testing:FakeEngine"


async def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"not in {timeout:g} s: {what}")


@pytest.fixture
def engine():
    served = ProcessEngine(FAKE, (["my internet is down"],), processes=2)
    served.attach(reactor)
    yield served
    served.stop()


class Classifier:
    """Every transcript is a fault."""

    def classify(self, text: str) -> Classification:
        return Classification("fault", 0.9, "normal", None, 0.0)


def lease():
    held = SpeechPool.inline(4).try_acquire()
    assert held is not None
    return held


@pytest_twisted.ensureDeferred
async def test_a_live_recognizer_hears_what_a_blocking_one_hears(engine) -> None:
    """Open, two batches, final, close: every call returns at once, the replies come from
    the worker, and the transcript is the engine's. Requests are pipelined: the audio and the
    final are sent before the open is answered."""
    live = open_live(engine, lease(), 8000, ["internet"])
    opened = live.opened()
    fed = [live.accept(b"\0" * 320), live.accept(b"\0" * 320)]
    final = live.final()
    assert await opened is None
    assert [await d for d in fed] == [None, None]
    assert await final == Transcript("my internet is down", 0.9, "fake", "fake")
    assert sorted(w.open for w in engine.workers) == [0, 1]
    live.close()
    live.close()  # idempotent
    assert [w.open for w in engine.workers] == [0, 0]


@pytest_twisted.ensureDeferred
async def test_a_killed_worker_fails_its_callers_and_a_replacement_is_attached(engine) -> None:
    """kill -9 of a worker: its caller's next request fails with DecoderGone (that caller
    gets the DTMF menu); the next recognizer opens on the live worker and the dead one is
    replaced by a fresh process, driven by the reactor too."""
    doomed = open_live(engine, lease(), 8000, None)
    await doomed.opened()
    victim = next(w for w in engine.workers if w.open == 1)
    os.kill(victim.pid, signal.SIGKILL)
    await until(lambda: not victim.alive, "the reactor sees the socket close")
    with pytest.raises(DecoderGone):
        await doomed.accept(b"\0" * 320)
    doomed.close()
    survivor = open_live(engine, lease(), 8000, None)
    assert (await survivor.final()).text == "my internet is down"
    survivor.close()
    await until(lambda: len(engine.workers) == 2 and victim not in engine.workers,
                "a replacement joins")
    assert all(w.replies is not None and w.alive for w in engine.workers)  # attached
    for _ in range(2):  # one of the two lands on the replacement
        live = open_live(engine, lease(), 8000, None)
        assert (await live.final()).text == "my internet is down"
        live.close()


@pytest_twisted.ensureDeferred
async def test_a_worker_hung_on_a_final_is_killed_and_a_replacement_is_attached(engine) -> None:
    """A final not answered within its timeout (FINAL_TIMEOUT_S in the service; half a
    second here) means a hung worker (stopped with SIGSTOP here): the caller's final fails
    with DecoderGone (that caller gets the DTMF menu), the process is killed rather than left
    holding its memory and its callers, and a fresh worker, driven by the reactor, takes its
    place."""
    recognizer = engine.stream(8000, None)
    await recognizer.opened()
    hung = next(w for w in engine.workers if w.open == 1)
    process = hung._process
    os.kill(hung.pid, signal.SIGSTOP)
    try:
        with pytest.raises(DecoderGone, match=r"gave no transcript in 0\.5 s: killed"):
            await recognizer.final(timeout_s=0.5)
        recognizer.close()
        await until(lambda: process.poll() is not None, "the hung worker is killed")
        assert process.returncode == -signal.SIGKILL
        survivor = open_live(engine, lease(), 8000, None)  # opening one replaces the dead
        assert (await survivor.final()).text == "my internet is down"
        survivor.close()
        await until(lambda: len(engine.workers) == 2 and hung not in engine.workers,
                    "a replacement joins")
        assert all(w.replies is not None and w.alive for w in engine.workers)  # attached
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)


@pytest_twisted.ensureDeferred
async def test_audio_the_worker_reaches_too_late_is_not_decoded_and_the_caller_is_shed() -> None:
    """Start-by times that have passed when the worker reads them (here: a wait bound of a
    nanosecond): the worker answers busy without decoding, the caller's open fails with
    RecognizerBusy (the AudioSocket server sends that caller to the menu), and a close is
    still done."""
    served = ProcessEngine(FAKE, (["no signal"],), processes=1, max_wait_s=1e-9)
    served.attach(reactor)
    try:
        live = open_live(served, lease(), 8000, None)
        with pytest.raises(RecognizerBusy, match="after its start-by time"):
            await live.opened()
        with pytest.raises(RecognizerBusy):
            await live.final()
        live.close()
        assert [w.open for w in served.workers] == [0]
    finally:
        served.stop()


@pytest_twisted.ensureDeferred
async def test_an_engine_nobody_uses_any_more_stops_its_processes() -> None:
    """A reload replaced the engine: once nothing refers to it, its attached workers are
    collected (the reactor holds their sockets, not them) and the processes exit."""
    served = ProcessEngine(FAKE, ([""],), processes=2)
    served.attach(reactor)
    processes = [w._process for w in served.workers]
    del served
    gc.collect()
    await until(lambda: all(p.poll() is not None for p in processes), "the workers exit")


@pytest_twisted.ensureDeferred
async def test_a_caller_streamed_through_the_audiosocket_server_gets_a_category(engine) -> None:
    """The whole server on the live path: a caller speaks, the decoder process hears the
    words, the classifier names the category, and the slot comes back."""
    pool = SpeechPool.inline(2)
    server = AudioSocketServer(engine, Classifier(), pool, Clock())  # type: ignore[arg-type]
    speech = tone_frame() * 40 + silence_frame() * 5
    result, _transport = stream_call(server, server.clock, speech,  # type: ignore[arg-type]
                                     call_uuid=str(uuid.uuid4()))
    outcome = await result
    assert outcome.outcome == "speech"
    assert outcome.text == "my internet is down"
    assert outcome.classification is not None and outcome.classification.category == "fault"
    assert pool.in_use == 0
    assert [w.open for w in engine.workers] == [0, 0]


SERVICE = """
import sys
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import reactor
from ivr.speech.decoders import ProcessEngine
engine = ProcessEngine("ivr.speech.testing:FakeEngine", ([""],), processes=2)
engine.attach(reactor)
print(" ".join(str(w.pid) for w in engine.workers), flush=True)
reactor.run()
"""


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest_twisted.ensureDeferred
async def test_decoders_driven_by_a_killed_service_exit_with_it() -> None:
    """``kill -9`` of the service: nothing stops its decoders, yet they exit, since their
    socket closes with the service's process."""
    service = subprocess.Popen([sys.executable, "-c", SERVICE], stdout=subprocess.PIPE, text=True)
    try:
        assert service.stdout is not None
        pids = [int(pid) for pid in service.stdout.readline().split()]
        assert len(pids) == 2 and all(running(pid) for pid in pids)
        service.kill()
        service.wait()
        await until(lambda: not any(running(pid) for pid in pids), "the decoders exit")
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


@pytest_twisted.ensureDeferred
async def test_a_caller_shed_by_a_late_decoder_goes_to_the_menu_without_an_error_logged() -> None:
    """The open reached too late (busy) while the audio behind it is in time: the caller
    goes to the menu (outcome busy) at the open's answer; the audio then fails at the worker
    (it never made that recognizer), and those failures of an utterance already ended are
    not logged as errors."""
    from twisted.logger import globalLogPublisher

    served = ProcessEngine(FAKE, (["no signal"],), processes=1, max_wait_s=1e-9)
    served.attach(reactor)
    logged: list[dict] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        pool = SpeechPool.inline(2)
        server = AudioSocketServer(served, Classifier(), pool, Clock())  # type: ignore[arg-type]
        call = str(uuid.uuid4())
        result = server.expect(call)
        stream = server.buildProtocol(None)
        stream.makeConnection(StringTransport())
        stream.dataReceived(uuid_frame(call))
        frames = iter([tone_frame()] * 40 + [silence_frame()] * 60)
        while served.workers[0].open == 0:  # until the endpointer opened the recognizer
            stream.dataReceived(audio_frames(next(frames)))
            server.clock.advance(0.02)
        served.max_wait_s = 10.0  # the audio behind the late open is in time
        for frame in frames:
            stream.dataReceived(audio_frames(frame))
            server.clock.advance(0.02)
        assert (await result).outcome == "busy"
        await until(lambda: served.workers[0].open == 0 and not served.workers[0].replies._waiting,
                    "every request answered")
        assert pool.in_use == 0
    finally:
        globalLogPublisher.removeObserver(logged.append)
        served.stop()
    assert not [e for e in logged if e.get("log_failure") is not None], logged
