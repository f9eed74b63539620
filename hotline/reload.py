"""Reload the config when its files change: the same reload as SIGHUP, by polling.

Polling the files' ``stat`` every couple of seconds needs no inotify (containers, network file
systems and ConfigMap symlink swaps all show up as a changed inode, size or mtime) and costs a
handful of syscalls. An editor or a deployment writes several files, or one file in several
steps, so the watcher waits until the directory has **stopped changing for one poll** before it
reloads: a half-written file is never read. The reload itself validates first and keeps the last
good config on error (:meth:`hotline.service.ConfigHolder.reload`); a refused config is not retried
until the files change again, so a bad edit logs its problems once, not every poll.

States (``_state``):

- ``idle``: the files are as at the last reload (or start); a poll that sees a change moves
  to ``settling``.
- ``settling``: a change was seen; the next poll that sees the same files reloads and goes
  back to ``idle``; one that sees yet another change stays ``settling``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import task

log = logging.getLogger(__name__)

Fingerprint = dict[str, tuple[int, int, int] | None]

IDLE = "idle"
SETTLING = "settling"


def fingerprint(directory: Path, pattern: str = "*.yaml") -> Fingerprint:
    """``{file name: (inode, size, mtime_ns)}`` for the config files; ``None`` when a file
    vanished between listing and stat."""
    out: Fingerprint = {}
    try:
        paths = sorted(directory.glob(pattern))
    except OSError:
        return out
    for path in paths:
        try:
            st = os.stat(path)  # follows symlinks: a swapped ConfigMap target is a change
        except OSError:
            out[path.name] = None
            continue
        out[path.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


class ConfigWatcher:
    """Poll ``directory`` every ``interval_s`` and call ``reload`` once it settled after a
    change. ``reload`` returns whether the new config was accepted (for the log)."""

    def __init__(
        self,
        directory: Path,
        reload: Callable[[], bool],
        *,
        clock: Any,
        interval_s: float = 2.0,
        pattern: str = "*.yaml",
    ) -> None:
        self.directory = Path(directory)
        self.reload = reload
        self.clock = clock
        self.interval_s = interval_s
        self.pattern = pattern
        self._state = IDLE
        self._seen = fingerprint(self.directory, pattern)
        self._loop: task.LoopingCall | None = None

    def start(self) -> None:
        self._seen = fingerprint(self.directory, self.pattern)
        self._state = IDLE
        self._loop = task.LoopingCall(self.poll)
        self._loop.clock = self.clock
        self._loop.start(self.interval_s, now=False).addErrback(
            lambda failure: log.error("config watcher stopped: %s", failure.getErrorMessage())
        )

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def poll(self) -> None:
        """One look at the files (the LoopingCall's body)."""
        now = fingerprint(self.directory, self.pattern)
        if now != self._seen:
            if self._state == IDLE:
                log.info("config files changed (%s): reloading once they settle",
                         ", ".join(_changed(self._seen, now)))
            self._seen = now
            self._state = SETTLING
            return
        if self._state == SETTLING:
            self._state = IDLE
            try:
                accepted = self.reload()
            except Exception:
                # the watcher must outlive any bug in a reload: ops still have SIGHUP
                log.exception("config reload after a file change failed")
                return
            if accepted:
                log.info("config in %s changed on disk and was reloaded", self.directory)


def _changed(before: Fingerprint, after: Fingerprint) -> list[str]:
    names = sorted(set(before) | set(after))
    return [n for n in names if before.get(n, ...) != after.get(n, ...)]
