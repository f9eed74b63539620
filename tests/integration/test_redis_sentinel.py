"""The ``sentinel`` form of ``service.yaml``'s ``redis`` section against real processes: a
redis-server master (and a replica) watched by a real Redis Sentinel (``redis-server
--sentinel``) on free loopback ports. The clients ``hotline.redisclient`` builds find the
master through the sentinel, and follow it when the sentinel promotes the replica."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

import testbed.redis as testbed_redis
from hotline.redisclient import async_redis, sync_redis
from ivr.config import RedisSettings
from ivr.testing import on_asyncio
from testbed.processes import stop_process
from testbed.redis import RedisServer, free_port

MASTER_NAME = "hotline-master"


class SentinelProcess:
    """One Redis Sentinel watching ``master_port`` on 127.0.0.1 (quorum 1: it alone decides),
    quick to declare the master down so a failover test takes seconds, not minutes."""

    def __init__(self, master_port: int) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-sentinel-"))
        self.conf = self.dir / "sentinel.conf"  # Sentinel rewrites it: it must be writable
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
            f"sentinel failover-timeout {MASTER_NAME} 5000\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> SentinelProcess:
        binary = shutil.which("redis-sentinel")
        command = [binary, str(self.conf)] if binary else [
            shutil.which("redis-server") or "redis-server", str(self.conf), "--sentinel"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        watcher = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"sentinel exited with {self.process.returncode}")
                try:
                    if watcher.sentinel_get_master_addr_by_name(MASTER_NAME):
                        return self
                except redis_errors.RedisError:
                    pass
                time.sleep(0.05)
        finally:
            watcher.close()
        raise RuntimeError(f"sentinel on port {self.port} did not answer in {timeout} s")

    def cleanup(self) -> None:
        stop_process(self.process, 5)
        shutil.rmtree(self.dir, ignore_errors=True)

    def settings(self) -> RedisSettings:
        """The ``redis`` section ops would write for this deployment."""
        return RedisSettings.model_validate({"sentinel": {
            "master": MASTER_NAME, "hosts": [f"127.0.0.1:{self.port}"], "db": 0}})


@pytest.fixture(autouse=True)
def config_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The servers read a copy of ``deploy/redis.conf``: on a failover Sentinel sends
    ``CONFIG REWRITE``, which would rewrite the shipped file with the test's ports and dirs."""
    copy = tmp_path / "redis.conf"
    shutil.copy(testbed_redis.SHIPPED_CONFIG, copy)
    monkeypatch.setattr(testbed_redis, "SHIPPED_CONFIG", copy)


@pytest.fixture
def master() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def sentinel(master: RedisServer) -> Iterator[SentinelProcess]:
    watcher = SentinelProcess(master.port)
    try:
        yield watcher.start()
    finally:
        watcher.cleanup()


@on_asyncio
async def test_client_reaches_the_master_through_the_sentinel(
    master: RedisServer, sentinel: SentinelProcess
) -> None:
    """The asyncio client built from a ``sentinel`` section writes to and reads from the
    master the sentinel names (the write is on the master itself, not a copy)."""
    client = async_redis(sentinel.settings(), socket_timeout=2.0, socket_connect_timeout=2.0)
    direct = aioredis.Redis.from_url(master.url)
    try:
        await client.hset("hotline:order:1", mapping={"status": "pending"})
        assert await client.hget("hotline:order:1", "status") == b"pending"
        assert await direct.hget("hotline:order:1", "status") == b"pending"
        assert (await client.info("server"))["tcp_port"] == master.port
    finally:
        await client.aclose()
        await direct.aclose()


def test_blocking_client_reaches_the_master_through_the_sentinel(
    master: RedisServer, sentinel: SentinelProcess
) -> None:
    """The blocking client (``ivr report``'s) finds the same master through the sentinel."""
    client = sync_redis(sentinel.settings(), socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        client.xadd("hotline:events", {"event": "ENTERQUEUE"})
        assert client.xlen("hotline:events") == 1
        assert redis.Redis(port=master.port).xlen("hotline:events") == 1
    finally:
        client.close()


@on_asyncio
async def test_client_follows_the_master_the_sentinel_promotes(master: RedisServer) -> None:
    """Master killed (SIGKILL): the sentinel promotes the replica and the same client, with
    no restart, writes to the new master, where what was written before is still there."""
    with RedisServer() as replica:
        setup = redis.Redis(port=replica.port)
        setup.replicaof("127.0.0.1", master.port)
        deadline = time.monotonic() + 20
        while setup.info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline, "the replica never linked to the master"
            await asyncio.sleep(0.05)
        # Started after the replica links, the sentinel sees it in the master's first INFO.
        sentinel = SentinelProcess(master.port).start()
        client = async_redis(sentinel.settings(), socket_timeout=1.0, socket_connect_timeout=1.0)
        try:
            await client.set("hotline:before", "kept")
            while await client.wait(1, 200) < 1:  # the replica has the write
                assert time.monotonic() < deadline, "the replica never caught up"
            while not redis.Redis(port=sentinel.port).sentinel_slaves(MASTER_NAME):
                assert time.monotonic() < deadline, "the sentinel never saw the replica"
                await asyncio.sleep(0.05)
            master.kill()
            deadline = time.monotonic() + 30
            while True:
                try:
                    await client.set("hotline:after", "written")
                    break
                except (redis_errors.ConnectionError, redis_errors.TimeoutError,
                        redis_errors.ReadOnlyError):
                    assert time.monotonic() < deadline, "no master was promoted in 30 s"
                    await asyncio.sleep(0.2)
            assert (await client.info("server"))["tcp_port"] == replica.port
            assert await client.get("hotline:before") == b"kept"
            assert setup.get("hotline:after") == b"written"
        finally:
            await client.aclose()
            setup.close()
            sentinel.cleanup()
