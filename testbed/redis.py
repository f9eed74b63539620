"""A throw-away redis-server on a free loopback port, configured by the shipped
``deploy/redis.conf`` (AOF, fsync every second); and a throw-away 3-master Redis Cluster of
such servers (:class:`RedisCluster`)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import redis
import redis.asyncio as aioredis

from testbed.processes import die_with_parent, stop_process

#: The Redis configuration that ships (compose.yaml mounts it); the testbed runs it too.
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "redis.conf"


def connect(url: str) -> aioredis.Redis:
    """An asyncio client of ``url`` whose commands and connects give up after 2 s, so a test
    against a stopped or paused server fails instead of hanging."""
    return aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _ExitedEarly(RuntimeError):
    """redis-server exited while starting (on a taken port, for one)."""


class RedisServer:
    """One redis-server process with its data in a temporary directory.

    It reads ``deploy/redis.conf`` (``appendonly`` on with ``everysec``, what production
    uses), so a restart of the same instance keeps its data: tests of "Redis went away and
    came back" use ``restart()``, or ``kill()`` (SIGKILL, a crash) then ``start()``, on the
    same port and data directory. ``debug_commands`` allows ``DEBUG`` from the loopback
    (``DEBUG SLEEP``: a Redis that is slow rather than down). It stops when its starter
    does (``die_with_parent``), unless ``outlive_starter`` (a detached demo stack).
    """

    def __init__(
        self, port: int | None = None, binary: str = "redis-server", debug_commands: bool = False,
        extra_args: Sequence[str] = (), outlive_starter: bool = False,
    ) -> None:
        self.port = port or free_port()
        self.outlive_starter = outlive_starter
        # A port we picked may be taken before redis-server binds it (parallel test workers):
        # the first start then moves to another one. A port given, or a restart, never moves.
        self._may_move = port is None
        self.binary = shutil.which(binary) or binary
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-redis-"))
        self.debug_commands = debug_commands
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        for _ in range(2):
            try:
                return self._start(timeout)
            except _ExitedEarly:
                if not self._may_move:
                    raise
                self.port = free_port()
        return self._start(timeout)

    def _start(self, timeout: float) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary, str(SHIPPED_CONFIG), "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--save", "", "--daemonize", "no",
                "--loglevel", "warning",
                *(["--enable-debug-command", "local"] if self.debug_commands else []),
                *self.extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=None if self.outlive_starter else die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise _ExitedEarly(f"redis-server exited with {self.process.returncode}")
            if self.ping():
                self._may_move = False
                return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer in {timeout} s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        stop_process(self.process, 5)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: redis-server dies as in a crash, without writing anything more. ``start()``
        brings it back on the same port with the same data directory (it reloads the AOF)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def persist(self, timeout: float = 10.0) -> None:
        """Everything written so far on disk (an AOF rewrite from memory, waited for): state
        set up long before a test's fault, which ``appendfsync everysec`` may otherwise still
        hold in memory when ``kill()`` comes (it puts off writing while an fsync is slow)."""
        with redis.Redis(port=self.port, socket_timeout=timeout) as client:
            client.bgrewriteaof()
            deadline = time.monotonic() + timeout
            while True:
                info = client.info("persistence")
                if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
                    if info["aof_last_bgrewrite_status"] != "ok":
                        raise RuntimeError(f"AOF rewrite failed on port {self.port}")
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"AOF rewrite not done in {timeout} s on port {self.port}")
                time.sleep(0.01)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


class RedisCluster:
    """A Redis Cluster of ``size`` masters (no replicas) on free loopback ports, each a
    :class:`RedisServer` with ``deploy/redis.conf`` (AOF) plus ``cluster-enabled``, joined by
    ``redis-cli --cluster create`` and ready once every node says ``cluster_state:ok``.

    Each node's cluster bus gets its own free port (``cluster-port``) rather than the
    default port + 10000, which may be taken or past 65535 for a random port.
    """

    def __init__(self, size: int = 3, cli: str = "redis-cli") -> None:
        if size < 3:
            raise ValueError("redis-cli --cluster create wants at least 3 masters")
        self.cli = shutil.which(cli) or cli
        self.servers = [
            RedisServer(extra_args=[
                "--cluster-enabled", "yes", "--cluster-port", str(free_port()),
                "--cluster-node-timeout", "5000",
            ])
            for _ in range(size)
        ]

    @property
    def nodes(self) -> list[str]:
        """Every master as ``host:port``, the form ``service.yaml``'s ``redis.cluster.nodes``
        takes."""
        return [f"127.0.0.1:{server.port}" for server in self.servers]

    @property
    def url(self) -> str:
        """One node's URL: a cluster client started from it discovers the others."""
        return f"redis://127.0.0.1:{self.servers[0].port}"

    def start(self, timeout: float = 30.0) -> RedisCluster:
        try:
            for server in self.servers:
                server.start()
            subprocess.run(
                [self.cli, "--cluster", "create", *self.nodes, "--cluster-replicas", "0",
                 "--cluster-yes"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
            )
            self._wait_ok(timeout)
        except BaseException:
            self.cleanup()
            raise
        return self

    def _wait_ok(self, timeout: float) -> None:
        """Until every node reports ``cluster_state:ok`` (the slots are all served and the
        nodes agree on who serves them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._state_ok(server) for server in self.servers):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster {self.nodes} not ok after {timeout} s")

    def _state_ok(self, server: RedisServer) -> bool:
        client = redis.Redis(port=server.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.cluster("INFO").get("cluster_state") == "ok")
        except redis.RedisError:
            return False
        finally:
            client.close()

    def cleanup(self) -> None:
        for server in self.servers:
            server.cleanup()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
