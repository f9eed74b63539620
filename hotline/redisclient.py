"""The one place that turns ``service.yaml``'s ``redis`` section into a Redis client.

Either form of the section gives the same client type, so nothing past this module knows
which one ops chose: ``url`` (one Redis) or ``sentinel`` (the master of a Sentinel-watched
group; the client asks the sentinels where the master is whenever it reconnects, so a
failover costs the commands in flight, not a restart). Every command of the service and of
the ``ivr`` subcommands gets its client here, each call site keeping its own timeouts.
A bare URL (a command line's ``--redis``) is accepted where a section is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from ivr.config import RedisSettings, SentinelSettings

__all__ = ["RedisTarget", "async_redis", "describe", "sync_redis"]

#: The ``redis`` section of ``service.yaml``, or a URL given on a command line.
RedisTarget = RedisSettings | str


def async_redis(
    target: RedisTarget, *, socket_timeout: float, socket_connect_timeout: float,
    environ: Mapping[str, str] = os.environ, **options: Any,
) -> aioredis.Redis:
    """An asyncio client for ``target``; ``options`` go to every data connection (e.g.
    ``health_check_interval``)."""
    plan = _plan(target, socket_timeout, socket_connect_timeout, environ, options)
    client: aioredis.Redis = _build(plan, aioredis.Redis, AsyncSentinel)
    return client


def sync_redis(
    target: RedisTarget, *, socket_timeout: float, socket_connect_timeout: float,
    environ: Mapping[str, str] = os.environ, **options: Any,
) -> redis.Redis:
    """The blocking twin of :func:`async_redis`, for commands that read without a loop."""
    plan = _plan(target, socket_timeout, socket_connect_timeout, environ, options)
    client: redis.Redis = _build(plan, redis.Redis, Sentinel)
    return client


@dataclass(frozen=True)
class _Plan:
    """What either client is built from: the URL, or the sentinel section; the options of
    every data connection; those of the connections to the sentinels."""

    url: str
    sentinel: SentinelSettings | None
    options: dict[str, Any]
    sentinel_options: dict[str, Any]


def _plan(target: RedisTarget, socket_timeout: float, socket_connect_timeout: float,
          environ: Mapping[str, str], options: Mapping[str, Any]) -> _Plan:
    timeouts = {"socket_timeout": socket_timeout,
                "socket_connect_timeout": socket_connect_timeout}
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
