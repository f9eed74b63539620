"""Run the FastAGI benchmark: each server, the same load, one table.

    .venv/bin/python -m benchmarks.agi.run [--concurrency 100,500,2000] [--paced 500,2000]
        [--think-ms 500] [--duration 6] [--procs 2] [--servers ours,panoramisk,...]

Two kinds of runs per concurrency level:
- saturated (think 0): every reply goes back at once, so the pair server + generator runs
  flat out on the machine's cores. Sessions/s then depends on how the 2 cores are shared with
  the generator (and anything else running); the server's CPU time per session does not, and
  is the figure servers are compared by (docs/benchmarks-agi.md says why).
- paced (think > 0): STREAM FILE and GET DATA replies are held as a prompt and a caller would
  hold them (a menu call lasts ~6 s at the default 1 s, a real one 20-30 s), so the calls stay
  open and the offered load is a fraction of capacity: this is where turnaround percentiles
  mean server responsiveness and where "N concurrent calls held" is shown.

The first saturated level is run `--repeat` times per server, interleaved, and the run with
the least server CPU per session stands for the case. Each run starts a fresh server process
(so its peak RSS belongs to that run), waits until it listens, drives the load, stops the
server. Results go to var/bench/agi.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.agi.loadgen import LoadSpec, run_load

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Server:
    """A server under test: how to start it, and which runs include it (`every_level`: all
    saturated levels, not only the first; `paced`: the paced runs)."""

    key: str
    label: str
    module: str
    args: tuple[str, ...] = ()
    paced: bool = True
    peer: bool = False
    every_level: bool = True


SERVERS = {
    server.key: server
    for server in (
        Server(
            "ours",
            "ivr.agi (Twisted, asyncio reactor)",
            "benchmarks.agi.serve_ours",
            ("--reactor", "asyncio"),
        ),
        Server(
            "ours-epoll",
            "ivr.agi (Twisted, epoll reactor)",
            "benchmarks.agi.serve_ours",
            ("--reactor", "epoll"),
            paced=False,
        ),
        Server(
            "ours-write-through",
            "ivr.agi, asyncio reactor, experiment: send at once",
            "benchmarks.agi.serve_ours",
            ("--reactor", "asyncio", "--write-through"),
            paced=False,
            every_level=False,
        ),
        Server(
            "panoramisk",
            "panoramisk 1.4 fast_agi (asyncio)",
            "benchmarks.agi.serve_panoramisk",
            peer=True,
        ),
        Server("pyst2", "pyst2 0.5.1 AGI, fork per call", "benchmarks.agi.serve_pyst2", peer=True),
        Server(
            "floor",
            "bare Twisted LineOnlyReceiver (asyncio reactor), reference",
            "benchmarks.agi.serve_twisted_floor",
            ("--reactor", "asyncio"),
            paced=False,
            every_level=False,
        ),
        Server(
            "floor-epoll",
            "bare Twisted LineOnlyReceiver (epoll reactor), reference",
            "benchmarks.agi.serve_twisted_floor",
            ("--reactor", "epoll"),
            paced=False,
            every_level=False,
        ),
    )
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    """True once something listens on 127.0.0.1:port (read from /proc, no probe connection:
    panoramisk's header loop spins forever on a connection closed before its header)."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            return True
    return False


@contextlib.contextmanager
def running(server: Server, port: int, log_path: Path):
    """Start the server in its own process group; stop the whole group afterwards."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", server.module, "--port", str(port), *server.args],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 15
            while not _listening(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{server.key} did not start; see {log_path}")
                time.sleep(0.05)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Forked children (pyst2) may outlive the parent for a moment.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    versions = {}
    for package in ("twisted", "panoramisk", "pyst2"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
    }


def agi_digest() -> str:
    """A digest of ivr/agi's sources: names the exact code measured (it changes while
    being benchmarked; the runner records it at start and end)."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "ivr" / "agi").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:,.{digits}f}"


def representatives(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per (server, concurrency, think): the run with the least CPU per session when a
    case was repeated (other jobs on the cores only ever add to it, so the least disturbed run
    is the best estimate of the server's own cost), with every run's figure attached."""
    groups: dict[tuple[str, int, float], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["server"], run["concurrency"], run["think_ms"]), []).append(run)
    chosen = []
    for group in groups.values():
        ordered = sorted(group, key=lambda r: r["figures"]["server_cpu_us_per_session"] or 0)
        best = dict(ordered[0])
        best["cpu_us_per_session_all"] = [r["figures"]["server_cpu_us_per_session"] for r in group]
        chosen.append(best)
    return chosen


def table(runs: list[dict[str, Any]]) -> str:
    """The comparison as a Markdown table, one row per case, ratios against ours."""
    runs = representatives(runs)
    ours = {(r["concurrency"], r["think_ms"]): r for r in runs if r["server"] == "ours"}
    header = (
        "| server | conc | think ms | sessions/s | cmds/s | p50 ms | p99 ms | "
        "CPU us/session | (each run) | sys % | sessions/s per core | peak RSS MB | "
        "tree PSS MB | errors | peer CPU / ours | ours sessions/s / peer |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for r in runs:
        f = r["figures"]
        mine = ours.get((r["concurrency"], r["think_ms"]))
        cpu_ratio = speed_ratio = None
        if mine is not None and r["server"] != "ours":
            a = mine["figures"]["server_cpu_us_per_session"]
            b = f["server_cpu_us_per_session"]
            cpu_ratio = b / a if a and b else None
            speed_ratio = (
                mine["figures"]["sessions_per_s"] / f["sessions_per_s"]
                if f["sessions_per_s"]
                else None
            )
        errors = f["resets"] + f["stalled"] + f["runaway"] + f["connect_failures"]
        lines.append(
            f"| {r['server']} | {r['concurrency']} | {r['think_ms']:g} "
            f"| {_fmt(f['sessions_per_s'])} | {_fmt(f['commands_per_s'])} "
            f"| {_fmt(f['turnaround_us']['p50'] / 1000, 2)} "
            f"| {_fmt(f['turnaround_us']['p99'] / 1000, 2)} "
            f"| {_fmt(f['server_cpu_us_per_session'])} "
            f"| {' '.join(_fmt(c) for c in r['cpu_us_per_session_all'])} "
            f"| {_fmt(100 * (1 - (f.get('server_cpu_user_share') or 1)))} "
            f"| {_fmt(f['server_sessions_per_core_s'])} "
            f"| {_fmt(f['memory']['vmhwm_mb'], 1)} | {_fmt(f['memory']['tree_pss_mb'], 1)} "
            f"| {errors} | {_fmt(cpu_ratio, 2)} | {_fmt(speed_ratio, 2)} |"
        )
    return "\n".join(lines)


def targets(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's three targets, judged from the runs of `ours`."""
    runs = representatives(runs)
    ours = [r for r in runs if r["server"] == "ours"]
    verdict: dict[str, Any] = {}
    held = [r for r in ours if r["concurrency"] >= 2000]
    if held:
        # A paced run holds calls open for seconds: that is the run that shows them held.
        best = max(held, key=lambda r: (r["think_ms"], r["figures"]["open_at_window_end"]))
        f = best["figures"]
        errors = f["resets"] + f["stalled"] + f["runaway"] + f["connect_failures"]
        verdict["hold_2000"] = {
            "run": f"conc {best['concurrency']}, think {best['think_ms']:g} ms",
            "open_at_window_start": f["open_at_window_start"],
            "open_at_window_end": f["open_at_window_end"],
            "errors": errors,
            "p99_ms": f["turnaround_us"]["p99"] / 1000,
            "met": f["open_at_window_end"] >= 2000 * 0.95 and errors == 0,
        }
    at_500 = [r for r in ours if r["concurrency"] == 500]
    if at_500:
        verdict["p99_at_500"] = [
            {
                "think_ms": r["think_ms"],
                "p99_ms": r["figures"]["turnaround_us"]["p99"] / 1000,
                "met": r["figures"]["turnaround_us"]["p99"] <= 10_000,
            }
            for r in at_500
        ]
    comparisons = []
    for mine in (r for r in ours if r["think_ms"] == 0):
        peers = [
            r
            for r in runs
            if SERVERS[r["server"]].peer
            and r["concurrency"] == mine["concurrency"]
            and r["think_ms"] == 0
            and r["figures"]["server_cpu_us_per_session"]
        ]
        if not peers or not mine["figures"]["server_cpu_us_per_session"]:
            continue
        best = min(peers, key=lambda r: r["figures"]["server_cpu_us_per_session"])
        ratio = (
            best["figures"]["server_cpu_us_per_session"]
            / mine["figures"]["server_cpu_us_per_session"]
        )
        comparisons.append(
            {
                "concurrency": mine["concurrency"],
                "better_peer": best["server"],
                "ratio_cpu_per_session": ratio,
                "met": ratio >= 2.0,
            }
        )
    if comparisons:
        verdict["twice_better_peer"] = comparisons
    return verdict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--concurrency", default="100,500,2000", help="saturated runs at these concurrency levels"
    )
    parser.add_argument(
        "--paced", default="500,2000", help="paced runs at these concurrency levels ('' for none)"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=1000.0,
        help="mean hold of STREAM FILE / GET DATA replies in paced runs",
    )
    parser.add_argument("--duration", type=float, default=4.0, help="measured seconds per run")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of each server at the first saturated level, interleaved; "
        "the one with the least CPU per session is reported",
    )
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--servers", default=",".join(SERVERS), help=f"comma-separated, from: {', '.join(SERVERS)}"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "agi.json")
    args = parser.parse_args(argv)

    levels = [int(c) for c in args.concurrency.split(",") if c]
    paced = [int(c) for c in args.paced.split(",") if c]
    servers = [SERVERS[key] for key in args.servers.split(",") if key]
    plan = [(server, levels[0], 0.0) for _ in range(args.repeat) for server in servers]
    plan += [(server, c, 0.0) for c in levels[1:] for server in servers if server.every_level]
    plan += [(server, c, args.think_ms) for c in paced for server in servers if server.paced]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    runs: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    started = datetime.datetime.now(datetime.UTC)
    digest_at_start = agi_digest()
    for server, concurrency, think_ms in plan:
        # Paced calls last ~5-6 x think: spread their arrivals over half a call, and warm up
        # until the first ones have cycled, so the window sees a steady mix.
        ramp = 2.5 * think_ms / 1000 if think_ms else (1.0 if concurrency <= 500 else 1.5)
        # Saturated calls last about concurrency / (~500 sessions/s): let the first cycle end.
        warmup = ramp + (4 * think_ms / 1000 if think_ms else 0.5 + concurrency / 500)
        spec = LoadSpec(
            port=_free_port(),
            concurrency=concurrency,
            duration=args.duration,
            warmup=warmup,
            procs=args.procs,
            think_ms=think_ms,
            ramp=ramp,
        )
        log_path = args.out.parent / "logs" / f"{server.key}-{concurrency}-{think_ms:g}.log"
        print(
            f"{server.key:<11} conc {concurrency:>5} think {think_ms:>5g} ms ...",
            end=" ",
            flush=True,
        )
        try:
            with running(server, spec.port, log_path) as process:
                figures = run_load(spec, process.pid)
        except RuntimeError as error:
            print(error)
            failed.append(
                {
                    "server": server.key,
                    "concurrency": concurrency,
                    "think_ms": think_ms,
                    "error": str(error),
                }
            )
            continue
        runs.append(
            {
                "server": server.key,
                "label": server.label,
                "concurrency": concurrency,
                "think_ms": think_ms,
                "figures": figures,
            }
        )
        print(
            f"{figures['sessions_per_s']:8.0f} sessions/s, p99 "
            f"{figures['turnaround_us']['p99'] / 1000:7.2f} ms, "
            f"{_fmt(figures['server_cpu_us_per_session'])} us CPU/session, "
            f"others used {figures['others_cpu_share']:.2f} cores"
        )

    report = {
        "command": " ".join([".venv/bin/python -m benchmarks.agi.run", *(argv or sys.argv[1:])]),
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "ivr_agi_sha256": {"start": digest_at_start, "end": agi_digest()},
        "fd_limit": hard,
        "runs": runs,
        "failed": failed,
        "targets": targets(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print()
    print(table(runs))
    print()
    print(json.dumps(report["targets"], indent=2))
    if report["ivr_agi_sha256"]["start"] != report["ivr_agi_sha256"]["end"]:
        print("\nwarning: ivr/agi changed during the run; figures mix two versions")
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
