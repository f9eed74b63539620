"""The line's noise under each call of a conditions run, as the engine would be handed it.

    nice -n 19 .venv/bin/python benchmarks/speech/line_noise.py --sample 96 --nonspeech 120 \
        [--conditions C,C,...] [--voices V,...] --out NOISE.json

Renders the same calls ``conditions.py`` renders for the same arguments (its functions, the
same seeds and order) and streams each through the production path (AudioSocket protocol,
endpointer) to a recognizer that decodes nothing: it keeps the audio of the utterance's last
decoding, the 16 kHz audio Moonshine and Whisper would decode (so the same measure can be
taken in production from the caller's audio alone), and measures it:

- ``noise_dbfs``: the line's noise, :func:`ivr.speech.moonshine.line_noise_rms` (the RMS of
  the endpointer's 200 ms pre-roll or of the quietest fifth of 10 ms blocks, whichever is
  lower: what Moonshine's tail cut measures), in dBFS;
- ``speech_dbfs``: the 90th percentile of the blocks' RMS (the words), so ``speech_dbfs -
  noise_dbfs`` is the utterance's SNR.

Both None when the endpointer ended the call as no speech (nothing decoded). Writes
``{"speech": [...], "nonspeech": [...]}``, one row per call in ``--rows`` order, with
``text``, ``voice``, ``condition``, ``kind``, ``audio_s`` to check them against, and how
many decodings the call had (``noise_decodings``: the ``decodings`` of Moonshine's rows of
the same calls, when the words change nothing in how the call is cut). The figures come
from ``combine.py FIRST.json SECOND.json --noise NOISE.json --noise-above=... --snr-below=...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import conditions  # noqa: E402
import voices as voice_cache  # noqa: E402
from evaluate import Listener  # noqa: E402
from synthesize import load_eval_set  # noqa: E402

from ivr.speech.moonshine import block_rms, line_noise_rms  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, load_intents  # noqa: E402

SPEECH_PERCENTILE = 90
FLOOR_DBFS = -120.0  # digital silence


def dbfs(rms: float) -> float:
    return max(FLOOR_DBFS, float(20 * np.log10(max(rms, 1e-12))))


def line_levels(audio: np.ndarray) -> tuple[float, float] | None:
    """The line's noise and the words' level (dBFS) of 16 kHz float audio; None when it is
    shorter than one 10 ms block."""
    rms = block_rms(audio)
    if not len(rms):
        return None
    return dbfs(line_noise_rms(rms)), dbfs(float(np.percentile(rms, SPEECH_PERCENTILE)))


class NoiseListener:
    """:class:`evaluate.Listener` with Moonshine's decoding replaced by a measurement: the
    endpointer and the server are the production ones; it hears no words, which changes
    nothing in how a call is cut (the decodings per call are those of Moonshine's rows)."""

    def __init__(self, intents_path: Path) -> None:
        self.listener = Listener(conditions.with_engine(load_intents(intents_path), "moonshine"))
        self.last: np.ndarray | None = None
        self.decodings = 0
        engine: Any = self.listener.engine
        engine.transcribe = self._transcribe  # the recognizers it makes call this

    def _transcribe(self, audio: np.ndarray) -> tuple[str, float]:
        self.last, self.decodings = audio, self.decodings + 1
        return "", 0.0

    def hear(self, pcm: bytes) -> dict[str, Any]:
        self.last, self.decodings = None, 0
        row = self.listener.hear(pcm)
        levels = None if self.last is None else line_levels(self.last)
        noise, speech = levels if levels is not None else (None, None)
        # "predicted" only for conditions.evaluate's progress line (nothing is decoded).
        return {"audio_s": row["audio_s"], "noise_dbfs": noise, "speech_dbfs": speech,
                "noise_decodings": self.decodings, "predicted": "(none)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["heldout", "tune", "all"], default="heldout")
    parser.add_argument("--voices", help="comma-separated voices (default: the development's)")
    parser.add_argument("--conditions", help="comma-separated conditions (default: all)")
    parser.add_argument("--sample", type=int)
    parser.add_argument("--nonspeech", type=int, default=120)
    parser.add_argument("--nonspeech-kinds", default=",".join(conditions.NONSPEECH_KINDS))
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    voices = args.voices.split(",") if args.voices else list(voice_cache.DEV_VOICES)
    chosen = (args.conditions.split(",") if args.conditions
              else list(conditions.DEFAULT_CONDITIONS))
    utterances = conditions.spread(
        [u for u in load_eval_set() if args.split in ("all", u["split"])], args.sample
    )
    listener = NoiseListener(args.intents)
    pool = conditions.babble_pool(list(voice_cache.DEV_VOICES))
    # conditions.evaluate only calls hear(): the calls it renders are conditions.py's.
    rows = conditions.evaluate(listener, utterances, voices, chosen, pool)  # type: ignore[arg-type]
    clips = conditions.nonspeech_clips(args.nonspeech, pool, args.nonspeech_kinds.split(","),
                                       say=conditions.render_one)
    nonspeech = [{"kind": kind, **about, **listener.hear(pcm)} for kind, pcm, about in clips]
    keep = ("text", "voice", "condition", "kind", "audio_s", "noise_dbfs", "speech_dbfs",
            "noise_decodings")
    args.out.write_text(json.dumps({
        "speech": [{k: r.get(k) for k in keep} for r in rows],
        "nonspeech": [{k: r.get(k) for k in keep} for r in nonspeech],
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
