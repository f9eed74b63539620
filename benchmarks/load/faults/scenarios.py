"""The faults of issue 14, each a :class:`~.scenario.Scenario`: break, hold, mend.

    redis-kill       redis-server SIGKILLed, restarted on its AOF
    redis-slow       redis-server paused (SIGSTOP/SIGCONT): connections stay open and nothing
                     answers, what ``DEBUG SLEEP`` does (the testbed's Redis refuses DEBUG)
    ivr-kill         ``ivr serve`` SIGKILLed with the backup instance running, then restarted
    asterisk-restart Asterisk stopped and started (the calls it carries end with it)
    spool-disk-full  the spool's disk (a 1 MiB tmpfs) filled, and Redis killed so the
                     service must spool
    speech-saturated more callers speak at once than the recognizer pool takes (one worker:
                     four leases), no fault injected
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

from benchmarks.load.faults.campaign import PRIMARY, World
from benchmarks.load.faults.scenario import Scenario


def _nothing(world: World) -> None:
    """No action: the load is the fault."""


def _redis_kill(world: World) -> None:
    world.redis.kill()


def _redis_start(world: World) -> None:
    world.redis.start()


def _redis_pid(world: World) -> int:
    assert world.redis.process is not None, "redis-server is not running"
    return world.redis.process.pid


def _redis_pause(world: World) -> None:
    os.kill(_redis_pid(world), signal.SIGSTOP)


def _redis_resume(world: World) -> None:
    os.kill(_redis_pid(world), signal.SIGCONT)


def _ivr_kill(world: World) -> None:
    world.primary.kill()


def _ivr_restart(world: World) -> None:
    world.start_service(PRIMARY, flush=False)  # same instance: same spool directory


def _asterisk_stop(world: World) -> None:
    world.asterisk.stop()


def _asterisk_start(world: World) -> None:
    world.asterisk.start()
    world.ear.wait_connected(30)


# The spool's disk: a tmpfs mounted on the primary's spool directory before it starts. It
# needs mount(2) (root, or CAP_SYS_ADMIN); a file-size limit (prlimit) would also cut the
# service's log and is not what a full disk does.
SMALL_DISK = "size=1m,mode=0700"


def _mount_small_disk(world: World) -> None:
    spool = world.spool_dir(PRIMARY.name)
    spool.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", SMALL_DISK, "hotline-spool", str(spool)],
                   check=True, capture_output=True)
    world.state["small_disk"] = spool


def _fill_disk_and_kill_redis(world: World) -> None:
    filler = world.spool_dir(PRIMARY.name) / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    world.redis.kill()


def _free_disk_and_start_redis(world: World) -> None:
    (world.spool_dir(PRIMARY.name) / "filler").unlink(missing_ok=True)
    world.redis.start()


def _unmount_small_disk(world: World) -> None:
    spool = world.state.get("small_disk")
    if spool is not None:
        subprocess.run(["umount", "-l", str(spool)], check=False, capture_output=True)


SCENARIOS = {
    s.name: s for s in (
        Scenario("redis-kill", "redis-server `kill -9`, restarted 5 s later",
                 _redis_kill, _redis_start, hold_s=5),
        Scenario("redis-slow", "redis-server paused 3 s (SIGSTOP, as `DEBUG SLEEP 3`)",
                 _redis_pause, _redis_resume, hold_s=3),
        Scenario("ivr-kill", "`ivr serve` `kill -9` (backup running), restarted 5 s later",
                 _ivr_kill, _ivr_restart, hold_s=5, backup=True),
        Scenario("asterisk-restart", "Asterisk stopped and started",
                 _asterisk_stop, _asterisk_start, hold_s=1, drops_calls=True,
                 note="the calls Asterisk carries end with it"),
        Scenario("spool-disk-full",
                 "spool disk full (1 MiB tmpfs filled) while redis-server is killed for 5 s",
                 _fill_disk_and_kill_redis, _free_disk_and_start_redis, hold_s=5,
                 prepare=_mount_small_disk, cleanup=_unmount_small_disk),
        Scenario("speech-saturated",
                 "recognizer pool saturated (1 worker, 4 leases, every caller speaks)",
                 _nothing, _nothing, hold_s=0, inject_after_s=0, callers="speech", calls=6,
                 overrides={"intents.yaml": {"speech": {"workers": 1, "max_streams": 4}}}),
    )
}
