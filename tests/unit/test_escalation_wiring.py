"""``ivr serve`` sweeps for SLA warnings on the reactor's (injected) clock, every
``escalation.interval_s``, and a Redis that is away is logged as a repeated failure: no crash,
and the next round after Redis is back goes on."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import task

from hotline.service import Hotline
from ivr.config import DEFAULT_CONFIG_DIR, HotlineConfig, load_config
from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders.buckets import Buckets


def speechless_config(tmp_path: Path) -> HotlineConfig:
    """The shipped config with speech off (no model to load) and the spool in ``tmp_path``."""
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    for intents in target.glob("intents*.yaml"):
        text = intents.read_text()
        if "\nspeech:\n" in text:
            intents.write_text(text.replace("\nspeech:\n", "\nspeech:\n  enabled: false\n", 1))
    return load_config(target, environ={
        "HOTLINE_ARI_PASSWORD": "", "HOTLINE__SPOOL_DIR": str(tmp_path / "spool")})


class RedisComingBack:
    """Just enough of ``redis.asyncio.Redis`` for the service's wiring: away (connection
    refused) until ``away`` is cleared, then an empty ``wo:due`` in every bucket (read in one
    pipeline; a sweep is recorded as ``wo:due`` without the bucket's tag)."""

    def __init__(self) -> None:
        self.away = True
        self.sweeps: list[tuple[str, float]] = []

    def pipeline(self, transaction: bool = True) -> DuePipeline:
        return DuePipeline(self)

    def register_script(self, source: str) -> Any:
        async def script(**_: Any) -> Any:
            raise AssertionError("no script runs while nothing is due")

        return script

    async def zrangebyscore(self, key: str, low: Any, high: float, **_: Any) -> list[bytes]:
        self.sweeps.append((key, high))
        if self.away:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return []


class DuePipeline:
    """The pipeline of :class:`RedisComingBack`: ZRANGEBYSCORE of each bucket's ``wo:due``."""

    def __init__(self, redis: RedisComingBack) -> None:
        self.redis = redis
        self.reads: list[tuple[str, float]] = []

    async def __aenter__(self) -> DuePipeline:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def zrangebyscore(self, key: str, low: Any, high: float, **_: Any) -> DuePipeline:
        self.reads.append((re.sub(r"\{wo\d+\}:", "", key), high))
        return self

    async def execute(self) -> list[list[bytes]]:
        assert len(self.reads) == Buckets().count and len(set(self.reads)) == 1
        self.redis.sweeps.append(self.reads[0])
        if self.redis.away:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return [[] for _ in self.reads]


async def settle() -> None:
    """Let the sweep's asyncio Task and its Deferred's callbacks run (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)


@on_asyncio
async def test_the_sweep_runs_on_the_reactor_clock_and_survives_redis_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every 30 s of the injected clock (the shipped ``interval_s``) a sweep reads
    ``wo:due`` up to that time; Redis away is logged once as "escalation failed", the loop
    keeps running, and the first round that succeeds logs the recovery."""
    cfg = speechless_config(tmp_path)
    assert cfg.workorders.escalation.interval_s == 30
    clock = task.Clock()
    clock.advance(1_000_000)
    redis = RedisComingBack()
    hotline = Hotline(cfg, clock, cipher=random_field_cipher(), redis=redis)
    with caplog.at_level(logging.WARNING, logger="hotline.service"):
        hotline.jobs.start(hotline._escalation_job())
        clock.advance(29)
        await settle()
        assert redis.sweeps == []
        clock.advance(1)
        await settle()
        assert redis.sweeps == [("hotline:wo:due", 1_000_030)]
        clock.advance(30)
        await settle()
        redis.away = False
        clock.advance(30)
        await settle()
    assert [high for _, high in redis.sweeps] == [1_000_030, 1_000_060, 1_000_090]
    lines = [r.getMessage() for r in caplog.records
             if r.name == "hotline.service" and r.getMessage().startswith("escalation")]
    assert len(lines) == 3, lines  # failed, one summary, recovered
    assert lines[0].startswith("escalation failed: Error 111")
    assert lines[-1].startswith("escalation recovered after 2 failures")
    await hotline.stop()
    assert not hotline.jobs.running
