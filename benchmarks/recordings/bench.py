"""Recordings benchmark (README "Recordings"):

    .venv/bin/python -m benchmarks.recordings.bench [--quick] [--json FILE]

1. Post-processing plus encryption, in multiples of real time per core: two 8 kHz legs of
   speech-like audio (syllable-shaped noise with pauses, 5 minutes each) through the
   pipeline's blocking part as ``ivr serve`` runs it (pydub mix, ffmpeg Opus encode, AES-256-GCM
   seal, put into the directory store, read back, verify by decrypting). CPU seconds of this
   process and of its ffmpeg children are summed: audio seconds / CPU seconds = "x real time
   per core". Target >= 100x.
2. Decrypt-and-stream latency to the first byte: ``RecordingLibrary.open`` on a 5-minute
   recording against a real redis-server (metadata read, audit entry written to the real
   audit log, object read, checksum, both GCM tags, first 64 KiB chunk), and the same through
   the HTTP API on loopback (request sent -> first body byte received). Target <= 50 ms.
3. The retention pass over 100,000 recordings' metadata in a real redis-server with 50,000
   work orders (:func:`bench_retention` says how they are spread): ``recordings.purge.purge``,
   dry run, real (crypto-erase of the due ones), and the next pass; wall seconds and CPU
   seconds of this process and of redis-server. Target <= 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

from recordings.capture import RawRecording
from recordings.catalog import RedisCatalog
from recordings.crypto import RecordingVault
from recordings.library import RecordingLibrary, Requester
from recordings.pipeline import Pipeline
from recordings.purge import purge
from recordings.retry import RetryArea
from recordings.schema import RetentionSettings
from recordings.storage import DirectoryStore
from recordings.testing import FakeAlarms, MemoryCatalog
from recordings.transcode import FfmpegTranscoder

RATE = 8000
YEAR = 365.25 * 86400


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped into 150-400 ms syllables with pauses: an encoder's load like speech."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE), dtype=np.float64)
    at = 0
    while at < len(out):
        length = int(rng.uniform(0.15, 0.4) * RATE)
        envelope = np.sin(np.linspace(0, np.pi, length)) ** 2
        tone = np.sin(2 * np.pi * rng.uniform(100, 300) * np.arange(length) / RATE)
        burst = (0.6 * tone + 0.4 * rng.standard_normal(length)) * envelope
        out[at:at + length] = burst[: len(out) - at]
        at += length + int(rng.uniform(0.05, 0.6) * RATE)
    return (out / np.max(np.abs(out)) * 12000).astype("<i2")


def write_leg(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())
    return path


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def raw_of(folder: Path, n: int, seconds: float, legs: tuple[np.ndarray, np.ndarray]
           ) -> RawRecording:
    paths = tuple(write_leg(folder / f"{n}-{side}.wav", leg) for side, leg in enumerate(legs))
    return RawRecording(f"bench-{n}", paths, "billing", "billing", "agent101", 0.0, seconds,
                        seconds)


def bench_post_processing(work: Path, seconds: float, runs: int) -> dict[str, Any]:
    legs = (speech_like(seconds, 1), speech_like(seconds, 2))
    store = DirectoryStore(work / "store")
    vault = RecordingVault(RecordingVault.new_master_key())
    pipeline = Pipeline(
        transcoder=FfmpegTranscoder("opus", "24k", 5), storage=store, catalog=MemoryCatalog(),
        vault=lambda: vault, retry=RetryArea(work / "retry"), alarms=FakeAlarms(),
        clock=time.time,
    )
    factors, walls, sizes = [], [], []
    for n in range(runs):
        raw = raw_of(work, n, seconds, legs)
        cpu, wall = cpu_seconds(), time.perf_counter()
        meta = pipeline._seal_and_store(raw)
        cpu, wall = cpu_seconds() - cpu, time.perf_counter() - wall
        factors.append(seconds / cpu)
        walls.append(wall)
        sizes.append(meta.size)
        for leg in raw.legs:
            leg.unlink()
    return {"audio_seconds": seconds, "runs": runs,
            "x_real_time_per_core_median": round(statistics.median(factors), 1),
            "x_real_time_per_core_min": round(min(factors), 1),
            "wall_seconds_median": round(statistics.median(walls), 3),
            "stored_bytes": sizes[0], "kbit_per_s": round(sizes[0] * 8 / seconds / 1000, 1)}


async def bench_first_byte(redis_url: str, work: Path, seconds: float, runs: int
                           ) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from access import Identity, Role
    from audit.log import AuditLog

    client = aioredis.from_url(redis_url)
    vault = RecordingVault(RecordingVault.new_master_key())
    store = DirectoryStore(work / "store-fb")
    catalog = RedisCatalog(client, "bench:")
    pipeline = Pipeline(
        transcoder=FfmpegTranscoder("opus"), storage=store, catalog=catalog,
        vault=lambda: vault, retry=RetryArea(work / "retry-fb"), alarms=FakeAlarms(),
        clock=time.time,
    )
    raw = raw_of(work, 999, seconds, (speech_like(seconds, 3), speech_like(seconds, 4)))
    done = await pipeline.ingest(raw)
    assert done.outcome.value == "stored", done.detail
    audit = AuditLog(client, work / "audit", prefix="bench:")
    library = RecordingLibrary(catalog=catalog, storage=store, vault=lambda: vault,
                               audit=audit, teams=lambda _: None, members=lambda _: [])
    who = Requester(Identity("quinn", Role.QUALITY), "127.0.0.1", time.time(), "benchmark")
    latencies = []
    for _ in range(runs):
        start = time.perf_counter()
        playback = await library.open(who, raw.recording_id)
        first = next(playback.chunks())
        latencies.append((time.perf_counter() - start) * 1000)
        assert first[:4] == b"OggS"
    http = await _http_first_byte(library, raw.recording_id, runs)
    await client.aclose()
    return {"audio_seconds": seconds, "object_bytes": len(store.get(raw.recording_id)),
            "library_ms_median": round(statistics.median(latencies), 2),
            "library_ms_p95": round(sorted(latencies)[int(0.95 * len(latencies)) - 1], 2),
            "http_ms_median": round(statistics.median(http), 2),
            "http_ms_p95": round(sorted(http)[int(0.95 * len(http)) - 1], 2)}


async def _http_first_byte(library: RecordingLibrary, rid: str, runs: int) -> list[float]:
    """The API's twisted.web site on the asyncio reactor's loop, a raw socket client."""
    from twisted.internet import asyncioreactor

    if "twisted.internet.reactor" not in __import__("sys").modules:
        asyncioreactor.install(asyncio.get_running_loop())
    from twisted.internet import reactor

    from access import Identity, Role
    from api.app import build_api
    from api.testing import FakeHealth, FakeRouter, FakeTokens, FakeWorkOrders
    from api.web import make_site
    from routing.core import RoutingConfig

    api = build_api(router=FakeRouter(RoutingConfig({}, {}, {})),
                    workorders_store=FakeWorkOrders({}), health_source=FakeHealth(),
                    authenticator=FakeTokens({"t": Identity("quinn", Role.QUALITY)}),
                    audit=library.audit, clock=time.time, recordings=library)  # type: ignore[arg-type]
    port = reactor.listenTCP(0, make_site(api), interface="127.0.0.1")  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    request = (f"GET /api/recordings/{rid}/audio?reason=benchmark HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n")
    times = []
    for _ in range(runs):
        reader, writer = await asyncio.open_connection("127.0.0.1", port.getHost().port)
        start = time.perf_counter()
        writer.write(request.encode())
        await writer.drain()
        head = b""
        while b"\r\n\r\n" not in head:
            head += await reader.read(65536)
        body_started = head.split(b"\r\n\r\n", 1)[1]
        if not body_started:
            body_started = await reader.read(1)
        times.append((time.perf_counter() - start) * 1000)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        writer.close()
        while await reader.read(65536):
            pass
    await port.stopListening().asFuture(loop)
    return times


async def bench_retention(redis_url: str, work: Path, count: int, *, worst: bool
                          ) -> dict[str, Any]:
    """``count`` recordings, half of them with a work order (one order per two recordings,
    10 % of orders open, 1 % on legal hold). Typical (``worst`` False): calls spread over the
    last 3.5 years, orders closed within 6 months of the call. Worst case: every call ended
    3 to 3.5 years ago, so every recording is old enough to be due and is read and decided.
    """
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    await client.flushdb()
    prefix = "ret:"
    catalog = RedisCatalog(client, prefix)
    store = DirectoryStore(work / "store-ret")
    now = time.time()
    rng = random.Random(7)
    orders = count // 2
    ends = [now - (rng.uniform(3.0, 3.5) if worst else rng.uniform(0, 3.5)) * YEAR
            for _ in range(count)]
    fill = time.perf_counter()
    async with client.pipeline(transaction=False) as pipe:
        for n in range(orders):
            closed = ends[2 * n] + rng.uniform(0, 0.5) * YEAR
            iso = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(closed))
            pipe.hset(f"{prefix}wo:{n}", mapping={
                "status": "closed" if n % 10 else "in_progress", "updated_at": iso,
                "retain_until": iso, **({"legal_hold": "1"} if n % 100 == 0 else {})})
            if n % 1000 == 999:
                await pipe.execute()
        await pipe.execute()
    from dataclasses import replace

    from recordings.testing import sample_meta

    template = sample_meta("x", sha256="0" * 64, wrapped_key=os.urandom(60), master="1")
    async with client.pipeline(transaction=False) as pipe:
        for n in range(count):
            rid = f"rec-{n:06d}"
            order = str(n // 2) if n % 4 != 3 else None
            meta = replace(template, recording_id=rid, work_order_id=order, ended_at=ends[n],
                           started_at=ends[n] - 300, call_id=f"c-{n}", agent=f"agent{n % 200}")
            pipe.hset(f"{prefix}rec:{rid}", mapping=meta.to_hash())
            pipe.zadd(f"{prefix}rec:index", {rid: ends[n]})
            pipe.zadd(f"{prefix}rec:by-agent:{meta.agent}", {rid: ends[n]})
            pipe.sadd(f"{prefix}rec:by-call:{meta.call_id}", rid)
            if order:
                pipe.sadd(f"{prefix}rec:by-order:{order}", rid)
            if n % 1000 == 999:
                await pipe.execute()
        await pipe.execute()
    fill = time.perf_counter() - fill
    policy = RetentionSettings()

    async def timed(dry_run: bool) -> tuple[Any, float, float, float]:
        redis_cpu = await _redis_cpu(client)
        cpu, wall = time.process_time(), time.perf_counter()
        report = await purge(catalog, store, policy, now, dry_run=dry_run)
        return (report, time.perf_counter() - wall, time.process_time() - cpu,
                await _redis_cpu(client) - redis_cpu)

    dry, dry_s, dry_cpu, dry_redis = await timed(True)
    real, real_s, real_cpu, real_redis = await timed(False)
    again, again_s, _, _ = await timed(True)
    await client.aclose()
    return {"case": "worst" if worst else "typical", "recordings": count,
            "work_orders": orders, "fill_seconds": round(fill, 1),
            "dry_run_seconds": round(dry_s, 2), "dry_run_cpu_client": round(dry_cpu, 2),
            "dry_run_cpu_redis": round(dry_redis, 2), "due": len(dry.due),
            "held": dry.held, "kept": dry.kept, "real_pass_seconds": round(real_s, 2),
            "real_pass_cpu_client": round(real_cpu, 2), "real_pass_cpu_redis": round(real_redis, 2),
            "erased": len(real.due), "next_pass_seconds": round(again_s, 2),
            "next_pass_due": len(again.due), "left_after": again.checked}


async def _redis_cpu(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    parser.add_argument("--json", help="write the figures to this file too")
    args = parser.parse_args(argv)
    from testbed.redis import RedisServer

    seconds, runs, count = (30.0, 2, 5000) if args.quick else (300.0, 5, 100_000)
    figures: dict[str, Any] = {"cpu": _cpu_name(), "cores": os.cpu_count(),
                               "load_average_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as server:
        work = Path(tmp)
        os.chmod(work, 0o700)
        figures["post_processing"] = bench_post_processing(work, seconds, runs)
        print(json.dumps({"post_processing": figures["post_processing"]}), flush=True)

        async def rest() -> None:
            figures["first_byte"] = await bench_first_byte(server.url, work, seconds,
                                                           20 if args.quick else 100)
            print(json.dumps({"first_byte": figures["first_byte"]}), flush=True)
            for worst in (False, True):
                found = await bench_retention(server.url, work, count, worst=worst)
                figures["retention_" + found["case"]] = found
                print(json.dumps({"retention": found}), flush=True)

        asyncio.run(rest())
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
