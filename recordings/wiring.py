"""Putting the recordings together from the config: storage, vault, pipeline, library, and
when the daily retention pass runs. ``ivr serve`` and ``ivr recordings`` both build here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hotline.redisclient import is_cluster_client
from privacy.keys import KeyRing
from recordings.alarms import StreamAlarms
from recordings.catalog import RedisCatalog
from recordings.crypto import RecordingVault
from recordings.library import AuditRecorder, RecordingLibrary
from recordings.pipeline import Pipeline
from recordings.retry import RetryArea
from recordings.schema import RecordingsConfig
from recordings.storage import DirectoryStore, RecordingStorage
from recordings.transcode import FfmpegTranscoder

__all__ = ["Recordings", "build_recordings", "next_purge_at", "storage_of", "vault_source"]


@dataclass(frozen=True)
class Recordings:
    config: RecordingsConfig
    catalog: RedisCatalog
    storage: RecordingStorage
    vault: Callable[[], RecordingVault]
    pipeline: Pipeline
    library: RecordingLibrary


def vault_source(key_file: str | None) -> Callable[[], RecordingVault]:
    """The vault of the master keys as they are now (read at each use, so a key put in place
    after a "key missing" fault is used by the next retry); raises ``MasterKeyError``."""

    def vault() -> RecordingVault:
        return RecordingVault.from_keyring(KeyRing.load(key_file=key_file))

    return vault


def storage_of(config: RecordingsConfig, spool_dir: str) -> RecordingStorage:
    if config.storage.kind == "s3":
        from recordings.s3 import boto3_client

        return boto3_client(config.storage.s3)
    return DirectoryStore(config.storage_dir(spool_dir))


def build_recordings(
    config: RecordingsConfig, *, redis: Any, prefix: str, spool_dir: str, key_file: str | None,
    audit: AuditRecorder, teams: Callable[[str], str | None],
    members: Callable[[str], Sequence[str]], clock: Callable[[], float],
    order_key: Callable[[str], str],
) -> Recordings:
    """``order_key`` names a work order's hash (``workorders.buckets.Buckets.order_key``):
    retention and legal holds read the order a recording belongs to."""
    catalog = RedisCatalog(redis, prefix, cluster=is_cluster_client(redis), order_key=order_key)
    storage = storage_of(config, spool_dir)
    vault = vault_source(key_file)
    pipeline = Pipeline(
        transcoder=FfmpegTranscoder(config.format, config.bitrate, config.opus_compression),
        storage=storage, catalog=catalog, vault=vault,
        retry=RetryArea(config.retry_dir(spool_dir)), alarms=StreamAlarms(redis, prefix),
        clock=clock, max_attempts=config.retry.max_attempts,
    )
    library = RecordingLibrary(catalog=catalog, storage=storage, vault=vault, audit=audit,
                               teams=teams, members=members)
    return Recordings(config, catalog, storage, vault, pipeline, library)


def next_purge_at(now: float, at: str) -> float:
    """The next ``HH:MM`` (UTC) strictly after ``now``, as epoch seconds."""
    hour, minute = (int(part) for part in at.split(":"))
    today = datetime.fromtimestamp(now, UTC).replace(hour=hour, minute=minute, second=0,
                                                     microsecond=0)
    when = today if today.timestamp() > now else today + timedelta(days=1)
    return when.timestamp()
