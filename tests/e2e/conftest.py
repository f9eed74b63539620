"""Fixtures for end-to-end tests against the real stack (testbed/).

    asterisk      session: one Asterisk for the whole run (testbed.asterisk.Asterisk), started
                  from asterisk/ with a fresh run directory; a missing Asterisk fails the
                  tests (run scripts/setup-debian.sh), it never skips them
    redis_server  session: a throw-away redis-server on a free port (testbed.redis)
    agents        function: ``agents("agent101", behaviour="answer", answer_after=0.3,
                  hold_for=2.0) -> SippAgent``, started now, stopped after the test
    operator      function: the operator's softphone (127.0.0.1:5070), answering
    caller        function: ``caller(script="w1|d12", number=..., name=...) -> channel id``
                  places a simulated caller (Local/s@caller-sim into s@hotline, via ARI);
                  after the test every call is hung up and Asterisk is idle again

Ports: SIP 5060, ARI 8088, FastAGI 4573 (primary) and 4574 (backup), softphones 5070-5074,
all on 127.0.0.1: one e2e run at a time per machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.asterisk import Asterisk, AsteriskFailed, AsteriskNotInstalled
from testbed.redis import RedisServer
from testbed.softphones import SippAgent


@pytest.fixture(scope="session")
def asterisk() -> Iterator[Asterisk]:
    try:
        instance = Asterisk()
        instance.start()
    except (AsteriskNotInstalled, AsteriskFailed) as exc:
        pytest.fail(f"the e2e tests need a running Asterisk 22: {exc}", pytrace=False)
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


AgentFactory = Callable[..., SippAgent]


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[AgentFactory]:
    started: list[SippAgent] = []

    def start(name: str = "agent101", behaviour: str = "answer", answer_after: float = 0.3,
              hold_for: float = 2.0, **options: object) -> SippAgent:
        agent = SippAgent(name, behaviour=behaviour, answer_after=answer_after,
                          hold_for=hold_for, log_dir=tmp_path / name, **options)  # type: ignore[arg-type]
        started.append(agent)
        return agent.start()

    yield start
    for agent in started:
        agent.stop()


@pytest.fixture
def operator(agents: AgentFactory) -> SippAgent:
    return agents("operator", behaviour="answer", answer_after=0.2, hold_for=1.0)


CallerFactory = Callable[..., str]


@pytest.fixture
def caller(asterisk: Asterisk) -> Iterator[CallerFactory]:
    placed: list[str] = []

    def place(script: str = "", number: str = "5550100", name: str = "Test Caller",
              context: str = "hotline", **variables: str) -> str:
        channel_id = asterisk.originate_caller(script=script, caller_num=number,
                                               caller_name=name, context=context,
                                               variables=variables)
        placed.append(channel_id)
        return channel_id

    yield place
    for channel_id in placed:
        asterisk.hangup(channel_id)
    try:
        asterisk.wait_until_idle(timeout=5)
    except TimeoutError:
        asterisk.hangup_all()
        asterisk.wait_until_idle(timeout=5)
