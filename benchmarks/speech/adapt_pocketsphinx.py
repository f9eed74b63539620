"""pocketsphinx's acoustic model adapted to telephone callers: an MLLR transform estimated
on the tune split, spoken by the development voices over the development phone lines.

    nice -n 19 .venv/bin/python benchmarks/speech/adapt_pocketsphinx.py \
        [--out ivr/speech/data/pocketsphinx-telephone.mllr] [--work var/pocketsphinx-adapt]
        [--sample N] [--voices V,...] [--conditions C,...]

The model in the pocketsphinx wheel was trained on wideband speech; callers reach it as
8 kHz telephone audio, band-limited, through a codec and often noise, upsampled to 16 kHz by
the engine. MLLR (maximum likelihood linear regression) moves the model's Gaussian means
by one affine transform per feature stream, the one that makes the adaptation audio
likeliest; the decoder applies it at load (``speech.pocketsphinx_mllr``).
It is a few kilobytes, so it ships with the package (``ivr/speech/data/``) instead of a
second acoustic model.

Steps, with CMU Sphinx's own tools (Debian's ``sphinxtrain``, ``sphinxbase-utils`` and
``pocketsphinx``, installed by ``scripts/setup-debian.sh``; the wheel has none of them):

1. Each sentence of the tune split (never the held-out sentences the evaluation scores)
   is spoken by one development voice, the voices taking turns, through one development
   condition, the conditions taking turns (:mod:`conditions`, :mod:`channel`), and
   upsampled by the engine's own :class:`ivr.speech.audio.Upsampler`.
2. ``sphinx_fe`` computes the model's features (its ``feat.params``);
   ``pocketsphinx_mdef_convert`` writes its model definition as text for ``bw``.
3. The wheel ships the mixture weights only quantized (``sendump``); ``bw`` needs them as
   ``mixture_weights``: :func:`write_mixture_weights` expands them (sphinxtrain's
   ``sendump.py``, which is Python 2, does the same).
4. ``bw`` aligns the audio to its words (the wheel's dictionary) and counts; ``mllr_solve``
   estimates the transform.

Sentences with a word the dictionary lacks are left out (printed). Blind voices are never
used: they stay unheard.
"""

from __future__ import annotations

import argparse
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import channel  # noqa: E402
import training_set  # noqa: E402
import voices as voice_cache  # noqa: E402
from conditions import babble_pool, line_call, seed_of  # noqa: E402

from ivr.speech.audio import MODEL_RATE, Upsampler  # noqa: E402
from ivr.speech.engines import read_dictionary  # noqa: E402

SPHINXTRAIN = Path("/usr/lib/sphinxtrain")
DEFAULT_OUT = ROOT / "ivr" / "speech" / "data" / "pocketsphinx-telephone.mllr"
DEFAULT_WORK = ROOT / "var" / "pocketsphinx-adapt"


def wheel_model() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.get_model_path()) / "en-us"


def read_sendump(path: Path) -> np.ndarray:
    """The quantized mixture weights of a PTM/semi-continuous model as probabilities,
    shaped (senones, streams, Gaussians) as a Sphinx-III ``mixture_weights`` file."""
    data = path.read_bytes()
    pos = 0

    def word() -> int:
        nonlocal pos
        (value,) = struct.unpack_from("<I", data, pos)
        pos += 4
        return int(value)

    headers: dict[str, int] = {}
    while True:
        n = word()
        if n == 0:
            break
        text = data[pos:pos + n].rstrip(b"\0").decode()
        pos += n
        key, _, value = text.partition(" ")
        if value.strip().lstrip("-").isdigit():
            headers[key] = int(value)
    streams, shift = headers["feature_count"], headers.get("mixw_shift", 10)
    if headers.get("cluster_count", 0):
        raise ValueError(f"{path}: clustered sendump is not supported")
    gaussians, senones = word(), word()
    raw = np.frombuffer(data, dtype=np.uint8, count=streams * gaussians * senones, offset=pos)
    # stored per stream, per Gaussian, a row over the senones: -log1.0001(w) >> shift
    logw = raw.reshape(streams, gaussians, senones).astype(np.float64) * (1 << shift)
    weights = np.power(1.0001, -logw).transpose(2, 0, 1)
    return weights / weights.sum(axis=2, keepdims=True)


def write_mixture_weights(weights: np.ndarray, path: Path) -> None:
    """A Sphinx-III binary parameter file of three dimensions (as ``s3file.py`` writes)."""
    d1, d2, d3 = weights.shape
    with path.open("wb") as f:
        f.write(b"s3\nversion 1.0\nendhdr\n")
        f.write(struct.pack("=i", 0x11223344))
        f.write(struct.pack("=IIII", d1, d2, d3, d1 * d2 * d3))
        f.write(weights.astype("<f4").tobytes())


def adaptation_model(work: Path) -> Path:
    """A copy of the wheel's acoustic model that sphinxtrain can read: text model
    definition, expanded mixture weights, the rest linked."""
    source = wheel_model() / "en-us"
    model = work / "model"
    model.mkdir(parents=True, exist_ok=True)
    for name in ("means", "variances", "transition_matrices", "noisedict", "feat.params"):
        target = model / name
        if not target.exists():
            target.symlink_to(source / name)
    if not (model / "mdef.txt").exists():
        run(["pocketsphinx_mdef_convert", "-text", str(source / "mdef"), str(model / "mdef.txt")])
    if not (model / "mixture_weights").exists():
        write_mixture_weights(read_sendump(source / "sendump"), model / "mixture_weights")
    return model


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise SystemExit(f"{command[0]} failed ({done.returncode}):\n{tail}")


def render_adaptation_audio(
    work: Path, sentences: list[str], voices: list[str], conditions: list[str]
) -> list[tuple[str, str]]:
    """(file id, words) of each sentence, its 16 kHz raw audio written under ``work/wav``."""
    wav = work / "wav"
    wav.mkdir(parents=True, exist_ok=True)
    speaker = {s: voices[i % len(voices)] for i, s in enumerate(sentences)}
    rendered: dict[str, bytes] = {}
    for voice in voices:
        rendered.update(voice_cache.render(voice, [s for s in sentences if speaker[s] == voice]))
    babble = channel.babble_source(babble_pool(list(voice_cache.DEV_VOICES)))
    out = []
    for i, text in enumerate(sentences):
        condition = conditions[(i // len(voices)) % len(conditions)]
        pcm = line_call(rendered[text], condition, seed_of("adapt", condition, text), babble)
        file_id = f"u{i:05d}"
        (wav / f"{file_id}.raw").write_bytes(Upsampler(channel.RATE, MODEL_RATE).convert(pcm))
        out.append((file_id, text))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    training_set.add_arguments(parser)
    args = parser.parse_args(argv)

    voices, conditions = training_set.voices_and_lines(parser, args)
    for tool in ("sphinx_fe", "pocketsphinx_mdef_convert", str(SPHINXTRAIN / "bw")):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (scripts/setup-debian.sh installs it)")
    root = wheel_model()
    # the words the engine itself can say (its reader of the same dictionary)
    known = set(read_dictionary(root / "cmudict-en-us.dict"))
    tune = training_set.tune_sentences()
    usable = [s for s in tune if all(w in known for w in s.split())]
    for s in tune:
        if s not in usable:
            print(f"left out (a word not in the dictionary): {s}", file=sys.stderr)
    usable = usable[: args.sample] if args.sample else usable
    args.work.mkdir(parents=True, exist_ok=True)
    model = adaptation_model(args.work)
    utterances = render_adaptation_audio(args.work, usable, voices, conditions)
    fileids = args.work / "adapt.fileids"
    fileids.write_text("".join(f"{fid}\n" for fid, _ in utterances))
    (args.work / "adapt.transcription").write_text(
        "".join(f"<s> {text} </s> ({fid})\n" for fid, text in utterances))
    features = ["-argfile", str(model / "feat.params")]
    run(["sphinx_fe", *features, "-samprate", str(MODEL_RATE), "-c", str(fileids),
         "-di", str(args.work / "wav"), "-do", str(args.work / "wav"), "-ei", "raw",
         "-eo", "mfc", "-raw", "yes"])
    accum = args.work / "accum"
    accum.mkdir(exist_ok=True)
    run([str(SPHINXTRAIN / "bw"), "-hmmdir", str(model), "-moddeffn", str(model / "mdef.txt"),
         "-ts2cbfn", ".ptm.", "-feat", "1s_c_d_dd", "-svspec", "0-12/13-25/26-38",
         "-cmn", "current", "-agc", "none", "-dictfn", str(root / "cmudict-en-us.dict"),
         "-fdictfn", str(model / "noisedict"), "-ctlfn", str(fileids),
         "-lsnfn", str(args.work / "adapt.transcription"), "-cepdir", str(args.work / "wav"),
         "-accumdir", str(accum)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    solve = [str(SPHINXTRAIN / "mllr_solve"), "-meanfn", str(model / "means"),
             "-varfn", str(model / "variances"), "-outmllrfn", str(args.out),
             "-accumdir", str(accum)]
    run(solve)
    print(f"{len(utterances)} sentences, {len(voices)} voices, {len(conditions)} conditions: "
          f"{args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
