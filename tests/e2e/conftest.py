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
    hotline       function: ``hotline(agents=("agent103",), overrides={...}) -> service``
                  starts ``ivr serve`` (testbed.service) on a flushed Redis, with a copy of
                  config/ shortened for tests (FAST) plus ``overrides``, only ``agents``
                  (an ``agents.yaml`` override edits those agents' entries)
    db            function: a Redis client (decoded strings) on the test Redis

Ports: SIP 5060, ARI 8088, FastAGI 4573 (primary) and 4574 (backup), softphones 5070-5079,
all on 127.0.0.1: one e2e run at a time per network. Under pytest-xdist each worker enters a
network namespace of its own before its first e2e test (testbed.plugin), so
``pytest -n 2 -m e2e`` runs two stacks side by side, each with its own 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from testbed.asterisk import Asterisk, AsteriskFailed, AsteriskNotInstalled
from testbed.redis import RedisServer
from testbed.service import CONFIG, HotlineService, config_copy, merge
from testbed.softphones import SippAgent
from testbed.stack import TESTBED_MASTER_KEY


@pytest.hookimpl(tryfirst=True)  # before -m deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is end-to-end, marked or not: scripts/test.sh runs the
    others in parallel workers, and these bind the fixed ports above."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.e2e)


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


# Shorter timers for tests (ring timeout, wrap-up, announcements); behaviour is unchanged.
FAST: dict[str, Any] = {
    "queues.yaml": {
        "queues": {
            name: {"ring_timeout_s": 6, "wrapup_s": 0, "announcements": {"period_s": 600}}
            for name in yaml.safe_load((CONFIG / "queues.yaml").read_text())["queues"]
        }
    },
    "menus.yaml": {"survey": {"enabled": False}},
}


def _agents_only(*names: str) -> dict[str, Any]:
    table = yaml.safe_load((CONFIG / "agents.yaml").read_text())["agents"]
    return {name: table[name] for name in names}


ServiceFactory = Callable[..., HotlineService]


@pytest.fixture
def hotline(
    asterisk: Asterisk, redis_server: RedisServer, tmp_path: Path
) -> Iterator[ServiceFactory]:
    started: list[HotlineService] = []

    def start(
        agents: tuple[str, ...] = ("agent101", "agent102", "agent103", "agent104"),
        overrides: dict[str, Any] | None = None,
        instance: str = "hotline-1",
        agi_port: int = 4573,
        http_port: int = 8090,
        flush: bool = True,
    ) -> HotlineService:
        if flush:
            redis.Redis.from_url(redis_server.url).flushdb()
        config_dir = config_copy(merge(FAST, overrides or {}))
        # Only the named agents; an ``agents.yaml`` override edits their entries.
        table = merge({"agents": _agents_only(*agents)}, (overrides or {}).get("agents.yaml", {}))
        (config_dir / "agents.yaml").write_text(yaml.safe_dump(table, allow_unicode=True))
        env = {
            "HOTLINE__ASTERISK__ROOT": asterisk.chroot or "",
            "HOTLINE__ASTERISK__SOUNDS_DIR": asterisk.asterisk_sounds_dir,
            "HOTLINE__ARI__URL": asterisk.ari_url.removesuffix("/ari"),
            "HOTLINE_ARI_PASSWORD": asterisk.ari_password,
            "HOTLINE_AMI_SECRET": asterisk.ami_secret,
            "HOTLINE_MASTER_KEY": TESTBED_MASTER_KEY,
            "HOTLINE__REDIS__URL": redis_server.url,
            "HOTLINE__SPOOL_DIR": str(tmp_path / f"spool-{instance}"),
        }
        service = HotlineService(
            env, config_dir=config_dir, instance=instance, agi_port=agi_port,
            http_port=http_port, log_path=tmp_path / f"{instance}.log",
        )
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def db(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url, decode_responses=True)
