"""The one place that turns ``service.yaml``'s ``redis`` section into a Redis client.

Three forms: ``url`` (one Redis), ``sentinel`` (the master of a Sentinel-watched group; the
client asks the sentinels where the master is whenever it reconnects, so a failover costs the
commands in flight, not a restart) and ``cluster`` (a Redis Cluster: redis-py's
``RedisCluster``, which sends each command to the node serving its key's slot). The first two
give the same client type; a cluster client has the same command methods but runs a script or
MULTI/EXEC only over keys of one hash slot, so the few places that must know (the events
outbox, see ``events.events_key_for``) ask :func:`is_cluster`; nothing else branches on it.
Every command of the service and of the ``ivr`` subcommands gets its client here, each call
site keeping its own timeouts. A bare URL (a command line's ``--redis``) is accepted where a
section is (one Redis, never a cluster).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
import redis.cluster
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from ivr.config import ClusterSettings, RedisSettings, SentinelSettings

__all__ = ["RedisTarget", "async_redis", "describe", "is_cluster", "sync_redis"]

#: The ``redis`` section of ``service.yaml``, or a URL given on a command line.
RedisTarget = RedisSettings | str


def async_redis(
    target: RedisTarget, *, socket_timeout: float, socket_connect_timeout: float,
    environ: Mapping[str, str] = os.environ, **options: Any,
) -> aioredis.Redis:
    """An asyncio client for ``target``; ``options`` go to every data connection (e.g.
    ``health_check_interval``)."""
    plan = _plan(target, socket_timeout, socket_connect_timeout, environ, options)
    client: aioredis.Redis = (
        _cluster(plan.cluster, plan.options, aiocluster.RedisCluster, aiocluster.ClusterNode)
        if plan.cluster is not None else _build(plan, aioredis.Redis, AsyncSentinel))
    return client


def sync_redis(
    target: RedisTarget, *, socket_timeout: float, socket_connect_timeout: float,
    environ: Mapping[str, str] = os.environ, **options: Any,
) -> redis.Redis:
    """The blocking twin of :func:`async_redis`, for commands that read without a loop."""
    plan = _plan(target, socket_timeout, socket_connect_timeout, environ, options)
    client: redis.Redis = (
        _cluster(plan.cluster, plan.options, redis.cluster.RedisCluster,
                 redis.cluster.ClusterNode)
        if plan.cluster is not None else _build(plan, redis.Redis, Sentinel))
    return client


def is_cluster(target: RedisTarget) -> bool:
    """Whether ``target`` is a Redis Cluster (``redis.cluster`` in ``service.yaml``)."""
    return not isinstance(target, str) and target.is_cluster


@dataclass(frozen=True)
class _Plan:
    """What a client is built from: the URL, the sentinel section or the cluster section;
    the options of every data connection; those of the connections to the sentinels."""

    url: str
    sentinel: SentinelSettings | None
    options: dict[str, Any]
    sentinel_options: dict[str, Any]
    cluster: ClusterSettings | None = None


def _plan(target: RedisTarget, socket_timeout: float, socket_connect_timeout: float,
          environ: Mapping[str, str], options: Mapping[str, Any]) -> _Plan:
    timeouts = {"socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_connect_timeout}
    if not isinstance(target, str) and target.cluster is not None:
        cluster = target.cluster
        return _Plan(target.url, None,
                     {**timeouts, "password": cluster.password(environ), **options}, {}, cluster)
    if isinstance(target, str) or target.sentinel is None:
        url = target if isinstance(target, str) else target.url
        return _Plan(url, None, {**timeouts, **options}, {})
    sentinel = target.sentinel
    password, sentinel_password = sentinel.passwords(environ)
    return _Plan(
        target.url, sentinel, {**timeouts, "db": sentinel.db, "password": password, **options},
        {**timeouts, "password": sentinel_password},
    )


def describe(target: RedisTarget) -> str:
    """Where ``target`` points, for messages (no password)."""
    return target if isinstance(target, str) else target.describe()


def _build(plan: _Plan, client_class: Any, sentinel_class: Any) -> Any:
    """``plan`` made into a client of redis-py's blocking or asyncio flavour (the two share
    these constructors' signatures, not a type)."""
    if plan.sentinel is None:
        return client_class.from_url(plan.url, **plan.options)
    sentinels = sentinel_class(plan.sentinel.addresses(), sentinel_kwargs=plan.sentinel_options,
                               **plan.options)
    return sentinels.master_for(plan.sentinel.master)


def _cluster(settings: ClusterSettings, options: dict[str, Any], cluster_class: Any,
             node_class: Any) -> Any:
    """A cluster client of either flavour, started from every configured node (any one that
    answers tells it the rest). Typed as the plain client at the call sites: redis-py's
    cluster classes carry the same command methods but share no base class with it."""
    nodes = [node_class(host, port) for host, port in settings.addresses()]
    return cluster_class(startup_nodes=nodes, **options)
