"""The config-file watcher (task.Clock, a temp directory) and the reload it triggers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml
from twisted.internet import task

from hotline.reload import ConfigWatcher
from hotline.service import ConfigHolder
from testbed.service import config_copy

POLL = 2.0


class Reloads:
    """A reload callable that records its calls and answers as told."""

    def __init__(self, accept: bool = True) -> None:
        self.count = 0
        self.accept = accept

    def __call__(self) -> bool:
        self.count += 1
        return self.accept


_tick = [1_800_000_000_000_000_000]


def write(path: Path, text: str) -> None:
    """Write and give the file a fresh mtime (file systems with coarse mtimes would not)."""
    path.write_text(text)
    _tick[0] += 1_000_000_000
    os.utime(path, ns=(_tick[0], _tick[0]))


@pytest.fixture
def watched(tmp_path: Path) -> tuple[task.Clock, Reloads, ConfigWatcher, Path]:
    write(tmp_path / "queues.yaml", "queues: {}\n")
    clock, reloads = task.Clock(), Reloads()
    watcher = ConfigWatcher(tmp_path, reloads, clock=clock, interval_s=POLL)
    watcher.start()
    return clock, reloads, watcher, tmp_path


def test_unchanged_files_never_reload(watched) -> None:
    """Polling a directory whose files do not change reloads nothing, however long."""
    clock, reloads, _watcher, _dir = watched
    clock.pump([POLL] * 50)
    assert reloads.count == 0


def test_a_change_reloads_once_after_it_settled(watched) -> None:
    """The poll that sees a change waits; the next one, seeing the same files, reloads once;
    later polls do nothing more."""
    clock, reloads, _watcher, directory = watched
    write(directory / "queues.yaml", "queues: {a: 1}\n")
    clock.advance(POLL)
    assert reloads.count == 0
    clock.advance(POLL)
    assert reloads.count == 1
    clock.pump([POLL] * 5)
    assert reloads.count == 1


def test_a_file_still_being_written_is_not_read(watched) -> None:
    """While the files keep changing at every poll (a deployment writing several files),
    nothing is reloaded; one reload follows once they stop."""
    clock, reloads, _watcher, directory = watched
    for n in range(4):
        write(directory / "queues.yaml", f"queues: {{a: {n}}}\n")
        clock.advance(POLL)
    assert reloads.count == 0
    clock.advance(POLL)
    assert reloads.count == 1


def test_new_and_removed_files_are_changes(watched) -> None:
    """A config file appearing or disappearing triggers a reload like an edit does (a
    missing required file is then reported by the validation); other files are ignored."""
    clock, reloads, _watcher, directory = watched
    write(directory / "routing.yaml", "rules: {}\n")
    clock.pump([POLL, POLL])
    assert reloads.count == 1
    (directory / "routing.yaml").unlink()
    clock.pump([POLL, POLL])
    assert reloads.count == 2
    write(directory / "notes.txt", "not config")
    clock.pump([POLL, POLL])
    assert reloads.count == 2


def test_a_refused_config_is_not_retried_until_the_files_change(tmp_path: Path) -> None:
    """A bad edit is reloaded (and refused) once, not at every poll; fixing the file
    triggers the next reload."""
    write(tmp_path / "queues.yaml", "queues: {}\n")
    clock, reloads = task.Clock(), Reloads(accept=False)
    ConfigWatcher(tmp_path, reloads, clock=clock, interval_s=POLL).start()
    write(tmp_path / "queues.yaml", "queues: [broken\n")
    clock.pump([POLL] * 10)
    assert reloads.count == 1
    write(tmp_path / "queues.yaml", "queues: {}\n")
    clock.pump([POLL] * 2)
    assert reloads.count == 2


def test_a_failing_reload_does_not_stop_the_watcher(tmp_path: Path, caplog) -> None:
    """A bug in the reload is logged with its traceback and the watcher keeps polling, so
    the next change is still picked up."""
    write(tmp_path / "queues.yaml", "queues: {}\n")
    calls = []

    def broken() -> bool:
        calls.append(1)
        raise RuntimeError("boom")

    clock = task.Clock()
    ConfigWatcher(tmp_path, broken, clock=clock, interval_s=POLL).start()
    with caplog.at_level(logging.ERROR, logger="hotline.reload"):
        write(tmp_path / "queues.yaml", "queues: {a: 1}\n")
        clock.pump([POLL, POLL])
    assert "boom" in caplog.text
    write(tmp_path / "queues.yaml", "queues: {a: 2}\n")
    clock.pump([POLL, POLL])
    assert len(calls) == 2


def test_stop_ends_polling(watched) -> None:
    """After ``stop`` no poll runs: changes are not picked up and no call is left pending
    on the clock."""
    clock, reloads, watcher, directory = watched
    watcher.stop()
    write(directory / "queues.yaml", "queues: {a: 1}\n")
    clock.pump([POLL] * 5)
    assert reloads.count == 0
    assert clock.getDelayedCalls() == []


def test_watcher_drives_the_sighup_reload_on_the_real_config(caplog) -> None:
    """End to end in one process, no sockets: the watcher on a copy of ``config/`` calls
    :meth:`ConfigHolder.reload`. A bad value is refused with a log line naming the file and
    the key, and the last good config stays in force; a good change then takes effect in
    the routing config that the live router reads at every decision."""
    from ivr.config import load_config

    directory = config_copy()
    holder = ConfigHolder(load_config(directory))
    good = holder.current
    clock = task.Clock()
    ConfigWatcher(directory, holder.reload, clock=clock, interval_s=POLL).start()
    queues_file = directory / "queues.yaml"
    data = yaml.safe_load(queues_file.read_text())

    data["queues"]["faults"]["ring_timeout_s"] = "soon"
    write(queues_file, yaml.safe_dump(data))
    with caplog.at_level(logging.ERROR, logger="hotline.service"):
        clock.pump([POLL, POLL])
    assert "config reload refused" in caplog.text
    assert "queues.yaml" in caplog.text and "ring_timeout_s" in caplog.text
    assert holder.current is good

    data["queues"]["faults"]["ring_timeout_s"] = 7
    write(queues_file, yaml.safe_dump(data))
    clock.pump([POLL, POLL])
    assert holder.current is not good
    assert holder.routing().queues["faults"].ring_timeout_s == 7
