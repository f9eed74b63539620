"""``ivr serve``'s job table carries the work orders' index upgrade: a first round at start,
on the reactor's clock, a Redis that is away retried a minute later as a repeated failure,
and nothing more once the version is found recorded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from test_escalation_wiring import RedisComingBack, settle, speechless_config
from twisted.internet import task

from hotline.service import Hotline
from hotline.startup import INDEX_UPGRADE_EVERY_S
from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders.indexes import INDEX_VERSION


class VersionedRedis(RedisComingBack):
    """Away until ``away`` is cleared; then the index version is the code's."""

    def __init__(self) -> None:
        super().__init__()
        self.gets: list[str] = []

    async def get(self, key: str) -> bytes:
        self.gets.append(key)
        if self.away:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return str(INDEX_VERSION).encode()


@on_asyncio
async def test_the_index_upgrade_runs_at_start_until_the_version_is_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The job named "index upgrade" reads ``hotline:wo:index-version`` as soon as it starts;
    Redis away is logged as "index upgrade failed" and tried again a minute later (then
    "recovered"); once the version is found current the job's rounds do nothing (no read a
    minute later)."""
    cfg = speechless_config(tmp_path)
    clock = task.Clock()
    redis = VersionedRedis()
    hotline = Hotline(cfg, clock, cipher=random_field_cipher(), redis=redis)
    [job] = [j for j in hotline._jobs_table() if j.what == "index upgrade"]
    assert job.now and job.every_s == INDEX_UPGRADE_EVERY_S == 60.0
    with caplog.at_level(logging.WARNING, logger="hotline.service"):
        hotline.jobs.start(job)
        await settle()
        assert redis.gets == ["hotline:wo:index-version"]
        redis.away = False
        clock.advance(60)
        await settle()
        assert len(redis.gets) == 2
        clock.advance(60)
        await settle()
        assert len(redis.gets) == 2
    lines = [r.getMessage() for r in caplog.records
             if r.name == "hotline.service" and r.getMessage().startswith("index upgrade")]
    assert len(lines) == 2, lines  # failed, recovered
    assert lines[0].startswith("index upgrade failed: Error 111")
    assert lines[1].startswith("index upgrade recovered after 1 failures")
    await hotline.stop()
    assert not hotline.jobs.running
