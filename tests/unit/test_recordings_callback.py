"""Recordings that other systems lose or split: a transfer of the agent side and a callback.

A transfer leaves the caller's channel, where MixMonitor runs, as it is: the recording goes on,
also when the transfer takes the caller out of the flow (the AGI then sees a hangup while the
channel lives on). A callback is a new call from the agent to the caller: one more recording
of the same call id and work order (``leg: callback``), listed with the call's.

No sockets, no sleeps: the fake Asterisk (ivr.testing), the real CallRecorder over the fakes of
recordings.testing, a task.Clock; "sleeping" while Asterisk still writes grows the legs.
"""

from __future__ import annotations

import re
from collections.abc import Coroutine
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import test_hotline_flow
from test_recordings_capture import (  # noqa: F401 - the autouse fixture is used by name
    CALL,
    CHANNEL,
    TALK_S,
    UNRUN,
    _close_unrun_work,
    no_sleep,
    recorded_call,
    run_now,
)
from twisted.internet import task
from twisted.internet.defer import Deferred

from callbacks.flow import CallbackFlow
from ivr.flows.hotline.record import DECLINED, CallbackRecording
from ivr.testing import HANGUP, FakeAsterisk, result_of
from recordings.capture import PausedInterval
from recordings.recorder import CALLBACK, CallRecorder
from recordings.schema import CaptureSettings, QueueCapture
from recordings.testing import (
    FakeAlarms,
    FakeControl,
    FakeIngest,
    MemoryCatalog,
    sample_meta,
    write_wav,
)
from routing.live import Callback
from routing.live_fakes import FakeRouter
from workorders.testing import InMemoryWorkOrders

cfg = test_hotline_flow.cfg  # the flow tests' config fixture
_offer = test_hotline_flow._offer
AGENT_LEG = "PJSIP/agent103-0000002a"
CUSTOMER_TALK_S = 20.0


def growing_legs(legs: list[Path], seconds: list[float]) -> Any:
    """A ``sleep`` for the recorder: each call, Asterisk has written the legs up to the next
    length in ``seconds`` (then they stay as they are: the channel is gone)."""
    lengths = iter(seconds)

    async def sleep(_seconds: float) -> None:
        length = next(lengths, None)
        if length is not None:
            for leg in legs:
                write_wav(leg, length, tone=200)

    return sleep


# --- a transfer of the agent side -------------------------------------------------------------


def test_transfer_out_of_the_flow_keeps_the_recording_whole(tmp_path, cfg):
    """The agent blind-transfers the caller: Dial ends with the AGI's hangup although the
    caller's channel lives on (now elsewhere in the dialplan). The flow must not stop
    MixMonitor, and after the flow the recorder follows the legs while they grow (well past
    ``close_wait_s``) and stores them whole, ending when the caller's channel ended."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    state = {"dialled": False}

    def execute(app: str, data: str = "") -> Any:
        if app != "Dial":
            return 0
        rec_clock.advance(TALK_S + 5)
        state["dialled"] = True
        return HANGUP  # the transfer's async goto: the AGI sees a hangup in Dial

    rec_clock: task.Clock = task.Clock()
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "EXEC": execute},
                        clock=rec_clock)
    assert state["dialled"]
    assert "StopMixMonitor" not in rec.apps()  # the recording stays with the caller's channel
    legs = rec.legs()
    # 40 s of the conversation went on with the transfer's target after the flow ended.
    rec.recorder.sleep = growing_legs(legs, [TALK_S + 5 + n for n in range(0, 41, 2)])
    (work,) = rec.spawned
    UNRUN.remove(work)
    done = run_now(work)
    assert done is not None
    (raw,) = rec.ingest.raws
    assert raw.legs == tuple(legs)
    assert raw.ended_at - raw.started_at == pytest.approx(TALK_S + 45)
    assert raw.talk_seconds == pytest.approx(TALK_S)  # the agent's part, as Dial measured
    assert "RECORDSHORT" not in rec.alarms.kinds() and "RECORDMISSING" not in rec.alarms.kinds()


def test_legs_still_growing_are_followed_at_most_follow_max_s(tmp_path):
    """A channel that never ends (a leg that grows forever) is followed only up to
    ``follow_max_s``; then what is there is stored."""
    legs = [tmp_path / "r-caller.wav", tmp_path / "r-agent.wav"]
    clock = task.Clock()
    settings = CaptureSettings(raw_dir=str(tmp_path), close_wait_s=2, follow_max_s=10)
    ingest = FakeIngest()
    recorder = CallRecorder(settings=lambda: settings, control=FakeControl(),
                            alarms=FakeAlarms(), ingest=ingest, deletions=MemoryCatalog(),
                            clock=clock.seconds,
                            sleep=growing_legs(legs, [float(n) for n in range(1, 1000)]))
    recorder.legs_for = lambda rid: (str(legs[0]), str(legs[1]))  # type: ignore[method-assign]
    run_now(recorder.started(CALL, "rec-1", CHANNEL, "billing", "17"))
    run_now(recorder.answered(CALL, "agent101", 1.0, 2.0))
    rec = recorder.live.pop(CALL)
    run_now(recorder.after_hangup(rec, 2.0))
    (raw,) = ingest.raws
    assert raw.ended_at == pytest.approx(20.0)  # 10 s of following, 2 s of audio a step


# --- callbacks --------------------------------------------------------------------------------


def callback_call(
    tmp_path: Path, status: str = "ANSWER", *, declined: bool = False,
    policy: QueueCapture | None = None, with_order: bool = True,
) -> SimpleNamespace:
    """A callback of call ``c1`` through CallbackFlow with a CallbackRecording over the real
    recorder; Dial rings the customer 5 s, then (answered) they talk 20 s."""
    clock = task.Clock()
    orders = InMemoryWorkOrders()
    if with_order:
        result_of(Deferred.fromCoroutine(orders.create_for_call(
            "c1", "5550199", "Caller", 0.0, category="fault", urgency="urgent",
            menu_path=["3"], queue="faults")))
    order = next(iter(orders.orders.values()), None)
    if declined and order is not None:
        result_of(Deferred.fromCoroutine(orders.update(
            order.id, 1.0, "note", "caller", text=f"{DECLINED} (key 9): not recorded")))
    spawned: list[Coroutine[Any, Any, Any]] = []

    def spawn(work: Coroutine[Any, Any, Any]) -> None:
        spawned.append(work)
        UNRUN.append(work)

    alarms, ingest, catalog = FakeAlarms(), FakeIngest(), MemoryCatalog()
    settings = CaptureSettings(raw_dir=str(tmp_path), default=policy or QueueCapture())
    recorder = CallRecorder(settings=lambda: settings, control=FakeControl(), alarms=alarms,
                            ingest=ingest, deletions=catalog, clock=clock.seconds,
                            sleep=no_sleep, spawn=spawn)
    router = FakeRouter()
    router.callbacks["c1"] = Callback("c1", "agent103", "5550199", 0, 25)
    flow = CallbackFlow(router=router, workorders=orders, clock=clock,
                        recording=CallbackRecording(recorder, clock))

    def execute(app: str, data: str = "") -> int:
        if app == "Dial":
            clock.advance(5 + (CUSTOMER_TALK_S if status == "ANSWER" else 0))
        return 0

    def get_variable(name: str) -> str | None:
        return {"DIALSTATUS": status, "ANSWEREDTIME": str(int(CUSTOMER_TALK_S)),
                "HOTLINE_CALLBACK_TRUNK": "trunk1"}.get(name)

    fake = FakeAsterisk(script="callback", env={"uniqueid": "agentleg.1", "channel": AGENT_LEG},
                        answers={"EXEC": execute, "GET VARIABLE": get_variable},
                        clock=clock, args=["c1"])
    result_of(fake.run(flow))
    assert recorder.live == {}

    def after_hangup(seconds: float | None = CUSTOMER_TALK_S + 5) -> Any:
        if seconds is not None:
            for leg in legs():
                write_wav(leg, seconds)
        (work,) = spawned
        UNRUN.remove(work)
        return run_now(work)

    def legs() -> list[Path]:
        (data,) = [args for app, args in fake.exec_calls if app == "MixMonitor"]
        return [Path(p) for p in re.findall(r"[rt]\(([^)]*)\)", data[1])]

    return SimpleNamespace(fake=fake, order=order, alarms=alarms, ingest=ingest,
                           catalog=catalog, spawned=spawned, after_hangup=after_hangup,
                           legs=legs, apps=[app for app, _ in fake.exec_calls])


def test_callback_is_recorded_as_a_leg_of_the_same_call_and_order(tmp_path):
    """MixMonitor on the agent's channel right before the customer is dialled, r() the agent
    and t() the customer (so the caller-first legs stay caller first); after the callback
    the recording goes to ingest with the call's id, its order, ``leg: callback``, the agent
    and the customer's talk time; its events say ``leg: callback``."""
    call = callback_call(tmp_path)
    assert call.apps == ["MixMonitor", "Dial"]
    (mixmonitor,) = [args for app, args in call.fake.exec_calls if app == "MixMonitor"]
    assert re.fullmatch(rf"r\({tmp_path}/(rec-[0-9a-f]{{32}})-agent\.wav\)"
                        rf"t\({tmp_path}/\1-caller\.wav\)i\(HOTLINE_MIXMONITOR_ID\)",
                        mixmonitor[1])
    call.after_hangup()
    (raw,) = call.ingest.raws
    assert (raw.call_id, raw.work_order_id, raw.leg) == ("c1", call.order.id, CALLBACK)
    assert raw.legs[0].name.endswith("-caller.wav") and raw.legs[1].name.endswith("-agent.wav")
    assert (raw.agent, raw.queue, raw.category) == ("agent103", "faults", "fault")
    assert raw.talk_seconds == pytest.approx(CUSTOMER_TALK_S)
    ((kind, fields),) = call.alarms.events
    assert kind == "RECORDSTART"
    assert (fields["call_id"], fields["order_id"], fields["leg"], fields["channel"]) == (
        "c1", call.order.id, CALLBACK, AGENT_LEG)


def test_callback_not_answered_keeps_no_recording(tmp_path):
    """The customer does not answer: nothing talked, the raw legs are removed with a
    deletion record, as for a call nobody answered."""
    call = callback_call(tmp_path, "NOANSWER")
    legs = call.legs()
    assert call.after_hangup(5.0) is None
    assert call.ingest.raws == [] and not any(leg.exists() for leg in legs)
    (deletion,) = call.catalog.deletions
    assert deletion["reason"] == "never-answered"


@pytest.mark.parametrize("case", ["declined", "queue-not-recorded", "no-order"])
def test_callback_not_recorded_without_consent(tmp_path, case):
    """No MixMonitor for the callback when the caller opted out on the call that asked for it
    (the note on its order), when the order's queue does not record, or when there is no
    order to know it from; the callback itself goes on."""
    call = callback_call(tmp_path, declined=case == "declined",
                         policy=QueueCapture(record=False) if case == "queue-not-recorded"
                         else None, with_order=case != "no-order")
    assert call.apps == ["Dial"]
    assert call.spawned == [] and call.alarms.events == []


def test_callback_and_its_call_both_running_stay_apart(tmp_path):
    """A callback can start while its call's flow is still at its goodbye: both recordings
    run under the same call id without replacing each other; the API's pause reaches the
    callback's (where the agent talks), and each ends on its own."""
    recorder = CallRecorder(settings=lambda: CaptureSettings(raw_dir=str(tmp_path)),
                            control=FakeControl(), alarms=FakeAlarms(), ingest=FakeIngest(),
                            deletions=MemoryCatalog(), clock=task.Clock().seconds,
                            sleep=no_sleep, spawn=lambda work: work.close())
    run_now(recorder.started(CALL, "rec-call", CHANNEL, "faults", "17"))
    run_now(recorder.started(CALL, "rec-cb", AGENT_LEG, "faults", "17", leg=CALLBACK))
    assert recorder.running(CALL).recording_id == "rec-cb"
    assert run_now(recorder.pause(CALL, "agent103", "agent"))
    assert recorder.control.calls == [(AGENT_LEG, True)]  # type: ignore[attr-defined]
    run_now(recorder.finished(CALL))
    assert recorder.running(CALL).recording_id == "rec-cb"
    run_now(recorder.finished(CALL, CALLBACK))
    assert recorder.live == {}


def test_metadata_keeps_the_leg():
    """``leg`` survives the Redis hash (a recording stored before it existed reads as
    ``call``)."""
    meta = sample_meta(leg="callback", paused=(PausedInterval(1.0, 2.0, "agent"),))
    flat = meta.to_hash()
    assert flat["leg"] == "callback"
    assert type(meta).from_hash(meta.recording_id, flat).leg == "callback"
    del flat["leg"]
    assert type(meta).from_hash(meta.recording_id, flat).leg == "call"


def test_a_listed_pause_is_silent_from_end_to_end():
    """AMI takes time to answer: the pause starts when the mute was confirmed and ends when
    the unmute was asked for, so the interval in the metadata holds no sound at either end."""
    clock = task.Clock()

    class SlowAmi(FakeControl):
        async def mute(self, channel: str, on: bool) -> bool:
            clock.advance(0.3)  # the round trip
            return await super().mute(channel, on)

    recorder = CallRecorder(settings=CaptureSettings, control=SlowAmi(), alarms=FakeAlarms(),
                            ingest=FakeIngest(), deletions=MemoryCatalog(),
                            clock=clock.seconds, sleep=no_sleep, spawn=lambda w: w.close())
    run_now(recorder.started(CALL, "rec-1", CHANNEL, "billing", "17"))
    clock.advance(10)
    run_now(recorder.mute(CALL, "sensitive-step"))
    clock.advance(4.7)
    run_now(recorder.unmute(CALL, "sensitive-step"))
    (paused,) = recorder.live[CALL].paused
    assert (paused.start, paused.end) == (pytest.approx(10.3), pytest.approx(15.0))


def test_http_lists_a_work_orders_recordings_with_its_callbacks():
    """``GET /api/recordings?work_order_id=`` lists the order's recordings, its call's and its
    callbacks' (``leg`` in each), and no other order's; the filter is in the audit entry."""
    from test_recordings_access import REASON, Desk, api_of

    from api.testing import answer

    desk = Desk()  # rec-1..3 of order 17
    for rid, leg, ended in (("rec-8", "call", 2000.0), ("rec-9", "callback", 3000.0)):
        run_now(desk.catalog.add(sample_meta(rid, agent="agent103", work_order_id="WO-8",
                                             call_id="c-8", ended_at=ended, leg=leg)))
    listed = answer(api_of(desk), "GET", f"/api/recordings?{REASON}&work_order_id=WO-8",
                    token="tok-quality")
    assert listed.status == 200
    assert [(r["id"], r["leg"], r["call_id"]) for r in listed.body] == [
        ("rec-9", "callback", "c-8"), ("rec-8", "call", "c-8")]
    assert desk.audit.entries[-1]["details"] == {"work_order_id": "WO-8"}
