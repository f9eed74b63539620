"""Recordings in an S3-compatible object store, against a real one: moto's standalone S3
server on a loopback port, the real boto3 client pointed at it with ``endpoint_url`` as an
ops config does (``storage.kind: s3``), built by ``build_recordings`` as ``ivr serve`` builds
it, with a real redis-server for the catalog and Debian's ffmpeg for the transcoding.

A recording ingested lands in the bucket sealed (not audio), is listed, and plays back
decrypted; a tampered object is refused; the retention pass crypto-erases and deletes the
object unless a legal hold keeps it; the bucket going away mid-ingest (or hanging) keeps the
recording in the protected retry area, never in the clear, and it is stored once the bucket
is back."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import stat
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from access import Identity, Role
from api.testing import FakeAudit
from ivr.testing import on_asyncio
from recordings.capture import IngestOutcome, RawRecording
from recordings.crypto import RecordingVault
from recordings.library import RecordingUnreadable, Requester
from recordings.purge import purge
from recordings.s3 import ObjectStore, boto3_client
from recordings.schema import RecordingsConfig
from recordings.storage import StorageUnavailable
from recordings.testing import raw_recording
from recordings.transcode import Encoded, Transcoder
from recordings.wiring import Recordings, build_recordings, storage_of

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

YEAR = 365.25 * 86400
QUALITY = Identity("quinn", Role.QUALITY)
OPS = Identity("olga", Role.OPS)


class LocalS3:
    """moto's S3 server on a free loopback port; it can be stopped and started again on the
    same port (its objects live in the process, so they outlast a restart)."""

    def __init__(self) -> None:
        self.port = 0
        self.server: Any = None

    def start(self) -> None:
        self.server = moto_server.ThreadedMotoServer("127.0.0.1", self.port, verbose=False)
        self.server.start()
        self.port = self.server.get_host_and_port()[1]

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials from the environment, as boto3 reads them (never the config file); no
    profile of the machine's user leaks in."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "hotline-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hotline-test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket() -> str:
    """A bucket of the test's own: moto keeps every bucket in the process, across servers."""
    return f"hotline-recordings-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3(aws_env: None) -> Iterator[LocalS3]:
    server = LocalS3()
    server.start()
    yield server
    server.stop()


def s3_config(url: str, bucket: str) -> RecordingsConfig:
    return RecordingsConfig.model_validate({"storage": {"kind": "s3", "s3": {
        "bucket": bucket, "prefix": "recordings/", "endpoint_url": url,
        "region": "us-east-1"}}})


def raw_client(url: str) -> Any:
    """boto3 as an operator's own tools reach the bucket, apart from the service."""
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1")


def bucket_keys(client: Any, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


class StopsTheBucket:
    """Transcodes with the real transcoder, then takes the bucket away: the store fails in
    the middle of an ingest, after the audio exists only in memory."""

    def __init__(self, inner: Transcoder, s3: LocalS3) -> None:
        self.inner, self.s3 = inner, s3
        self.format = inner.format

    def encode(self, legs: Sequence[Path]) -> Encoded:
        encoded = self.inner.encode(legs)
        self.s3.stop()
        return encoded


class Service:
    """The recordings as ``ivr serve`` builds them, over the bucket and a real Redis."""

    def __init__(self, config: RecordingsConfig, redis_url: str, tmp: Path) -> None:
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=2,
                                              socket_connect_timeout=2)
        self.prefix = f"s3{uuid.uuid4().hex[:8]}:"
        key_file = tmp / "master.key"
        key_file.write_text("1:" + base64.b64encode(RecordingVault.new_master_key()).decode())
        key_file.chmod(0o600)
        self.audit = FakeAudit()
        self.spool = tmp / "spool"
        self.recordings: Recordings = build_recordings(
            config, redis=self.client, prefix=self.prefix, spool_dir=str(self.spool),
            key_file=str(key_file), audit=self.audit, teams=lambda agent: "north",
            members=lambda team: ["agent101"], clock=time.time,
            order_key=lambda order_id: f"{self.prefix}wo:{order_id}",
        )
        self.tmp = tmp

    def raw(self, n: int, *, ended: float | None = None) -> RawRecording:
        folder = self.tmp / f"call-{n}"
        folder.mkdir()
        ended = time.time() if ended is None else ended
        return raw_recording(folder, call_id=f"c-{n}", work_order_id=None,
                             started_at=ended - 60, ended_at=ended)

    def who(self, identity: Identity) -> Requester:
        return Requester(identity, "192.0.2.7", time.time(), "quality review of case 12")

    def retry_files(self) -> list[Path]:
        area = self.recordings.config.retry_dir(str(self.spool))
        return sorted(p for p in area.rglob("*") if p.is_file()) if area.exists() else []


@on_asyncio
async def test_a_recording_is_stored_sealed_listed_played_and_a_tampered_one_refused(
        redis_server, s3, bucket, tmp_path):
    """Through ``storage_of(config)`` the service gets an ObjectStore over the real boto3
    client; an ingested recording is one object ``recordings/<id>.hlr`` in the bucket, and
    that object is ciphertext (neither Ogg nor WAV, and not the audio's bytes); the library
    lists it and plays it back decrypted; an object altered in the bucket is refused before
    any byte of audio is returned."""
    ops = raw_client(s3.url)
    ops.create_bucket(Bucket=bucket)
    config = s3_config(s3.url, bucket)
    assert isinstance(storage_of(config, str(tmp_path)), ObjectStore)
    service = Service(config, redis_server.url, tmp_path)
    rec = service.recordings
    raw = service.raw(1)

    done = await rec.pipeline.ingest(raw)
    assert done.outcome is IngestOutcome.STORED, done.detail
    rid = raw.recording_id
    assert bucket_keys(ops, bucket) == [f"recordings/{rid}.hlr"]
    assert not any(leg.exists() for leg in raw.legs)  # the raw legs are gone
    stored = ops.get_object(Bucket=bucket, Key=f"recordings/{rid}.hlr")["Body"].read()
    assert not stored.startswith((b"OggS", b"RIFF", b"ID3")) and b"OggS" not in stored

    listed = await rec.library.list(service.who(QUALITY))
    assert [meta.recording_id for meta in listed] == [rid]
    assert listed[0].sha256 == hashlib.sha256(stored).hexdigest()
    playback = await rec.library.open(service.who(QUALITY), rid)
    assert playback.audio.startswith(b"OggS")  # decrypted: the Opus file again
    assert b"".join(playback.chunks()) == playback.audio
    assert rec.vault().open(listed[0].sealed(stored)) == playback.audio

    # Someone with write access to the bucket flips one byte of the ciphertext.
    tampered = bytearray(stored)
    tampered[len(tampered) // 2] ^= 0x01
    ops.put_object(Bucket=bucket, Key=f"recordings/{rid}.hlr", Body=bytes(tampered))
    with pytest.raises(RecordingUnreadable, match="altered"):
        await rec.library.open(service.who(QUALITY), rid)
    # Even with the checksum in the metadata matching the tampered object, the GCM tag
    # refuses it.
    assert await service.client.hset(f"{service.prefix}rec:{rid}", "sha256",
                                     hashlib.sha256(bytes(tampered)).hexdigest()) == 0
    with pytest.raises(RecordingUnreadable, match="wrong key or altered data"):
        await rec.library.open(service.who(QUALITY), rid)
    await service.client.aclose()


@on_asyncio
async def test_the_retention_pass_erases_and_deletes_objects_unless_held(
        redis_server, s3, bucket, tmp_path):
    """A recording past its retention is crypto-erased (its wrapped key and metadata gone)
    and its object deleted from the bucket; one under a legal hold keeps both, until the
    hold is released; a recent one is kept."""
    ops = raw_client(s3.url)
    ops.create_bucket(Bucket=bucket)
    service = Service(s3_config(s3.url, bucket), redis_server.url, tmp_path)
    rec = service.recordings
    now = time.time()
    old = now - 5 * YEAR
    ids = []
    for n, ended in ((1, old), (2, old), (3, now - 60)):
        raw = service.raw(n, ended=ended)
        assert (await rec.pipeline.ingest(raw)).outcome is IngestOutcome.STORED
        ids.append(raw.recording_id)
    due, held, fresh = ids
    await rec.library.hold(service.who(OPS), held)

    report = await purge(rec.catalog, rec.storage, rec.config.retention, now)
    assert (report.due, report.held, report.kept) == ([due], 1, 1)
    assert bucket_keys(ops, bucket) == sorted(f"recordings/{r}.hlr" for r in (held, fresh))
    assert not await service.client.exists(f"{service.prefix}rec:{due}")
    assert await rec.catalog.get(held) is not None
    assert not rec.storage.delete(due)  # nothing left to delete

    await rec.library.release(service.who(OPS), held)
    report = await purge(rec.catalog, rec.storage, rec.config.retention, now)
    assert report.due == [held]
    assert bucket_keys(ops, bucket) == [f"recordings/{fresh}.hlr"]
    await service.client.aclose()


@on_asyncio
async def test_the_bucket_away_mid_ingest_keeps_the_recording_for_a_retry(
        redis_server, s3, bucket, tmp_path):
    """The S3 server stops after the transcoding, before the put: the recording is not
    stored, its raw legs wait in the retry area (0700, nothing in the clear anywhere else)
    and a RECORDFAILED event says the store failed; playing a stored recording meanwhile is
    ``StorageUnavailable`` (a ConnectionError: the API's 503), not an internal error. Once
    the server is back, the retry pass stores it, sealed, and empties the retry area."""
    ops = raw_client(s3.url)
    ops.create_bucket(Bucket=bucket)
    service = Service(s3_config(s3.url, bucket), redis_server.url, tmp_path)
    rec = service.recordings
    pipeline = rec.pipeline
    earlier = service.raw(0)
    assert (await pipeline.ingest(earlier)).outcome is IngestOutcome.STORED
    real_transcoder = pipeline.transcoder
    pipeline.transcoder = StopsTheBucket(real_transcoder, s3)
    raw = service.raw(1)

    done = await pipeline.ingest(raw)
    assert done.outcome is IngestOutcome.RETRYING
    assert "store: StorageUnavailable" in (done.detail or "")
    assert not any(leg.exists() for leg in raw.legs)  # moved, not copied
    area = rec.config.retry_dir(str(service.spool))
    assert stat.S_IMODE(os.stat(area).st_mode) == 0o700
    kept = service.retry_files()
    assert {p.name for p in kept} == {"leg0.wav", "leg1.wav", "entry.json"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in kept)
    assert await rec.catalog.get(raw.recording_id) is None
    events = await service.client.xrange(f"{service.prefix}events")
    assert any(b"RECORDFAILED" in b"".join(fields.values()) for _, fields in events)
    with pytest.raises(StorageUnavailable, match="did not answer") as away:
        await rec.library.open(service.who(QUALITY), earlier.recording_id)
    assert isinstance(away.value, ConnectionError)

    s3.start()  # the same port: the endpoint in the config is right again
    pipeline.transcoder = real_transcoder
    [retried] = await pipeline.retry_pending()
    assert retried.outcome is IngestOutcome.STORED, retried.detail
    assert service.retry_files() == []
    assert bucket_keys(ops, bucket) == sorted(
        f"recordings/{r.recording_id}.hlr" for r in (earlier, raw))
    playback = await rec.library.open(service.who(QUALITY), raw.recording_id)
    assert playback.audio.startswith(b"OggS")
    await service.client.aclose()


def test_deleting_from_a_versioned_bucket_removes_every_version(s3, bucket):
    """On a bucket with versioning on (a common ops default), deleting a recording removes
    each stored version of its object and the delete markers, not only the current one: a
    plain DELETE would leave the ciphertext readable by version id. Other recordings'
    objects, even with an id that starts the same, stay."""
    ops = raw_client(s3.url)
    ops.create_bucket(Bucket=bucket)
    ops.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    store = storage_of(s3_config(s3.url, bucket), "unused")
    store.put("rec-1", b"first attempt")
    store.put("rec-1", b"the retry")
    store.put("rec-10", b"another recording")
    ops.delete_object(Bucket=bucket, Key="recordings/rec-1.hlr")  # a marker on top
    store.put("rec-1", b"stored again")

    assert store.delete("rec-1")
    left = ops.list_object_versions(Bucket=bucket, Prefix="recordings/")
    assert [v["Key"] for v in left.get("Versions", [])] == ["recordings/rec-10.hlr"]
    assert left.get("DeleteMarkers", []) == []
    assert not store.delete("rec-1")
    assert store.get("rec-10") == b"another recording"


def test_a_bucket_that_hangs_fails_the_put_within_the_client_timeouts(aws_env, bucket):
    """An endpoint that accepts the connection and never answers (a stuck proxy, a frozen
    node) fails the put within the configured timeouts instead of holding a worker thread
    for botocore's defaults (60 s per read, several retries); the defaults are bounded."""
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)  # never accepted: connect succeeds, no answer ever comes
    url = f"http://127.0.0.1:{hang.getsockname()[1]}"
    try:
        store = boto3_client(s3_config(url, bucket).storage.s3, connect_timeout=0.5,
                             read_timeout=0.5, attempts=1)
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match=r"(?i)timeout|timed out"):
            store.put("rec-1", b"sealed")
        assert time.monotonic() - started < 5
    finally:
        hang.close()
    defaults = boto3_client(s3_config(url, bucket).storage.s3).client.meta.config
    assert defaults.connect_timeout <= 10 and defaults.read_timeout <= 60
    assert defaults.retries["total_max_attempts"] <= 3
