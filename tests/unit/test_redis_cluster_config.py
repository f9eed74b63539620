"""``service.yaml``'s third ``redis`` form, ``cluster``: what is accepted, what is refused
with the file, the key and the reason, and the client the one builder makes of it. Building
the asyncio client opens no socket (redis-py's cluster client connects on first use)."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio.cluster as aiocluster
from test_redis_sentinel_config import _problems, _with_redis_section

from hotline.redisclient import async_redis, describe, is_cluster
from ivr.config import RedisSettings, load_config

CLUSTER_YAML = """redis:
  key_prefix: "hotline:"
  cluster:
    nodes: ["10.0.0.1:7001", "10.0.0.2:7002", "[fd00::3]:7003"]
    password_env: HOTLINE_REDIS_PASSWORD
"""


def test_cluster_form_loads_with_its_nodes_in_order(config_dir: Path) -> None:
    """A ``cluster`` section loads: the nodes as (host, port) in the order given (an IPv6
    host in brackets), and the settings say they are a cluster."""
    _with_redis_section(config_dir, CLUSTER_YAML)
    settings = load_config(config_dir, environ={}).service.redis
    assert settings.cluster is not None
    assert settings.cluster.addresses() == [("10.0.0.1", 7001), ("10.0.0.2", 7002),
                                            ("fd00::3", 7003)]
    assert settings.is_cluster and is_cluster(settings)
    assert describe(settings) == "cluster via 10.0.0.1:7001, 10.0.0.2:7002, [fd00::3]:7003"


def test_url_and_sentinel_forms_are_not_clusters() -> None:
    """The url and sentinel forms, and a bare ``--redis`` URL, are one Redis: not a cluster."""
    assert not is_cluster("redis://127.0.0.1:6379/0")
    assert not is_cluster(RedisSettings())
    sentinel = RedisSettings.model_validate({"sentinel": {"master": "m", "hosts": ["h:1"]}})
    assert not sentinel.is_cluster


@pytest.mark.parametrize("extra", ["  url: redis://10.0.0.9:6379/0\n",
                                   '  sentinel:\n    master: m\n    hosts: ["h:26379"]\n'])
def test_cluster_with_another_form_is_refused(config_dir: Path, extra: str) -> None:
    """A cluster section beside a url or a sentinel section is ambiguous: refused, naming the
    section."""
    _with_redis_section(config_dir, CLUSTER_YAML + extra)
    problems = _problems(config_dir)
    assert any("service.yaml: redis:" in p and "cluster alone" in p for p in problems), problems


@pytest.mark.parametrize("node", ["10.0.0.1", "10.0.0.1:port", "10.0.0.1:70000"])
def test_a_node_without_a_usable_port_is_refused(config_dir: Path, node: str) -> None:
    """Each node is ``host:port``; anything else is refused with the key and the entry."""
    _with_redis_section(config_dir, f'redis:\n  cluster:\n    nodes: ["{node}"]\n')
    problems = _problems(config_dir)
    assert any("service.yaml: redis.cluster.nodes:" in p and repr(node) in p
               for p in problems), problems


def test_a_cluster_needs_nodes_and_no_password_in_the_file(config_dir: Path) -> None:
    """No node: nothing to ask; a ``password`` key (a secret in the file) is refused like
    every unknown key."""
    _with_redis_section(config_dir, "redis:\n  cluster:\n    nodes: []\n    password: x\n")
    problems = _problems(config_dir)
    assert any("service.yaml: redis.cluster.nodes:" in p for p in problems), problems
    assert any("service.yaml: redis.cluster.password:" in p for p in problems), problems


def test_cluster_form_builds_a_cluster_client_from_every_node() -> None:
    """The ``cluster`` form gives redis-py's asyncio cluster client, started from every
    configured node, with the password from the named variable and the call site's
    timeouts and options on its connections."""
    settings = RedisSettings.model_validate({"cluster": {
        "nodes": ["10.0.0.1:7001", "10.0.0.2:7002"], "password_env": "PW"}})
    client = async_redis(settings, socket_timeout=2.0, socket_connect_timeout=3.0,
                         environ={"PW": "data"}, health_check_interval=10)
    assert isinstance(client, aiocluster.RedisCluster)
    started = [(n.host, n.port) for n in client.nodes_manager.startup_nodes.values()]
    assert sorted(started) == [("10.0.0.1", 7001), ("10.0.0.2", 7002)]
    kwargs = client.connection_kwargs
    assert kwargs["password"] == "data"
    assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (2.0, 3.0)
    assert kwargs["health_check_interval"] == 10
