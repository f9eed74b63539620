"""The speech step of a call flow: "tell us why you are calling", as a request or a key.

The flow hands its AGI session to :meth:`SpeechGateway.listen`. The gateway asks the
AudioSocket server to expect the call (a recognizer slot is taken now, or the answer is
``busy`` at once), then runs ``EXEC AudioSocket`` so Asterisk streams the caller's audio to
us while we play the prompt back over the same socket (the caller may speak over it). The
outcome becomes one of:

- a request (category, urgency, transcript, confidence, engine), confirmed by the caller
  with one key when the classifier was not sure ("That sounds like a fault. Press 1...");
- the digits the caller pressed instead (the flow feeds them to the DTMF menu);
- ``None``: the DTMF menu takes over (no slot free, silence twice, nothing understood, a
  "no" to the confirmation, or a technical failure). The caller is never stuck here.

Every language of the hotline (:mod:`ivr.languages`) has its own engine and classifier,
loaded at start; the call's language picks them, and its prompts. A config reload that
changes a language's intents (examples, corpus, keywords, engine) rebuilds that language's
engine and classifier off the reactor thread and swaps them in for the next callers
(:meth:`SpeechGateway.refresh`); a language the reload adds gets its own.
"""

from __future__ import annotations

import logging
import uuid
import wave
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import Counter, Histogram
from twisted.internet.defer import Deferred

from ivr.agi import NO_TIMEOUT, AGISession, ChannelHungUp
from ivr.agi.escaping import app_arguments
from ivr.languages import Language, all_languages, language_of
from ivr.speech.audiosocket import AudioSocketServer, Recognition, SpeechResult
from ivr.speech.classifier import Classification, understood
from ivr.speech.schema import IntentsConfig

if TYPE_CHECKING:
    from ivr.speech.pool import StreamKind

log = logging.getLogger(__name__)

# What ops tune ``confirm_below_snr_db`` on: their own callers' requests, not the evaluation's
# synthetic lines (whose quiet ones read 50-77 dB, docs/speech-conditions.md).
REQUEST_SNR = Histogram(
    "hotline_speech_request_snr_db",
    "How far each spoken request rose over the caller's line heard under the prompt, in dB",
    buckets=(6, 9, 12, 15, 18, 21, 24, 30, 40, 50, 60),
)
ConfirmReason = Literal["confidence", "snr", "barge_in"]
CONFIRMATIONS = Counter(
    "hotline_speech_confirmations",
    "Spoken requests the caller was asked to confirm, by reason (confidence: the classifier "
    "unsure; snr: heard barely over the line; barge_in: words began while the question "
    "played) and answer (yes: pressed 1; no: anything else)",
    ["reason", "answer"],
)

Request = dict[str, Any]


class SpeechGateway:
    def __init__(
        self,
        server: AudioSocketServer,
        *,
        config: Callable[[], Any],
        host_sound: Callable[[str], Path],
        sound: Callable[[str], str],
        address: tuple[str, int],
        attempts: int = 2,
    ) -> None:
        self.server = server
        self.config = config
        self.host_sound = host_sound  # prompt name -> .wav on this host (played over the socket)
        self.sound = sound  # prompt name -> path Asterisk plays
        self.address = address
        self.attempts = attempts
        self._prompts: dict[str, tuple[float, bytes]] = {}
        # language code -> the intents its engine and classifier were built from (JSON)
        self.built: dict[str, str] = {}
        self.workers: int | None = None  # speech.workers the thread pool was sized by
        self.reactor: Any = None  # attaches the decoder processes of engines (re)loaded
        self._generation = 0

    @classmethod
    def from_config(
        cls, cfg: Any, reactor: Any, config: Callable[[], Any], sound: Callable[[str], str]
    ) -> SpeechGateway:
        """Load each language's engine (once per process) and build the server; raises
        EngineLoadError."""
        from ivr.speech.classifier import IntentClassifier
        from ivr.speech.languages import load_language_engine
        from ivr.speech.pool import SpeechPool, default_streams

        speech = cfg.intents.speech  # endpointing and workers: one server for every language
        recognitions = {
            language.code: Recognition(
                load_language_engine(language.intents), IntentClassifier(language.intents)
            )
            for language in speech_languages(cfg)
        }
        default = next(iter(recognitions.values()))
        kinds = [stream_kind(r.engine, attach(r.engine, reactor)) for r in recognitions.values()]
        cores = speech.worker_count
        streams = speech.max_streams or default_streams(cores, kinds)
        # Decoder processes are driven from the reactor (ivr.speech.live): the pool's
        # threads serve the in-process engines, and a combination's decisions.
        pool = SpeechPool.threaded(reactor, threads=cores, max_streams=streams,
                                   max_wait_s=speech.recognizer_wait_ms / 1000)
        server = AudioSocketServer(
            default.engine, default.classifier, pool, reactor, speech.endpointing,
            languages=recognitions, max_connections=cfg.service.audiosocket.max_connections,
        )
        host_dir = cfg.service.asterisk.host_sounds_dir
        audiosocket = cfg.service.audiosocket
        gateway = cls(
            server, config=config, host_sound=lambda name: host_dir / f"{name}.wav",
            sound=sound, address=(audiosocket.host, audiosocket.port),
        )
        gateway.built = {
            language.code: language.intents.model_dump_json()
            for language in speech_languages(cfg)
        }
        gateway.workers = speech.workers
        gateway.reactor = reactor
        return gateway

    def refresh(
        self,
        cfg: Any,
        run: Callable[[Callable[[], Any]], Deferred[Any]],
        load_engine: Callable[[Any], Any] | None = None,
    ) -> Deferred[list[str]]:
        """Serve the speech of ``cfg`` (a config just reloaded) to the next callers.

        Each language whose intents changed gets a new engine and classifier, built by ``run``
        (off the reactor thread: a language model takes a second or two); languages the
        reload added get theirs, languages it removed or switched off are dropped. Calls
        already listening keep what they started with. A model that fails to load is logged
        with its file and reason, and that language keeps its previous engine and
        classifier (none if it is new: its callers get the DTMF menu). A later reload
        supersedes one still building. Endpointing changes apply to the next callers too;
        ``speech.workers`` (the thread pool) takes a restart. Fires with the codes of the
        languages rebuilt.
        """
        from ivr.speech.classifier import IntentClassifier
        from ivr.speech.languages import load_language_engine, release_engines, retain_engines

        load = load_engine or load_language_engine
        self._generation += 1
        generation = self._generation
        wanted = {language.code: language for language in speech_languages(cfg)}
        json_of = {code: language.intents.model_dump_json() for code, language in wanted.items()}
        stale = [code for code in wanted if self.built.get(code) != json_of[code]]
        speech = cfg.intents.speech

        def build() -> tuple[dict[str, Recognition], dict[str, str]]:
            built: dict[str, Recognition] = {}
            failed: dict[str, str] = {}
            for code in stale:  # one language failing leaves the others rebuilt
                intents = wanted[code].intents
                try:
                    built[code] = Recognition(load(intents), IntentClassifier(intents))
                except Exception as exc:
                    failed[code] = str(exc) or type(exc).__name__
            return built, failed

        def swap(outcome: tuple[dict[str, Recognition], dict[str, str]]) -> list[str]:
            built, failed = outcome
            serving_now = [r.engine for r in self.server.languages.values()]
            if generation != self._generation:
                # A later reload is building the config now in force: what this one loaded
                # is not kept for it.
                release_engines([r.engine for r in built.values()], serving_now)
                return []
            if self.reactor is not None:
                for recognition in built.values():
                    attach(recognition.engine, self.reactor)
            for code, reason in failed.items():
                log.error("speech for %r not reloaded, %s: speech: %s (%s)", code,
                          wanted[code].file("intents"), reason,
                          "previous model kept" if code in self.server.languages
                          else "its callers get the DTMF menu")
            serving: dict[str, Recognition] = {}
            for code in wanted:
                if code in built:
                    serving[code] = built[code]
                    self.built[code] = json_of[code]
                elif code in self.server.languages:
                    serving[code] = self.server.languages[code]
            for code in set(self.built) - set(wanted):
                del self.built[code]
            self.server.serve_languages(serving, next(iter(serving), None))
            self.server.endpointing = speech.endpointing
            if self.workers is not None and speech.workers != self.workers:
                log.warning("speech.workers changed from %s to %s: takes a restart",
                            self.workers, speech.workers)
            dropped = retain_engines(r.engine for r in serving.values())
            if built or dropped:
                log.info("speech reloaded: rebuilt %s, serving %s, %d cached model(s) dropped",
                         sorted(built) or "none", sorted(serving) or "none", dropped)
            return sorted(built)

        return run(build).addCallback(swap)

    def listen_tcp(self, reactor: Any) -> Any:
        from ivr.admission import LISTEN_BACKLOG

        host, port = self.address
        return reactor.listenTCP(port, self.server, interface=host, backlog=LISTEN_BACKLOG)

    def _prompt_pcm(self, name: str) -> bytes:
        """The prompt as 8 kHz 16-bit mono PCM (cached until the file changes)."""
        path = self.host_sound(name)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return b""
        cached = self._prompts.get(name)
        if cached and cached[0] == mtime:
            return cached[1]
        with wave.open(str(path), "rb") as wav:
            if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (8000, 2, 1):
                log.warning("prompt %s is not 8 kHz 16-bit mono: not played over AudioSocket",
                            path)
                return b""
            pcm = wav.readframes(wav.getnframes())
        self._prompts[name] = (mtime, pcm)
        return pcm

    async def listen(
        self, session: AGISession, language: str | None = None
    ) -> Request | str | None:
        """One speech step in the caller's ``language`` (None: the default one): a request,
        the digits pressed, or ``None`` for the menu (also when this language has no speech
        engine: speech off for it, its model failed to load, or a reload is still building
        it)."""
        lang = language_of(self.config(), language)
        # Looked up once: a reload may replace or drop the language between two attempts.
        recognition = self.server.languages.get(lang.code)
        if recognition is None:
            return None
        for attempt in range(1, self.attempts + 1):
            result = await self._one_utterance(session, lang, recognition)
            outcome = result.outcome
            log.info("call %s: speech attempt %d: %s %r (%.2f)%s%s%s", session.uniqueid,
                     attempt, outcome, result.text, result.confidence,
                     " barge-in" if result.barged_in else "",
                     f" by {result.decided_by}" if result.decided_by else "",
                     f", {result.snr_db:.0f} dB over the line" if result.snr_db is not None
                     else "")
            if outcome == "hangup":
                raise ChannelHungUp("caller hung up while speaking")
            if outcome == "dtmf":
                return result.digits or None
            if outcome in ("busy", "error"):
                return None
            if outcome == "speech" and understood(result.classification):
                return await self._confirmed(session, lang, result)
            if attempt < self.attempts:
                continue  # silence or no word of a request recognized: ask once more
        await session.stream_file(self.sound(lang.sound("not-understood")))
        return None

    async def _one_utterance(
        self, session: AGISession, lang: Language, recognition: Recognition
    ) -> SpeechResult:
        call_uuid = str(uuid.uuid4())
        expected = self.server.expect(
            call_uuid, prompt=self._prompt_pcm(lang.sound("speech-prompt")),
            recognition=recognition,
        )
        if expected.called:  # busy: no recognizer slot, the caller goes to the menu at once
            return await expected
        host, port = self.address
        # AudioSocket returns -1 whenever the socket closes, also when we closed it after a
        # decision, so its result says nothing about the caller: the stream's outcome does
        # (``hangup`` when Asterisk dropped the stream first). Hence the raw EXEC here.
        try:
            await session.command(
                "EXEC", "AudioSocket", app_arguments([call_uuid, f"{host}:{port}"]),
                timeout=NO_TIMEOUT,
            )
        except ChannelHungUp:
            expected.addErrback(lambda _failure: None)  # withdrawn: nobody waits for it
            expected.cancel()
            raise
        return await expected

    async def _confirmed(
        self, session: AGISession, lang: Language, result: SpeechResult
    ) -> Request | None:
        intents = lang.intents
        classification = result.classification
        assert classification is not None
        request: Request = {
            "category": classification.category,
            "urgency": classification.urgency,
            "transcript": result.text,
            # The category's confidence: what ops read on the order and what decides the
            # confirmation. The recognizer's own word confidence goes to the log: the
            # pocketsphinx decoder gives every word of its best path a posterior of 1.
            "confidence": round(classification.confidence, 3),
            "engine": f"{result.engine}:{result.model}" if result.model else result.engine,
            "menu_path": [],
        }
        if result.snr_db is not None:
            REQUEST_SNR.observe(result.snr_db)
        reason = confirmation_reason(classification, intents, result.snr_db, result.barged_in)
        if reason is None:
            return request
        prompt = self.sound(lang.sound(f"confirm-{classification.category}"))
        answer = await session.get_data(prompt, 5000, 1)
        CONFIRMATIONS.labels(reason, "yes" if answer == "1" else "no").inc()
        if answer == "1":
            return {**request, "menu_path": ["speech-confirmed"]}
        return None


def attach(engine: Any, reactor: Any) -> bool:
    """Let ``reactor`` drive ``engine``'s decoder processes, if it has any (idempotent);
    whether it has."""
    from ivr.speech.decoders import in_processes

    processes = in_processes(engine)
    if processes is not None:
        processes.attach(reactor)
    return processes is not None


def stream_kind(engine: Any, attached: bool) -> StreamKind:
    """How ``engine``'s callers are recognized (``attached``: in decoder processes the reactor
    drives), which sets how many a core takes (:data:`ivr.speech.pool.STREAMS_PER_CORE`)."""
    from ivr.speech.whisper import WholeUtteranceEngine

    if attached:
        return "processes"
    return "whole" if isinstance(engine, WholeUtteranceEngine) else "threads"


def confirmation_reason(
    classification: Classification, intents: IntentsConfig, snr_db: float | None = None,
    barged_in: bool = False,
) -> ConfirmReason | None:
    """Why the gateway asks the caller "That sounds like a fault. Press 1 if right", None
    when it takes the request as it is: the category's confidence is below ``confirm_below``
    (1.0: always ask, even when certain), the words rose less than ``confirm_below_snr_db``
    over the line's own noise (``snr_db``, None: not measured), or, with
    ``confirm_barge_in``, they began while the question still played. A TV in the room
    cannot press 1; on a line that noisy a sure classifier is often wrong; and a TV talks
    from the first moment, before anyone asked (docs/speech-conditions.md, "Twelfth
    session" and "Thirteenth session"). A request for the operator is never asked about: it
    goes to a person anyway."""
    if classification.category == intents.operator_category:
        return None
    if intents.confirm_below >= 1.0 or classification.confidence < intents.confirm_below:
        return "confidence"
    if snr_db is not None and snr_db < intents.confirm_below_snr_db:
        return "snr"
    if barged_in and intents.confirm_barge_in:
        return "barge_in"
    return None


def speech_languages(cfg: Any) -> list[Language]:
    """The languages whose callers are offered speech (``speech.enabled``), default first."""
    return [language for language in all_languages(cfg) if language.intents.speech.enabled]
