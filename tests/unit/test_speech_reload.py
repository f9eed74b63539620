"""A config reload reaches speech: each language whose intents changed gets a new engine and
classifier for the next callers (SpeechGateway.refresh). Fake engines, a synchronous or a
hand-fired "thread"; no model is loaded and no socket opened."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import defer, task

from ivr.languages import Language
from ivr.speech import languages as speech_languages_cache
from ivr.speech.audiosocket import AudioSocketServer, Recognition
from ivr.speech.classifier import IntentClassifier
from ivr.speech.engines import EngineLoadError
from ivr.speech.gateway import SpeechGateway
from ivr.speech.pool import SpeechPool
from ivr.speech.schema import load_intents
from ivr.speech.testing import FakeEngine

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="module")
def english():
    return load_intents()


@pytest.fixture(scope="module")
def korean():
    return load_intents(CONFIG / "intents.ko.yaml")


def config_of(**intents_by_code: Any) -> SimpleNamespace:
    """A config with these languages (the first one is the default)."""
    languages = {
        code: Language(code=code, intents=intents, prompts=None, entry=f"main-{code}",
                       default=index == 0)
        for index, (code, intents) in enumerate(intents_by_code.items())
    }
    return SimpleNamespace(languages=languages)


class Loader:
    """Fake engine loader: a new FakeEngine per load; raises for the intents told to fail."""

    def __init__(self) -> None:
        self.loaded: list[Any] = []
        self.fail: set[str] = set()

    def __call__(self, intents: Any) -> FakeEngine:
        if intents.speech.language in self.fail:
            raise EngineLoadError(f"vosk model not found: /models/{intents.speech.language}")
        engine = FakeEngine(("hello",))
        self.loaded.append(engine)
        return engine


def gateway_for(cfg: SimpleNamespace) -> SpeechGateway:
    """A gateway serving ``cfg`` as from_config would, with fake engines."""
    recognitions = {
        code: Recognition(FakeEngine(("hello",)), IntentClassifier(language.intents))
        for code, language in cfg.languages.items()
    }
    default = next(iter(recognitions.values()))
    server = AudioSocketServer(
        default.engine, default.classifier, SpeechPool.inline(), task.Clock(),
        languages=recognitions,
    )
    gateway = SpeechGateway(
        server, config=lambda: cfg, host_sound=lambda name: Path(f"/nonexistent/{name}.wav"),
        sound=lambda name: name, address=("127.0.0.1", 0),
    )
    gateway.built = {code: lang.intents.model_dump_json() for code, lang in cfg.languages.items()}
    return gateway


def inline(build):
    return defer.maybeDeferred(build)


def result(d: defer.Deferred) -> Any:
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the refresh did not finish"
    if isinstance(out[0], Exception | defer.Failure):
        raise AssertionError(out[0])
    return out[0]


def test_changed_intents_get_a_new_engine_and_classifier(english):
    """Ops add a keyword: the reload rebuilds English, and the next caller's words are read
    by the new classifier (urgency too) while the unchanged config rebuilds nothing."""
    gateway = gateway_for(config_of(en=english))
    before = gateway.server.languages["en"]
    assert before.classifier.classify("my gizmo").category != "fault"

    fault = english.categories["fault"]
    changed = english.model_copy(update={"categories": {
        **english.categories,
        "fault": fault.model_copy(update={"keywords": {**fault.keywords, "gizmo": 8.0}}),
    }})
    loader = Loader()
    rebuilt = result(gateway.refresh(config_of(en=changed), inline, loader))

    assert rebuilt == ["en"]
    after = gateway.server.languages["en"]
    assert after is not before and after.engine is loader.loaded[0]
    assert after.classifier.classify("my gizmo").category == "fault"
    # The default recognition (calls that name no language) follows.
    assert gateway.server.engine is after.engine
    assert result(gateway.refresh(config_of(en=changed), inline, loader)) == []
    assert gateway.server.languages["en"] is after and len(loader.loaded) == 1


def test_a_language_added_by_a_reload_gets_speech_and_a_removed_one_loses_it(english, korean):
    gateway = gateway_for(config_of(en=english))
    loader = Loader()
    english_recognition = gateway.server.languages["en"]

    assert result(gateway.refresh(config_of(en=english, ko=korean), inline, loader)) == ["ko"]
    assert set(gateway.server.languages) == {"en", "ko"}
    assert gateway.server.languages["en"] is english_recognition  # untouched
    assert gateway.server.languages["ko"].classifier.classify("요금").category == "inquiry"

    assert result(gateway.refresh(config_of(en=english), inline, loader)) == []
    assert set(gateway.server.languages) == {"en"} and set(gateway.built) == {"en"}


def test_a_model_that_fails_to_load_keeps_the_previous_one(english, korean, caplog):
    """English changes but its model cannot load: the old engine and classifier go on, the
    error names the file; a new Korean line whose model is missing gets no speech (its
    callers get the menu), and the next reload tries again."""
    gateway = gateway_for(config_of(en=english))
    old = gateway.server.languages["en"]
    loader = Loader()
    loader.fail = {english.speech.language, korean.speech.language}
    changed = english.model_copy(update={"confirm_below": 0.5})

    with caplog.at_level(logging.ERROR, logger="ivr.speech.gateway"):
        rebuilt = result(gateway.refresh(config_of(en=changed, ko=korean), inline, loader))
    assert rebuilt == []
    assert gateway.server.languages == {"en": old}
    assert "intents.yaml: speech: vosk model not found" in caplog.text
    assert "previous model kept" in caplog.text
    assert "intents.ko.yaml" in caplog.text and "DTMF menu" in caplog.text

    loader.fail = set()
    assert result(gateway.refresh(config_of(en=changed, ko=korean), inline, loader)) == [
        "en", "ko"]


def test_a_later_reload_wins_over_one_still_building(english):
    """Two reloads in a row: the first build finishes last and is dropped, so the config
    in force is the one served."""
    gateway = gateway_for(config_of(en=english))
    builds: list[tuple[Any, defer.Deferred]] = []

    def by_hand(build):
        d: defer.Deferred = defer.Deferred()
        builds.append((build, d))
        return d

    loader = Loader()
    first = gateway.refresh(config_of(en=english.model_copy(update={"confirm_below": 0.3})),
                            by_hand, loader)
    second = gateway.refresh(config_of(en=english.model_copy(update={"confirm_below": 0.4})),
                             by_hand, loader)
    (build_1, d_1), (build_2, d_2) = builds
    d_2.callback(build_2())
    assert result(second) == ["en"]
    served = gateway.server.languages["en"]
    d_1.callback(build_1())
    assert result(first) == []
    assert gateway.server.languages["en"] is served


def test_engines_no_language_uses_are_released():
    """The process-wide model cache forgets engines a reload replaced."""
    kept, replaced = object(), object()
    saved = dict(speech_languages_cache._engines)
    try:
        speech_languages_cache._engines.clear()
        speech_languages_cache._engines.update({("a",): kept, ("b",): replaced})
        assert speech_languages_cache.retain_engines([kept]) == 1
        assert list(speech_languages_cache._engines.values()) == [kept]
    finally:
        speech_languages_cache._engines.clear()
        speech_languages_cache._engines.update(saved)
