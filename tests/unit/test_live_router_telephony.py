"""The ARI side of live routing (callbacks.telephony.AsteriskTelephony) against a fake ARI
client and a recording router: what is originated for a callback, and which ARI events reach
the router."""

from __future__ import annotations

from twisted.internet import defer, task

from callbacks.telephony import AsteriskTelephony
from ivr.ari import ARIClient
from ivr.ari.testing import FakeAsteriskEvents, ari_http
from ivr.testing import on_asyncio


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


class RecordingHTTP:
    """Asterisk's ARI over an in-memory treq: every request is kept, each gets a channel."""

    def __init__(self):
        self.requests = []

    def __call__(self, method, url, params, headers, data):
        self.requests.append((method, url, params))
        return 200, {b"Content-Type": b"application/json"}, b'{"id": "callback-1700.5"}'


class Orders:
    """The work orders' ``get_by_call``: one caller name, or a store that cannot answer."""

    def __init__(self, caller_name=None, fails=False):
        self.caller_name, self.fails = caller_name, fails

    async def get_by_call(self, call_id):
        if self.fails:
            raise ConnectionError("redis is away")
        if self.caller_name is None:
            return None
        return type("Order", (), {"caller_name": self.caller_name})()


async def _originated_caller_id(orders):
    http = RecordingHTTP()
    ari = ARIClient("http://127.0.0.1:8088/ari", "hotline", "s3cret", reactor=task.Clock(),
                    http=ari_http(http), connect=FakeAsteriskEvents())
    phone = AsteriskTelephony(ari, RecordingRouter(), "127.0.0.1:4573", workorders=orders)
    await phone.originate_callback("1700.5", "PJSIP/agent101", "5550199", 12.0)
    ((method, url, params),) = http.requests
    assert (method, url) == (b"POST", "http://127.0.0.1:8088/ari/channels")
    (caller_id,) = params[b"callerId"]
    return caller_id.decode()


@on_asyncio
async def test_callback_shows_the_callers_name_and_number_on_the_agents_phone():
    """The ARI originate's callerId (the agent's INVITE From and P-Asserted-Identity) is
    "Callback: <name>" <number>: the name from the work order, cleaned as for any display
    name, so a quote, backslash or line break from the caller's side can neither end the
    display name early nor put another number or header in front of the agent."""
    assert await _originated_caller_id(Orders("Ann Smith")) == '"Callback: Ann Smith" <5550199>'
    hostile = 'Eve" <sip:666@evil> \\\r\nX-Injected: 1'
    assert await _originated_caller_id(Orders(hostile)) == (
        "\"Callback: Eve' <sip:666@evil> / X-Injected: 1\" <5550199>")


@on_asyncio
async def test_callback_without_a_name_shows_the_number_and_still_rings():
    """No name, no work order, or a store that cannot answer: the agent's phone still rings,
    showing "Callback" and the customer's number."""
    for orders in (Orders(""), Orders(None), Orders(fails=True), None):
        assert await _originated_caller_id(orders) == '"Callback" <5550199>'


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
