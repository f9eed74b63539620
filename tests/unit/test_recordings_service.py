"""``ivr serve`` and the recordings: the service builds them from the config, serves
``/api/recordings``, and runs the retention pass daily at ``purge.at`` (UTC); with
``enabled: false`` there are none."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_service_wiring import speechless_config
from twisted.internet import task

import recordings.purge
from hotline.service import Hotline
from privacy.testing import random_field_cipher
from recordings.purge import PurgeReport
from recordings.wiring import next_purge_at


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_next_purge_time():
    """The next HH:MM strictly after now: later today, else tomorrow."""
    assert next_purge_at(ts("2026-12-06T01:00:00"), "03:30") == ts("2026-12-06T03:30:00")
    assert next_purge_at(ts("2026-12-06T03:30:00"), "03:30") == ts("2026-12-07T03:30:00")
    assert next_purge_at(ts("2026-12-31T23:59:00"), "00:00") == ts("2027-01-01T00:00:00")


def test_the_service_runs_the_retention_pass_daily(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from the shipped config: the pass is due at 03:30 UTC, runs then with the
    configured policy, and is scheduled again for the next day; the API has the routes."""
    cfg = speechless_config(tmp_path, ("instance: hotline-1", "instance: hotline-1"))
    clock = task.Clock()
    clock.advance(ts("2026-12-06T01:00:00"))
    hotline = Hotline(cfg, clock, cipher=random_field_cipher())
    assert hotline.recordings is not None
    # The site's root: the screens in front of the API resource (screens.web.FrontResource).
    api = hotline.site().resource.api.api
    paths = {route.path for route in api.table.routes}
    assert "/api/recordings/{recording_id}/audio" in paths
    runs: list[float] = []

    async def report() -> PurgeReport:
        return PurgeReport()

    def fake_purge(catalog, storage, policy, now, **_):
        runs.append(now)  # called when due; its coroutine runs as an asyncio Task
        assert policy == cfg.recordings.retention
        return report()

    monkeypatch.setattr(recordings.purge, "purge", fake_purge)
    hotline._schedule_purge()
    [call] = clock.getDelayedCalls()
    assert call.getTime() == ts("2026-12-06T03:30:00")
    clock.advance(call.getTime() - clock.seconds())
    assert runs == [ts("2026-12-06T03:30:00")]
    [call] = clock.getDelayedCalls()
    assert call.getTime() == ts("2026-12-07T03:30:00")
    hotline.stop()
    assert clock.getDelayedCalls() == []


def test_recordings_can_be_off(tmp_path: Path) -> None:
    """``enabled: false``: no pipeline, no routes (the API answers 404 there)."""
    cfg = speechless_config(tmp_path, ("instance: hotline-1", "instance: hotline-1"))
    (cfg.directory / "recordings.yaml").write_text("enabled: false\n")
    from ivr.config import load_config

    cfg = load_config(cfg.directory, environ={"HOTLINE_ARI_PASSWORD": ""})
    hotline = Hotline(cfg, task.Clock(), cipher=random_field_cipher())
    assert hotline.recordings is None
    # The site's root: the screens in front of the API resource (screens.web.FrontResource).
    api = hotline.site().resource.api.api
    paths = {route.path for route in api.table.routes}
    assert not any(path.startswith("/api/recordings") for path in paths)
