"""What an engine hears of the tune sentences in other voices and on other lines, as training
data for the classifier (``heard_corpus`` in ``config/intents.yaml``).

    nice -n 15 .venv/bin/python benchmarks/speech/heard.py --engine pocketsphinx \\
        [--passes 2] [--sample N] [--limit N] [--jobs N]
        [--out config/intents-heard-pocketsphinx.yaml]

Most misses on unheard voices are recognition errors the classifier could learn: a caller
who says "two days" is heard as "due date" again and again. Each sentence of the evaluation
set's tune split (never a held-out sentence: those are what the evaluations measure) is
spoken by a development voice through a channel condition (:mod:`conditions`), streamed
through the production path with ``--engine``, and what the engine heard is written with the
sentence's category. ``--passes`` says how many (voice, condition) pairs each sentence goes
through; the pairs are fixed by the sentence's position, so a rerun writes the same file
(rendered voices are cached in ``var/speech-conditions/``). The blind voices are never used.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import channel  # noqa: E402
import voices as voice_cache  # noqa: E402
from conditions import (  # noqa: E402
    DEFAULT_CONDITIONS,
    babble_pool,
    seed_of,
    spread,
    with_engine,
)
from evaluate import Listener  # noqa: E402
from synthesize import load_eval_set  # noqa: E402

from ivr.speech.schema import DEFAULT_INTENTS, IntentsConfig  # noqa: E402
from ivr.yamlfile import load_yaml  # noqa: E402


def pairs(
    index: int, passes: int, voices: list[str], conditions: list[str]
) -> list[tuple[str, str]]:
    """The (voice, condition) pairs of the ``index``-th sentence: every voice speaks in turn,
    and each block of as many sentences as voices goes through one condition, so every voice
    meets every condition; a further pass moves each sentence to the next voice and the
    condition half the list away."""
    out = []
    for p in range(passes):
        voice = voices[(index + p) % len(voices)]
        condition = conditions[(index // len(voices) + p * len(conditions) // 2) % len(conditions)]
        out.append((voice, condition))
    return out


Call = tuple[str, str, str, str]  # category, sentence, voice, condition


def intents_to_hear(path: Path) -> IntentsConfig:
    """The intents file without its ``heard_corpus``: what an engine hears does not depend
    on it, and its file may be the one this run is about to write."""
    data = load_yaml(path.read_text(encoding="utf-8"))
    data.pop("heard_corpus", None)
    return IntentsConfig.model_validate(data, context={"path": path})


def hear_calls(intents: Path, engine: str, calls: list[Call]) -> list[tuple[str, str]]:
    """(category, transcript) of each call that the production path ended as speech."""
    babble = channel.babble_source(babble_pool(list(voice_cache.DEV_VOICES)))
    listener = Listener(with_engine(intents_to_hear(intents), engine))
    out = []
    for category, text, voice, condition in calls:
        pcm = voice_cache.render(voice, [text])[text]
        row = listener.hear(channel.apply(condition, pcm, seed_of("heard", condition, text),
                                          babble))
        if row["outcome"] == "speech" and row["heard"].strip():
            out.append((category, row["heard"].strip().lower()))
    return out


def header(engine: str, command: str, calls: int, kept: int) -> str:
    return (
        f"# What the {engine} engine heard of the evaluation set's tune sentences, spoken by the\n"
        "# development voices over the development phone lines (never the held-out sentences,\n"
        "# never the blind voices): category -> transcripts. The classifier learns from these\n"
        "# besides the examples, so it knows the engine's usual mistakes (\"due date\" for\n"
        "# \"two days\"); the speech language model does not. Generated, do not edit:\n"
        f"#   {command}\n"
        f"# {calls} calls, {kept} distinct transcripts.\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["pocketsphinx", "whisper", "moonshine"], required=True)
    parser.add_argument("--passes", type=int, default=2, help="(voice, condition) per sentence")
    parser.add_argument("--sample", type=int, help="only N tune sentences, spread evenly")
    parser.add_argument("--limit", type=int, help="only the first N calls of the plan "
                        "(the same voice and line per sentence as the whole run)")
    parser.add_argument("--jobs", type=int, default=1, help="decoding processes")
    parser.add_argument("--intents", type=Path, default=DEFAULT_INTENTS)
    parser.add_argument("--out", type=Path, help="default: config/intents-heard-ENGINE.yaml")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "config" / f"intents-heard-{args.engine}.yaml"

    voices = list(voice_cache.DEV_VOICES)
    conditions = list(DEFAULT_CONDITIONS)
    tune = spread([u for u in load_eval_set() if u["split"] == "tune"], args.sample)
    plan = [(u, v, c) for i, u in enumerate(tune) for v, c in pairs(i, args.passes, voices,
                                                                       conditions)]
    plan = plan[: args.limit]
    said: dict[str, list[str]] = defaultdict(list)
    for u, v, _ in plan:
        said[v].append(u["text"])
    for v in voices:
        voice_cache.render(v, said[v])  # into the cache, once, before the workers read it
    calls = [(u["category"], u["text"], v, c) for u, v, c in plan]
    jobs = max(1, args.jobs)
    heard: dict[str, set[str]] = defaultdict(set)
    started = time.monotonic()
    with ProcessPoolExecutor(jobs) as pool:
        parts = [calls[k::jobs] for k in range(jobs)]
        for part in pool.map(hear_calls, [args.intents] * jobs, [args.engine] * jobs, parts):
            for category, text in part:
                heard[category].add(text)
    print(f"  {len(plan)} calls ({time.monotonic() - started:.0f} s)", file=sys.stderr)

    command = (f"benchmarks/speech/heard.py --engine {args.engine} --passes {args.passes}"
               + (f" --sample {args.sample}" if args.sample else "")
               + (f" --limit {args.limit}" if args.limit else ""))
    kept = sum(len(texts) for texts in heard.values())
    lines = [header(args.engine, command, len(plan), kept)]
    for category in intents_to_hear(args.intents).categories:
        texts = sorted(heard.get(category, ()))
        lines.append(f"{category}:\n" if texts else f"{category}: []\n")
        lines.extend(f"  - {_quoted(text)}\n" for text in texts)
    out.write_text("".join(lines), encoding="utf-8")
    print(f"{out}: {kept} transcripts from {len(plan)} calls", file=sys.stderr)
    return 0


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    raise SystemExit(main())
