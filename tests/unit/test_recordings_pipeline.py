"""After the call: raw legs -> Opus -> AES-256-GCM -> storage, verified before the raw legs
go; and each fault (ffmpeg failing, the key missing, a full disk, a bad read-back, Redis
away, a bug) keeps the raw legs only in the protected retry area, raises the alarm, retries,
and past the limit drops them with a deletion record. Never anything in the clear."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import pytest

from api.testing import run_now
from privacy.keys import MasterKeyError
from recordings import alarms
from recordings.capture import IngestOutcome, RawRecording
from recordings.crypto import RecordingVault
from recordings.pipeline import Pipeline
from recordings.retry import RetryArea
from recordings.storage import DirectoryStore
from recordings.testing import (
    FakeAlarms,
    FakeTranscoder,
    MemoryCatalog,
    MemoryStore,
    raw_recording,
    run_inline,
)
from recordings.transcode import FfmpegTranscoder

MASTER = RecordingVault.new_master_key()
NOW = 2_000_000_000.0


class Setup:
    def __init__(self, tmp: Path, *, transcoder=None, storage=None, vault=None,
                 max_attempts: int = 3) -> None:
        self.catalog = MemoryCatalog()
        self.storage = storage if storage is not None else MemoryStore()
        self.alarms = FakeAlarms()
        self.retry = RetryArea(tmp / "retry")
        self.transcoder = transcoder or FakeTranscoder()
        self.vault = vault or (lambda: RecordingVault(MASTER))
        self.pipeline = Pipeline(
            transcoder=self.transcoder, storage=self.storage, catalog=self.catalog,
            vault=lambda: self.vault(), retry=self.retry, alarms=self.alarms,
            clock=lambda: NOW, max_attempts=max_attempts, run_blocking=run_inline,
        )

    def ingest(self, raw: RawRecording):
        return run_now(self.pipeline.ingest(raw))

    def retry_pending(self):
        return run_now(self.pipeline.retry_pending())


@pytest.fixture
def capture_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "monitor"
    folder.mkdir()
    return folder


def faults(stage: str) -> float:
    return alarms.FAULTS.labels(stage)._value.get()


def test_two_legs_become_one_encrypted_opus_and_the_raw_legs_go(tmp_path, capture_dir):
    """With the real ffmpeg: the caller's and the agent's legs become one stereo Ogg Opus,
    stored only encrypted (no Ogg header in what is stored), bound to recording and call id;
    the metadata carries checksum, wrapped key, paused intervals; the raw legs are gone and
    ``RECORDSTORED`` is raised."""
    setup = Setup(tmp_path, transcoder=FfmpegTranscoder("opus"),
                  storage=DirectoryStore(tmp_path / "store"))
    raw = raw_recording(capture_dir)
    done = setup.ingest(raw)
    assert done.outcome is IngestOutcome.STORED, done.detail
    assert not any(leg.exists() for leg in raw.legs)
    meta = setup.catalog.records[raw.recording_id]
    stored = setup.storage.get(raw.recording_id)
    assert b"OggS" not in stored and b"RIFF" not in stored
    audio = RecordingVault(MASTER).open(meta.sealed(stored))
    assert audio.startswith(b"OggS") and b"OpusHead" in audio[:200]
    assert meta.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert (meta.format, meta.media_type) == ("opus", "audio/ogg; codecs=opus")
    assert meta.call_id == "c-1" and meta.work_order_id == "17"
    assert setup.alarms.kinds() == ["RECORDSTORED"]
    assert setup.retry.entries() == []


def test_mp3_by_config(tmp_path, capture_dir):
    """``format: mp3`` stores MPEG audio instead (an ID3 tag or a frame sync first)."""
    setup = Setup(tmp_path, transcoder=FfmpegTranscoder("mp3", "32k"))
    raw = raw_recording(capture_dir, legs=1)
    assert setup.ingest(raw).outcome is IngestOutcome.STORED
    meta = setup.catalog.records[raw.recording_id]
    audio = RecordingVault(MASTER).open(meta.sealed(setup.storage.get(raw.recording_id)))
    assert audio[:3] == b"ID3" or audio[0] == 0xFF
    assert meta.media_type == "audio/mpeg"


def assert_kept_for_retry(setup: Setup, raw: RawRecording, stage: str) -> None:
    entry = {e.raw.recording_id: e for e in setup.retry.entries()}[raw.recording_id]
    assert not any(leg.exists() for leg in raw.legs)  # moved, not copied
    assert all(leg.exists() for leg in entry.raw.legs)
    for path in (setup.retry.directory, entry.raw.legs[0].parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(leg.stat().st_mode) == 0o600 for leg in entry.raw.legs)
    assert raw.recording_id not in setup.catalog.records
    kind, fields = setup.alarms.events[-1]
    assert (kind, fields["stage"]) == ("RECORDFAILED", stage)


def test_ffmpeg_failing_keeps_the_raw_legs_only_in_the_retry_area(tmp_path, capture_dir):
    """ffmpeg failing (exit 1) is a fault of stage ``transcode``: the legs move into the
    0700 retry area, nothing is stored, the alarm (counter and event) is raised."""
    setup = Setup(tmp_path, transcoder=FfmpegTranscoder("opus", ffmpeg=shutil.which("false")))
    raw = raw_recording(capture_dir)
    before = faults("transcode")
    done = setup.ingest(raw)
    assert done.outcome is IngestOutcome.RETRYING and "ffmpeg failed (exit 1)" in done.detail
    assert faults("transcode") == before + 1
    assert setup.storage.objects == {}
    assert_kept_for_retry(setup, raw, "transcode")


def test_a_leg_that_is_no_wav_is_a_transcode_fault(tmp_path, capture_dir):
    """A truncated or foreign raw file is refused by pydub: the same ``transcode`` fault."""
    setup = Setup(tmp_path, transcoder=FfmpegTranscoder("opus"))
    raw = raw_recording(capture_dir)
    raw.legs[0].write_bytes(b"not a wav at all")
    assert "does not read as WAV" in setup.ingest(raw).detail
    assert_kept_for_retry(setup, raw, "transcode")


def test_a_missing_master_key_keeps_the_recording_for_retry(tmp_path, capture_dir):
    """No master key: nothing can be encrypted, so nothing is stored; the raw legs wait in
    the retry area and are stored by the retry once the key is there."""
    def no_key() -> RecordingVault:
        raise MasterKeyError("no master key: environment variable HOTLINE_MASTER_KEY is not set")

    setup = Setup(tmp_path, vault=no_key)
    raw = raw_recording(capture_dir)
    assert setup.ingest(raw).outcome is IngestOutcome.RETRYING
    assert_kept_for_retry(setup, raw, "key")
    setup.vault = lambda: RecordingVault(MASTER)
    [again] = setup.retry_pending()
    assert again.outcome is IngestOutcome.STORED
    assert setup.retry.entries() == [] and not any(setup.retry.directory.iterdir())
    meta = setup.catalog.records[raw.recording_id]
    opened = RecordingVault(MASTER).open(meta.sealed(setup.storage.get(raw.recording_id)))
    assert opened.startswith(b"RIFF")  # the fake transcoder passes the legs through


def test_a_full_disk_leaves_no_partial_file_and_keeps_the_recording(tmp_path, capture_dir):
    """The storage disk full mid-write (ENOSPC): no file, not even a temporary one, stays
    in the storage directory; the fault is ``store``; the raw legs wait for the retry."""
    def full(fd: int, data: bytes) -> int:
        os.write(fd, data[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    store = DirectoryStore(tmp_path / "store", write=full)
    setup = Setup(tmp_path, storage=store)
    raw = raw_recording(capture_dir)
    assert setup.ingest(raw).outcome is IngestOutcome.RETRYING
    assert [p for p in store.directory.rglob("*") if p.is_file()] == []
    assert_kept_for_retry(setup, raw, "store")


def test_a_stored_object_that_does_not_read_back_is_removed(tmp_path, capture_dir):
    """Verification reads the stored object back and decrypts it: a store that gives back
    other bytes fails ``verify``; the bad object is deleted and the raw legs are kept."""
    class Corrupting(MemoryStore):
        def get(self, recording_id: str) -> bytes:
            data = bytearray(super().get(recording_id))
            data[-1] ^= 1
            return bytes(data)

    setup = Setup(tmp_path, storage=Corrupting())
    raw = raw_recording(capture_dir)
    assert setup.ingest(raw).outcome is IngestOutcome.RETRYING
    assert setup.storage.objects == {}
    assert_kept_for_retry(setup, raw, "verify")


def test_redis_away_removes_the_stored_object_and_keeps_the_recording(tmp_path, capture_dir):
    """The metadata (with the wrapped key) cannot be written: the stored object, useless
    without its key, is removed again and the raw legs wait for the retry."""
    setup = Setup(tmp_path)
    setup.catalog.down = True
    raw = raw_recording(capture_dir)
    assert setup.ingest(raw).outcome is IngestOutcome.RETRYING
    assert setup.storage.objects == {}
    setup.catalog.down = False
    assert_kept_for_retry(setup, raw, "metadata")


def test_an_unexpected_error_never_reaches_the_call(tmp_path, capture_dir):
    """A bug in a step is still a fault (``internal``), not an exception for the caller."""
    class Broken(FakeTranscoder):
        def encode(self, legs):
            raise RuntimeError("bug")

    setup = Setup(tmp_path)
    setup.pipeline._run = _raising_after(run_inline)  # a failure outside the stages
    raw = raw_recording(capture_dir)
    done = setup.ingest(raw)
    assert done.outcome is IngestOutcome.RETRYING and "internal" in done.detail
    setup.pipeline._run = run_inline
    setup.transcoder = Broken()
    setup.pipeline.transcoder = setup.transcoder
    assert setup.retry_pending()[0].outcome is IngestOutcome.RETRYING


def _raising_after(run):
    async def runner(fn, *args):
        if fn.__name__ == "_seal_and_store":
            raise RuntimeError("a bug outside the stages")
        return await run(fn, *args)
    return runner


def test_past_the_retry_limit_the_recording_is_dropped_with_a_deletion_record(
        tmp_path, capture_dir):
    """After ``max_attempts`` failed attempts the raw legs are removed (never stored in the
    clear), a deletion record without personal data is written, ``RECORDDROPPED`` raised."""
    setup = Setup(tmp_path, transcoder=FakeTranscoder(fail="ffmpeg exited 1"), max_attempts=2)
    raw = raw_recording(capture_dir)
    assert setup.ingest(raw).outcome is IngestOutcome.RETRYING
    [done] = setup.retry_pending()
    assert done.outcome is IngestOutcome.DROPPED
    assert setup.retry.entries() == [] and not any(setup.retry.directory.iterdir())
    [record] = setup.catalog.deletions
    assert record == {"recording_id": raw.recording_id, "reason": "not-encryptable",
                      "recorded_on": "1970-01-01", "deleted_at": "2033-05-18T03:33:20.000Z",
                      "by": "retry-limit"}
    assert setup.alarms.kinds() == ["RECORDFAILED", "RECORDDROPPED"]


def test_a_drop_without_a_deletion_record_keeps_the_legs(tmp_path, capture_dir):
    """No deletion record (Redis away), no deletion: the legs stay in the retry area."""
    setup = Setup(tmp_path, transcoder=FakeTranscoder(fail="ffmpeg exited 1"), max_attempts=1)
    setup.catalog.down = True
    raw = raw_recording(capture_dir)
    assert setup.ingest(raw).outcome is IngestOutcome.RETRYING
    assert len(setup.retry.entries()) == 1


def test_a_recording_that_cannot_even_be_moved_stays_where_capture_left_it(
        tmp_path, capture_dir):
    """The retry area refusing too (its disk full): the raw legs stay in place, never
    deleted, and the alarm names the retry area."""
    setup = Setup(tmp_path, transcoder=FakeTranscoder(fail="ffmpeg exited 1"))
    (tmp_path / "retry").write_text("a file where the directory should be")
    raw = raw_recording(capture_dir)
    done = setup.ingest(raw)
    assert done.outcome is IngestOutcome.RETRYING and "left in place" in done.detail
    assert all(leg.exists() for leg in raw.legs)
    assert setup.alarms.events[-1][1]["stage"] == "retry-area"


def test_raw_recording_checks_its_shape(tmp_path):
    """One or two legs; a recording cannot end before it starts."""
    with pytest.raises(ValueError, match="one or two legs"):
        RawRecording("c", (), "q", "c", "a", 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="ends before"):
        RawRecording("c", (tmp_path / "x.wav",), "q", "c", "a", 2.0, 1.0, 1.0)


def test_a_retried_recording_keeps_everything_capture_said(tmp_path, capture_dir):
    """What capture handed over (work order, paused intervals, times, its recording id)
    survives the retry area and is what the stored metadata says."""
    from recordings.capture import PausedInterval

    setup = Setup(tmp_path, transcoder=FakeTranscoder(fail="ffmpeg exited 1"))
    paused = (PausedInterval(1010.0, 1022.5, "sensitive-step"), PausedInterval(1040, 1045, "agent"))
    raw = raw_recording(capture_dir, paused=paused, work_order_id="42", recording_id="rec-x1")
    setup.ingest(raw)
    setup.transcoder.fail = None
    [done] = setup.retry_pending()
    assert (done.recording_id, done.outcome) == ("rec-x1", IngestOutcome.STORED)
    meta = setup.catalog.records["rec-x1"]
    assert (meta.paused, meta.work_order_id, meta.started_at, meta.talk_seconds) == (
        paused, "42", 1000.0, 60.0)
