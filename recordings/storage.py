"""Where sealed recordings are kept: a small Protocol, a directory by default.

Only ciphertext (``recordings.crypto`` output) ever passes through here; the wrapped data key
is kept apart, in the metadata (``recordings.catalog``). An S3-compatible object store is the
other implementation (:mod:`recordings.s3`).

The directory store writes each recording to a temporary name in the same directory, fsyncs,
then renames it into place, so a crash or a full disk never leaves a half-written file under a
recording's name; the temporary file is removed on every failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

__all__ = [
    "DirectoryStore",
    "RecordingNotStored",
    "RecordingStorage",
    "StorageUnavailable",
    "check_recording_id",
]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class RecordingNotStored(LookupError):
    """No stored object for this recording id."""


class StorageUnavailable(ConnectionError):
    """The store did not answer (unreachable, timed out, its own server error): the object
    may well be there. A ``ConnectionError``, so callers treat it as any store away (the API
    answers 503, the pipeline keeps the recording for a retry)."""


def check_recording_id(recording_id: str) -> str:
    """``recording_id`` if it is safe as a file and object name; ``ValueError`` else."""
    if not _ID.fullmatch(recording_id):
        raise ValueError(f"recording id {recording_id[:40]!r}: letters, digits, '.', '_', '-'")
    return recording_id


class RecordingStorage(Protocol):
    """Put, get and delete sealed recordings by id (blocking: called from worker threads).
    A remote store raises :class:`StorageUnavailable` when it does not answer."""

    def put(self, recording_id: str, data: bytes) -> None: ...

    def get(self, recording_id: str) -> bytes: ...

    def delete(self, recording_id: str) -> bool:
        """Whether there was something to delete."""
        ...


class DirectoryStore:
    """``<dir>/<2 hex>/<id>.hlr``, directories 0700, files 0600. ``write`` is ``os.write``
    (a test passes one that fails, as a full disk does)."""

    def __init__(self, directory: str | os.PathLike[str],
                 write: Callable[[int, bytes], int] = os.write) -> None:
        self.directory = Path(directory)
        self._write = write

    def path_of(self, recording_id: str) -> Path:
        check_recording_id(recording_id)
        fan = format(sum(recording_id.encode()) % 256, "02x")  # spreads ids of any shape
        return self.directory / fan / f"{recording_id}.hlr"

    def put(self, recording_id: str, data: bytes) -> None:
        path = self.path_of(recording_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.parent / f".{recording_id}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[self._write(fd, view.tobytes()):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def get(self, recording_id: str) -> bytes:
        try:
            return self.path_of(recording_id).read_bytes()
        except FileNotFoundError:
            raise RecordingNotStored(f"recording {recording_id}: not in {self.directory}") from None

    def delete(self, recording_id: str) -> bool:
        try:
            self.path_of(recording_id).unlink()
        except FileNotFoundError:
            return False
        return True
