"""The testbed's throw-away redis-server when the port it picked is taken (parallel workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


def _server_left_by_a_killed_starter(outlive_starter: bool) -> tuple[RedisServer, int]:
    """Start a RedisServer in a child Python that is then killed without stopping it."""
    code = ("import os, sys; from testbed.redis import RedisServer; "
            f"s = RedisServer(outlive_starter={outlive_starter}).start(); "
            "print(s.port, s.process.pid, flush=True); os.kill(os.getpid(), 9)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    port, pid = (int(word) for word in done.stdout.split())
    return RedisServer(port=port), pid


def test_a_server_goes_when_the_run_that_started_it_is_killed() -> None:
    """A test run killed mid-way (a timeout, ^C) leaves no redis-server behind: before,
    killed runs had left Redis Cluster nodes running for days."""
    server, _ = _server_left_by_a_killed_starter(outlive_starter=False)
    deadline = time.monotonic() + 10
    while server.ping() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server.ping()


def test_a_detached_server_outlives_its_starter() -> None:
    """The demo stack's Redis (``python -m testbed up``) must outlive the command."""
    server, pid = _server_left_by_a_killed_starter(outlive_starter=True)
    try:
        time.sleep(0.5)
        assert server.ping()
    finally:
        os.kill(pid, signal.SIGKILL)
