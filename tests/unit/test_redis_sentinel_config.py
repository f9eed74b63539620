"""``service.yaml``'s ``redis`` section in its two forms (``url``, ``sentinel``): what is
accepted, what is refused with the file, the key and the reason, and which client the one
builder (``hotline.redisclient``) makes of each. Building a client opens no socket."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.sentinel import SentinelConnectionPool

from hotline.redisclient import async_redis, describe, sync_redis
from hotline.service import service_redis
from ivr.config import ConfigError, RedisSettings, load_config

SENTINEL_YAML = """redis:
  key_prefix: "hotline:"
  sentinel:
    master: mymaster
    hosts: ["10.0.0.1:26379", "10.0.0.2:26379", "[fd00::3]:26380"]
    db: 2
    password_env: HOTLINE_REDIS_PASSWORD
    sentinel_password_env: HOTLINE_SENTINEL_PASSWORD
"""


def _with_redis_section(config_dir: Path, section: str) -> None:
    """service.yaml with its ``redis:`` section replaced by ``section``."""
    path = config_dir / "service.yaml"
    text = path.read_text()
    shipped = 'redis:\n  url: redis://127.0.0.1:6379/0\n  key_prefix: "hotline:"\n'
    assert shipped in text
    path.write_text(text.replace(shipped, section))


def _problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, environ={})
    return caught.value.problems


def test_sentinel_form_loads_with_its_sentinels_in_order(config_dir: Path) -> None:
    """A ``sentinel`` section loads: the master's name, the sentinels as (host, port) in the
    order given (an IPv6 host in brackets), the database."""
    _with_redis_section(config_dir, SENTINEL_YAML)
    sentinel = load_config(config_dir, environ={}).service.redis.sentinel
    assert sentinel is not None
    assert sentinel.master == "mymaster"
    assert sentinel.addresses() == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("fd00::3", 26380)]
    assert sentinel.db == 2


def test_shipped_config_is_the_url_form(config_dir: Path) -> None:
    """The shipped file names one Redis by URL and no sentinel: today's behaviour."""
    redis_settings = load_config(config_dir, environ={}).service.redis
    assert redis_settings.sentinel is None
    assert redis_settings.url == "redis://127.0.0.1:6379/0"


def test_url_and_sentinel_together_are_refused(config_dir: Path) -> None:
    """Both forms at once are ambiguous (which Redis?): refused, naming the section."""
    _with_redis_section(config_dir, SENTINEL_YAML + "  url: redis://10.0.0.9:6379/0\n")
    problems = _problems(config_dir)
    assert any("service.yaml: redis:" in p and "url or sentinel, not both" in p
               for p in problems), problems


@pytest.mark.parametrize("host", ["10.0.0.1", "10.0.0.1:", ":26379", "10.0.0.1:port",
                                  "10.0.0.1:70000", "10.0.0.1:0"])
def test_a_sentinel_without_a_usable_port_is_refused(config_dir: Path, host: str) -> None:
    """Each sentinel is ``host:port`` with a port in 1..65535; anything else is refused with
    the key and the entry, so the typo is found at start, not at the first failover."""
    _with_redis_section(
        config_dir, f'redis:\n  sentinel:\n    master: mymaster\n    hosts: ["{host}"]\n')
    problems = _problems(config_dir)
    assert any("service.yaml: redis.sentinel.hosts:" in p and repr(host) in p
               and "host:port" in p for p in problems), problems


def test_a_sentinel_section_needs_a_master_and_hosts(config_dir: Path) -> None:
    """Without the master's name or without one sentinel there is nothing to ask: both keys
    are named."""
    _with_redis_section(config_dir, "redis:\n  sentinel:\n    master: ''\n    hosts: []\n")
    problems = _problems(config_dir)
    assert any("service.yaml: redis.sentinel.master:" in p for p in problems), problems
    assert any("service.yaml: redis.sentinel.hosts:" in p for p in problems), problems


def test_unknown_sentinel_key_is_refused(config_dir: Path) -> None:
    """A misspelt key (``password`` instead of ``password_env``: a secret in the file) is
    refused like every other unknown key."""
    _with_redis_section(
        config_dir,
        'redis:\n  sentinel:\n    master: m\n    hosts: ["h:26379"]\n    password: hunter2\n')
    problems = _problems(config_dir)
    assert any("service.yaml: redis.sentinel.password:" in p for p in problems), problems


def test_passwords_come_from_the_named_variables_only() -> None:
    """The data nodes' and the sentinels' passwords are read from the variables the section
    names; an unset or empty variable means no password."""
    settings = RedisSettings.model_validate({"sentinel": {
        "master": "m", "hosts": ["h:26379"], "password_env": "A", "sentinel_password_env": "B",
    }})
    assert settings.sentinel is not None
    assert settings.sentinel.passwords({"A": "data", "B": "watch"}) == ("data", "watch")
    assert settings.sentinel.passwords({"A": ""}) == (None, None)
    bare = RedisSettings.model_validate({"sentinel": {"master": "m", "hosts": ["h:1"]}})
    assert bare.sentinel is not None and bare.sentinel.passwords({"A": "x"}) == (None, None)


def test_url_form_builds_a_plain_client_with_the_call_sites_timeouts() -> None:
    """The ``url`` form (or a bare ``--redis`` URL) gives a client on that URL, with the
    timeouts the call site asked for."""
    for target in (RedisSettings(url="redis://10.0.0.5:6380/4"), "redis://10.0.0.5:6380/4"):
        client = async_redis(target, socket_timeout=2.0, socket_connect_timeout=3.0)
        kwargs = client.connection_pool.connection_kwargs
        assert not isinstance(client.connection_pool, AsyncSentinelPool)
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("10.0.0.5", 6380, 4)
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (2.0, 3.0)
        blocking = sync_redis(target, socket_timeout=10, socket_connect_timeout=5)
        assert blocking.connection_pool.connection_kwargs["port"] == 6380
        assert not isinstance(blocking.connection_pool, SentinelConnectionPool)


def test_sentinel_form_builds_a_master_client_through_the_sentinels() -> None:
    """The ``sentinel`` form gives a client whose connections go to the master the sentinels
    name: the master's name, every sentinel, the database, both passwords from the
    environment and the call site's timeouts, on the data and the sentinel connections."""
    settings = RedisSettings.model_validate({"sentinel": {
        "master": "mymaster", "hosts": ["10.0.0.1:26379", "10.0.0.2:26379"], "db": 2,
        "password_env": "PW", "sentinel_password_env": "SPW",
    }})
    client = async_redis(settings, socket_timeout=2.0, socket_connect_timeout=3.0,
                         environ={"PW": "data", "SPW": "watch"}, health_check_interval=10)
    assert isinstance(client, aioredis.Redis)
    pool = client.connection_pool
    assert isinstance(pool, AsyncSentinelPool)
    assert pool.service_name == "mymaster"
    kwargs = pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"]) == (2, "data")
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (2.0, 3.0)
    assert kwargs["health_check_interval"] == 10
    watchers = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(w["host"], w["port"]) for w in watchers] == [("10.0.0.1", 26379),
                                                          ("10.0.0.2", 26379)]
    assert {(w["password"], w["socket_timeout"]) for w in watchers} == {("watch", 2.0)}

    blocking = sync_redis(settings, socket_timeout=10, socket_connect_timeout=5, environ={})
    assert isinstance(blocking, redis.Redis)
    assert isinstance(blocking.connection_pool, SentinelConnectionPool)
    assert blocking.connection_pool.service_name == "mymaster"
    assert blocking.connection_pool.connection_kwargs["password"] is None


def test_the_service_client_follows_the_section(config_dir: Path) -> None:
    """``ivr serve``'s client (``service_redis``) is built by the same builder: a sentinel
    section gives a Sentinel-backed client with the service's 2 s timeouts."""
    _with_redis_section(config_dir, SENTINEL_YAML)
    client = service_redis(load_config(config_dir, environ={}).service)
    assert isinstance(client.connection_pool, AsyncSentinelPool)
    assert client.connection_pool.connection_kwargs["socket_timeout"] == 2.0


def test_messages_name_where_redis_is_without_secrets() -> None:
    """Error messages say where Redis is: the URL, or the master and its sentinels."""
    assert describe("redis://h:1/0") == "redis://h:1/0"
    settings = RedisSettings.model_validate({"sentinel": {
        "master": "mymaster", "hosts": ["a:26379", "b:26379"], "password_env": "PW"}})
    assert describe(settings) == "sentinel master 'mymaster' via a:26379, b:26379"
