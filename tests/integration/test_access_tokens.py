"""The token store and web sessions against a real redis-server: tokens shown once and kept
only as a keyed hash, expiry by the injected clock, revocation seen at once by every store
instance, sessions that end with their token, CSRF bound to the session.

The stores are asyncio code; each test body runs as an asyncio Task (``on_asyncio``).
"""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from access import Identity, Role, Unauthenticated
from access.sessions import SessionStore
from access.tokens import TokenStore, UnknownToken
from ivr.testing import on_asyncio
from testbed.redis import connect

KEY = bytes.fromhex("11" * 32)
T0 = 1_800_000_000.0


async def refused(store, authorization, now=T0) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await store.authenticate(authorization, now)
    return caught.value.reason


@on_asyncio
async def test_created_token_authenticates_and_is_stored_only_as_its_hmac(redis_server, prefix):
    """A new token reads hlt_<id>_<43 url-safe chars>, authenticates as its user, role and
    team, and Redis holds its HMAC-SHA256 under the server key, never the token or secret."""
    client = connect(redis_server.url)
    store = TokenStore(client, KEY, prefix=prefix)
    token, info = await store.create("kim", "supervisor", "billing-desk", expires_s=3600, now=T0)
    m = re.fullmatch(r"hlt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})", token)
    assert m and m.group(1) == info.token_id
    assert (info.user, info.role, info.team, info.expires) == (
        "kim", Role.SUPERVISOR, "billing-desk", T0 + 3600)
    assert await store.authenticate(f"Bearer {token}", T0 + 1) == Identity(
        "kim", Role.SUPERVISOR, "billing-desk", info.token_id)
    assert await store.authenticate(f"bearer  {token} ", T0 + 1) == Identity(
        "kim", Role.SUPERVISOR, "billing-desk", info.token_id)
    fields = await client.hgetall(f"{prefix}access:token:{info.token_id}")
    assert fields[b"hash"].decode() == hmac.new(KEY, token.encode(), hashlib.sha256).hexdigest()
    dump = b"".join(k + v for k, v in fields.items())
    assert m.group(2).encode() not in dump and token.encode() not in dump
    every_key = [k async for k in client.scan_iter(f"{prefix}*")]
    assert sorted(every_key) == sorted([f"{prefix}access:token:{info.token_id}".encode(),
                                        f"{prefix}access:tokens".encode()])
    assert 0 < await client.ttl(f"{prefix}access:token:{info.token_id}") <= 3600 + 7 * 86400
    await client.aclose()


@on_asyncio
async def test_two_tokens_differ_and_a_store_with_another_key_rejects(redis_server, prefix):
    """Tokens are random; a token checked under another server key is unknown."""
    client = connect(redis_server.url)
    store = TokenStore(client, KEY, prefix=prefix)
    first, _ = await store.create("agent101", "agent", now=T0)
    second, _ = await store.create("agent101", "agent", now=T0)
    assert first != second
    other = TokenStore(client, bytes(32), prefix=prefix)
    assert (await refused(other, f"Bearer {first}")).startswith("unknown token")
    await client.aclose()


@on_asyncio
async def test_refusals_say_why_and_never_echo_the_secret(redis_server, prefix):
    """Missing, non-bearer, malformed, unknown, wrong-secret, expired and revoked tokens are
    each refused with their own reason, none of which repeats the secret."""
    client = connect(redis_server.url)
    store = TokenStore(client, KEY, prefix=prefix)
    token, info = await store.create("agent101", "agent", expires_s=60, now=T0)
    secret = token[len("hlt_0123456789abcdef_"):]
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    unknown = "hlt_0000000000000000_" + token[21:]
    reasons = {
        "missing": await refused(store, None),
        "empty": await refused(store, ""),
        "basic": await refused(store, f"Basic {token}"),
        "malformed": await refused(store, f"Bearer {token}x"),
        "unknown": await refused(store, f"Bearer {unknown}"),
        "wrong secret": await refused(store, f"Bearer {wrong}"),
        "expired": await refused(store, f"Bearer {token}", T0 + 60),
    }
    assert reasons["missing"] == reasons["empty"] == (
        "no Authorization header: send 'Bearer <token>'")
    assert reasons["basic"] == "the Authorization header is not 'Bearer <token>'"
    assert reasons["malformed"] == "malformed token: not hlt_<id>_<secret>"
    assert reasons["unknown"] == "unknown token 0000000000000000"
    assert reasons["wrong secret"] == f"unknown token {info.token_id}"
    assert reasons["expired"] == f"token {info.token_id} expired at 2027-01-15T08:01:00Z"
    await store.revoke(info.token_id, T0 + 10)
    assert await refused(store, f"Bearer {token}", T0 + 11) == (
        f"token {info.token_id} was revoked at 2027-01-15T08:00:10Z")
    for reason in reasons.values():
        assert secret not in reason
    await client.aclose()


@on_asyncio
async def test_revocation_holds_at_once_on_another_instance(redis_server, prefix):
    """Two store instances (two services) share Redis: a token revoked through one is refused
    by the other on its very next check, and the first revocation time is kept."""
    a_client, b_client = connect(redis_server.url), connect(redis_server.url)
    a = TokenStore(a_client, KEY, prefix=prefix)
    b = TokenStore(b_client, KEY, prefix=prefix)
    token, info = await a.create("ops1", "ops", now=T0)
    assert (await b.authenticate(f"Bearer {token}", T0 + 1)).user == "ops1"
    revoked = await a.revoke(info.token_id, T0 + 2)
    assert revoked.revoked == T0 + 2 and revoked.status(T0 + 2) == "revoked"
    assert "was revoked" in await refused(b, f"Bearer {token}", T0 + 2)
    assert (await b.revoke(info.token_id, T0 + 5)).revoked == T0 + 2
    with pytest.raises(UnknownToken):
        await b.revoke("ffffffffffffffff", T0)
    with pytest.raises(UnknownToken):
        await b.revoke("../../x", T0)
    assert not await a_client.exists(f"{prefix}access:token:ffffffffffffffff")
    await a_client.aclose()
    await b_client.aclose()


@on_asyncio
async def test_list_shows_every_token_without_secret_or_hash(redis_server, prefix):
    """list() gives id, user, role, team, times and status, oldest first; neither the token,
    its secret nor its hash appears; tokens Redis has dropped leave the list."""
    client = connect(redis_server.url)
    store = TokenStore(client, KEY, prefix=prefix)
    t1, i1 = await store.create("agent101", "agent", now=T0)
    t2, i2 = await store.create("au1", "auditor", expires_s=60, now=T0 + 1)
    await store.revoke(i1.token_id, T0 + 2)
    listed = await store.list()
    assert [i.token_id for i in listed] == [i1.token_id, i2.token_id]
    assert [i.status(T0 + 100) for i in listed] == ["revoked", "expired"]
    text = repr(listed) + repr([i.as_dict(T0) for i in listed])
    for token in (t1, t2):
        assert token[21:] not in text
        assert hmac.new(KEY, token.encode(), hashlib.sha256).hexdigest() not in text
    assert "hash" not in listed[0].as_dict(T0)
    await client.delete(f"{prefix}access:token:{i2.token_id}")
    assert [i.token_id for i in await store.list()] == [i1.token_id]
    assert await client.smembers(f"{prefix}access:tokens") == {i1.token_id.encode()}
    await client.aclose()


@on_asyncio
async def test_create_refuses_bad_subjects_and_expiries(redis_server, prefix):
    """Unknown roles, a supervisor without a team, zero or over-long expiries are refused and
    nothing is written; the store refuses a short key."""
    client = connect(redis_server.url)
    store = TokenStore(client, KEY, prefix=prefix)
    for kwargs in ({"role": "boss"}, {"role": "supervisor"}, {"role": "ops", "expires_s": 0},
                   {"role": "ops", "expires_s": 366 * 86400}):
        with pytest.raises(ValueError):
            await store.create("x", now=T0, **kwargs)
    assert [k async for k in client.scan_iter(f"{prefix}*")] == []
    with pytest.raises(ValueError, match="32 bytes"):
        TokenStore(client, b"short", prefix=prefix)
    await client.aclose()


@on_asyncio
async def test_session_login_identity_csrf_logout(redis_server, prefix):
    """A token logs in to a session whose id is random and kept in Redis only as a keyed hash;
    the session answers the token's identity; its CSRF token verifies for it alone; logout
    ends it."""
    client = connect(redis_server.url)
    tokens = TokenStore(client, KEY, prefix=prefix)
    sessions = SessionStore(client, KEY, tokens, prefix=prefix, lifetime_s=3600)
    token, info = await tokens.create("agent101", "agent", now=T0)
    session = await sessions.login(token, T0)
    other = await sessions.login(token, T0)
    assert session.session_id != other.session_id and len(session.session_id) == 43
    assert session.expires == T0 + 3600
    expected = Identity("agent101", Role.AGENT, None, info.token_id)
    assert session.identity == expected
    assert await sessions.identity(session.session_id, T0 + 10) == expected
    assert sessions.csrf_valid(session.session_id, session.csrf)
    assert not sessions.csrf_valid(other.session_id, session.csrf)
    session_keys = [k async for k in client.scan_iter(f"{prefix}access:session:*")]
    assert len(session_keys) == 2
    assert all(session.session_id.encode() not in k for k in session_keys)
    assert 0 < await client.pttl(session_keys[0]) <= 3600 * 1000
    await sessions.logout(session.session_id)
    with pytest.raises(Unauthenticated, match="session is over"):
        await sessions.identity(session.session_id, T0 + 10)
    assert await sessions.identity(other.session_id, T0 + 10) == expected
    await client.aclose()


@on_asyncio
async def test_session_ends_with_its_token_and_its_lifetime(redis_server, prefix):
    """A session ends when its lifetime or its token's runs out (the sooner), and at once when
    its token is revoked through another instance; a bad token logs nobody in."""
    client = connect(redis_server.url)
    tokens = TokenStore(client, KEY, prefix=prefix)
    sessions = SessionStore(client, KEY, tokens, prefix=prefix, lifetime_s=3600)
    short, _ = await tokens.create("ops1", "ops", expires_s=600, now=T0)
    session = await sessions.login(short, T0)
    assert session.expires == T0 + 600
    with pytest.raises(Unauthenticated, match="session is over"):
        await sessions.identity(session.session_id, T0 + 600)
    token, info = await tokens.create("ops1", "ops", now=T0)
    session = await sessions.login(token, T0)
    with pytest.raises(Unauthenticated, match="session is over"):
        await sessions.identity(session.session_id, T0 + 3600)
    elsewhere = TokenStore(connect(redis_server.url), KEY, prefix=prefix)
    await elsewhere.revoke(info.token_id, T0 + 5)
    with pytest.raises(Unauthenticated, match="was revoked"):
        await sessions.identity(session.session_id, T0 + 6)
    with pytest.raises(Unauthenticated, match="was revoked"):
        await sessions.login(token, T0 + 6)
    with pytest.raises(Unauthenticated, match="malformed"):
        await sessions.login("not-a-token", T0)
    with pytest.raises(Unauthenticated, match="no session"):
        await sessions.identity("../x", T0)
    await elsewhere.redis.aclose()
    await client.aclose()
