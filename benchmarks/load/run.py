"""The load benchmark: real SIP callers against the real stack, ramped by steps.

    python -m benchmarks.load.run --steps 10,20,40,60,80 --speaking 1/3 --step-s 60

Starts the testbed (Asterisk 22, redis-server, agent softphones: agent101-104 plus
``--agents`` more written into a copy of asterisk/, the operator, a customer phone for
callbacks) and ``ivr serve`` on a copy of config/ (those agents; no survey), then for each
step N holds N concurrent callers for about ``--step-s`` seconds (SIPp keeps N calls up,
``--rate`` new ones a second, until the step's calls are placed) and prints a row of the
step table: calls completed, set-up failures, time to first prompt, speech end to decision,
accuracy, queue wait, CPU and RSS per process, audio underruns and dead air on the callers'
side, the load average. ``--json`` prints the rows as JSON instead; ``--out FILE`` also keeps
every call's outcome. Every run of the stack must hold the machine's e2e lock::

    flock /tmp/hotline-e2e.lock python -m benchmarks.load.run ...
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import redis
import yaml

from benchmarks.load.cpu import ProcessWatch, share_of_box, with_children
from benchmarks.load.evidence import apply_evidence, gather
from benchmarks.load.fleet import CallerFleet, CallOutcome, sentence_frames
from benchmarks.load.mix import (
    CallerPlan,
    Sentence,
    mix_for_speaking,
    parse_mix,
    plan_mix,
    sentences_by_category,
)
from benchmarks.load.table import StepRow, markdown, step_row
from testbed.agentpool import agent_entries, config_with_agents, extra_agents
from testbed.checks import workorder
from testbed.service import CONFIG, HotlineService, config_copy
from testbed.softphones import SippAgent
from testbed.stack import AGENTS, Stack, service_environment

CUSTOMER_PORT = 5079  # asterisk/pjsip.conf [customer]: where callbacks ring the customer


def load_sentences(per_category: int, seed: int) -> tuple[list[Sentence], dict[str, list[bytes]]]:
    """Held-out eval-set sentences, a few per category, and their telephone audio as 20 ms
    mu-law frames (synthesized with piper once, cached in var/speech-eval/)."""
    from benchmarks.speech.synthesize import ensure_audio, load_eval_set

    rows = [row for row in load_eval_set() if row.get("split") == "heldout"]
    sentences = sentences_by_category(rows, per_category, seed)
    paths = ensure_audio([s.text for s in sentences])
    return sentences, {text: sentence_frames(path) for text, path in paths.items()}


def service_overrides(extra: Sequence[str], speech: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """config/ for the run: every agent (the shipped four and the extra ones), no survey,
    no periodic announcements, a short wrap-up (agents take the next call soon); ``speech``:
    keys of intents.yaml's ``speech`` to set (an engine or a stream count measured side by
    side with the shipped one)."""
    queues = yaml.safe_load((CONFIG / "queues.yaml").read_text())["queues"]
    overrides: dict[str, Any] = {
        "queues.yaml": {"queues": {name: {"wrapup_s": 1, "ring_timeout_s": 10,
                                          "announcements": {"period_s": 600}}
                                   for name in queues}},
        "menus.yaml": {"survey": {"enabled": False}},
    }
    if speech:
        overrides["intents.yaml"] = {"speech": dict(speech)}
    return overrides


def speech_settings(pairs: Sequence[str]) -> dict[str, Any]:
    """``--speech KEY=VALUE`` options -> intents.yaml ``speech`` keys (values read as YAML:
    ``max_streams=24`` is a number)."""
    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--speech {pair!r}: want KEY=VALUE, e.g. max_streams=24")
        settings[key.strip()] = yaml.safe_load(value)
    return settings


def calls_for(concurrent: int, step_s: float, call_s: float) -> int:
    """How many calls keep ``concurrent`` up for ``step_s``, each lasting about ``call_s``."""
    return max(concurrent, round(concurrent * step_s / call_s))


def run_step(
    concurrent: int, plans: list[CallerPlan], speech: dict[str, list[bytes]], stack: Stack,
    service: HotlineService, db: redis.Redis, log_dir: Path, rate: float, step_s: float,
) -> tuple[StepRow, list[CallOutcome]]:
    assert stack.asterisk.process and stack.redis and stack.redis.process and service.process
    since = _last_event_id(db)
    watch = ProcessWatch({
        "asterisk": [stack.asterisk.process.pid],
        "ivr serve": with_children(service.process.pid),  # with its decoder processes
        "redis-server": [stack.redis.process.pid],
        "softphones": [a.process.pid for a in stack.agents.values() if a.process],
        "driver": [os.getpid()],
    })
    fleet = CallerFleet(plans, log_dir / f"step-{concurrent}", speech)
    started = time.monotonic()
    watch.start()
    outcomes = fleet.run(concurrency=concurrent, rate=rate, timeout_s=step_s * 3 + 180)
    watch.stop()
    wall = time.monotonic() - started
    time.sleep(1.0)  # the last work orders' writes
    events = _events_after(db, since)
    operator = stack.agents.get("operator")
    phone_log = [(e.kind, e.call_id, e.detail) for e in operator.events()] if operator else []
    evidence = gather(
        events, lambda call_id: workorder(service, call_id),
        service.log_path.read_text(errors="replace"), phone_log,
    )
    apply_evidence(outcomes, evidence)
    cpu = {name: share_of_box(seconds, wall) for name, seconds in watch.cpu_s.items()}
    rss = {name: value / 2**20 for name, value in watch.peak_rss.items()}
    row = step_row(concurrent, outcomes, cpu, rss, round(os.getloadavg()[0], 2), wall)
    with contextlib.suppress(TimeoutError):
        stack.asterisk.wait_until_idle(timeout=30)
    if stack.asterisk.channels():
        stack.asterisk.hangup_all()
    return row, outcomes


def _last_event_id(db: redis.Redis) -> str:
    last: list[tuple[str, dict[str, str]]] = db.xrevrange("hotline:events", count=1)  # type: ignore[assignment]  # redis-py types replies as a union
    return last[0][0] if last else "0-0"


def _events_after(db: redis.Redis, since: str) -> list[dict[str, str]]:
    rows: list[tuple[str, dict[str, str]]] = db.xrange(  # type: ignore[assignment]  # as above
        "hotline:events", min=f"({since}")
    return [fields for _id, fields in rows]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load.run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="10,20,40,60,80",
                        help="concurrent callers of each step, comma-separated")
    parser.add_argument("--speaking", default="1/3",
                        help="share of callers who speak their request (e.g. 1/3, 0.25)")
    parser.add_argument("--mix", default=None,
                        help="the whole mix instead: kind=share,... (kinds: speak, keys, "
                             "menu-hangup, queue-hangup, callback)")
    parser.add_argument("--step-s", type=float, default=60.0,
                        help="how long each step keeps its callers up")
    parser.add_argument("--call-s", type=float, default=25.0,
                        help="about how long one call lasts (sizes the number of calls)")
    parser.add_argument("--rate", type=float, default=None,
                        help="new calls per second (default: the step's size / 5)")
    parser.add_argument("--agents", type=int, default=20,
                        help="agent softphones besides agent101-104")
    parser.add_argument("--talk-s", type=float, default=6.0, help="agents' talk time")
    parser.add_argument("--sentences", type=int, default=6, help="sentences per category")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--out", type=Path, default=None,
                        help="write rows and every call's outcome here (JSON)")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="keep SIPp logs, the service log and the softphones' logs here")
    parser.add_argument("--speech", action="append", default=[], metavar="KEY=VALUE",
                        help="set a key of intents.yaml's speech for the run (repeatable), "
                             "e.g. engine=pocketsphinx+whisper, max_streams=24")
    return parser.parse_args(argv)


@contextlib.contextmanager
def load_stack(agents: int, talk_s: float, log_dir: Path,
               speech: dict[str, Any] | None = None) -> Iterator[LoadStack]:
    """The stack a load run drives: the testbed (Asterisk with ``agents`` more softphones,
    redis-server, the operator, a customer phone for callbacks) and ``ivr serve`` on a copy
    of config/ with those agents (:func:`service_overrides`)."""
    extra = extra_agents(agents)
    asterisk_dir = config_with_agents(extra, log_dir / "asterisk")
    config_dir = config_copy(service_overrides(extra, speech))
    table = {"agents": {**yaml.safe_load((CONFIG / "agents.yaml").read_text())["agents"],
                        **agent_entries(extra)}}
    (config_dir / "agents.yaml").write_text(yaml.safe_dump(table, allow_unicode=True))
    stack = Stack(agents=[*AGENTS, *extra], answer_after=1.0, hold_for=talk_s,
                  log_dir=log_dir / "softphones", asterisk_config_dir=asterisk_dir)
    customer = SippAgent("customer", port=CUSTOMER_PORT, answer_after=1.0, hold_for=3.0,
                         log_dir=log_dir / "softphones" / "customer")
    with stack, customer:
        env = service_environment(stack.state(), str(log_dir / "spool"))
        with HotlineService(env, config_dir=config_dir, log_path=log_dir / "ivr-serve.log") \
                as service:
            db = redis.Redis.from_url(stack.redis.url if stack.redis else "",
                                      decode_responses=True)
            yield LoadStack(stack, service, db)


@dataclass(frozen=True)
class LoadStack:
    stack: Stack
    service: HotlineService
    db: redis.Redis


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    steps = [int(n) for n in args.steps.split(",") if n.strip()]
    mix = parse_mix(args.mix) if args.mix else mix_for_speaking(float(Fraction(args.speaking)))
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="hotline-load-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    sentences, speech = load_sentences(args.sentences, args.seed)
    rows: list[StepRow] = []
    calls: dict[int, list[dict[str, Any]]] = {}
    with load_stack(args.agents, args.talk_s, log_dir, speech_settings(args.speech)) as run:
        for concurrent in steps:
            count = calls_for(concurrent, args.step_s, args.call_s)
            plans = plan_mix(count, mix, sentences, args.seed + concurrent,
                             step=str(concurrent))
            rate = args.rate or max(1.0, concurrent / 5)
            row, outcomes = run_step(concurrent, plans, speech, run.stack, run.service, run.db,
                                     log_dir, rate, args.step_s)
            rows.append(row)
            calls[concurrent] = [_outcome_json(out) for out in outcomes]
            if not args.json:
                print(f"step {concurrent}: {row.calls} calls, reached {row.reached}, "
                      f"{row.wall_s} s, load {row.load_average}; first prompt p50 by "
                      f"piece (ms): {row.first_prompt_split_p50_ms}", file=sys.stderr)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2))
    else:
        print(markdown(rows))
        print(f"\nlogs: {log_dir}", file=sys.stderr)
    if args.out:
        args.out.write_text(json.dumps({"steps": [row.as_json() for row in rows],
                                        "calls": calls, "mix": mix}, indent=2))
    return 0


def _outcome_json(out: CallOutcome) -> dict[str, Any]:
    data = asdict(out)
    data["underruns"] = len(out.underruns)
    data["time_to_first_prompt_s"] = out.time_to_first_prompt_s
    return data


if __name__ == "__main__":
    sys.exit(main())
