"""Fixtures shared by the test directories (e2e/conftest.py has its own, session-wide Redis)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from twisted.logger import LogEvent, globalLogPublisher

from testbed.redis import RedisCluster, RedisServer


@pytest.fixture
def prefix() -> str:
    """Each test its own key space in the shared server (or cluster)."""
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the tests of one module."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def log_events() -> Iterator[list[LogEvent]]:
    """Every Twisted log event emitted during the test."""
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


# --- Redis Cluster (issue 11): a session-wide 3-master cluster; tests that use it must leave
# keys they do not own alone or use their own prefix, since every module shares it.


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-master Redis Cluster on loopback (``.nodes`` as host:port, ``.url`` of one
    node), AOF on, torn down at the end of the session."""
    with RedisCluster() as cluster:
        yield cluster
