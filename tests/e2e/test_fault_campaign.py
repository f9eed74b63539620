"""The fault campaign of issue 14 in its short form: each fault of
``benchmarks/load/faults/scenarios.py`` under a few concurrent callers on the real stack
(Asterisk 22, redis-server, ``ivr serve``, SIPp agents and operator).

What each test pins down, for its fault: no caller hears more than 2 s of dead air before a
human answers (measured on the caller's own channel, :mod:`benchmarks.load.faults.hearing`),
none is dropped without reaching an agent or the operator (Asterisk's own restart drops the
calls it carries: counted apart), every call that reached a human has exactly one work order
whose history matches its events, and a caller who rings after the heal reaches an agent
without anyone restarting anything. The full form (more callers) is
``python -m benchmarks.load.faults``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.load.faults.campaign import AGENTS, World, run
from benchmarks.load.faults.ear import Ear
from benchmarks.load.faults.scenario import table
from benchmarks.load.faults.scenarios import SCENARIOS
from testbed.asterisk import Asterisk

pytestmark = pytest.mark.e2e

CALLS = 3
RESULTS = Path("/tmp/hotline-fault-campaign.jsonl")
#: The faults the service meets the bar under today. Not here, each failing on the real
#: stack (README "Faults under load" says how): ``redis-slow``, ``ivr-kill`` and
#: ``speech-saturated``. They run in the full form (``python -m benchmarks.load.faults``),
#: and join this list when fixed.
HELD = ("redis-kill", "asterisk-restart", "spool-disk-full")


@pytest.fixture(scope="module")
def ear(asterisk: Asterisk) -> Iterator[Ear]:
    listening = Ear(asterisk).start()
    yield listening
    listening.stop()


@pytest.mark.parametrize("name", HELD)
def test_fault_under_load(name, hotline, agents, operator, asterisk, redis_server, ear,
                          tmp_path) -> None:
    """Under the fault ``name``, with three callers on the line (six speakers for the
    recognizer pool): at most 2 s of dead air, nobody dropped short of a human, no work order
    lost or doubled, and a new caller reaches an agent after the heal."""
    for agent in AGENTS:
        agents(agent, answer_after=0.3, hold_for=3.0)
    world = World(asterisk=asterisk, redis=redis_server, start=hotline, spool_root=tmp_path,
                  ear=ear)
    try:
        result = run(world, SCENARIOS[name], calls=CALLS)
    finally:
        if asterisk.running():
            asterisk.hangup_all()
    with RESULTS.open("a") as out:
        out.write(json.dumps(result.__dict__) + "\n")
    print("\n" + table([result]))
    assert result.passed, result.problems


def test_the_ci_faults_are_scenarios_of_the_campaign() -> None:
    """Every fault CI runs is one of the campaign's scenarios, so the short form and the full
    form measure the same thing."""
    assert set(HELD) <= set(SCENARIOS)
