"""The soak: the real stack held at a steady load for a long time, watched for leaks.

    flock /tmp/hotline-e2e.lock python -m benchmarks.load.soak --callers 30 --minutes 30

Issue 14 asks for 30 minutes at half of the measured capacity (60 concurrent callers: 30)
with memory flat (RSS growth under 5 %) and no file-descriptor growth. The run is a series of
rounds of ``--round-s`` seconds, each a load step of ``--callers`` concurrent SIP callers in
the usual mix (:mod:`benchmarks.load.run`). After each round, once the calls have ended, the
RSS and the open file descriptors of Asterisk, ``ivr serve`` and redis-server are read: the
same moment of the cycle every time, so what grows is what the calls left behind. The first
round warms the processes up (caches, pools, the speech models' first decoders) and is the
baseline's round, not part of the verdict's comparison; ``--warm-up-calls N`` runs rounds
before ``--minutes``' until N calls were placed, for what fills with calls up to a bound (the
work-order store's local view: 1,000 orders). ``ivr serve``'s speech decoder processes are
read too, summed as one entry ("speech decoders").

Memory is judged by RSS for Asterisk and ``ivr serve`` (the issue's rule) and, for
redis-server, by RSS less the data it holds (``INFO memory``: ``used_memory`` less
``used_memory_startup``, :func:`redis_data_mb`): every call leaves its work order, history
and events there, kept for years, so its RSS can never be flat; the data's growth is
reported apart, per call. ``ivr serve``'s memory map (``/proc/PID/smaps``) is read with
every sample and each round's line names the mappings that grew
(:mod:`benchmarks.load.smaps`); the maps are kept in ``LOG_DIR/smaps``.

Prints one line per round and the verdict (``--json``: the samples and the verdict as JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from benchmarks.load import smaps
from benchmarks.load.cpu import rss_bytes, with_children
from benchmarks.load.mix import mix_for_speaking, plan_mix
from benchmarks.load.run import calls_for, load_sentences, load_stack, run_step
from benchmarks.load.table import PROCESSES

RSS_GROWTH_LIMIT_PCT = 5.0
DECODERS = "speech decoders"  # ivr serve's pocketsphinx processes, summed
DECODER_MODULE = b"ivr.speech.decoders"


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@dataclass(frozen=True)
class Sample:
    """The processes between two rounds: after round ``round`` (0: before the first)."""

    round: int
    minute: float
    rss_mb: Mapping[str, float]
    fds: Mapping[str, int]
    calls: int = 0
    completed: int = 0
    dropped: int = 0
    data_mb: Mapping[str, float] = field(default_factory=dict)  # what a store holds (redis)
    threads: Mapping[str, int] = field(default_factory=dict)
    mappings: Sequence[Mapping[str, Any]] = ()  # ivr serve's grown mappings since the last

    def judged_mb(self, name: str) -> float:
        """The memory the verdict judges: RSS, less the data held where there is some."""
        return self.rss_mb[name] - self.data_mb.get(name, 0.0)


@dataclass(frozen=True)
class Verdict:
    """Growth from the baseline (after the warm-up rounds) to the last sample, per process:
    ``rss_growth_pct`` of RSS itself; ``memory_growth_pct``, what the verdict judges, of RSS
    less the data a store holds (redis-server); ``data_kb_per_call``, that data's growth
    per call over the same rounds."""

    rss_growth_pct: Mapping[str, float]
    memory_growth_pct: Mapping[str, float]
    data_kb_per_call: Mapping[str, float]
    fd_growth: Mapping[str, int]
    calls: int
    completed: int
    dropped: int

    @property
    def flat(self) -> bool:
        return (all(g < RSS_GROWTH_LIMIT_PCT for g in self.memory_growth_pct.values())
                and all(g <= 0 for g in self.fd_growth.values()))


def pct(before: float, after: float) -> float:
    return round(100.0 * (after - before) / before, 2)


def verdict(samples: Sequence[Sample], warm_up: int = 1) -> Verdict:
    """Compare the last sample with the one after the ``warm_up`` rounds (the first sample
    when there is only one round; at least one round is compared) for memory, and with the
    first half of the run after them for descriptors; calls are counted over every round."""
    if len(samples) < 2:
        raise ValueError("a soak needs at least one round after its first sample")
    settled = samples[max(0, min(warm_up, len(samples) - 2)):]
    base, last = settled[0], settled[-1]
    # Descriptors: pools (Redis connections, AudioSocket workers) grow to what the load needs
    # and stay; a leak keeps climbing. So the last sample is compared with the most seen in
    # the first half of the run after the warm-up.
    early = settled[: max(1, len(settled) // 2)]
    # The calls whose data the comparison sees: those of the rounds after the baseline.
    calls_since = sum(s.calls for s in settled[1:]) or 1
    # Judged: the processes seen at both ends (the decoders' group is absent without them).
    names = [name for name in base.rss_mb if name in last.rss_mb]
    return Verdict(
        rss_growth_pct={name: pct(base.rss_mb[name], last.rss_mb[name])
                        for name in names if base.rss_mb[name] > 0},
        memory_growth_pct={name: pct(base.judged_mb(name), last.judged_mb(name))
                           for name in names if base.judged_mb(name) > 0},
        data_kb_per_call={name: round(1024 * (last.data_mb[name] - base.data_mb[name])
                                      / calls_since, 2)
                          for name in base.data_mb if name in last.data_mb},
        fd_growth={name: last.fds[name] - max(s.fds.get(name, 0) for s in early)
                   for name in names},
        calls=sum(s.calls for s in samples),
        completed=sum(s.completed for s in samples),
        dropped=sum(s.dropped for s in samples),
    )


def decoder_pids(serve: int) -> list[int]:
    """``ivr serve``'s speech decoder processes (``python -m ivr.speech.decoders``), read
    afresh each time: a decoder that died was replaced by another process. Its other children
    (a recording's encoder) come and go with calls and are not counted."""
    found = []
    for pid in with_children(serve)[1:]:
        with contextlib.suppress(OSError):
            if DECODER_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                found.append(pid)
    return found


def sample(processes: Mapping[str, Sequence[int]], round_: int, minute: float,
           calls: int = 0, completed: int = 0, dropped: int = 0,
           data_mb: Mapping[str, float] | None = None,
           mappings: Sequence[Mapping[str, Any]] = ()) -> Sample:
    """Each named process (or group: the decoders, summed) as it is now."""
    rss, fds, tasks = {}, {}, {}
    for name, pids in processes.items():
        if not pids:
            continue
        rss[name] = round(sum(rss_bytes(pid) for pid in pids) / 2**20, 1)
        fds[name] = sum(open_fds(pid) for pid in pids)
        tasks[name] = sum(threads(pid) for pid in pids)
    return Sample(round_, round(minute, 2), rss, fds, calls, completed, dropped,
                  dict(data_mb or {}), tasks, mappings)


def redis_data_mb(db: Any) -> dict[str, float]:
    """What redis-server's own accounting says its data takes, MB: ``used_memory`` less
    ``used_memory_startup`` (an empty server's), that is the keys and values
    (``used_memory_dataset``) and the keyspace's tables that grow with them; what is left of
    its RSS is the server itself and its allocator's pages."""
    memory = db.info("memory")
    return {"redis-server": round((int(memory["used_memory"])
                                   - int(memory["used_memory_startup"])) / 2**20, 2)}


class MapWatch:
    """Reads a process's smaps at each sample, keeps it in ``directory`` and returns the
    mappings that grew since the last reading."""

    def __init__(self, pid: int, directory: Path) -> None:
        self.pid, self.directory = pid, directory
        directory.mkdir(parents=True, exist_ok=True)
        self.last = ""

    def read(self, round_: int) -> list[smaps.Growth]:
        text = Path(f"/proc/{self.pid}/smaps").read_text()
        (self.directory / f"round-{round_:02d}.smaps").write_text(text)
        changes = smaps.growth(self.last, text) if self.last else []
        self.last = text
        return changes


def warm_up_rounds(warm_up_calls: int, calls_per_round: int) -> int:
    """Rounds before the baseline: one (caches, pools, first decoders), or as many as place
    ``warm_up_calls`` calls (a bounded cache that fills with the first calls: the work-order
    store's local view keeps the last 1,000 orders)."""
    return max(1, -(-warm_up_calls // max(1, calls_per_round)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=30, help="concurrent callers")
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to hold them")
    parser.add_argument("--round-s", type=float, default=120.0,
                        help="one round's length (a sample after each)")
    parser.add_argument("--speaking", default="1/3", help="share of callers who speak")
    parser.add_argument("--call-s", type=float, default=25.0, help="a call's expected length")
    parser.add_argument("--agents", type=int, default=20, help="agent softphones beyond 4")
    parser.add_argument("--talk-s", type=float, default=6.0, help="agents' talk time")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warm-up-calls", type=int, default=0,
                        help="rounds before the baseline until this many calls were placed "
                             "(default: one round), run before --minutes' rounds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--heap-diff", action="store_true",
                        help="trace allocations in ivr serve (PYTHONTRACEMALLOC) and write a "
                             "heap snapshot after each round to LOG_DIR/heap; compare two "
                             "with python -m hotline.heapdiff A B")
    parser.add_argument("--log-dir", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mix = mix_for_speaking(float(Fraction(args.speaking)))
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="hotline-soak-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    sentences, speech = load_sentences(6, args.seed)
    count = calls_for(args.callers, args.round_s, args.call_s)
    warm_up = warm_up_rounds(args.warm_up_calls, count)
    # The default warm-up is the first of --minutes' rounds; a longer one comes before them.
    rounds = max(2, round(args.minutes * 60 / args.round_s)) + warm_up - 1
    if args.heap_diff:
        # Inherited by ivr serve (testbed.service passes the environment on).
        os.environ.setdefault("PYTHONTRACEMALLOC", "6")
        os.environ["HOTLINE_HEAP_DIR"] = str(log_dir / "heap")
    samples: list[Sample] = []
    with load_stack(args.agents, args.talk_s, log_dir) as run:
        stack, service = run.stack, run.service
        assert stack.asterisk.process and stack.redis and stack.redis.process
        assert service.process
        pids = {"asterisk": stack.asterisk.process.pid, "ivr serve": service.process.pid,
                "redis-server": stack.redis.process.pid}
        assert set(pids) == set(PROCESSES)

        def processes() -> dict[str, list[int]]:
            return {**{name: [pid] for name, pid in pids.items()},
                    DECODERS: decoder_pids(pids["ivr serve"])}

        maps = MapWatch(pids["ivr serve"], log_dir / "smaps")
        started = time.monotonic()
        maps.read(0)
        samples.append(sample(processes(), 0, 0.0, data_mb=redis_data_mb(run.db)))
        if args.heap_diff:
            os.kill(pids["ivr serve"], signal.SIGUSR2)
        for n in range(1, rounds + 1):
            plans = plan_mix(count, mix, sentences, args.seed + n, step=f"r{n}")
            row, _ = run_step(args.callers, plans, speech, stack, service, run.db,
                              log_dir / f"round-{n}", max(1.0, args.callers / 5), args.round_s)
            with contextlib.suppress(TimeoutError):
                stack.asterisk.wait_until_idle(timeout=30)
            grown = maps.read(n)
            samples.append(sample(processes(), n, (time.monotonic() - started) / 60, row.calls,
                                  row.completed, row.dropped, redis_data_mb(run.db),
                                  [asdict(g) for g in grown]))
            if args.heap_diff:
                os.kill(pids["ivr serve"], signal.SIGUSR2)
            if not args.json:
                last = samples[-1]
                print(f"round {n}/{rounds} at {last.minute} min: {row.calls} calls, "
                      f"{row.completed} completed, {row.dropped} dropped; RSS MB "
                      f"{dict(last.rss_mb)}, fds {dict(last.fds)}, threads "
                      f"{dict(last.threads)}, redis data {last.data_mb['redis-server']} MB, "
                      f"load {os.getloadavg()[0]:.1f}; ivr serve's mappings: "
                      f"{smaps.summary(grown)}", file=sys.stderr, flush=True)
    result = verdict(samples, warm_up)
    report: dict[str, Any] = {"samples": [asdict(s) for s in samples],
                              "verdict": {**asdict(result), "flat": result.flat},
                              "callers": args.callers, "minutes": args.minutes,
                              "warm_up_rounds": warm_up}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"memory growth % (after warm-up round {warm_up} -> last; RSS, redis-server's less "
              f"its data): {dict(result.memory_growth_pct)}; RSS growth %: "
              f"{dict(result.rss_growth_pct)}; data KB per call: "
              f"{dict(result.data_kb_per_call)}; "
              f"fd growth: {dict(result.fd_growth)}; {result.completed}/{result.calls} calls "
              f"completed, {result.dropped} dropped: "
              f"{'flat' if result.flat else 'GROWS'}")
        print(f"logs: {log_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
