"""A throw-away redis-server on a free loopback port, configured by the shipped
``deploy/redis.conf`` (AOF, fsync every second)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from testbed.processes import stop_process

#: The Redis configuration that ships (compose.yaml mounts it); the testbed runs it too.
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "redis.conf"


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
    (``DEBUG SLEEP``: a Redis that is slow rather than down).
    """

    def __init__(
        self, port: int | None = None, binary: str = "redis-server", debug_commands: bool = False
    ) -> None:
        self.port = port or free_port()
        # A port we picked may be taken before redis-server binds it (parallel test workers):
        # the first start then moves to another one. A port given, or a restart, never moves.
        self._may_move = port is None
        self.binary = shutil.which(binary) or binary
        self.dir = Path(tempfile.mkdtemp(prefix="hotline-redis-"))
        self.debug_commands = debug_commands
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
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
