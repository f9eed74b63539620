"""FastAGI load generator: many simulated Asterisk channels against one AGI server on loopback.

Each of `procs` worker processes runs an asyncio loop holding its share of `concurrency`
sessions open back to back (closed loop: when the server ends a session, that caller slot dials
again). A session connects, sends Asterisk's header block and answers every command through a
`fake_asterisk.Channel`, until the server closes the connection.

Measured inside the window [start + warmup, start + warmup + duration]:
- turnaround: from the moment a reply (or the header block) is written to the moment the next
  command line arrives: the server's reaction time as Asterisk sees it;
- session time: from dialing to the server's close;
- the server's CPU time from /proc/PID/stat (its own plus that of reaped and live children, so a
  forking server is charged for its forks) and its memory (VmHWM, and the PSS of its process
  tree sampled in the window);
- the generator's own CPU time, to show it was not the limit.

`think_ms` > 0 paces the calls: every STREAM FILE and GET DATA reply is held back a random
0.5-1.5 x think_ms, as Asterisk holds it while a prompt plays and the caller presses keys. The
turnaround clock starts when the reply is sent, so pacing never counts as server latency.

Loopback only: the generator refuses any other address.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import resource
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.agi.fake_asterisk import Caller, Channel
from benchmarks.agi.flow import SCRIPT

HOST = "127.0.0.1"
MAX_COMMANDS = 64
"""A session sending more commands than this is a runaway server (ignoring the hang-up)."""

CALLER_NAMES = ("Jane Caller", 'Kim "JJ" Lee', "O'Brien \\ Sons", "Park Min-ji", "${EVIL}")


@dataclass(frozen=True)
class LoadSpec:
    """One load run: where, how many callers at once, for how long, how paced."""

    port: int
    concurrency: int
    duration: float = 10.0
    warmup: float = 2.0
    procs: int = 2
    think_ms: float = 0.0
    hangup_share: float = 0.05
    session_timeout: float = 15.0
    ramp: float = 1.0
    seed: int = 1


@dataclass
class _Counts:
    """One worker's tallies, all restricted to the measurement window unless noted."""

    sessions: int = 0
    sessions_hung_up: int = 0
    session_commands: int = 0
    commands: int = 0
    connect_failures: int = 0
    resets: int = 0
    resets_after_hangup: int = 0
    stalled: int = 0
    runaway: int = 0
    unknown_commands: int = 0
    peak_open: int = 0
    open_at_window_start: int = 0
    open_at_window_end: int = 0
    cpu_s: float = 0.0


class _AsteriskConnection(asyncio.Protocol):
    """One FastAGI session from the Asterisk side.

    States: dialing (before connection_made) -> talking (answering commands) -> over
    (connection_lost). `_sent_ns` is nonzero while we wait for the server's next command.
    """

    __slots__ = (
        "_buffer",
        "_channel",
        "_dialed_ns",
        "_driver",
        "_header",
        "_sent_ns",
        "closed_by_server",
        "ended_by_us",
        "last_activity",
        "transport",
    )

    def __init__(self, driver: _Driver, channel: Channel, header: bytes, dialed_ns: int) -> None:
        self._driver = driver
        self._channel = channel
        self._header = header
        self._buffer = b""
        self._dialed_ns = dialed_ns
        self._sent_ns = 0
        self.closed_by_server = False
        self.ended_by_us = False
        self.last_activity = time.monotonic()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self._header)  # type: ignore[attr-defined]
        self._sent_ns = time.monotonic_ns()

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        buffer = self._buffer + data if self._buffer else data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            self._command(buffer[start:end], now)
            start = end + 1
        self._buffer = buffer[start:]

    def _command(self, line: bytes, now: int) -> None:
        driver = self._driver
        if self._sent_ns:
            driver.turnaround(now, now - self._sent_ns)
            self._sent_ns = 0
        channel = self._channel
        reply = channel.reply(line.decode("utf-8", "replace").rstrip("\r"))
        if reply.startswith(b"510"):
            driver.counts.unknown_commands += 1
        if channel.commands > MAX_COMMANDS:
            driver.counts.runaway += 1
            self.abort()
            return
        think = driver.think_s
        if think and channel.media:
            driver.loop.call_later(think * (0.5 + driver.rng.random()), self._send, reply)
        else:
            self._send(reply)

    def _send(self, reply: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(reply)
        self._sent_ns = time.monotonic_ns()
        self.last_activity = time.monotonic()

    def eof_received(self) -> bool:
        self.closed_by_server = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ConnectionResetError) and self._channel.hung_up:
            # A server that stops reading after the hang-up closes with our last reply unread,
            # and the kernel turns that close into a reset: the call still ended normally.
            self.closed_by_server = True
            self._driver.counts.resets_after_hangup += 1
        self._driver.over(self, time.monotonic_ns() - self._dialed_ns, self._channel.hung_up)

    @property
    def commands(self) -> int:
        return self._channel.commands

    def abort(self) -> None:
        """End the session from our side (stalled, runaway or end of run)."""
        self.ended_by_us = True
        if self.transport is not None:
            self.transport.abort()


class _Driver:
    """One worker's share of the callers: `share` slots, each dialing again when its call ends."""

    def __init__(self, spec: LoadSpec, share: int, worker: int, start: float) -> None:
        self.spec = spec
        self.share = share
        self.worker = worker
        self.loop = asyncio.get_running_loop()
        self.rng = random.Random(spec.seed * 1000 + worker)
        self.think_s = spec.think_ms / 1000.0
        self.start = start
        self.window_start = start + spec.warmup
        self.window_end = self.window_start + spec.duration
        self._window_start_ns = int(self.window_start * 1e9)
        self._window_end_ns = int(self.window_end * 1e9)
        self.counts = _Counts()
        self.turnarounds = array("q")
        self.session_times = array("q")
        self.open: set[_AsteriskConnection] = set()
        self.dialing = 0
        self.stopping = False
        self.serial = 0

    def turnaround(self, now_ns: int, elapsed_ns: int) -> None:
        if self._window_start_ns <= now_ns < self._window_end_ns:
            self.turnarounds.append(elapsed_ns)
            self.counts.commands += 1

    def dial(self) -> None:
        if self.stopping:
            return
        self.serial += 1
        rng = self.rng
        channel = Channel(Caller.draw(rng, self.spec.hangup_share), rng)
        uniqueid = f"{1764300000 + self.worker}.{self.serial}"
        header = Channel.header(
            self.spec.port,
            uniqueid,
            f"02{rng.randrange(10**7, 10**8)}",
            CALLER_NAMES[self.serial % len(CALLER_NAMES)],
            SCRIPT,
        )
        self.dialing += 1
        dialed_ns = time.monotonic_ns()
        task = self.loop.create_task(
            self.loop.create_connection(
                lambda: _AsteriskConnection(self, channel, header, dialed_ns), HOST, self.spec.port
            )
        )
        task.add_done_callback(self._dialed)

    def _dialed(self, task: asyncio.Task[Any]) -> None:
        self.dialing -= 1
        if task.cancelled() or task.exception() is not None:
            if self._in_window(time.monotonic()):
                self.counts.connect_failures += 1
            if not self.stopping:
                self.loop.call_later(0.05, self.dial)
            return
        _transport, connection = task.result()
        self.open.add(connection)
        self.counts.peak_open = max(self.counts.peak_open, len(self.open))

    def over(self, connection: _AsteriskConnection, elapsed_ns: int, hung_up: bool) -> None:
        self.open.discard(connection)
        now = time.monotonic()
        if self._in_window(now):
            if connection.closed_by_server:
                self.counts.sessions += 1
                self.counts.sessions_hung_up += hung_up
                self.counts.session_commands += connection.commands
                self.session_times.append(elapsed_ns)
            elif not connection.ended_by_us:
                self.counts.resets += 1
        self.dial()

    def _in_window(self, now: float) -> bool:
        return self.window_start <= now < self.window_end

    async def run(self) -> dict[str, Any]:
        loop = self.loop
        await asyncio.sleep(max(0.0, self.start - time.monotonic()))
        for slot in range(self.share):
            loop.call_later(self.spec.ramp * slot / self.share, self.dial)
        sweeper = loop.create_task(self._sweep())
        await asyncio.sleep(max(0.0, self.window_start - time.monotonic()))
        self.counts.open_at_window_start = len(self.open)
        cpu_start = _own_cpu()
        await asyncio.sleep(max(0.0, self.window_end - time.monotonic()))
        self.counts.cpu_s = _own_cpu() - cpu_start
        self.counts.open_at_window_end = len(self.open)
        self.stopping = True
        sweeper.cancel()
        for connection in list(self.open):
            connection.abort()
        deadline = time.monotonic() + 2.0
        while (self.open or self.dialing) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return {
            "counts": asdict(self.counts),
            "turnarounds": self.turnarounds.tobytes(),
            "session_times": self.session_times.tobytes(),
        }

    async def _sweep(self) -> None:
        """Abort sessions the server left waiting longer than the session timeout."""
        while True:
            await asyncio.sleep(1.0)
            limit = time.monotonic() - self.spec.session_timeout
            for connection in [c for c in self.open if c.last_activity < limit]:
                if self._in_window(time.monotonic()):
                    self.counts.stalled += 1
                connection.abort()


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker(spec: LoadSpec, share: int, worker: int, start: float, conn: Any) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    async def main() -> dict[str, Any]:
        return await _Driver(spec, share, worker, start).run()

    conn.send(asyncio.run(main()))
    conn.close()


# --- the server under test, seen through /proc -------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _stat_cpu(pid: int, with_reaped: bool) -> tuple[float, float]:
    """(user, system) seconds of one process, with its reaped children's if asked."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    user, system = int(fields[11]), int(fields[12])
    if with_reaped:
        user += int(fields[13])
        system += int(fields[14])
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def server_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the server: itself, its reaped and its live children."""
    user, system = _stat_cpu(pid, True)
    for child in _children(pid):
        child_user, child_system = _stat_cpu(child, False)
        user += child_user
        system += child_system
    return user, system


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def server_memory(pid: int) -> dict[str, float]:
    """Peak RSS of the server process, and the RSS and PSS of its whole tree right now (MB)."""
    tree = [pid, *_children(pid)]
    return {
        "vmhwm_mb": _status_kb(pid, "VmHWM:") / 1024,
        "tree_rss_mb": sum(_status_kb(p, "VmRSS:") for p in tree) / 1024,
        "tree_pss_mb": sum(_pss_kb(p) for p in tree) / 1024,
        "processes": len(tree),
    }


def machine_busy() -> float:
    """CPU seconds all processes on the machine have used (every core), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / CLOCK_TICKS


def _percentile(ordered: list[int], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000.0


def run_load(spec: LoadSpec, server_pid: int | None = None) -> dict[str, Any]:
    """Drive one load run and return its figures (times in microseconds unless named _ms)."""
    if spec.concurrency < 1 or spec.procs < 1:
        raise ValueError("concurrency and procs must be at least 1")
    context = multiprocessing.get_context("fork")
    procs = min(spec.procs, spec.concurrency)
    start = time.monotonic() + 0.3
    window_start = start + spec.warmup
    window_end = window_start + spec.duration
    workers = []
    for worker in range(procs):
        share = spec.concurrency // procs + (worker < spec.concurrency % procs)
        parent_end, child_end = context.Pipe(duplex=False)
        process = context.Process(
            target=_worker, args=(spec, share, worker, start, child_end), daemon=True
        )
        process.start()
        child_end.close()
        workers.append((process, parent_end))

    def sleep_until(moment: float) -> None:
        time.sleep(max(0.0, moment - time.monotonic()))

    sleep_until(window_start)
    cpu_start = server_cpu(server_pid) if server_pid else (0.0, 0.0)
    busy_start = machine_busy()
    sleep_until(window_start + spec.duration / 2)
    memory_mid = server_memory(server_pid) if server_pid else {}
    sleep_until(window_end)
    cpu_end = server_cpu(server_pid) if server_pid else (0.0, 0.0)
    busy = machine_busy() - busy_start
    memory_end = server_memory(server_pid) if server_pid else {}
    load_average = os.getloadavg()

    results = []
    for process, parent_end in workers:
        if parent_end.poll(spec.session_timeout + 10):
            results.append(parent_end.recv())
        process.join(5)
        if process.is_alive():
            process.kill()
    user, system = cpu_end[0] - cpu_start[0], cpu_end[1] - cpu_start[1]
    figures = summarize(spec, results, user + system, [memory_mid, memory_end], load_average)
    figures["server_cpu_user_share"] = user / (user + system) if user + system else None
    # What the rest of the machine (other jobs) took from the 2 cores during the window.
    figures["others_cpu_share"] = max(
        0.0, busy / spec.duration - figures["server_cpu_share"] - figures["generator_cpu_share"]
    )
    figures["cores"] = os.cpu_count()
    return figures


def summarize(
    spec: LoadSpec,
    results: list[dict[str, Any]],
    server_cpu_s: float,
    memory: list[dict[str, float]],
    load_average: tuple[float, ...],
) -> dict[str, Any]:
    """Merge the workers' tallies into the run's figures."""
    counts: dict[str, float] = {}
    turnarounds: list[int] = []
    session_times: list[int] = []
    for result in results:
        for key, value in result["counts"].items():
            counts[key] = counts.get(key, 0) + value
        turnarounds.extend(array("q", result["turnarounds"]))
        session_times.extend(array("q", result["session_times"]))
    turnarounds.sort()
    session_times.sort()
    sessions = int(counts.get("sessions", 0))
    commands = counts.get("commands", 0)
    duration = spec.duration
    # Sessions can outlast the window, so sessions completed in it are a lumpy count; commands
    # are spread over each session's life. Cost per session is therefore cost per command times
    # the commands of an average completed session.
    per_session = counts.get("session_commands", 0) / sessions if sessions else 0.0
    cpu_per_session = server_cpu_s / commands * per_session if commands and per_session else None
    figures: dict[str, Any] = {
        "spec": asdict(spec),
        "workers_reported": len(results),
        "sessions_per_s": sessions / duration,
        "commands_per_s": commands / duration,
        "commands_per_session": per_session,
        "turnaround_us": {
            "p50": _percentile(turnarounds, 0.50),
            "p90": _percentile(turnarounds, 0.90),
            "p99": _percentile(turnarounds, 0.99),
            "p999": _percentile(turnarounds, 0.999),
            "max": _percentile(turnarounds, 1.0),
        },
        "session_ms": {
            "p50": _percentile(session_times, 0.50) / 1000,
            "p99": _percentile(session_times, 0.99) / 1000,
        },
        "server_cpu_s": server_cpu_s,
        "server_cpu_us_per_session": cpu_per_session * 1e6 if cpu_per_session else None,
        "server_sessions_per_core_s": 1 / cpu_per_session if cpu_per_session else None,
        "server_cpu_share": server_cpu_s / duration,
        "generator_cpu_share": counts.get("cpu_s", 0.0) / duration,
        "memory": {
            "vmhwm_mb": max((m.get("vmhwm_mb", 0) for m in memory), default=0),
            "tree_rss_mb": max((m.get("tree_rss_mb", 0) for m in memory), default=0),
            "tree_pss_mb": max((m.get("tree_pss_mb", 0) for m in memory), default=0),
            "processes": max((m.get("processes", 0) for m in memory), default=0),
        },
        "load_average": list(load_average),
    }
    for key in (
        "sessions_hung_up",
        "connect_failures",
        "resets",
        "resets_after_hangup",
        "stalled",
        "runaway",
        "unknown_commands",
        "peak_open",
        "open_at_window_start",
        "open_at_window_end",
    ):
        figures[key] = int(counts.get(key, 0))
    return figures


def main(argv: list[str] | None = None) -> None:
    """`python -m benchmarks.agi.loadgen --port P --concurrency N [--pid SERVER_PID]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--think-ms", type=float, default=0.0)
    parser.add_argument("--hangup-share", type=float, default=0.05)
    parser.add_argument("--pid", type=int, help="server process to measure in /proc")
    args = parser.parse_args(argv)
    spec = LoadSpec(
        port=args.port,
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=args.warmup,
        procs=args.procs,
        think_ms=args.think_ms,
        hangup_share=args.hangup_share,
    )
    with contextlib.suppress(BrokenPipeError):
        print(json.dumps(run_load(spec, args.pid), indent=2))


if __name__ == "__main__":
    main()
