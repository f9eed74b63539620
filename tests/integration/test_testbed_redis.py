"""The testbed's throw-away redis-server when the port it picked is taken (parallel workers)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from testbed import redis as testbed_redis
from testbed.redis import RedisServer


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port that someone else listens on for the whole test."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_a_picked_port_taken_before_the_start_moves_to_a_free_one(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the port RedisServer picked is taken before redis-server binds it, the first
    start picks another free port and the server answers there."""
    picks = iter([taken_port])
    free_port = testbed_redis.free_port
    monkeypatch.setattr(testbed_redis, "free_port", lambda: next(picks, None) or free_port())
    with RedisServer() as server:
        assert server.port != taken_port
        assert server.ping()


def test_a_given_port_that_is_taken_fails_the_start(taken_port: int) -> None:
    """A port the caller chose is never swapped for another: the start fails."""
    server = RedisServer(port=taken_port)
    try:
        with pytest.raises(RuntimeError, match="exited"):
            server.start()
    finally:
        server.cleanup()
