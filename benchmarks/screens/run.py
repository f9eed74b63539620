"""The screens under load: one ``ivr serve`` pushing to 200 browsers while 50 calls are in
progress.

    .venv/bin/python -m benchmarks.screens.run [--screens 200] [--wallboards 20] \\
        [--calls 50] [--seconds 30] [--json result.json]

What runs (nothing is mocked on the server's side):

- a throw-away ``redis-server`` (testbed.redis) and one real ``ivr serve`` (testbed.service)
  on free ports, with the shipped config and one agent per desk (``benchmarks/screens/
  world.py``); no Asterisk: the ARI URL points nowhere, no call reaches the FastAGI port;
- the calls: this process plays the instance that owns them and writes what the call flows
  write, through the same code (``LiveRouter`` enqueue / poll / ring_result / completed,
  ``WorkOrderStore`` create and update): ENTERQUEUE, CONNECT, COMPLETECALLER, the work
  orders' events, agents pausing and resuming; the service's own dispatcher offers the calls
  to agents and its sweep ends their wrap-up. ``--calls`` stay in progress (talking 10-40 s);
- the browsers: ``--screens`` simulated browsers (``browsers.py``) in two other processes,
  each signed in with its own token (``POST /screens/login``, the session cookie) and reading
  its screen's Server-Sent Events over real HTTP: ``--wallboards`` wallboards (supervisors of
  the six teams and ops), the rest agents' desks.

Measured, after a warm-up: the update latency from event to browser (``browsers.py``: from
the entry's id, the Redis clock in ms, to the frame's arrival), p50/p95/p99 over every
(browser, event) pair; the service's CPU time (``/proc``, the process and its children) over
``--seconds`` with the calls running and no screen, then with every screen connected: the
difference divided by the screens is the CPU cost of a connected screen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from benchmarks.screens.browsers import Browser, login
from benchmarks.screens.world import CallTraffic, Viewer, viewers, write_agents
from testbed.redis import RedisServer, free_port
from testbed.service import REPO, HotlineService, config_copy
from testbed.stack import TESTBED_MASTER_KEY

TEAMS = 6
CONNECT_S = 180.0  # every browser signed in and connected within this
SETTLE_S = 5.0  # from the last browser connected to the measured window
QUEUES = ("billing", "changes", "faults", "complaints", "general")


# --- the browsers' processes ----------------------------------------------------------------

def browse(host: str, port: int, jobs: list[tuple[str, str]], measure_from: Any, stop: Any,
           out: Any) -> None:
    """A browser process: sign in and watch each ``(path, token)`` until ``stop`` is set;
    puts ``("connected", n)`` once all its streams are open, then ``("done", figures)``.
    ``measure_from``: a shared value, the time from which events count (set by the parent
    once every browser is connected)."""

    async def run() -> list[dict[str, Any]]:
        cookies = [await login(host, port, token) for _path, token in jobs]
        browsers = [Browser(host, port, path, cookie) for (path, _t), cookie in zip(
            jobs, cookies, strict=True)]
        tasks = [asyncio.ensure_future(b.watch(stop.is_set)) for b in browsers]
        await asyncio.gather(*(b.connected.wait() for b in browsers))
        out.put(("connected", len(browsers)))
        while measure_from.value == 0.0:
            await asyncio.sleep(0.1)
        for browser in browsers:
            browser.latencies.measure_from_ms = int(measure_from.value * 1000)
        await asyncio.gather(*tasks)
        return [{"path": b.path, "activity": b.latencies.activity,
                 "update": b.latencies.update, "frames": b.latencies.frames,
                 "bytes": b.latencies.bytes, "retries": b.retries} for b in browsers]

    try:
        out.put(("done", asyncio.run(run())))
    except Exception as exc:  # reported to the parent, which fails the run
        out.put(("error", repr(exc)))


# --- CPU ------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its live descendants (``/proc``)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        stats[int(entry.name)] = fields
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        fields = stats.get(current)
        if fields is not None:
            total += (int(fields[11]) + int(fields[12])) / tick
        todo += children.get(current, [])
    return total


# --- the run --------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def bench(service: HotlineService, config_dir: Path, args: argparse.Namespace
                ) -> dict[str, Any]:
    from access.tokens import TokenStore
    from hotline.keys import read_service_keys
    from ivr.config import load_config
    from routing.live import LiveRouter
    from workorders.store import WorkOrderStore

    env = {**service.env, "HOTLINE__SPOOL_DIR": tempfile.mkdtemp(prefix="bench-driver-")}
    os.environ["HOTLINE_MASTER_KEY"] = env["HOTLINE_MASTER_KEY"]
    cfg = load_config(config_dir, environ=env)
    prefix = cfg.service.redis.key_prefix
    redis = aioredis.Redis.from_url(cfg.service.redis.url, socket_timeout=10)
    keys = await read_service_keys(redis, cfg)
    tokens = TokenStore(redis, keys.token_key, prefix=prefix)
    everyone: list[Viewer] = viewers(args.screens, args.wallboards, TEAMS)
    jobs = []
    for viewer in everyone:
        team = viewer.team if viewer.role == "supervisor" else None
        token, _info = await tokens.create(viewer.user, viewer.role, team,
                                           expires_s=86400, now=time.time())
        jobs.append((viewer.path, token))

    router = LiveRouter(redis, lambda: cfg.routing, instance="bench-calls", prefix=prefix)
    orders = WorkOrderStore.from_config(redis, cfg.workorders, spool_dir=env["HOTLINE__SPOOL_DIR"],
                                        cipher=keys.cipher, prefix=prefix)
    pid = service.process.pid if service.process else 0
    traffic = CallTraffic(router, orders, args.calls, talk_s=(10.0, 40.0),
                          agents=args.screens - args.wallboards)
    running = asyncio.ensure_future(traffic.run())
    await asyncio.sleep(args.warmup)
    cpu0, t0 = cpu_seconds(pid), time.time()
    in_progress = await _in_progress(redis, prefix)
    await asyncio.sleep(args.seconds)
    cpu_quiet = (cpu_seconds(pid) - cpu0) / (time.time() - t0)

    load_before = os.getloadavg()[0]
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    stop = context.Event()
    measure_from = context.Value("d", 0.0)
    halves = [jobs[0::2], jobs[1::2]]
    processes = [context.Process(target=browse, args=(
        "127.0.0.1", service.http_port, half, measure_from, stop, out)) for half in halves]
    for process in processes:
        process.start()
    connected, connecting_from = 0, time.time()
    while connected < len(jobs):
        kind, value = await asyncio.to_thread(out.get, True, CONNECT_S)
        if kind != "connected":
            raise RuntimeError(f"a browser process failed: {value}")
        connected += value
    connect_s = time.time() - connecting_from
    await asyncio.sleep(SETTLE_S)
    measure_from.value = time.time()
    cpu1, t1 = cpu_seconds(pid), time.time()
    browsers_cpu1 = sum(cpu_seconds(p.pid or 0) for p in processes)
    in_progress_screens = await _in_progress(redis, prefix)
    await asyncio.sleep(args.seconds)
    cpu_screens = (cpu_seconds(pid) - cpu1) / (time.time() - t1)
    browsers_cpu = (sum(cpu_seconds(p.pid or 0) for p in processes) - browsers_cpu1) / (
        time.time() - t1)
    written = len(await redis.xrange(f"{prefix}events", min=f"{int(t1 * 1000)}-0",
                                     max=f"{int(time.time() * 1000)}-0"))
    stop.set()
    results: list[dict[str, Any]] = []
    for _ in processes:
        kind, value = await asyncio.to_thread(out.get, True, 60)
        if kind != "done":
            raise RuntimeError(f"a browser process failed: {value}")
        results += value
    for process in processes:
        process.join(10)
    traffic.stopping = True
    await running
    await redis.aclose()
    watched = time.time() - connecting_from - connect_s

    activity = [x for r in results for x in r["activity"]]
    update = [x for r in results for x in r["update"]]
    ms = 1000.0
    return {
        "screens": len(jobs), "wallboards": args.wallboards, "desks": len(jobs) - args.wallboards,
        "calls_in_progress": {"quiet": in_progress, "with_screens": in_progress_screens},
        "calls_started": traffic.started, "calls_answered": traffic.answered,
        "seconds": args.seconds, "events_per_s": round(written / args.seconds, 1),
        "update_latency_ms": _summary(update, ms),
        "activity_latency_ms": _summary(activity, ms),
        "cpu_service_no_screens": round(cpu_quiet, 3),
        "cpu_service_with_screens": round(cpu_screens, 3),
        "cpu_ms_per_s_per_screen": round((cpu_screens - cpu_quiet) * ms / len(jobs), 3),
        "cpu_browsers": round(browsers_cpu, 3),  # the simulated browsers, on the same host
        "cpus": os.cpu_count(),
        # the host's 1-minute load average before the browsers and after the window: the
        # figures of a shared machine read against it
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "connect_all_s": round(connect_s, 1),
        "streams_refused_then_retried": sum(r["retries"] for r in results),
        "frames_per_s_per_screen": round(
            statistics.mean(r["frames"] for r in results) / watched, 2),
        "kbytes_per_s_per_screen": round(
            statistics.mean(r["bytes"] for r in results) / 1024 / watched, 2),
    }


def _summary(values: list[float], scale: float) -> dict[str, Any]:
    def at(p: float) -> float | None:
        value = percentile(values, p)
        return None if value is None else round(value * scale, 1)

    return {"n": len(values), "p50": at(50), "p95": at(95), "p99": at(99),
            "max": round(max(values) * scale, 1) if values else None}


async def _in_progress(redis: aioredis.Redis, prefix: str) -> int:
    """Calls waiting, ringing or connected (the routing call hashes not done)."""
    count = 0
    async for key in redis.scan_iter(match=f"{prefix}{{rt}}:call:*", count=1000):
        if (await redis.hget(key, "status")) in (b"waiting", b"offered", b"connected"):
            count += 1
    return count


def start_service(work: Path, args: argparse.Namespace) -> tuple[HotlineService, Path]:
    overrides = {
        "queues.yaml": {"queues": {q: {"wrapup_s": 5, "announcements": {"period_s": 600}}
                                   for q in QUEUES}},
        "menus.yaml": {"survey": {"enabled": False}},
    }
    config_dir = config_copy(overrides)
    write_agents(config_dir, args.screens - args.wallboards, TEAMS)
    sounds = Path(tempfile.gettempdir()) / "hotline-bench-screens-sounds"  # kept: built once
    sounds.mkdir(exist_ok=True)
    env = {
        "HOTLINE__REDIS__URL": args.redis_url,
        "HOTLINE_MASTER_KEY": TESTBED_MASTER_KEY,
        "HOTLINE__SPOOL_DIR": str(work / "spool"),
        "HOTLINE__ASTERISK__SOUNDS_DIR": str(sounds),
        "HOTLINE__ARI__URL": f"http://127.0.0.1:{free_port()}",  # no Asterisk
        "HOTLINE_ARI_PASSWORD": "none",
        "HOTLINE__AUDIOSOCKET__PORT": str(free_port()),
        # this checkout's code, not wherever the venv's editable install points
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH"))
                                      if p),
    }
    service = HotlineService(env, config_dir=config_dir, agi_port=free_port(),
                             http_port=free_port(), instance="bench-screens",
                             log_path=work / "ivr-serve.log")
    return service.start(), config_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screens", type=int, default=200)
    parser.add_argument("--wallboards", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0, help="each measured window")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if not 0 < args.wallboards < args.screens:
        parser.error("--wallboards must be between 1 and --screens - 1")
    work = Path(tempfile.mkdtemp(prefix="bench-screens-"))
    server = RedisServer().start()
    args.redis_url = server.url
    service = None
    try:
        service, config_dir = start_service(work, args)
        figures = asyncio.run(bench(service, config_dir, args))
    finally:
        if service is not None:
            service.stop()
        server.stop()
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(summary(figures) + f"; service log: {work / 'ivr-serve.log'}", file=sys.stderr)
    return 0


def summary(figures: dict[str, Any]) -> str:
    """The run in one line: the latency against its target, the cost of a screen, the load."""
    update = figures["update_latency_ms"]
    p99 = update["p99"]
    verdict = "met" if p99 is not None and p99 <= 500 else "missed"
    return (f"update latency p50 {update['p50']} / p95 {update['p95']} / p99 {p99} ms "
            f"(target p99 <= 500 ms: {verdict}); "
            f"{figures['cpu_ms_per_s_per_screen']} ms CPU per second per screen, "
            f"{figures['frames_per_s_per_screen']} frames and "
            f"{figures['kbytes_per_s_per_screen']} kB per second per screen; "
            f"load average {figures['load_average'][0]} -> {figures['load_average'][1]} "
            f"on {figures['cpus']} CPUs")


if __name__ == "__main__":
    sys.exit(main())
