"""Fixtures shared by the test directories (e2e/conftest.py has its own, session-wide Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from twisted.logger import LogEvent, globalLogPublisher

from testbed.redis import RedisServer


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
