"""``python -m benchmarks.load.faults``: the fault campaign in full, on a stack of its own.

    python -m benchmarks.load.faults [--calls 10] [--only redis-kill,ivr-kill] [--json]

Starts the testbed (Asterisk 22, redis-server, agent101..104 and the operator as SIPp phones),
then for each scenario of :mod:`.scenarios` a fresh ``ivr serve`` (and its backup where the
scenario wants one) on a flushed Redis, ``--calls`` concurrent callers, the fault, the heal, a
new caller; prints the "Faults under load" table (README). Binds the testbed's fixed ports:
run it under ``flock /tmp/hotline-e2e.lock`` like the e2e tests, with ``PYTHONPATH=$PWD``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from redis import Redis

from benchmarks.load.faults.campaign import AGENTS, World, run
from benchmarks.load.faults.ear import Ear
from benchmarks.load.faults.scenario import FaultResult, table
from benchmarks.load.faults.scenarios import SCENARIOS
from testbed.service import CONFIG, HotlineService, config_copy, merge
from testbed.stack import Stack, service_environment

# The e2e tests' shorter timers (tests/e2e/conftest.py FAST): ring timeout, no wrap-up.
FAST: dict[str, Any] = {
    "queues.yaml": {"queues": {
        name: {"ring_timeout_s": 6, "wrapup_s": 0, "announcements": {"period_s": 600}}
        for name in yaml.safe_load((CONFIG / "queues.yaml").read_text())["queues"]}},
    "menus.yaml": {"survey": {"enabled": False}},
}


def starter(stack: Stack, root: Path) -> Any:
    """Starts ``ivr serve`` instances on ``stack`` as the e2e ``hotline`` fixture does."""
    environment = service_environment(stack.state())
    redis_url = environment["HOTLINE__REDIS__URL"]

    def start(agents: tuple[str, ...] = AGENTS, overrides: dict[str, Any] | None = None,
              instance: str = "hotline-1", agi_port: int = 4573, http_port: int = 8090,
              flush: bool = True) -> HotlineService:
        if flush:
            Redis.from_url(redis_url).flushdb()
        config_dir = config_copy(merge(FAST, overrides or {}))
        table = yaml.safe_load((CONFIG / "agents.yaml").read_text())["agents"]
        (config_dir / "agents.yaml").write_text(yaml.safe_dump(
            {"agents": {name: table[name] for name in agents}}, allow_unicode=True))
        env = {**environment, "HOTLINE__SPOOL_DIR": str(root / f"spool-{instance}")}
        service = HotlineService(env, config_dir=config_dir, instance=instance,
                                 agi_port=agi_port, http_port=http_port,
                                 log_path=root / f"{instance}.log")
        return service.start()

    return start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load.faults",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10, help="concurrent callers per fault")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--json", action="store_true", help="one JSON object per fault")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    root = Path(tempfile.mkdtemp(prefix="hotline-faults-"))
    results: list[FaultResult] = []
    with Stack(answer_after=0.3, hold_for=3.0, log_dir=root / "phones") as stack:
        assert stack.redis is not None
        ear = Ear(stack.asterisk).start()
        try:
            for name in names:
                (root / name).mkdir()  # its own spool and logs: nothing left from the last
                world = World(asterisk=stack.asterisk, redis=stack.redis,
                              start=starter(stack, root / name), spool_root=root / name,
                              ear=ear)
                try:
                    results.append(run(world, SCENARIOS[name], calls=args.calls))
                finally:
                    for service in world.services.values():
                        service.stop()
                    if stack.asterisk.running():
                        stack.asterisk.hangup_all()
                print(json.dumps(results[-1].__dict__) if args.json
                      else table(results[-1:]).splitlines()[-1], flush=True)
        finally:
            ear.stop()
    if not args.json:
        print(table(results))
    print(f"logs: {root}", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
