"""The ARI side of live routing (ivr.flows.callback.AsteriskTelephony) against a fake ARI
client and a recording router: what is originated for a callback, and which ARI events reach
the router."""

from __future__ import annotations

import asyncio
import functools

from twisted.internet import defer

from ivr.flows.callback import AsteriskTelephony


def on_asyncio(test):
    @functools.wraps(test)
    def run(*args, **kwargs):
        return defer.Deferred.fromFuture(asyncio.ensure_future(test(*args, **kwargs)))

    return run


class FakeARI:
    def __init__(self, channels=()):
        self.originated = []
        self.channels = set(channels)

    def originate(self, endpoint, **kwargs):
        self.originated.append((endpoint, kwargs))
        return defer.succeed({"id": kwargs.get("channel_id")})

    def get_channel(self, channel_id):
        return defer.succeed({"id": channel_id} if channel_id in self.channels else None)


class RecordingRouter:
    def __init__(self):
        self.seen = []

    def agent_for_device(self, device):
        return {"PJSIP/agent101": "agent101"}.get(device)

    async def device_state(self, agent_id, state):
        self.seen.append(("device", agent_id, state))

    async def callback_unanswered(self, call_id):
        self.seen.append(("unanswered", call_id))


@on_asyncio
async def test_callback_rings_the_agent_first_into_the_callback_context():
    """The agent's endpoint is originated into s@hotline-callback with the call id, this
    instance's FastAGI address, the customer's number as caller ID and the ring timeout."""
    ari = FakeARI()
    phone = AsteriskTelephony(ari, RecordingRouter(), "127.0.0.1:4574")
    await phone.originate_callback("1700.5", "PJSIP/agent101", "5550199", 12.0)
    ((endpoint, kwargs),) = ari.originated
    assert endpoint == "PJSIP/agent101"
    assert (kwargs["context"], kwargs["extension"], kwargs["timeout"]) == (
        "hotline-callback", "s", 12)
    assert kwargs["variables"] == {"HOTLINE_CALLBACK_CALL": "1700.5",
                                   "HOTLINE_AGI": "127.0.0.1:4574"}
    assert kwargs["caller_id"] == '"Callback" <5550199>'
    assert kwargs["channel_id"] == "callback-1700.5"


@on_asyncio
async def test_channel_exists_and_events_reach_the_router():
    """Channel lookups say True/False; device states of known softphones and the end of a
    callback's agent leg reach the router, anything else is ignored."""
    router = RecordingRouter()
    phone = AsteriskTelephony(FakeARI(channels={"up.1"}), router, "127.0.0.1:4573")
    assert await phone.channel_exists("up.1") is True
    assert await phone.channel_exists("gone.2") is False
    await phone.on_device_state({"device_state": {"name": "PJSIP/agent101", "state": "INUSE"}})
    assert phone.on_device_state({"device_state": {"name": "PJSIP/x", "state": "INUSE"}}) is None
    await phone.on_channel_destroyed({"channel": {"id": "callback-1700.5"}, "cause": 19})
    assert phone.on_channel_destroyed({"channel": {"id": "1700.9"}}) is None
    assert router.seen == [("device", "agent101", "INUSE"), ("unanswered", "1700.5")]
