"""The whole local stack in one object: redis-server, Asterisk, agent softphones, operator.

    with Stack() as stack:          # redis + Asterisk + agent101..agent104 + operator
        stack.asterisk.originate_caller(script="w1|d1", caller_num="5551234")
        stack.agents["agent101"].wait_for("ANSWERED")

For the demo, ``python -m testbed up`` starts the same stack detached from the terminal and
writes ``var/testbed/state.json`` (pids, ports, paths, the ARI password, the Redis URL);
``python -m testbed status`` reads it back and checks each process; ``python -m testbed down``
stops everything it lists. The FastAGI service itself (``ivr serve``) is not part of the
stack: it is the thing under test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from testbed.asterisk import REPO_ROOT, Asterisk
from testbed.redis import RedisServer
from testbed.softphones import SippAgent

AGENTS = ("agent101", "agent102", "agent103", "agent104")
STATE_DIR = REPO_ROOT / "var" / "testbed"
STATE_PATH = STATE_DIR / "state.json"


class Stack:
    """Starts and stops the stack's processes together; ``stop()`` undoes a partial start."""

    def __init__(
        self,
        agents: Iterable[str] = AGENTS,
        behaviour: str = "answer",
        answer_after: float = 1.0,
        hold_for: float = 20.0,
        operator: bool = True,
        redis: bool = True,
        chroot: str | None = None,
        log_dir: Path | None = None,
        asterisk_config_dir: Path | None = None,
        detached: bool = False,
    ) -> None:
        self.log_dir = log_dir
        # first: it refuses when none is installed. ``asterisk_config_dir``: another asterisk/
        # (testbed.agentpool writes one with more agents)
        self.asterisk = (Asterisk(chroot=chroot) if asterisk_config_dir is None
                         else Asterisk(config_dir=asterisk_config_dir, chroot=chroot))
        self.redis = RedisServer(outlive_starter=detached) if redis else None
        names = [*agents, *(["operator"] if operator else [])]
        self.agents = {
            name: SippAgent(name, behaviour=behaviour, answer_after=answer_after,
                            hold_for=hold_for,
                            log_dir=(log_dir / name) if log_dir else None)
            for name in names
        }

    def start(self) -> Stack:
        try:
            if self.redis:
                self.redis.start()
            self.asterisk.start()
            for agent in self.agents.values():
                agent.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        self.asterisk.stop()
        if self.redis:
            self.redis.cleanup()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def state(self) -> dict[str, object]:
        """What ``python -m testbed status|down`` (and a demo script) needs to find it all."""
        asterisk = self.asterisk
        assert asterisk.process is not None
        return {
            "asterisk": {
                "pid": asterisk.process.pid,
                "chroot": asterisk.chroot,
                "run_dir": str(asterisk.run_dir),
                "cli": asterisk._command("-rx"),  # + one CLI command
                "log": str(asterisk.log_path),
                "sounds_dir": str(asterisk.sounds_dir),
                "asterisk_sounds_dir": asterisk.asterisk_sounds_dir,
                "ari_url": asterisk.ari_url,
                "ari_user": asterisk.ari_user,
                "ari_password": asterisk.ari_password,
                "ami_secret": asterisk.ami_secret,
            },
            "redis": (
                {"pid": self.redis.process.pid, "url": self.redis.url, "dir": str(self.redis.dir)}
                if self.redis and self.redis.process else None
            ),
            "softphones": {
                name: {"pid": agent.process.pid, "port": agent.port,
                       "behaviour": agent.behaviour, "log": str(agent.log_path)}
                for name, agent in self.agents.items() if agent.process
            },
        }


# --- the detached demo stack ---------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (our own child, not yet reaped) counts as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _terminate(pid: int, grace: float = 5.0) -> None:
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def read_state() -> dict[str, object] | None:
    if not STATE_PATH.exists():
        return None
    return json.loads(STATE_PATH.read_text())


def up(**options: object) -> dict[str, object]:
    """Start a detached stack (processes outlive this call) and record it in STATE_PATH."""
    state = read_state()
    if state and status(state)["asterisk"]:
        raise RuntimeError(f"a testbed stack is already up ({STATE_PATH}); "
                           "`python -m testbed down` first")
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    stack = Stack(log_dir=STATE_DIR / "softphones", detached=True, **options)  # type: ignore[arg-type]
    stack.start()
    state = stack.state()
    STATE_PATH.write_text(json.dumps(state, indent=2) + "\n")
    STATE_PATH.chmod(0o600)  # it holds the ARI password
    return state


def status(state: dict[str, object] | None = None) -> dict[str, bool]:
    """Which recorded processes are alive."""
    state = state if state is not None else read_state()
    if not state:
        return {}
    alive: dict[str, bool] = {}
    asterisk = state.get("asterisk")
    if isinstance(asterisk, dict):
        alive["asterisk"] = _alive(int(asterisk["pid"]))
    redis = state.get("redis")
    if isinstance(redis, dict):
        alive["redis"] = _alive(int(redis["pid"]))
    softphones = state.get("softphones")
    if isinstance(softphones, dict):
        for name, phone in softphones.items():
            alive[name] = _alive(int(phone["pid"]))
    return alive


def down() -> list[str]:
    """Stop everything STATE_PATH lists; returns what was stopped."""
    state = read_state()
    if not state:
        return []
    stopped = []
    asterisk = state.get("asterisk")
    if isinstance(asterisk, dict) and _alive(int(asterisk["pid"])):
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run([*asterisk["cli"], "core stop now"],
                           capture_output=True, timeout=10, check=False)
        _terminate(int(asterisk["pid"]))
        stopped.append("asterisk")
    for key in ("softphones",):
        phones = state.get(key)
        if isinstance(phones, dict):
            for name, phone in phones.items():
                if _alive(int(phone["pid"])):
                    _terminate(int(phone["pid"]))
                    stopped.append(name)
    redis = state.get("redis")
    if isinstance(redis, dict) and _alive(int(redis["pid"])):
        _terminate(int(redis["pid"]))
        stopped.append("redis")
    if isinstance(redis, dict):
        shutil.rmtree(redis["dir"], ignore_errors=True)
    STATE_PATH.unlink(missing_ok=True)
    return stopped


# The test stack's master key (privacy.keys): fixed so that ``ivr serve`` and ``ivr call`` of
# one stack open each other's work orders. Test data only; never a production key.
TESTBED_MASTER_KEY = "testbed:dGVzdGJlZC1tYXN0ZXIta2V5LW5vdC1mb3ItcHJvZCE="


def service_environment(state: dict[str, object], spool_dir: str | None = None) -> dict[str, str]:
    """Environment overrides (``ivr/config.py``) that point ``ivr serve``/``ivr call`` at the
    stack in ``state``: its Redis, its Asterisk's ARI password and sounds directory."""
    asterisk = state["asterisk"]
    assert isinstance(asterisk, dict)
    env = {
        "HOTLINE__ASTERISK__ROOT": str(asterisk["chroot"] or ""),
        "HOTLINE__ASTERISK__SOUNDS_DIR": str(asterisk["asterisk_sounds_dir"]),
        "HOTLINE__ARI__URL": str(asterisk["ari_url"]).removesuffix("/ari"),
        "HOTLINE_ARI_PASSWORD": str(asterisk["ari_password"]),
        "HOTLINE_AMI_SECRET": str(asterisk.get("ami_secret", "")),
        "HOTLINE_MASTER_KEY": TESTBED_MASTER_KEY,
        "HOTLINE__SPOOL_DIR": spool_dir or str(Path(str(asterisk["run_dir"])) / "spool"),
    }
    redis = state.get("redis")
    if isinstance(redis, dict):
        env["HOTLINE__REDIS__URL"] = str(redis["url"])
    return env
