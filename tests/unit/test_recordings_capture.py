"""Capture of call recordings: consent, MixMonitor from the hotline flow, sensitive steps
muted (AMI) or the recording cut (AMI away), and the check and ingest after hangup.

The flow runs against the fake Asterisk (ivr.testing) with the real CallRecorder over fakes
(recordings.testing): no sockets, no sleeps; the clock is a task.Clock that Dial advances by
the conversation's length.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import test_hotline_flow
import yaml
from twisted.internet import task

from ivr.config import ConfigError, load_config
from ivr.flows.hotline import HotlineFlow
from ivr.flows.hotline.record import MIXMONITOR_ID
from ivr.menu import Collected, MenusConfig, advance, start_at
from ivr.testing import HANGUP, FakeAsterisk, on_asyncio, result_of
from recordings.check import CHECKS_FAILED, check, talk_seconds, wav_seconds
from recordings.control import AmiControl, channel_action, mute_action
from recordings.recorder import CUT, CallRecorder
from recordings.schema import CaptureSettings, QueueCapture, RecordingsConfig
from recordings.testing import FakeAlarms, FakeControl, FakeIngest, MemoryCatalog, write_wav
from routing.live_fakes import FakeRouter
from workorders.testing import InMemoryWorkOrders

CONFIG = Path(__file__).resolve().parents[2] / "config"
cfg = test_hotline_flow.cfg  # the flow tests' config fixture (menus.yaml, intents.yaml)
_offer = test_hotline_flow._offer
CALL = "1700000000.7"
CHANNEL = "PJSIP/caller-00000001"
TALK_S = 30.0


def run_now(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive a coroutine that never waits on anything real (the fakes answer at once)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine waited on something")


async def no_sleep(_seconds: float) -> None:
    return None


UNRUN: list[Coroutine[Any, Any, Any]] = []


@pytest.fixture(autouse=True)
def _close_unrun_work():
    """The after-hangup work a test did not run is closed, not left to warn."""
    yield
    while UNRUN:
        UNRUN.pop().close()


@dataclass
class Recorded:
    fake: FakeAsterisk
    orders: InMemoryWorkOrders
    recorder: CallRecorder
    alarms: FakeAlarms
    ingest: FakeIngest
    catalog: MemoryCatalog
    control: FakeControl
    spawned: list[Coroutine[Any, Any, Any]]
    mute_at: list[int]  # how many AGI commands had been sent at each mute/unmute

    def apps(self) -> list[str]:
        return [app for app, _ in self.fake.exec_calls]

    def legs(self) -> list[Path]:
        (data,) = [args for app, args in self.fake.exec_calls if app == "MixMonitor"]
        return [Path(p) for p in re.findall(r"[rt]\(([^)]*)\)", data[1])]

    def after_hangup(self, seconds: float | None = TALK_S + 5) -> Any:
        """Asterisk closed the legs (``seconds`` long, None: no files); run the check."""
        if seconds is not None:
            for leg in self.legs():
                write_wav(leg, seconds)
        (work,) = self.spawned
        UNRUN.remove(work)
        return run_now(work)

    def order(self) -> Any:
        (order,) = self.orders.orders.values()
        return order

    def notes(self) -> list[str]:
        return [str(h.details.get("text", "")) for h in self.order().history
                if h.event == "note"]


def recorded_call(
    tmp_path: Path, cfg: SimpleNamespace, router: FakeRouter, answers: dict[str, Any],
    *, policy: QueueCapture | None = None, control: FakeControl | None = None,
    statuses: list[str] | None = None, clock: task.Clock | None = None,
) -> Recorded:
    clock = clock or task.Clock()
    control = control or FakeControl()
    alarms, ingest, catalog = FakeAlarms(), FakeIngest(), MemoryCatalog()
    spawned: list[Coroutine[Any, Any, Any]] = []

    def spawn(work: Coroutine[Any, Any, Any]) -> None:
        spawned.append(work)
        UNRUN.append(work)

    settings = CaptureSettings(raw_dir=str(tmp_path), tolerance_s=2,
                               default=policy or QueueCapture())
    recorder = CallRecorder(settings=lambda: settings, control=control, alarms=alarms,
                            ingest=ingest, deletions=catalog, clock=clock.seconds,
                            sleep=no_sleep, spawn=spawn)
    flow = HotlineFlow(config=lambda: cfg, workorders=InMemoryWorkOrders(), router=router,
                       clock=clock, sound=lambda name: f"/sounds/{name}", recorder=recorder)
    dial_status = iter(statuses or ["ANSWER"])
    state = {"status": "ANSWER"}

    def execute(app: str, data: str = "") -> int:
        if app == "Dial":
            state["status"] = next(dial_status)
            if state["status"] == "ANSWER":
                clock.advance(TALK_S + 5)  # 5 s ringing, then the conversation
        return 0

    def get_variable(name: str) -> str | None:
        return {"DIALSTATUS": state["status"], "DIALEDTIME_MS": str((TALK_S + 5) * 1000),
                "ANSWEREDTIME_MS": str(TALK_S * 1000), MIXMONITOR_ID: "mm-7"}.get(name)

    def music_on_hold(_timeout: Any) -> None:
        clock.advance(0.5)

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "WAIT FOR DIGIT": music_on_hold, "EXEC": execute, "GET VARIABLE": get_variable,
        **answers})
    mute_at: list[int] = []
    real_mute = control.mute

    async def mute(channel: str, on: bool) -> bool:
        mute_at.append(len(fake.commands))
        return await real_mute(channel, on)

    control.mute = mute  # type: ignore[method-assign]
    result_of(fake.run(flow))
    assert flow.active == {} and recorder.live == {}
    return Recorded(fake, flow.workorders, recorder, alarms, ingest,  # type: ignore[arg-type]
                    catalog, control, spawned, mute_at)


BILLING = QueueCapture(consent_prompt="recording-consent-opt-out", opt_out_key="9",
                       after_agent_menu="after-billing")


# --- the flow ---------------------------------------------------------------------------------


def test_consent_then_mixmonitor_right_before_the_first_dial(tmp_path, cfg):
    """Once queued the caller hears the recording notice; MixMonitor starts on the caller's
    channel right before Dial, two legs (r() caller, t() agent) and i() for its id; the flow
    stops it when the caller leaves the flow; RECORDSTART names call, order and queue."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]})
    prompts = [args[0] for args in rec.fake.calls("STREAM FILE")]
    assert prompts[:2] == ["/sounds/welcome", "/sounds/recording-consent"]
    assert rec.apps() == ["MixMonitor", "Dial", "StopMixMonitor"]
    verbs = rec.fake.verbs
    first_exec = verbs.index("EXEC")
    assert rec.fake.commands[first_exec + 1][1] == "Dial"
    (mixmonitor,) = [args for app, args in rec.fake.exec_calls if app == "MixMonitor"]
    assert mixmonitor[0] == ""
    assert re.fullmatch(rf"r\({tmp_path}/rec-[0-9a-f]{{32}}-caller\.wav\)"
                        rf"t\({tmp_path}/rec-[0-9a-f]{{32}}-agent\.wav\)i\({MIXMONITOR_ID}\)",
                        mixmonitor[1])
    assert ("StopMixMonitor", ["mm-7"]) in rec.fake.exec_calls
    ((kind, fields),) = rec.alarms.events
    assert kind == "RECORDSTART"
    assert (fields["call_id"], fields["queue"], fields["channel"]) == (CALL, "billing", CHANNEL)
    assert fields["order_id"] == rec.order().id


def test_music_comes_back_right_after_the_consent_prompt(tmp_path, cfg):
    """The consent prompt stops the hold music the caller's choice started; the flow starts
    it again right after the prompt, before it asks the store for an agent, so a store that
    is slow to answer (Redis paused) is not heard as silence."""
    router = FakeRouter([None, _offer("agent101")], queue="billing")  # no agent free yet
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]})
    verbs, commands = rec.fake.verbs, rec.fake.commands
    consent_at = next(i for i, words in enumerate(commands) if verbs[i] == "STREAM FILE"
                      and "/sounds/recording-consent" in words)
    assert verbs[consent_at + 1] == "SET MUSIC"
    assert commands[consent_at + 1][2:3] == ("on",)


def test_after_hangup_the_recording_is_checked_and_ingested(tmp_path, cfg):
    """After hangup the raw legs, once closed, go to ingest with the call, order, queue,
    category, agent and the talk time Dial measured; a whole recording raises no alarm."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]})
    done = rec.after_hangup()
    (raw,) = rec.ingest.raws
    assert done.recording_id == raw.recording_id
    assert raw.legs == tuple(rec.legs()) and raw.legs[0].name.endswith("-caller.wav")
    assert (raw.call_id, raw.queue, raw.agent, raw.category) == (CALL, "billing", "agent101",
                                                                  "inquiry")
    assert raw.work_order_id == rec.order().id
    assert raw.talk_seconds == pytest.approx(TALK_S)
    assert raw.paused == ()
    assert rec.alarms.kinds() == ["RECORDSTART"]


def test_recording_survives_a_rona_retry(tmp_path, cfg):
    """The first agent does not answer, the second does: MixMonitor started once, before the
    first Dial, and one recording, of the agent who talked, comes out."""
    router = FakeRouter([_offer("agent101"), None, _offer("agent102")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]},
                        statuses=["NOANSWER", "ANSWER"])
    assert rec.apps() == ["MixMonitor", "Dial", "Dial", "StopMixMonitor"]
    rec.after_hangup()
    (raw,) = rec.ingest.raws
    assert raw.agent == "agent102" and raw.talk_seconds == pytest.approx(TALK_S)


def test_opt_out_key_leaves_the_call_unrecorded_and_notes_it(tmp_path, cfg):
    """A queue allowing it: the key pressed during the notice means no MixMonitor at all, and
    the work order says the caller declined."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1", "9"], "GET DATA": [None]},
                        policy=BILLING)
    assert ("/sounds/recording-consent-opt-out", "9") in rec.fake.calls("STREAM FILE")
    assert rec.apps() == ["Dial"]
    assert rec.spawned == [] and rec.alarms.events == []
    assert any("declined recording" in note for note in rec.notes())


def test_queue_not_recorded_hears_no_notice(tmp_path, cfg):
    """``record: false``: no notice, no MixMonitor."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]},
                        policy=QueueCapture(record=False))
    assert "/sounds/recording-consent" not in [a[0] for a in rec.fake.calls("STREAM FILE")]
    assert rec.apps() == ["Dial"]


def test_call_never_answered_keeps_no_recording(tmp_path, cfg):
    """Nobody answered and the caller hung up in the queue: the raw legs are removed and a
    deletion record says why; nothing is ingested."""
    router = FakeRouter([_offer("agent101"), None], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {
        "STREAM FILE": ["1"], "WAIT FOR DIGIT": [None, HANGUP]}, statuses=["NOANSWER"])
    legs = rec.legs()
    assert rec.after_hangup(3.0) is None
    assert rec.ingest.raws == [] and not any(leg.exists() for leg in legs)
    ((deletion),) = rec.catalog.deletions
    assert deletion["reason"] == "never-answered"


# --- sensitive steps --------------------------------------------------------------------------


CARD = "4111111111111111"


def test_sensitive_step_is_muted_and_resumed(tmp_path, cfg):
    """After the agent hangs up, the queue's after-agent menu: the card step (sensitive) runs
    with the recording muted through AMI (both directions) and unmuted right after; the
    interval is in the metadata, the digits are kept nowhere."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router,
                        {"STREAM FILE": ["1"], "GET DATA": ["1", CARD, "5", "9"]},
                        policy=BILLING)
    assert rec.control.calls == [(CHANNEL, True), (CHANNEL, False)]
    muted, unmuted = rec.mute_at
    assert unmuted == muted + 1  # exactly one command inside: the card prompt
    assert rec.fake.commands[muted][:3] == ("GET", "DATA", "/sounds/card-number-enter")
    assert rec.alarms.kinds() == ["RECORDSTART", "RECORDPAUSE", "RECORDRESUME"]
    assert rec.alarms.events[1][1]["reason"] == "sensitive-step"
    order = rec.order()
    assert (order.csat, order.nps) == (5, 9)
    assert any("16 digits" in note for note in rec.notes())
    assert CARD not in repr(order)
    rec.after_hangup()
    ((paused,),) = [raw.paused for raw in rec.ingest.raws]
    assert paused.reason == "sensitive-step" and paused.end >= paused.start


def test_hangup_inside_the_sensitive_step_still_unmutes(tmp_path, cfg):
    """The caller hangs up while keying the card: the recording is unmuted (the interval
    closed at hangup) and the recording still goes to ingest."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router,
                        {"STREAM FILE": ["1"], "GET DATA": ["1", HANGUP]}, policy=BILLING)
    assert rec.control.calls == [(CHANNEL, True), (CHANNEL, False)]
    assert "StopMixMonitor" not in rec.apps()
    rec.after_hangup()
    ((paused,),) = [raw.paused for raw in rec.ingest.raws]
    assert paused.reason == "sensitive-step"


def test_ami_away_stops_the_recording_before_the_sensitive_step(tmp_path, cfg):
    """AMI cannot mute: StopMixMonitor through the AGI before the card prompt (fail safe),
    RECORDCUT, and the metadata marks the recording cut from there to hangup."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router,
                        {"STREAM FILE": ["1"], "GET DATA": ["1", CARD, None]},
                        policy=BILLING, control=FakeControl(away=True))
    assert rec.apps() == ["MixMonitor", "Dial", "StopMixMonitor"]
    stop = next(i for i, words in enumerate(rec.fake.commands)
                if words[:2] == ("EXEC", "StopMixMonitor"))
    card = next(i for i, words in enumerate(rec.fake.commands)
                if words[:3] == ("GET", "DATA", "/sounds/card-number-enter"))
    assert stop < card
    assert "RECORDCUT" in rec.alarms.kinds() and "RECORDPAUSE" not in rec.alarms.kinds()
    rec.after_hangup()
    ((cut,),) = [raw.paused for raw in rec.ingest.raws]
    assert cut.reason == CUT


def test_api_pause_and_resume_go_through_ami(tmp_path):
    """An agent's pause mutes through AMI and is audited as RECORDPAUSE by that agent; a
    sensitive step meanwhile leaves it paused; resume unmutes; an unknown call is refused."""
    control, alarms = FakeControl(), FakeAlarms()
    clock = task.Clock()
    recorder = CallRecorder(settings=CaptureSettings, control=control, alarms=alarms,
                            ingest=FakeIngest(), deletions=MemoryCatalog(),
                            clock=clock.seconds, sleep=no_sleep, spawn=lambda c: c.close())
    run_now(recorder.started(CALL, "rec-1", CHANNEL, "billing", "17"))
    clock.advance(10)
    assert run_now(recorder.pause(CALL, "agent101", "agent"))
    assert run_now(recorder.mute(CALL, "sensitive-step"))
    assert not run_now(recorder.unmute(CALL, "sensitive-step"))  # the agent's pause stays
    clock.advance(5)
    assert run_now(recorder.resume(CALL, "agent101", "agent"))
    assert control.calls == [(CHANNEL, True), (CHANNEL, False)]
    assert [(k, f.get("by")) for k, f in alarms.events][1:] == [("RECORDPAUSE", "agent101"),
                                                                ("RECORDRESUME", "agent101")]
    (paused,) = recorder.live[CALL].paused
    assert (paused.start, paused.end, paused.reason) == (10, 15, "agent")
    with pytest.raises(LookupError):
        run_now(recorder.pause("no-such-call", "agent101", "agent"))


@on_asyncio
async def test_ami_mute_action_and_failures_answer_false():
    """The AMI action mutes both directions; a refused, failing or hanging AMI answers
    False (the flow then cuts the recording), never raises."""
    assert mute_action(CHANNEL, True) == {"Action": "MixMonitorMute", "Channel": CHANNEL,
                                          "Direction": "both", "State": "1"}
    assert mute_action(CHANNEL, False)["State"] == "0"

    class Manager:
        def __init__(self, answer: Any) -> None:
            self.answer = answer

        async def send_action(self, action: dict[str, str]) -> Any:
            if isinstance(self.answer, Exception):
                raise self.answer
            if self.answer == "hang":
                await asyncio.Future()  # never answers
            return self.answer

    async def mute(answer: Any) -> bool:
        return await AmiControl(Manager(answer), timeout_s=0.01).mute(CHANNEL, True)

    assert await mute(SimpleNamespace(success=True))
    assert not await mute(SimpleNamespace(success=False))
    assert not await mute(ConnectionError("AMI away"))
    assert not await mute("hang")


@on_asyncio
async def test_ami_asks_whether_the_recorded_channel_is_still_there():
    """``channel_up``: True while Asterisk has the channel, False once it says "No such
    channel", None (not known) when AMI refuses otherwise, fails or hangs; never raises."""
    from panoramisk.message import Message

    class Manager:
        def __init__(self, answer: Any) -> None:
            self.answer = answer
            self.sent: list[dict[str, str]] = []

        async def send_action(self, action: dict[str, str]) -> Any:
            self.sent.append(action)
            if isinstance(self.answer, Exception):
                raise self.answer
            if self.answer == "hang":
                await asyncio.Future()  # never answers
            return self.answer

    async def up(answer: Any) -> bool | None:
        manager = Manager(answer)
        found = await AmiControl(manager, timeout_s=0.01).channel_up(CHANNEL)
        assert manager.sent == [channel_action(CHANNEL)]
        return found

    assert channel_action(CHANNEL)["Action"] == "Getvar"
    assert await up(Message({"Response": "Success", "Value": "Up"})) is True
    assert await up(Message({"Response": "Error", "Message": "No such channel"})) is False
    assert await up(Message({"Response": "Error", "Message": "Permission denied"})) is None
    assert await up(ConnectionError("AMI away")) is None
    assert await up("hang") is None


# --- the check after hangup -------------------------------------------------------------------


def test_check_verdicts():
    """Missing leg, short of the talk time beyond the tolerance, or fine; the talk time is
    clipped where the recording was cut."""
    assert check([None, 30.0], 30, 2).problem == "missing"
    assert check([], 30, 2).problem == "missing"
    assert check([27.0, 35.0], 30, 2).problem == "short"
    assert check([28.5, 35.0], 30, 2).problem is None
    assert talk_seconds([(10, 40), (50, 60)]) == 40
    assert talk_seconds([(10, 40), (50, 60)], until=20) == 10


@pytest.mark.parametrize(("seconds", "kind"), [(None, "RECORDMISSING"), (10.0, "RECORDSHORT")])
def test_missing_or_short_recording_raises_the_alarm(tmp_path, cfg, seconds, kind):
    """No file, or a file much shorter than the talk time: an event and the counter, never
    silence; a short file is still ingested."""
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]})
    problem = kind.removeprefix("RECORD").lower()
    before = CHECKS_FAILED.labels(problem)._value.get()
    rec.after_hangup(seconds)
    assert rec.alarms.kinds()[-1] == kind
    assert rec.alarms.events[-1][1]["call_id"] == CALL
    assert CHECKS_FAILED.labels(problem)._value.get() == before + 1
    assert len(rec.ingest.raws) == (0 if seconds is None else 1)


def test_wav_seconds_from_the_size_even_before_the_header_is_final(tmp_path):
    """Duration from format and file size (Asterisk writes the header's length at close)."""
    leg = write_wav(tmp_path / "a.wav", 2.0)
    assert wav_seconds(leg) == pytest.approx(2.0)
    data = bytearray(leg.read_bytes())
    data[40:44] = b"\0\0\0\0"  # header not updated yet
    leg.write_bytes(bytes(data))
    assert wav_seconds(leg) == pytest.approx(2.0)
    assert wav_seconds(tmp_path / "none.wav") is None


# --- config -----------------------------------------------------------------------------------


def test_capture_config_per_queue():
    """A queue listed under capture.queues takes its own entry; others the default; the
    opt-out key is one DTMF key."""
    cfg = RecordingsConfig.model_validate({"capture": {
        "default": {"record": False},
        "queues": {"billing": {"opt_out_key": "9", "after_agent_menu": "after-billing"}}}})
    assert not cfg.capture.for_queue("faults").record
    billing = cfg.capture.for_queue("billing")
    assert billing.record and billing.opt_out_key == "9"
    with pytest.raises(ValueError, match="opt_out_key"):
        RecordingsConfig.model_validate({"capture": {"default": {"opt_out_key": "99"}}})


def test_shipped_config_records_every_queue_and_ships_the_card_step():
    """config/: every queue recorded with the notice (the shipped file is the defaults); the
    card step that a queue's after_agent_menu can name is there, sensitive; AMI on loopback."""
    cfg = load_config(CONFIG)
    billing = cfg.recordings.capture.for_queue("billing")
    assert billing.record and billing.consent_prompt == "recording-consent"
    assert cfg.menus.menus["card-number"].sensitive
    assert "after-billing" not in cfg.menus.reachable()
    assert cfg.service.ami.port == 5038 and cfg.service.ami.host == "127.0.0.1"


def test_capture_references_are_checked(tmp_path):
    """An unknown queue, prompt or after-agent menu in recordings.yaml is named at load."""
    for name in CONFIG.iterdir():
        (tmp_path / name.name).write_bytes(name.read_bytes())
    (tmp_path / "recordings.yaml").write_text(yaml.safe_dump({"capture": {
        "default": {"consent_prompt": "no-such-prompt"},
        "queues": {"nowhere": {"after_agent_menu": "no-such-menu"}}}}))
    with pytest.raises(ConfigError) as failed:
        load_config(tmp_path)
    text = "\n".join(failed.value.problems)
    assert "capture.queues.nowhere: no such queue" in text
    assert "no-such-prompt" in text and "no-such-menu" in text


def test_sensitive_menus_are_validated_and_keep_no_digits(cfg):
    """A sensitive step may not be reachable before the queue, nor end in a request (its
    keys would be kept); one without options collects the digits outside every path."""
    raw = yaml.safe_load((CONFIG / "menus.yaml").read_text())
    raw["menus"]["main"]["options"]["7"] = {"menu": "card-number"}
    with pytest.raises(ValueError, match="sensitive, yet reachable"):
        MenusConfig.model_validate(raw)
    raw = yaml.safe_load((CONFIG / "menus.yaml").read_text())
    raw["menus"]["card-number"]["options"] = {"1": {"request": "inquiry"}}
    with pytest.raises(ValueError, match="a sensitive menu collects digits"):
        MenusConfig.model_validate(raw)
    state, _ = start_at(cfg.menus, "after-billing")
    state, _ = advance(cfg.menus, state, "1")
    _, step = advance(cfg.menus, state, CARD)
    assert step == Collected("card-number", CARD, ("1",))
    assert CARD not in repr(step)


# --- the API's pause and resume ---------------------------------------------------------------


def _api_with_a_call(control: FakeControl) -> tuple[Any, Any, CallRecorder]:
    from api import build_api
    from api.testing import (
        IDENTITIES,
        TEAMS,
        FakeAudit,
        FakeHealth,
        FakeTokens,
        FakeWorkOrders,
    )
    from api.testing import FakeRouter as ApiRouter
    from routing.core import RoutingConfig

    clock = task.Clock()
    recorder = CallRecorder(settings=CaptureSettings, control=control, alarms=FakeAlarms(),
                            ingest=FakeIngest(), deletions=MemoryCatalog(),
                            clock=clock.seconds, sleep=no_sleep, spawn=lambda c: c.close())
    run_now(recorder.started(CALL, "rec-1", CHANNEL, "billing", "17"))
    run_now(recorder.ringing(CALL, "agent101"))
    audit = FakeAudit()
    api = build_api(router=ApiRouter(RoutingConfig({}, {}, {})),
                    workorders_store=FakeWorkOrders({}), health_source=FakeHealth(),
                    authenticator=FakeTokens(IDENTITIES), audit=audit, clock=lambda: 99.0,
                    teams=TEAMS.get, recorder=recorder)
    return api, audit, recorder


def test_http_pause_and_resume_by_the_agent_on_the_call_and_audited():
    """``POST /api/recordings/calls/{call}/pause`` by the agent on the call mutes through
    AMI, ``/resume`` unmutes; both need a reason and are in the audit log."""
    from api.testing import answer

    control = FakeControl()
    api, audit, _recorder = _api_with_a_call(control)
    path = f"/api/recordings/calls/{CALL}"
    paused = answer(api, "POST", f"{path}/pause?reason=card%20on%20screen",
                    token="tok-agent101")
    assert paused.status == 200
    assert paused.body == {"call_id": CALL, "recording_id": "rec-1", "paused": True,
                           "reason": "agent"}
    resumed = answer(api, "POST", f"{path}/resume?reason=done%20now", token="tok-agent101")
    assert resumed.status == 200 and resumed.body["paused"] is False
    assert control.calls == [(CHANNEL, True), (CHANNEL, False)]
    assert [(e["action"], e["obj"], e["reason"]) for e in audit.entries] == [
        ("recording.pause", f"call:{CALL}", "card on screen"),
        ("recording.resume", f"call:{CALL}", "done now")]
    assert answer(api, "POST", f"{path}/pause", token="tok-agent101").status == 400


def test_http_pause_scope_unknown_call_and_ami_away():
    """A supervisor of the agent's team may pause (reason ``supervisor``); quality may not;
    a call without a running recording is 404; AMI away is 503, never a silent success."""
    from api.testing import answer

    control = FakeControl()
    api, _audit, recorder = _api_with_a_call(control)
    path = f"/api/recordings/calls/{CALL}/pause?reason=quality%20issue"
    assert answer(api, "POST", path, token="tok-quality").status == 403
    by_supervisor = answer(api, "POST", path, token="tok-supervisor-north")
    assert by_supervisor.status == 200 and by_supervisor.body["reason"] == "supervisor"
    gone = answer(api, "POST", "/api/recordings/calls/1.2/pause?reason=why%20not",
                  token="tok-ops")
    assert (gone.status, gone.body["id"]) == (404, "recording-not-found")
    control.away = True
    run_now(recorder.resume(CALL, "sam", "supervisor"))
    away = answer(api, "POST", path, token="tok-supervisor-north")
    assert (away.status, away.body["id"]) == (503, "unavailable")


def test_manager_conf_is_loopback_with_one_user_that_may_only_mute(tmp_path):
    """asterisk/manager.conf: AMI on 127.0.0.1 only, one user permitted from loopback only,
    writing only the "call" class (MixMonitorMute), reading nothing, its secret included
    from a file the testbed writes per run (never in the repository)."""
    text = (CONFIG.parent / "asterisk" / "manager.conf").read_text()
    lines = [line.split(";")[0].strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    assert "bindaddr = 127.0.0.1" in lines and "enabled = yes" in lines
    assert [line for line in lines if line.startswith("[")] == ["[general]", "[hotline]"]
    user = lines[lines.index("[hotline]") + 1:]
    assert '#include "hotline-ami-secret.conf"' in user
    assert not any(line.startswith("secret") for line in user)
    assert "deny = 0.0.0.0/0.0.0.0" in user and "permit = 127.0.0.1/255.255.255.255" in user
    assert "write = call" in user and "read =" in user


def test_a_transferred_caller_is_followed_while_the_channel_lives(tmp_path):
    """A blind transfer ends the flow but not the caller's channel: legs that stay quiet
    longer than ``close_wait_s`` right after it (the transfer target rings) are followed
    while AMI says the channel exists, then stored once, whole, ending with the legs."""
    control = FakeControl(up={CHANNEL})
    ingest, alarms, spawned, slept = FakeIngest(), FakeAlarms(), [], []
    recorder = CallRecorder(
        settings=lambda: CaptureSettings(raw_dir=str(tmp_path), close_wait_s=2),
        control=control, alarms=alarms, ingest=ingest, deletions=MemoryCatalog(),
        clock=lambda: 1012.0, sleep=lambda s: transferred_call(s), spawn=spawned.append)
    legs = [Path(leg) for leg in recorder.legs_for("rec-1")]

    async def transferred_call(seconds: float) -> None:
        slept.append(seconds)
        if sum(slept) >= 20 and CHANNEL in control.up:  # the caller hangs up at last
            for leg in legs:
                write_wav(leg, 40.0)
            control.up.discard(CHANNEL)

    run_now(recorder.started(CALL, "rec-1", CHANNEL, "billing", "17", at=1000.0))
    run_now(recorder.answered(CALL, "agent101", 1002.0, 1012.0))
    for leg in legs:
        write_wav(leg, 12.0)  # what was there when the flow ended (the transfer)
    run_now(recorder.finished(CALL))
    (after_hangup,) = spawned
    run_now(after_hangup)
    (raw,) = ingest.raws
    assert raw.recording_id == "rec-1" and raw.ended_at == pytest.approx(1040.0)
    assert raw.talk_seconds == pytest.approx(10.0) and sum(slept) >= 20
    assert not {"RECORDSHORT", "RECORDMISSING"} & set(alarms.kinds())


def test_a_caller_the_flow_stopped_recording_is_not_followed(tmp_path, cfg):
    """The caller leaves the flow alive (the flow stops MixMonitor itself, e.g. on to the
    survey): the recording is checked and stored at once, without asking whether the
    channel still exists (it does, but nothing more is recorded on it)."""

    class Asked(FakeControl):
        asked: int = 0

        async def channel_up(self, channel: str) -> bool | None:
            self.asked += 1
            return await super().channel_up(channel)

    control = Asked(up={CHANNEL})
    router = FakeRouter([_offer("agent101")], queue="billing")
    rec = recorded_call(tmp_path, cfg, router, {"STREAM FILE": ["1"], "GET DATA": [None]},
                        control=control)
    assert rec.apps() == ["MixMonitor", "Dial", "StopMixMonitor"]
    rec.after_hangup()
    (raw,) = rec.ingest.raws
    assert raw.talk_seconds == pytest.approx(TALK_S) and control.asked == 0
