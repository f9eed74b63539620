"""A first engine and whisper on one call (``speech.engine: pocketsphinx+whisper``,
``moonshine+whisper``): both hear every frame, the second decodes only when the first's words
make no confident request."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from ivr.speech.classifier import IntentClassifier
from ivr.speech.combination import (
    ALWAYS,
    SKIPPED,
    CombinedEngine,
    CombinedRecognizer,
    ThreadedOpinions,
    WholeUtteranceCombination,
    combine_engines,
    second_opinion,
    who_decides,
)
from ivr.speech.engines import (
    EngineLoadError,
    PocketsphinxEngine,
    Transcript,
    load_engine,
    second_opinion_bound,
)
from ivr.speech.gateway import stream_kind
from ivr.speech.schema import IntentsConfig, SpeechEngineConfig, load_intents
from ivr.speech.testing import FakeEngine, FakeRecognizer
from ivr.speech.whisper import WholeUtterance, WholeUtteranceEngine

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks" / "speech"))

import combine  # noqa: E402
import rescore  # noqa: E402

SMALL = {
    "categories": {
        "fault": {"urgency": "urgent", "examples": ["my internet is down", "no signal"]},
        "inquiry": {"urgency": "normal", "examples": ["how much is my bill"]},
        "other": {"urgency": "normal", "examples": ["i am moving house"]},
        "operator": {"urgency": "normal", "examples": ["let me talk to a person"]},
    },
}


def heard(text: str) -> Transcript:
    return Transcript(text, 0.5, "pocketsphinx", "m")


def combined(first: str, second: str, confidence: float | None, below: float = 0.9):
    engine = CombinedEngine(
        FakeEngine([first]), FakeEngine([second]), lambda text: confidence, below
    )
    return engine, engine.recognizer(rate=8000)


def test_second_opinion_when_the_first_engine_makes_no_confident_request() -> None:
    """Whisper is asked when pocketsphinx heard nothing, heard no word the classifier knows
    (confidence None) or a request under the threshold; not when it is at or above it, and
    always at :data:`ALWAYS`."""
    assert second_opinion(heard(""), None, 0.9)
    assert second_opinion(heard("pfft"), None, 0.9)
    assert second_opinion(heard("bill"), 0.89, 0.9)
    assert not second_opinion(heard("bill"), 0.9, 0.9)
    assert second_opinion(heard("bill"), 1.0, ALWAYS)


def test_a_confident_first_transcript_is_the_answer_and_the_second_never_decodes() -> None:
    """Both recognizers get every frame (Whisper must have the audio if asked), partials are
    the streaming engine's, and a confident pocketsphinx transcript ends the call without
    Whisper's decoding: the caller does not wait for it."""
    engine, rec = combined("my internet is down", "is there an outage", 0.95)
    rec.accept(b"\1\0" * 160)
    rec.accept(b"\2\0" * 160)
    result = rec.final()
    first, second = engine.first.recognizers[0], engine.second.recognizers[0]
    assert first.audio == second.audio == b"\1\0" * 160 + b"\2\0" * 160
    assert result.text == "my internet is down"
    assert (result.engine, result.model) == ("fake+fake", "fake+fake")
    assert first.finished and not second.finished
    assert result.decided_by == "fake"


def test_a_doubtful_first_transcript_is_replaced_by_the_second_engine_s_words() -> None:
    """Under the threshold, Whisper decodes and its words are the transcript; when Whisper
    hears no speech the call is no speech, whatever pocketsphinx made of the noise."""
    _, rec = combined("i owe bowl an", "is there an outage", 0.4)
    assert rec.final().text == "is there an outage"
    _, rec = combined("thank you the bill", "", 0.7)
    result = rec.final()
    assert (result.text, result.confidence) == ("", 0.0)


def test_closing_the_combination_closes_both_recognizers() -> None:
    """One close frees both decoders (pocketsphinx's goes back to its engine's pool)."""
    engine, rec = combined("bill", "bill", 0.95)
    rec.close()
    assert engine.first.recognizers[0].closed and engine.second.recognizers[0].closed


def test_the_combination_is_a_config_choice_with_a_bounded_threshold() -> None:
    """``engine: pocketsphinx+whisper`` is accepted, ``second_opinion_below`` defaults to
    0.95 (chosen on the development voices) and is refused outside 0..1.01."""
    settings = SpeechEngineConfig(engine="pocketsphinx+whisper")
    assert settings.second_opinion_below == 0.95
    assert SpeechEngineConfig(engine="pocketsphinx+whisper", second_opinion_below=ALWAYS)
    with pytest.raises(ValidationError):
        SpeechEngineConfig(second_opinion_below=1.5)


def test_the_combination_s_classifier_learns_what_both_engines_heard() -> None:
    """A combination's transcript is one of its engines', so its classifier learns the heard
    transcripts of both; pocketsphinx alone learns only its own."""
    heard_examples = {
        "pocketsphinx": {"inquiry": ["due date"]},
        "whisper": {"fault": ["outreach in my area"]},
    }
    config = IntentsConfig.model_validate({**SMALL, "heard_examples": heard_examples})
    both = config.model_copy(
        update={"speech": SpeechEngineConfig(engine="pocketsphinx+whisper")}
    )
    classifier = IntentClassifier(both)
    assert classifier.classify("due date").category == "inquiry"
    assert classifier.classify("outreach").category == "fault"
    assert IntentClassifier(config).classify("outreach").confidence == 0.0


def test_load_engine_builds_the_combination_judged_by_pocketsphinx_s_classifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``load_engine`` loads pocketsphinx and Whisper once each and judges pocketsphinx's
    words with the classifier of pocketsphinx: a request it knows has a confidence, words
    it does not know have none."""
    whisper = FakeEngine(["is there an outage"])
    monkeypatch.setattr("ivr.speech.engines.load_whisper", lambda intents, settings: whisper)
    intents = load_intents()
    speech = intents.speech.model_copy(
        update={"engine": "pocketsphinx+whisper", "second_opinion_below": 0.7}
    )
    engine = load_engine(intents.model_copy(update={"speech": speech}))
    assert isinstance(engine, CombinedEngine)
    assert isinstance(engine.first, PocketsphinxEngine) and engine.second is whisper
    assert engine.below == 0.7
    confidence = engine.judge("my internet is down")
    assert confidence is not None and confidence > 0.5
    assert engine.judge("pfft") is None


def row(text: str, heard_text: str, outcome: str = "speech") -> dict:
    return {"text": text, "condition": "ulaw", "outcome": outcome, "heard": heard_text}


def test_rescore_combines_two_runs_of_the_same_calls() -> None:
    """``rescore.combine`` takes the first run's words when the judge is sure, the second
    run's otherwise (no speech included), keeps shed calls as they were, and refuses two
    runs that are not the same calls."""
    judge = IntentClassifier(IntentsConfig.model_validate(SMALL))
    first = [row("a", "my internet is down no signal"), row("b", "pfft"), row("c", ""),
             row("d", "", "busy")]
    second = [row("a", "how much is my bill"), row("b", "no signal"),
              row("c", "", "silence"), row("d", "", "busy")]
    out = rescore.combine(first, second, judge, below=0.6)
    assert [r["heard"] for r in out] == ["my internet is down no signal", "no signal", "", ""]
    assert [r["asked"] for r in out] == [False, True, True, False]
    assert out[2]["outcome"] == "silence"
    with pytest.raises(ValueError, match="not the same calls"):
        rescore.combine(first, list(reversed(second)), judge, below=0.6)


def test_who_decides_sheds_the_second_opinion_when_its_decodings_are_all_taken() -> None:
    """The second engine decides when its opinion is wanted and a decoding slot is free;
    with ``max_concurrent`` decodings in flight the first engine's words stand (busy), and
    without a bound it is always asked. Not wanted: the first engine, whatever the load."""
    assert who_decides(True, 0, 1) == "second"
    assert who_decides(True, 1, 1) == "busy"
    assert who_decides(True, 1, 2) == "second"
    assert who_decides(True, 5, None) == "second"
    assert who_decides(False, 0, 1) == "first"
    assert who_decides(False, 3, 1) == "first"


def skipped(reason: str) -> float:
    value = SKIPPED.labels(reason)._value.get()  # prometheus_client keeps it here
    return float(value)


class Reentrant(FakeRecognizer):
    """A second-engine recognizer during whose decoding another caller's utterance ends
    (what two speech workers do at once), deterministically, without threads."""

    during: CombinedRecognizer | None = None
    seen: Transcript | None = None

    def final(self) -> Transcript:
        if self.during is not None:
            self.seen = self.during.final()
        return super().final()


def test_an_utterance_ending_while_whisper_is_busy_keeps_pocketsphinx_s_words() -> None:
    """With one Whisper decoding allowed, a caller who ends their sentence while another
    caller's is being decoded gets pocketsphinx's words at once: counted as skipped (busy)
    and tallied per deciding engine; the first caller still gets Whisper's words, and once
    it is done the next caller gets Whisper again."""
    engine = CombinedEngine(
        FakeEngine(["pocketsphinx words"]), FakeEngine(["whisper words"]),
        lambda text: 0.5, ALWAYS, max_concurrent=1,
    )
    first_caller = engine.recognizer()
    second_caller = engine.recognizer()
    busy_before = skipped("busy")
    reentrant = Reentrant(engine.second, "whisper words", None)
    reentrant.during = second_caller
    first_caller._second = reentrant
    assert first_caller.final().text == "whisper words"
    assert reentrant.seen is not None
    assert (reentrant.seen.text, reentrant.seen.decided_by) == (
        "pocketsphinx words", "fake")
    assert skipped("busy") == busy_before + 1
    assert engine.skipped["busy"] == 1 and engine.in_flight == 0
    third = engine.recognizer()
    assert third.final().text == "whisper words"
    assert sum(engine.decided.values()) == 3


def test_a_failing_whisper_decoding_leaves_pocketsphinx_s_words_not_dead_air() -> None:
    """Whisper raising during its decoding does not fail the caller's step: pocketsphinx's
    words are the transcript, the skip is counted (error) and the slot is given back."""

    class Broken(FakeRecognizer):
        def final(self) -> Transcript:
            raise RuntimeError("ctranslate2 out of memory")

    engine = CombinedEngine(
        FakeEngine(["my internet is down"]), FakeEngine(["x"]), lambda text: 0.5, ALWAYS, 1
    )
    rec = engine.recognizer()
    rec._second = Broken(engine.second, "x", None)
    errors_before = skipped("error")
    result = rec.final()
    assert (result.text, result.decided_by) == ("my internet is down", "fake")
    assert skipped("error") == errors_before + 1
    assert engine.in_flight == 0 and engine.skipped["error"] == 1


def test_the_transcript_says_which_engine_decided() -> None:
    """A combination's transcript keeps the combination's engine and model names (what the
    work order records) and says in ``decided_by`` whose words it is."""
    engine = CombinedEngine(
        FakeEngine(["bill"]), FakeEngine(["how much is my bill"]), lambda text: 0.99, 0.95
    )
    engine.second.name = "whisper"  # type: ignore[misc]  # instance attribute of a fake
    result = engine.recognizer().final()
    assert (result.engine, result.decided_by) == ("fake+fake", "fake")
    result = CombinedEngine(
        FakeEngine(["bill"]), engine.second, lambda text: 0.5, 0.95
    ).recognizer().final()
    assert (result.text, result.decided_by) == ("how much is my bill", "whisper")


def test_the_bound_defaults_to_one_fewer_than_the_speech_workers() -> None:
    """``second_opinion_max_concurrent`` unset: workers - 1, at least 1 (one worker always
    keeps the callers' audio streaming); set: as set; 0 or less is refused."""
    assert second_opinion_bound(SpeechEngineConfig(workers=2)) == 1
    assert second_opinion_bound(SpeechEngineConfig(workers=1)) == 1
    assert second_opinion_bound(SpeechEngineConfig(workers=8)) == 7
    assert second_opinion_bound(SpeechEngineConfig(second_opinion_max_concurrent=3)) == 3
    with pytest.raises(ValidationError):
        SpeechEngineConfig(second_opinion_max_concurrent=0)
    with pytest.raises(ValueError):
        CombinedEngine(FakeEngine(), FakeEngine(), lambda text: None, 0.9, max_concurrent=0)


def test_the_shipped_combination_asks_whisper_on_doubt_and_joins_its_words() -> None:
    """config/intents.yaml ships moonshine+whisper (the most accurate by measurement that held
    the latency bar, docs/speech-conditions.md "Ninth session"): Whisper is asked when
    Moonshine's words make a request under 0.6 or none, its words join Moonshine's, with the
    bound left to the workers and a 300 ms wait."""
    speech = load_intents().speech
    assert speech.engine == "moonshine+whisper"
    assert speech.second_opinion_below == 0.6
    assert speech.second_opinion_joins is True
    assert speech.second_opinion_max_concurrent is None
    assert speech.second_opinion_wait_ms == 300


def test_a_missing_whisper_model_package_is_a_clear_load_error() -> None:
    """The combination whose Whisper model package is not installed fails at load (``ivr
    check-config``, start) naming the package to install, not at the first call."""
    intents = load_intents()
    speech = intents.speech.model_copy(update={
        "engine": "pocketsphinx+whisper", "whisper_model": "package:no_such_whisper"})
    with pytest.raises(EngineLoadError, match=r"'no_such_whisper' .* not installed"):
        load_engine(intents.model_copy(update={"speech": speech}))


class LateOpinions:
    """Second opinions that are never ready in time: the decodings wait here until the test
    lets them run (as a starved core would)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], Transcript], Callable[[], None]]] = []

    def ask(
        self, decode: Callable[[], Transcript], timeout: float | None, done: Callable[[], None]
    ) -> Transcript | None:
        self.pending.append((decode, done))
        return None


def test_whisper_not_done_in_time_leaves_pocketsphinx_s_words_and_holds_its_slot() -> None:
    """A Whisper decoding not done within the wait bound: the caller gets pocketsphinx's
    words at once (counted: late); the decoding keeps its slot until it really ends, so the
    next caller meanwhile is not piled onto it (busy); once it ends, Whisper is asked again."""
    opinions = LateOpinions()
    engine = CombinedEngine(
        FakeEngine(["pocketsphinx words"]), FakeEngine(["whisper words"]), lambda text: 0.5,
        ALWAYS, max_concurrent=1, wait_s=0.3, opinions=opinions,
    )
    late_before = skipped("late")
    result = engine.recognizer().final()
    assert (result.text, result.decided_by) == ("pocketsphinx words", "fake")
    assert skipped("late") == late_before + 1 and engine.in_flight == 1
    assert engine.recognizer().final().text == "pocketsphinx words"
    assert engine.skipped == {"late": 1, "busy": 1}
    decode, done = opinions.pending.pop()
    decode()
    done()
    assert engine.in_flight == 0
    engine.recognizer().final()
    assert len(opinions.pending) == 1  # asked again


def test_threaded_opinions_return_in_time_words_and_give_up_on_late_ones() -> None:
    """On its own thread a decoding that is done in time gives its transcript; one that is
    not gives None at the bound and still reports its end (its slot) when it finishes."""
    opinions = ThreadedOpinions(1)
    ended: list[str] = []
    words = Transcript("whisper words", 0.9, "whisper", "m")
    assert opinions.ask(lambda: words, 5.0, lambda: ended.append("fast")) == words
    release, finished = threading.Event(), threading.Event()

    def slow() -> Transcript:
        release.wait(5)
        return words

    def done() -> None:
        ended.append("slow")
        finished.set()

    assert opinions.ask(slow, 0.0, done) is None
    release.set()
    assert finished.wait(5)
    assert ended == ["fast", "slow"]


def test_check_config_names_the_missing_whisper_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With faster-whisper missing, ``ivr check-config`` (and start) of a config that asks
    for the combination report the intents file, its engine and the package to install,
    instead of failing at a call."""
    from hotline.startup import check_runtime
    from ivr.config import DEFAULT_CONFIG_DIR, load_config

    target = tmp_path / "config"
    shutil.copytree(DEFAULT_CONFIG_DIR, target)
    intents = target / "intents.yaml"
    intents.write_text(intents.read_text().replace(
        "\n  engine: moonshine+whisper\n", "\n  engine: pocketsphinx+whisper\n", 1))
    cfg = load_config(target, environ={
        "HOTLINE_ARI_PASSWORD": "",
        "HOTLINE__ASTERISK__SOUNDS_DIR": str(tmp_path / "sounds"),
        "HOTLINE__SPOOL_DIR": str(tmp_path / "spool"),
    })
    monkeypatch.setitem(sys.modules, "faster_whisper", None)
    monkeypatch.setattr("ivr.speech.languages._engines", {})
    (problem,) = [p for p in check_runtime(cfg) if "intents.yaml" in p]
    assert problem.startswith(
        f"{target / 'intents.yaml'}: speech.engine pocketsphinx+whisper: "
        "faster-whisper is not installed"
    )
    assert "pip install" in problem


def test_joined_words_are_both_engines_and_whisper_s_silence_is_no_speech() -> None:
    """With ``joins`` a doubtful first transcript is not replaced: the transcript is both
    engines' words (the classifier weighs both); Whisper, asked, hearing nothing still makes
    the call no speech; a confident first transcript stands alone."""
    def joining(first: str, second: str, confidence: float | None) -> CombinedEngine:
        return CombinedEngine(FakeEngine([first]), FakeEngine([second]),
                              lambda text: confidence, 0.6, joins=True)

    result = joining("my in their net is down", "my internet is down", 0.4).recognizer().final()
    assert result.text == "my in their net is down my internet is down"
    assert result.decided_by == "fake+fake"
    assert joining("", "no signal", None).recognizer().final().text == "no signal"
    silent = joining("you're out and you're listening", "", 0.42).recognizer().final()
    assert (silent.text, silent.decided_by) == ("", "fake")
    sure = joining("my internet is down", "how much is my bill", 0.9).recognizer().final()
    assert (sure.text, sure.decided_by) == ("my internet is down", "fake")


class Whole:
    """A whole-utterance engine whose decoding names itself and the samples it was given."""

    hears_whole_utterances = True
    model = "fake"

    def __init__(self, name: str, heard: str) -> None:
        self.name = name
        self.heard = heard
        self.decoded: list[int] = []

    def recognizer(self, rate: int = 8000,
                   phrases: Sequence[str] | None = None) -> WholeUtterance:
        def transcribe(audio: np.ndarray) -> tuple[str, float]:
            self.decoded.append(len(audio))
            return self.heard, 0.9

        return WholeUtterance(self.name, self.model, rate, transcribe)


def test_two_whole_utterance_engines_make_a_whole_utterance_combination() -> None:
    """moonshine+whisper hears whole utterances as each of its engines does (so the server
    keeps its audio on the reactor and decodes at a pause): the audio is kept once and the
    second engine decodes the same samples, only when asked; a streaming first engine makes
    the streaming combination."""
    moonshine, whisper = Whole("moonshine", "my in their net"), Whole("whisper", "internet")
    engine = combine_engines(moonshine, whisper, lambda text: 0.5, 0.6, joins=True)
    assert isinstance(engine, WholeUtteranceCombination)
    assert isinstance(engine, WholeUtteranceEngine)
    assert stream_kind(engine, attached=False) == "whole"
    rec = engine.recognizer(rate=8000)
    rec.accept(b"\1\0" * 160)
    rec.accept(b"\2\0" * 160)
    assert len(rec.audio()) == 2 * 320 * 2  # 16 kHz, kept once
    early = rec.decode(rec.audio())  # what the server runs when the caller pauses
    assert early.text == "my in their net internet"
    assert rec.final().text == "my in their net internet"
    assert moonshine.decoded == whisper.decoded == [640, 640]
    sure = combine_engines(moonshine, whisper, lambda text: 0.9, 0.6).recognizer()
    sure.accept(b"\1\0" * 160)
    assert sure.final().text == "my in their net" and whisper.decoded == [640, 640]
    assert type(combine_engines(FakeEngine(), whisper, lambda text: 0.5, 0.6)) is CombinedEngine


def test_moonshine_whisper_is_a_config_choice_judged_by_moonshine_s_classifier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``engine: moonshine+whisper`` loads Moonshine as alone and Whisper once, judges
    Moonshine's words with Moonshine's classifier, and takes the combination's settings
    (threshold, joining); the schema knows no other second engine."""
    moonshine, whisper = Whole("moonshine", "x"), Whole("whisper", "y")
    monkeypatch.setattr("ivr.speech.moonshine.MoonshineEngine.load",
                        lambda files, bias=None, beam=1: moonshine)
    monkeypatch.setattr("ivr.speech.engines.load_whisper", lambda intents, settings: whisper)
    intents = load_intents()
    speech = intents.speech.model_copy(update={
        "engine": "moonshine+whisper", "second_opinion_below": 0.6,
        "second_opinion_joins": True, "second_opinion_wait_ms": 0,
    })
    engine = load_engine(intents.model_copy(update={"speech": speech}))
    assert isinstance(engine, WholeUtteranceCombination)
    assert engine.first is moonshine and engine.second is whisper
    assert (engine.below, engine.joins, engine.name) == (0.6, True, "moonshine+whisper")
    confidence = engine.judge("my internet is down")
    assert confidence is not None and confidence > 0.5
    assert engine.judge("pfft") is None
    assert not SpeechEngineConfig().second_opinion_joins
    with pytest.raises(ValidationError):
        SpeechEngineConfig(engine="vosk+whisper")


def test_combine_scores_the_rules_on_two_runs_of_the_same_calls() -> None:
    """``combine.py``: the oracle is right when either run is; the cascade to both joins the
    transcripts of the doubtful calls only, and with the veto Whisper's silence is no
    request; runs of other calls are refused."""
    classifier = IntentClassifier(IntentsConfig.model_validate(SMALL))
    truth = {"category": "fault"}
    first = [{**truth, **row("a", "no signal")}, {**truth, **row("b", "pfft")},
             {**truth, **row("c", "my bill")}]
    second = [{**truth, **row("a", "how much is my bill")}, {**truth, **row("b", "internet")},
              {**truth, **row("c", "", "silence")}]
    a, b = combine.rescore(first, classifier), combine.rescore(second, classifier)
    assert [r["predicted"] for r in combine.oracle(a, b)] == ["fault", "fault", "inquiry"]
    assert [r["predicted"] for r in combine.oracle(b, a)] == ["fault", "fault", "(none)"]
    joined = combine.cascade_both(first, second, classifier, classifier, 0.9)
    assert [r["asked"] for r in joined] == [False, True, True]
    assert [r["heard"] for r in joined] == ["no signal", "pfft internet", "my bill"]
    vetoed = combine.cascade_both(first, second, classifier, classifier, 0.9, veto=True)
    assert vetoed[2]["predicted"] == "(none)"
    with pytest.raises(ValueError, match="not the same call"):
        combine.same_calls(first, list(reversed(second)))
    # rows of session 13 name no line end (zeros); a call in the line's noise is another call
    combine.same_calls(first, [{**r, "line_end": "zeros"} for r in second])
    with pytest.raises(ValueError, match="not the same call"):
        combine.same_calls(first, [{**r, "line_end": "noise"} for r in second])


def test_combine_asks_the_second_engine_also_on_a_noisy_line() -> None:
    """``combine.py --noise``: the shipped rule, plus the second engine on the calls whose
    line is noisier than the bar (or under the SNR); those join both engines' words with no
    veto (``joined``), with it (``vetoed``), or take whichever is right (``oracle``); a call
    nothing was decoded on is never noisy."""
    classifier = IntentClassifier(IntentsConfig.model_validate(SMALL))
    truth = {"category": "fault"}
    sure_wrong = "how much is my bill"
    first = [{**truth, **row("a", "no signal")}, {**truth, **row("b", sure_wrong)},
             {**truth, **row("c", sure_wrong)}, {**truth, **row("d", sure_wrong)}]
    second = [{**truth, **row("a", sure_wrong)}, {**truth, **row("b", "my internet is down")},
              {**truth, **row("c", "", "silence")}, {**truth, **row("d", "my internet is down")}]
    noise = [{"noise_dbfs": n, "speech_dbfs": s}
             for n, s in ((-30.0, -16.0), (-34.0, -10.0), (-31.0, -25.0), (-60.0, -15.0))]
    assert combine.noisier(noise, -40) == [True, True, True, False]
    assert combine.noisier([{"noise_dbfs": None}], -200) == [False]
    assert combine.under_snr(noise, 15) == [True, False, True, False]
    noisy = combine.noisier(noise, -40)

    def scored(how: str) -> list[str]:
        rows = combine.cascade_or_noisy(first, second, noisy, classifier, classifier, 0.6, how)
        assert [r["asked"] for r in rows] == [True, True, True, False]
        return [r["predicted"] for r in rows]

    # Joining a sure transcript with the other engine's words rarely changes its request,
    # and can spoil a right one: the noisy lines' lesson (docs/speech-conditions.md).
    assert scored("joined") == ["inquiry", "inquiry", "inquiry", "inquiry"]
    assert scored("vetoed") == ["inquiry", "inquiry", "(none)", "inquiry"]
    assert scored("oracle") == ["fault", "fault", "inquiry", "inquiry"]


def test_combine_reports_the_cpu_of_the_second_engine_s_decodings_it_was_asked() -> None:
    """The second engine's CPU per decoding (p50/p95) counts only the calls the rule asked
    it on; rows without it (older runs) give none."""
    asked = [{"asked": True}, {"asked": False}, {"asked": True}, {"asked": True}]
    second = [{"whisper_cpu_s": 0.2}, {"whisper_cpu_s": 9.0}, {"whisper_cpu_s": 0.1},
              {"whisper_cpu_s": 0.3}]
    assert combine.decoding_cpu(asked, second) == {"p50": 0.2, "p95": 0.3}
    assert combine.decoding_cpu(asked, [{}, {}, {}, {}]) is None


def test_doubtful_calls_are_those_whisper_decoded_spread_evenly() -> None:
    """``bench_engines.py --audio doubtful``: the calls of a combination's rows on which
    Whisper decoded (Moonshine unsure), spread over the run, each as sentence, voice, line."""
    import bench_engines

    rows = [{"text": f"s{i}", "voice": "v", "condition": f"c{i % 3}", "category": "fault",
             "whisper_text": None if i % 2 else "words"} for i in range(20)]
    calls = bench_engines.doubtful_calls(rows, limit=5)
    assert [c["text"] for c in calls] == ["s0", "s4", "s8", "s12", "s16"]
    assert set(calls[0]) == {"text", "voice", "condition", "category"}


def test_a_bench_child_keeps_the_run_s_audio_and_decoder_processes(monkeypatch) -> None:
    """``bench_engines.py``: each stream count runs in a child process whose command line
    names neither ``--audio`` nor ``--decoder-processes``; it must play the run's callers
    on the run's decoders, not its own defaults (piper's joe on the threads)."""
    import bench_engines

    seen: dict[str, str | None] = {}

    def load(name: str) -> None:
        seen.update(audio=os.environ.get(bench_engines.AUDIO),
                    processes=os.environ.get(bench_engines.DECODER_PROCESSES))
        raise SystemExit(0)

    monkeypatch.setenv(bench_engines.AUDIO, "doubtful")
    monkeypatch.setenv(bench_engines.DECODER_PROCESSES, "2")
    monkeypatch.setattr(bench_engines, "load", load)
    with pytest.raises(SystemExit):
        bench_engines.main(["--child", "moonshine", "1", "1"])
    assert seen == {"audio": "doubtful", "processes": "2"}


def test_a_bench_caller_s_line_goes_on_after_the_words_and_the_wait_counts_from_them() -> None:
    """``bench_engines.py``: an unheard caller's call opens with the speech prompt's length
    of their line (the server plays the prompt, the endpointer hears the line under it) and
    carries the line's noise to the end of the call (as the evaluation's calls do), the
    voice kept as rendered for the real-time factor, and the caller's wait counts from where
    the words end in it."""
    import bench_engines
    import channel
    import conditions

    from ivr.speech.schema import EndpointingConfig

    tone = 3000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    lead, words = b"\0\0" * 2400, tone.astype("<i2").tobytes()
    said = lead + words + b"\0\0" * 4000
    assert bench_engines.words_end_s(said) == pytest.approx(0.3 + 1.0)
    babble = channel.babble_source([np.zeros(8000)])
    line_s = conditions.call_seconds(EndpointingConfig())
    clip = bench_engines.on_the_line(said, "band+white:10+ulaw", 1, babble, line_s)
    assert clip.said == said and clip.prompt_s == conditions.PROMPT_S
    assert clip.words_end_s == pytest.approx(conditions.PROMPT_S + 1.3)
    assert len(clip.call) == round((conditions.PROMPT_S + line_s) * 8000) * 2  # the line goes on
    under_prompt = np.frombuffer(clip.call[:16000], "<i2").astype(float)
    assert np.sqrt(np.mean(under_prompt**2)) > 100  # the line's noise, under the prompt
    tail = np.frombuffer(clip.call[-3200:], "<i2").astype(float)
    assert np.sqrt(np.mean(tail**2)) > 100  # with its noise, not digital silence


def test_line_noise_measures_the_pre_roll_and_the_words() -> None:
    """``line_noise.py``: the line's noise is the quieter of the endpointer's pre-roll and
    the quietest fifth of 10 ms blocks (Moonshine's tail cut's measure), the words' level the
    blocks' 90th percentile, both in dBFS; digital silence is the floor, and audio shorter
    than a block has neither."""
    import line_noise

    rng = np.random.default_rng(0)
    noise = 0.01 * rng.standard_normal(16000).astype(np.float32)  # -40 dBFS
    t = np.arange(16000) / 16000
    words = noise + (0.1 * np.sqrt(2) * np.sin(2 * np.pi * 300 * t)).astype(np.float32)  # -20
    levels = line_noise.line_levels(np.concatenate([noise[:3200], words, noise]))
    assert levels is not None
    assert levels[0] == pytest.approx(-40, abs=1)
    assert levels[1] == pytest.approx(-20, abs=1)
    assert line_noise.line_levels(np.zeros(16000, np.float32)) == (
        line_noise.FLOOR_DBFS, line_noise.FLOOR_DBFS)
    assert line_noise.line_levels(np.zeros(100, np.float32)) is None
