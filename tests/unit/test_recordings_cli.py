"""``ivr recordings`` says which store is away: the object store (``StorageUnavailable``, a
``ConnectionError`` like Redis's) by its name, Redis as Redis; both exit 3."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from redis import exceptions as redis_errors

import recordings.wiring
from hotline.cli import build_parser
from recordings.cli import EXIT_UNREACHABLE, main
from recordings.storage import StorageUnavailable

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


class AwayLibrary:
    """A library whose every read fails with ``error``, as one whose store is away does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def open(self, who: Any, recording_id: str) -> Any:
        raise self.error

    async def metadata(self, who: Any, recording_id: str) -> Any:
        raise self.error


def run_get(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception
            ) -> tuple[int, str]:
    monkeypatch.setenv("HOTLINE__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setattr(recordings.wiring, "build_recordings",
                        lambda *a, **k: SimpleNamespace(library=AwayLibrary(error)))
    args = build_parser().parse_args(["--config", str(CONFIG_DIR), "recordings", "get",
                                      "rec-1", "--reason", "complaint 17", "--output", "-"])
    err = io.StringIO()
    with ThreadPoolExecutor(1) as pool:  # the command runs asyncio.run itself
        code = pool.submit(main, args, io.StringIO(), err, io.BytesIO()).result()
    return code, err.getvalue()


def test_an_object_store_away_is_named_not_redis(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """Playback with the S3 store not answering exits 3 naming the object store and the
    store's own message, never "Redis unreachable"."""
    code, err = run_get(monkeypatch, tmp_path, StorageUnavailable(
        "s3://hotline-recordings: get of recording rec-1 failed, the store did not answer"))
    assert code == EXIT_UNREACHABLE
    assert "object store unreachable" in err and "s3://hotline-recordings" in err
    assert "Redis" not in err


def test_redis_away_is_still_redis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Redis refusing the connection still exits 3 with "Redis unreachable"."""
    code, err = run_get(monkeypatch, tmp_path, redis_errors.ConnectionError("refused"))
    assert code == EXIT_UNREACHABLE and err.startswith("error: Redis unreachable: refused")
