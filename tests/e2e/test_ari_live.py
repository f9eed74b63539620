"""The ARI client against the real Asterisk 22 of the testbed (asterisk/ config, loopback)."""

from __future__ import annotations

import logging
import uuid
import wave
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from ivr.ari import ARIClient, ARIError, ConnectionState, place_test_call
from ivr.prompts import PromptsConfig, build_prompts

pytestmark = pytest.mark.e2e


def within(d: defer.Deferred, seconds: float) -> defer.Deferred:
    return d.addTimeout(seconds, reactor)


def until(predicate: Callable[[], bool], seconds: float) -> defer.Deferred:
    """Fires once ``predicate()`` holds; polls every 50 ms; times out after ``seconds``."""
    done: defer.Deferred = defer.Deferred()

    def poll() -> None:
        if done.called:
            return
        if predicate():
            done.callback(None)
        else:
            reactor.callLater(0.05, poll)

    poll()
    return within(done, seconds)


@pytest_twisted.async_yield_fixture
async def ari(asterisk) -> AsyncIterator[ARIClient]:
    client = ARIClient(asterisk.ari_url, asterisk.ari_user, asterisk.ari_password, app="hotline")
    client.start()
    await within(client.when_connected(), 10)
    yield client
    await client.stop()


@pytest_twisted.ensureDeferred
async def test_connects_and_reads_asterisk_and_agent_endpoints(ari):
    """The client connects its event socket and reads Asterisk's version and the agents'
    PJSIP endpoints and device states from asterisk/pjsip.conf."""
    info = await ari.asterisk_info()
    assert info["system"]["version"].startswith("22.")
    endpoints = await ari.list_endpoints()
    names = {(e["technology"], e["resource"]) for e in endpoints}
    assert {("PJSIP", f"agent10{n}") for n in range(1, 5)} <= names
    endpoint = await ari.get_endpoint("PJSIP", "agent101")
    assert endpoint is not None and endpoint["resource"] == "agent101"
    assert await ari.get_endpoint("PJSIP", "nobody") is None
    state = await ari.get_device_state("PJSIP/agent101")
    assert state in {"NOT_INUSE", "UNAVAILABLE", "UNKNOWN", "INUSE", "RINGING"}


@pytest_twisted.ensureDeferred
async def test_simulated_caller_reaches_hotline_side_and_is_destroyed(ari):
    """place_test_call: the hotline half (id = call_id) runs in context hotline with the
    caller ID verbatim, the caller half runs caller-sim and sends the script's DTMF to the
    hotline half; after the script's hang-up both halves are destroyed, seen as events."""
    call_id = f"e2e-{uuid.uuid4().hex[:12]}"
    name = 'Eve "quoted" \\ ${EVIL}'
    events: list[dict] = []
    ari.subscribe("*", events.append)

    def of(channel_id: str, kind: str) -> list[dict]:
        return [e for e in events if e["type"] == kind and e["channel"]["id"] == channel_id]

    placed = await place_test_call(
        ari, script="w1|d12|w0.5|h", caller_number="5550123", caller_name=name, call_id=call_id
    )
    assert placed == call_id
    await until(lambda: of(call_id, "ChannelDestroyed"), 15)
    await until(lambda: of(f"{call_id}-sim", "ChannelDestroyed"), 5)
    digits = "".join(e["digit"] for e in of(call_id, "ChannelDtmfReceived"))
    assert digits == "12"
    contexts = {e["channel"]["dialplan"]["context"] for e in of(call_id, "ChannelDialplan")}
    assert "hotline" in contexts
    sim_contexts = {
        e["channel"]["dialplan"]["context"] for e in of(f"{call_id}-sim", "ChannelDialplan")
    }
    assert sim_contexts == {"caller-sim"}
    hotline_side = of(call_id, "ChannelDestroyed")[0]["channel"]
    assert hotline_side["caller"] == {"name": name, "number": "5550123"}
    assert await ari.get_channel(call_id) is None
    assert await ari.hangup(call_id) is False


@pytest_twisted.ensureDeferred
async def test_reconnects_after_asterisk_restart(ari, asterisk):
    """Ops restart Asterisk: the client notices the lost socket, backs off while Asterisk is
    down, reconnects by itself once it is back, and events flow again."""
    states: list[ConnectionState] = []
    ari.on_state_change(lambda old, new: states.append(new))
    await threads.deferToThread(asterisk.stop)
    await until(lambda: ari.state is ConnectionState.BACKING_OFF, 10)
    await threads.deferToThread(asterisk.start)
    await within(ari.when_connected(), 30)
    assert states[0] is ConnectionState.BACKING_OFF
    assert states[-1] is ConnectionState.CONNECTED

    destroyed: list[dict] = []
    ari.subscribe("ChannelDestroyed", destroyed.append)
    call_id = f"e2e-{uuid.uuid4().hex[:12]}"
    await place_test_call(ari, script="h", caller_number="1", caller_name="x", call_id=call_id)
    await until(lambda: any(e["channel"]["id"] == call_id for e in destroyed), 10)


@pytest_twisted.ensureDeferred
async def test_built_prompt_plays_in_asterisk_for_its_full_length(ari, asterisk):
    """A prompt built by ivr.prompts into the testbed's sounds dir is accepted by Asterisk's
    Playback (as <sounds dir>/<name>, no extension) and plays for its whole duration."""
    cfg = PromptsConfig(prompts={"e2e-goodbye": "Thank you for calling. Goodbye."})
    await threads.deferToThread(build_prompts, cfg, asterisk.sounds_dir)
    with wave.open(str(asterisk.sounds_dir / "e2e-goodbye.wav"), "rb") as wav:
        duration = wav.getnframes() / wav.getframerate()

    events: list[tuple[float, dict]] = []
    ari.subscribe("ChannelDialplan", lambda e: events.append((reactor.seconds(), e)))
    ari.subscribe("ChannelDestroyed", lambda e: events.append((reactor.seconds(), e)))
    call_id = f"e2e-{uuid.uuid4().hex[:12]}"
    sound = f"{asterisk.asterisk_sounds_dir}/e2e-goodbye"
    await place_test_call(
        ari, script=f"p{sound}|h", caller_number="1", caller_name="x", call_id=call_id
    )
    sim = f"{call_id}-sim"

    def destroyed() -> bool:
        return any(e["type"] == "ChannelDestroyed" and e["channel"]["id"] == sim for _, e in events)

    await until(destroyed, 15)
    steps = [(t, e["channel"]["dialplan"]) for t, e in events if e["channel"]["id"] == sim]
    played = [i for i, (_, step) in enumerate(steps) if step["app_name"] == "Playback"]
    assert played, steps
    (i,) = played
    assert steps[i][1]["app_data"] == sound
    elapsed = steps[i + 1][0] - steps[i][0]  # Playback returns when the file has been played
    assert duration - 0.3 < elapsed < duration + 1.0


@pytest_twisted.ensureDeferred
async def test_wrong_password_is_logged_and_retried(asterisk, caplog):
    """With a wrong ARI password the REST call fails with 401 and the event connection keeps
    backing off, logging why, without ever logging the password."""
    client = ARIClient(asterisk.ari_url, asterisk.ari_user, "not-the-password", app="hotline")
    with caplog.at_level(logging.WARNING, "ivr.ari"):
        client.start()
        try:
            await until(lambda: "attempt 2" in caplog.text, 10)
            with pytest.raises(ARIError) as raised:
                await client.asterisk_info()
        finally:
            await client.stop()
    assert raised.value.status == 401
    assert client.state is ConnectionState.DISCONNECTED
    assert "401" in caplog.text
    assert "not-the-password" not in caplog.text
