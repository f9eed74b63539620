"""Numbers in the routing state are sealed (``routing.numbers``): against a real redis-server,
the caller's and the callback numbers are nowhere in Redis in the clear, neither in the call's
hash nor in the events, and they open again where they are dialled and shown."""

from __future__ import annotations

import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.fields import is_sealed
from privacy.testing import random_field_cipher
from routing.live import CallRequest, LiveRouter
from routing.testing import only_available, shipped_config
from screens.wiring import CallHashes

T0 = 1_800_000_000.0
CALLER, CALLBACK = "+82 10-5550-0199", "01055500142"


class Originated:
    def __init__(self) -> None:
        self.numbers: list[str] = []

    async def originate_callback(self, call_id: str, endpoint: str, number: str,
                                 ring_timeout_s: float) -> None:
        self.numbers.append(number)

    async def channel_exists(self, call_id: str) -> bool:
        return False


@on_asyncio
async def test_the_numbers_are_sealed_in_redis_and_opened_where_dialled_and_shown(
    redis_server, prefix
):
    """A caller queues and leaves a callback number; Redis's whole content (every key's
    values, the event stream) holds neither number's digits, the call's hash and the
    ENTERQUEUE / CALLBACKREQUEST / CALLBACKATTEMPT events hold sealed values that open to
    them with the call as owner, the agent's callback is originated to the plain number and
    the desk's call facts show it."""
    cipher = random_field_cipher()
    client = aioredis.Redis.from_url(redis_server.url)
    phone = Originated()
    router = LiveRouter(client, lambda: shipped_config(), instance="hotline-1", prefix=prefix,
                        clock=lambda: T0, telephony=phone, numbers=cipher)
    await only_available(router, "agent103")
    await router.enqueue(CallRequest("c1", "fault", "normal", CALLER, T0))
    assert await router.request_callback("c1", CALLBACK)
    await router.dispatch()
    assert phone.numbers == [CALLBACK]
    assert (await router.callback_offer("c1")).number == CALLBACK
    assert await router.callback_step("c1", "agent103", "agent_answered") == 1  # the attempt
    facts = await CallHashes(client, prefix, router.numbers)("c1")
    assert facts is not None and facts.callback_number == CALLBACK

    row = {k.decode(): v.decode() for k, v in
           (await client.hgetall(f"{prefix}{{rt}}:call:c1")).items()}
    assert is_sealed(row["caller_number"]) and is_sealed(row["callback_number"])
    assert cipher.open("call:c1", "caller_number", row["caller_number"]) == CALLER
    events = [{k.decode(): v.decode() for k, v in fields.items()}
              for _, fields in await client.xrange(router.events_key)]
    numbered = {e["kind"]: e for e in events if e.get("caller") or e.get("number")}
    assert set(numbered) == {"ENTERQUEUE", "CALLBACKREQUEST", "CALLBACKATTEMPT"}
    assert cipher.open("call:c1", "caller_number", numbered["ENTERQUEUE"]["caller"]) == CALLER
    for kind in ("CALLBACKREQUEST", "CALLBACKATTEMPT"):
        assert cipher.open("call:c1", "callback_number", numbered[kind]["number"]) == CALLBACK

    dump = []
    for key in await client.keys(f"{prefix}*"):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            dump += (await client.hgetall(key)).values()
        elif kind == "stream":
            dump += [v for _, f in await client.xrange(key) for v in f.values()]
    text = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in dump)
    for digits in (b"1055500199", b"55500199", b"01055500142", b"55500142"):
        assert digits not in text.replace(b"-", b"").replace(b" ", b"")
    await client.aclose()


@on_asyncio
async def test_a_number_written_before_sealing_still_opens_as_it_was(redis_server, prefix):
    """A callback left by a caller while an older release ran (plain number in the hash) is
    still dialled to that number after the upgrade."""
    client = aioredis.Redis.from_url(redis_server.url)
    phone = Originated()
    old = LiveRouter(client, lambda: shipped_config(), instance="hotline-1", prefix=prefix,
                     clock=lambda: T0, telephony=phone)
    await only_available(old, "agent103")
    await old.enqueue(CallRequest("c1", "fault", "normal", CALLER, T0))
    assert await old.request_callback("c1", CALLBACK)
    new = LiveRouter(client, lambda: shipped_config(), instance="hotline-1", prefix=prefix,
                     clock=lambda: T0, telephony=phone, numbers=random_field_cipher())
    await new.dispatch()
    assert phone.numbers == [CALLBACK]
    await client.aclose()
