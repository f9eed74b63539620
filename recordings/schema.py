"""Schema of ``config/recordings.yaml``: format, storage, retry area, retention rules.

Validated once at load (``ivr.config`` includes it as the ``recordings`` section, so
``ivr check-config`` names file, key and reason); a file left out means these defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_YEARS",
    "CaptureSettings",
    "PurgeSettings",
    "QueueCapture",
    "RecordingsConfig",
    "RetentionRule",
    "RetentionSettings",
    "RetrySettings",
    "S3Settings",
    "StorageSettings",
]

DEFAULT_YEARS = 3


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class S3Settings(_Section):
    """An S3-compatible object store (``storage.kind: s3``; needs the ``s3`` extra, boto3).
    Credentials come from boto3's usual sources (environment, profile), never this file."""

    bucket: str = ""
    prefix: str = "recordings/"
    endpoint_url: str | None = None  # MinIO, Ceph, ...: their URL; None: AWS
    region: str | None = None


class StorageSettings(_Section):
    kind: Literal["directory", "s3"] = "directory"
    dir: str = ""  # empty: "<service spool_dir>/recordings"
    s3: S3Settings = S3Settings()

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StorageSettings:
        if self.kind == "s3" and not self.s3.bucket:
            raise ValueError("s3.bucket: needed with kind: s3")
        return self


class RetrySettings(_Section):
    """The protected retry area: raw files that could not be encrypted, and how often and how
    long they are tried again before being dropped with a deletion record."""

    dir: str = ""  # empty: "<service spool_dir>/recordings-retry" (mode 0700)
    every_s: float = Field(300.0, gt=0)
    max_attempts: int = Field(12, ge=1)


class RetentionRule(_Section):
    """Years kept after the work order closes (or after the call, without an order), for the
    recordings of one category, one queue, or one category in one queue."""

    category: str | None = None
    queue: str | None = None
    years_after_close: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _names_something(self) -> RetentionRule:
        if self.category is None and self.queue is None:
            raise ValueError("a rule names a category, a queue or both")
        return self


class RetentionSettings(_Section):
    # Kept at least as long as the work order they belong to (not deleted while it is open).
    follow_work_order: bool = True
    years_after_close: int = Field(DEFAULT_YEARS, ge=1, le=100)
    rules: list[RetentionRule] = []
    _years: dict[tuple[str | None, str | None], int] = PrivateAttr(default_factory=dict)

    @field_validator("rules")
    @classmethod
    def _no_duplicates(cls, rules: list[RetentionRule]) -> list[RetentionRule]:
        seen: set[tuple[str | None, str | None]] = set()
        for rule in rules:
            key = (rule.category, rule.queue)
            if key in seen:
                raise ValueError(f"two rules for category {rule.category!r}, queue {rule.queue!r}")
            seen.add(key)
        return rules

    def model_post_init(self, context: Any, /) -> None:
        # Looked up once per recording in the retention pass: built once here.
        self._years = {(rule.category, rule.queue): rule.years_after_close
                       for rule in self.rules}

    def shortest_years(self) -> int:
        """The fewest years any recording is kept after its call."""
        return min([self.years_after_close, *self._years.values()])

    def years_for(self, category: str, queue: str) -> int:
        """The most specific rule's years: category and queue, then queue, then category."""
        if not self.rules:  # the usual case, and the pass asks once per recording
            return self.years_after_close
        years = self._years
        if years:
            for key in ((category, queue), (None, queue), (category, None)):
                if key in years:
                    return years[key]
        return self.years_after_close


class PurgeSettings(_Section):
    """The daily retention pass of ``ivr serve``: at ``at`` (UTC, ``HH:MM``)."""

    enabled: bool = True
    at: str = Field("03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")  # HH:MM, UTC


class QueueCapture(_Section):
    """Recording of one queue's calls (``capture.default``, or ``capture.queues.<queue>``,
    which replaces the default for that queue as a whole).

    ``consent_prompt``: what the caller hears before any agent is connected (prompts.yaml);
    ``opt_out_key``: a key pressed during it leaves this call unrecorded (noted on the work
    order); ``after_agent_menu``: a menu of menus.yaml the caller walks when the agent hangs
    up, before the survey (e.g. "to pay by card, press 1", then a ``sensitive: true`` step).
    """

    record: bool = True
    consent_prompt: str = "recording-consent"
    opt_out_key: str | None = Field(None, pattern=r"^[0-9*#]$")
    after_agent_menu: str | None = None


class CaptureSettings(_Section):
    """MixMonitor on the caller's channel, and the check after hangup.

    ``raw_dir``: where MixMonitor writes the raw legs, as Asterisk sees the path (below
    ``asterisk.root`` of service.yaml for the service); the service reads and removes them, so
    both need write access. ``tolerance_s``: how much shorter than the talk time a recording
    may be before it is an alarm (``RECORDSHORT``); ``close_wait_s``: how long after hangup
    the files may take to be closed by Asterisk; ``follow_max_s``: how long legs that still
    grow after the flow ended are followed (an agent's blind transfer took the caller out of
    the flow, the recording goes on with the caller's channel) before what is there is
    stored."""

    raw_dir: str = "/var/spool/asterisk/monitor/hotline"
    tolerance_s: float = Field(2.0, ge=0)
    close_wait_s: float = Field(10.0, gt=0)
    follow_max_s: float = Field(14400.0, gt=0)
    default: QueueCapture = QueueCapture()
    queues: dict[str, QueueCapture] = {}

    def for_queue(self, queue: str) -> QueueCapture:
        return self.queues.get(queue, self.default)


class RecordingsConfig(_Section):
    enabled: bool = True
    format: Literal["opus", "mp3"] = "opus"
    bitrate: str = Field("24k", pattern=r"^[1-9][0-9]{0,2}k$")  # kilobits per second
    # libopus effort 0 (fastest) .. 10 (best); 5 keeps post-processing >100x real time.
    opus_compression: int = Field(5, ge=0, le=10)
    storage: StorageSettings = StorageSettings()
    retry: RetrySettings = RetrySettings()
    retention: RetentionSettings = RetentionSettings()
    purge: PurgeSettings = PurgeSettings()
    capture: CaptureSettings = CaptureSettings()

    def storage_dir(self, spool_dir: str) -> Path:
        return Path(self.storage.dir or Path(spool_dir) / "recordings")

    def retry_dir(self, spool_dir: str) -> Path:
        return Path(self.retry.dir or Path(spool_dir) / "recordings-retry")
