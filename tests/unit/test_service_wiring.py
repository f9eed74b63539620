"""``ivr serve``'s wiring takes what the config says: the FastAGI server's limits come from
``service.yaml``, and the service's repeating loops sum up their failures."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address

from ivr.config import DEFAULT_CONFIG_DIR, HotlineConfig, load_config
from ivr.service import Hotline
from ivr.testing import SILENCE, FakeAsterisk


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def speechless_config(tmp_path: Path, service_yaml_edit: tuple[str, str]) -> HotlineConfig:
    """The shipped config with ``service.yaml`` edited and speech off (no model to load)."""
    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    service = target / "service.yaml"
    old, new = service_yaml_edit
    assert old in service.read_text()
    service.write_text(service.read_text().replace(old, new))
    for intents in target.glob("intents*.yaml"):
        text = intents.read_text()
        if "\nspeech:\n" in text:
            intents.write_text(text.replace("\nspeech:\n", "\nspeech:\n  enabled: false\n", 1))
    return load_config(target, environ={"HOTLINE_ARI_PASSWORD": ""})


def test_agi_command_timeout_comes_from_service_yaml(tmp_path: Path) -> None:
    """``agi.command_timeout_s: 2.5`` makes a real hotline call's first command (ANSWER, left
    unanswered by Asterisk) fail after 2.5 s, not after the 60 s default."""
    cfg = speechless_config(tmp_path, ("command_timeout_s: 60", "command_timeout_s: 2.5"))
    assert cfg.service.agi.command_timeout_s == 2.5
    clock = task.Clock()
    hotline = Hotline(cfg, clock)
    fake = FakeAsterisk(script="hotline", clock=clock, answers={"ANSWER": SILENCE})
    fake.connect(hotline.agi_factory().buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000)))
    timeouts_before = metric("hotline_agi_command_timeouts_total")
    assert fake.verbs == ["ANSWER"]
    clock.advance(2.4)
    assert not fake.closed
    clock.advance(0.2)
    assert fake.closed
    assert fake.agi_status == "FAILURE"
    assert metric("hotline_agi_command_timeouts_total") == timeouts_before + 1


def test_the_dispatcher_failing_every_round_is_logged_once_then_summed_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With Redis away the dispatcher fails every 0.25 s: ``Hotline``'s loop logs the first
    failure and then one summary per 30 s, not four lines a second."""
    cfg = speechless_config(tmp_path, ("instance: hotline-1", "instance: hotline-1"))
    clock = task.Clock()
    hotline = Hotline(cfg, clock)

    class RedisAway(ConnectionError):
        pass

    caplog.clear()  # "ARI is off", said once at start
    with caplog.at_level(logging.WARNING, logger="ivr.service"):
        for _ in range(4 * 60 + 1):  # a minute after the first failure
            clock.advance(0.25)
            failed = defer.fail(RedisAway("Error 111 connecting to 127.0.0.1:6379."))
            hotline._watched(failed, "dispatch")
    lines = [r.getMessage() for r in caplog.records if r.name == "ivr.service"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("dispatch failed: Error 111")
    assert all(line.startswith("dispatch still failing: ") for line in lines[1:])
