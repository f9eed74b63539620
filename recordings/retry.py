"""The protected retry area: raw recordings that could not be encrypted yet.

``<dir>/<recording id>/`` (mode 0700, in a 0700 directory) holds the raw legs (0600) and
``entry.json``: the :class:`~recordings.capture.RawRecording` with the number of attempts,
when it first failed and why it last failed. Nothing else ever holds plaintext audio: a
recording leaves this area encrypted, or dropped (files removed, a deletion record written).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from recordings.capture import PausedInterval, RawRecording
from recordings.storage import check_recording_id

__all__ = ["RetryArea", "RetryEntry"]

ENTRY = "entry.json"


@dataclass(frozen=True)
class RetryEntry:
    raw: RawRecording  # its legs are inside the retry area
    attempts: int
    first_failed: float
    last_reason: str

    def to_json(self) -> str:
        raw = asdict(self.raw)
        raw["legs"] = [leg.name for leg in self.raw.legs]
        return json.dumps({"raw": raw, "attempts": self.attempts,
                           "first_failed": self.first_failed, "last_reason": self.last_reason})

    @classmethod
    def from_json(cls, text: str, directory: Path) -> RetryEntry:
        data = json.loads(text)
        raw = data["raw"]
        raw["legs"] = tuple(directory / name for name in raw["legs"])
        raw["paused"] = tuple(PausedInterval(**p) for p in raw["paused"])
        return cls(RawRecording(**raw), int(data["attempts"]), float(data["first_failed"]),
                   str(data["last_reason"]))


class RetryArea:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _protected(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)

    def keep(self, raw: RawRecording, reason: str, now: float) -> RetryEntry:
        """Move ``raw``'s legs here (or update the entry of one already here): one more
        attempt failed for ``reason``. Raises OSError when even that fails."""
        self._protected()
        folder = self.directory / check_recording_id(raw.recording_id)
        entry_file = folder / ENTRY
        if entry_file.exists():
            entry = RetryEntry.from_json(entry_file.read_text(), folder)
            entry = replace(entry, attempts=entry.attempts + 1, last_reason=reason)
        else:
            folder.mkdir(mode=0o700, exist_ok=True)
            legs = tuple(_move(leg, folder / f"leg{n}.wav") for n, leg in enumerate(raw.legs))
            entry = RetryEntry(replace(raw, legs=legs), 1, now, reason)
        _write_private(entry_file, entry.to_json())
        return entry

    def entries(self) -> list[RetryEntry]:
        """Every recording waiting here, oldest failure first (unreadable entries skipped)."""
        if not self.directory.is_dir():
            return []
        found = []
        for folder in self.directory.iterdir():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                found.append(RetryEntry.from_json((folder / ENTRY).read_text(), folder))
        return sorted(found, key=lambda e: e.first_failed)

    def remove(self, entry: RetryEntry) -> None:
        shutil.rmtree(self.directory / entry.raw.recording_id, ignore_errors=True)


def _move(source: Path, target: Path) -> Path:
    try:
        os.replace(source, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # Another file system: copy privately, then remove the original.
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
        os.unlink(source)
    os.chmod(target, 0o600)
    return target


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
