"""``python -m benchmarks.load.faults``: the fault campaign in full, on a stack of its own.

    python -m benchmarks.load.faults [--callers sip|local] [--calls N] [--seconds 60]
                                     [--only redis-kill,ivr-kill] [--json]

Starts the testbed (Asterisk 22, redis-server, the agents' and the operator's SIPp phones),
then for each scenario of :mod:`.scenarios` a fresh ``ivr serve`` (and its backup where the
scenario wants one) on a flushed Redis, the callers, the fault, the heal, a new caller;
prints the "Faults under load" table (README).

``--callers sip`` (the default, the issue's full form): ``--calls`` (default 30, half of the
capacity measured by ``benchmarks.load.run``) real SIP callers with RTP audio kept up for
``--seconds`` by the load benchmark's fleet, with 24 agents (:mod:`.sip`). ``--callers
local``: ``--calls`` (default 10) Local-channel callers with an ARI ear, CI's form
(:mod:`.campaign`). Binds the testbed's fixed ports: run it in the testbed's network
namespace (``python -m testbed.netns``) or under ``flock /tmp/hotline-e2e.lock``, with
``PYTHONPATH=$PWD``.
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
from benchmarks.load.faults.sip import SipLoad, run_sip
from testbed.agentpool import agent_entries, config_with_agents, extra_agents
from testbed.service import CONFIG, HotlineService, config_copy, merge
from testbed.stack import Stack, service_environment

SIP_AGENTS = 20  # beside agent101-104: the load benchmark's desk

# The e2e tests' shorter timers (tests/e2e/conftest.py FAST): ring timeout, no wrap-up.
FAST: dict[str, Any] = {
    "queues.yaml": {"queues": {
        name: {"ring_timeout_s": 6, "wrapup_s": 0, "announcements": {"period_s": 600}}
        for name in yaml.safe_load((CONFIG / "queues.yaml").read_text())["queues"]}},
    "menus.yaml": {"survey": {"enabled": False}},
}


def starter(stack: Stack, root: Path, extra: dict[str, Any] | None = None) -> Any:
    """Starts ``ivr serve`` instances on ``stack`` as the e2e ``hotline`` fixture does;
    ``extra``: agents.yaml entries of agents beyond the shipped ones."""
    environment = service_environment(stack.state())
    redis_url = environment["HOTLINE__REDIS__URL"]

    def start(agents: tuple[str, ...] = AGENTS, overrides: dict[str, Any] | None = None,
              instance: str = "hotline-1", agi_port: int = 4573, http_port: int = 8090,
              flush: bool = True) -> HotlineService:
        if flush:
            Redis.from_url(redis_url).flushdb()
        config_dir = config_copy(merge(FAST, overrides or {}))
        table = {**yaml.safe_load((CONFIG / "agents.yaml").read_text())["agents"],
                 **(extra or {})}
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
    parser.add_argument("--callers", choices=("sip", "local"), default="sip",
                        help="real SIP callers with RTP (sip) or Local channels (local)")
    parser.add_argument("--calls", type=int, default=None,
                        help="concurrent callers per fault (default: sip 30, local 10)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="sip: how long the fleet keeps its callers up")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--json", action="store_true", help="one JSON object per fault")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    root = Path(tempfile.mkdtemp(prefix="hotline-faults-"))
    results = (_sip(names, args, root) if args.callers == "sip"
               else _local(names, args.calls or 10, args.json, root))
    if not args.json:
        print(table(results))
    print(f"logs: {root}", file=sys.stderr)
    return 0 if all(r.passed for r in results) else 1


def _report(result: FaultResult, as_json: bool) -> None:
    print(json.dumps(result.__dict__) if as_json else table([result]).splitlines()[-1],
          flush=True)


def _local(names: list[str], calls: int, as_json: bool, root: Path) -> list[FaultResult]:
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
                    results.append(run(world, SCENARIOS[name], calls=calls))
                finally:
                    _stop(world, stack)
                _report(results[-1], as_json)
        finally:
            ear.stop()
    return results


def _sip(names: list[str], args: argparse.Namespace, root: Path) -> list[FaultResult]:
    """The campaign under the load benchmark's fleet, on its stack (24 agents answering
    after 1 s, 6 s of talk; a customer phone is not needed: nobody asks for a callback)."""
    from benchmarks.load.run import load_sentences

    sentences, speech = load_sentences(per_category=6, seed=1)
    extra = extra_agents(SIP_AGENTS)
    asterisk_dir = config_with_agents(extra, root / "asterisk")
    agents = (*AGENTS, *extra)
    results: list[FaultResult] = []
    with Stack(agents=agents, answer_after=1.0, hold_for=6.0, log_dir=root / "phones",
               asterisk_config_dir=asterisk_dir) as stack:
        assert stack.redis is not None
        ear = Ear(stack.asterisk).start()  # Asterisk's restart waits for ARI through it
        try:
            for name in names:
                (root / name).mkdir()
                world = World(asterisk=stack.asterisk, redis=stack.redis,
                              start=starter(stack, root / name, agent_entries(extra)),
                              spool_root=root / name, ear=ear, agents=agents)
                load = SipLoad(concurrent=args.calls or 30, seconds=args.seconds,
                               sentences=sentences, speech=speech, log_dir=root / name)
                try:
                    results.append(run_sip(world, SCENARIOS[name], load, lambda: {
                        phone: [(e.kind, e.call_id, e.detail) for e in softphone.events()]
                        for phone, softphone in stack.agents.items()}))
                finally:
                    _stop(world, stack)
                _report(results[-1], args.json)
        finally:
            ear.stop()
    return results


def _stop(world: World, stack: Stack) -> None:
    for service in world.services.values():
        service.stop()
    if stack.asterisk.running():
        stack.asterisk.hangup_all()


if __name__ == "__main__":
    sys.exit(main())
