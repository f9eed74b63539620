"""Estimate the cepstral mean of caller audio, the pocketsphinx decoder's starting point.

    .venv/bin/python benchmarks/speech/estimate_cmn.py [--split tune] [FILE.wav ...]

Decodes each utterance (the evaluation set's tune split by default, or recordings of real
callers given as 8 kHz WAV files) from the current estimate, reads the decoder's cepstral mean
at the end of it, and averages over utterances; two passes so the starting point does not
matter. Prints the 13 numbers for ``speech.cmn_init`` in ``config/intents.yaml`` (the built-in
default, ``ivr.speech.engines.TELEPHONE_CMN``, came from this script).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from synthesize import DEFAULT_CACHE, ensure_audio, load_eval_set  # noqa: E402

from ivr.speech.audio import read_wav  # noqa: E402
from ivr.speech.engines import TELEPHONE_CMN, PocketsphinxEngine  # noqa: E402
from ivr.speech.schema import DEFAULT_INTENTS, load_intents  # noqa: E402


def estimate(engine: PocketsphinxEngine, utterances: list[bytes], passes: int = 2) -> list[float]:
    """Mean over utterances of the decoder's cepstral mean after each (8 kHz PCM in)."""
    mean = list(TELEPHONE_CMN)
    for _ in range(passes):
        engine.cmn_init = ",".join(f"{c:g}" for c in mean)
        sums = [0.0] * len(mean)
        for pcm in utterances:
            rec = engine.recognizer(8000)
            for i in range(0, len(pcm), 320):
                rec.accept(pcm[i : i + 320])
            rec.final()
            cmn = [float(c) for c in rec._decoder.get_cmn(False).split(",")]
            rec.close()
            sums = [s + c for s, c in zip(sums, cmn, strict=True)]
        mean = [s / len(utterances) for s in sums]
    return mean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="8 kHz 16-bit mono WAV files")
    parser.add_argument("--split", default="tune", help="evaluation split when no files")
    args = parser.parse_args(argv)
    if args.files:
        audio = [read_wav(f) for f in args.files]
    else:
        texts = [u["text"] for u in load_eval_set() if args.split in ("all", u["split"])]
        paths = ensure_audio(texts, DEFAULT_CACHE)
        audio = [read_wav(paths[t]) for t in texts]
    if any(rate != 8000 for _, rate in audio):
        parser.error("the files must be 8 kHz (what a telephone line carries)")
    engine = PocketsphinxEngine.load(load_intents(DEFAULT_INTENTS))
    mean = estimate(engine, [pcm for pcm, _ in audio])
    print("cmn_init: [" + ", ".join(f"{c:.3f}" for c in mean) + "]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
