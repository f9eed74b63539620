"""Recordings: everything after MixMonitor's raw file, up to audited playback and deletion.

- :mod:`recordings.capture`: the seam the capture side calls (``RawRecording``,
  ``RecordingIngest.ingest``);
- :mod:`recordings.pipeline`: raw legs -> Opus/MP3 (:mod:`recordings.transcode`) -> AES-256-GCM
  (:mod:`recordings.crypto`) -> storage (:mod:`recordings.storage`, :mod:`recordings.s3`),
  verified before the raw legs go; faults keep them in the retry area
  (:mod:`recordings.retry`) and raise the alarm (:mod:`recordings.alarms`);
- :mod:`recordings.catalog`: the metadata and wrapped keys in Redis, crypto-erase;
- :mod:`recordings.retention` (pure) and :mod:`recordings.purge`: the retention pass, legal
  hold, master key rotation (rewrap);
- :mod:`recordings.library`: audited access (list, metadata, audio, hold, release), used by
  :mod:`recordings.cli` (``ivr recordings``) and the API (``/api/recordings``);
- :mod:`recordings.schema`: ``config/recordings.yaml``; :mod:`recordings.wiring`: built from it;
- :mod:`recordings.testing`: fakes for unit tests.
"""
