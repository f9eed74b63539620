"""AudioSocket server: caller audio from Asterisk in, a request category out.

The FastAGI flow registers the call and runs the dialplan application::

    d = server.expect(call_uuid, prompt=pcm8k)   # Deferred[SpeechResult]
    EXEC AudioSocket "<call_uuid>,127.0.0.1:9092"  # returns when we close the socket
    result = await d

Asterisk connects, sends the UUID, then 20 ms frames of 8 kHz signed-linear audio; we may send
audio back (the prompt, so the caller can talk over it). Endpointing
(:mod:`ivr.speech.endpointing`) ends the utterance right after the caller stops; the
recognizer (a :class:`~ivr.speech.live.LiveRecognizer`: decoder processes driven from here,
or jobs of a :class:`~ivr.speech.pool.SpeechPool` lease) hears the words; the classifier
names the category; then we close the socket and the dialplan goes on.

Wire format (Asterisk ``res_audiosocket``): 1 byte kind, 2 bytes big-endian payload length,
payload. Kinds: 0x00 hangup, 0x01 UUID (16 bytes), 0x03 DTMF (1 ASCII digit), 0x10 audio,
0xff error.
"""

from __future__ import annotations

import struct
import typing
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ivr.admission import Admission, Refusal, RefusalLog
from ivr.speech.audio import FRAME_MS, TELEPHONE_RATE, thinking_cue
from ivr.speech.classifier import Classification, IntentClassifier
from ivr.speech.endpointing import Endpointer, Event
from ivr.speech.engines import Engine, Transcript
from ivr.speech.live import LiveRecognizer, open_live
from ivr.speech.pool import Lease, RecognizerBusy, SpeechPool
from ivr.speech.schema import EndpointingConfig
from ivr.timers import Clock, DelayedCall

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
_HEADER = struct.Struct(">BH")
# 20 ms of 8 kHz slin is 320 bytes; anything far beyond a frame is not Asterisk talking.
MAX_PAYLOAD = 4096
PROMPT_FRAME_BYTES = TELEPHONE_RATE * 2 * FRAME_MS // 1000
# Asterisk forwards the caller's frames as they come; while the caller is quiet a phone with
# silence suppression (DTX) or a Local channel sends none at all. A gap of FRAME_GAP_S with
# no frame counts as that much silence for the endpointer, so the end of speech and the
# no-speech timeout still come; only a stream that never starts (no UUID) for
# FRAME_WATCHDOG_S is an error (one timer, however its bytes trickle in: a slow-loris peer
# is cut off all the same).
FRAME_GAP_S = 0.2
FRAME_WATCHDOG_S = 10.0
_SILENT_FRAME = b"\0" * PROMPT_FRAME_BYTES
# The caller has heard the endpointer's trailing silence when the recognizer is asked; if it
# has not decided THINKING_AFTER_S later (a decoding starved of CPU, every caller speaking at
# once on a saturated pool), they hear the thinking cue until it does, not dead air.
THINKING_AFTER_S = 0.3
_THINKING_CUE = thinking_cue(30.0)  # longer than any decision may take
CONNECT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 256
"""Open streams at most: legitimate ones are bounded by the recognizer slots (a stream is
only expected once a slot is leased), so this only has to be well above the pool."""

Outcome = Literal["speech", "dtmf", "silence", "busy", "hangup", "error"]
log = Logger()


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket frame."""
    return _HEADER.pack(kind, len(payload)) + payload


@dataclass(frozen=True)
class SpeechResult:
    """How the speech step of one call ended.

    ``outcome``: ``speech`` (text and classification set; an utterance with no recognized
    words is ``silence``), ``dtmf`` (``digits``), ``silence`` (nothing said in time), ``busy``
    (every recognizer slot taken: go to the DTMF menu), ``hangup`` (the caller left),
    ``error`` (Asterisk never connected, sent garbage, or the stream stalled).
    ``timings``: clock seconds of ``connected``, ``speech_start``, ``end_of_speech``,
    ``decision``, and ``latency_ms`` = end of speech to decision.
    """

    outcome: Outcome
    text: str = ""
    digits: str = ""
    classification: Classification | None = None
    confidence: float = 0.0
    engine: str = ""
    model: str = ""
    decided_by: str = ""  # a combination of engines: whose words ``text`` is
    timings: dict[str, float] = field(default_factory=dict)
    # How far the utterance rose over the line's own noise heard before it, in dB (None: no
    # utterance, or no line measured): the gateway confirms a request heard barely over it.
    snr_db: float | None = None

    @property
    def barged_in(self) -> bool:
        """Whether the utterance began while the prompt still played (it stopped the prompt)."""
        return "barge_in" in self.timings


@dataclass(frozen=True)
class Recognition:
    """How one language is understood: its engine (model) and its classifier."""

    engine: Engine
    classifier: Any  # IntentClassifier, or anything with its classify(text)


@dataclass
class _Expectation:
    deferred: Deferred[SpeechResult]
    lease: Lease
    prompt: bytes
    phrases: Sequence[str] | None
    recognition: Recognition
    timeout: Any = None


class _Wire(typing.Protocol):
    """What a stream uses of its transport (Twisted's ``ITransport``, a zope interface that
    mypy cannot check calls against)."""

    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> Any: ...


class AudioSocketProtocol(Protocol):
    """One AudioSocket stream, one caller utterance.

    ``_state``:
    - ``uuid``: connected, waiting for the UUID frame; anything else -> error, close.
    - ``listening``: prompt may be playing; audio goes to the endpointer; DTMF ends the step.
    - ``speaking``: speech started (prompt stopped); audio also goes to the recognizer.
    - ``recognizing``: end of speech; waiting for the final transcript and the category.
    - ``done``: result delivered; the socket is closing and further bytes are ignored.

    Until its UUID names an expected call the stream is unproven: the server's
    :class:`~ivr.admission.Admission` may evict it to make room. What we write is bounded
    by the prompt (paced at 20 ms a frame, whether the peer reads or not).
    """

    def __init__(self, server: AudioSocketServer) -> None:
        self.server = server
        self.clock = server.clock
        self._state = "uuid"
        self._buffer = b""
        self._uuid: str | None = None
        self._expectation: _Expectation | None = None
        self._endpointer = Endpointer(server.endpointing)
        # What is left to play: a view, so each frame is taken without copying the rest (a
        # prompt is seconds long, the thinking cue 30 s).
        self._prompt = memoryview(b"")
        self._prompt_loop: LoopingCall | None = None
        self._watchdog: Any = None
        self._thinking: DelayedCall | None = None
        self._gap_s = 0.0
        self._recognizer: LiveRecognizer | None = None
        self._pending: list[bytes] = []
        self._feeding = False
        self.timings: dict[str, float] = {}

    @property
    def _wire(self) -> _Wire:
        return cast(_Wire, self.transport)

    def evict(self) -> None:
        """Drop the stream at once: the server is full and this one never named its call."""
        self._state = "done"
        self._cancel_watchdog()
        self._wire.abortConnection()

    # --- wire ------------------------------------------------------------------------------

    def connectionMade(self) -> None:
        self.timings["connected"] = self.clock.seconds()
        # one timer, not the frame-gap ticks: a thousand idle peers cost a thousand timers,
        # not five thousand calls a second (the epsilon: as the ticks summed it, 50 x 0.2)
        self._watchdog = self.clock.callLater(
            self.server.first_frame_timeout - 1e-6, self._no_first_frame
        )

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while self._state != "done" and len(self._buffer) >= _HEADER.size:
            kind, length = _HEADER.unpack_from(self._buffer)
            if length > MAX_PAYLOAD:
                self._fail(f"frame of {length} bytes (kind {kind:#x})", "frame_too_large")
                return
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            payload, self._buffer = self._buffer[_HEADER.size : end], self._buffer[end:]
            self._frameReceived(kind, payload)

    def _frameReceived(self, kind: int, payload: bytes) -> None:
        self._gap_s = 0.0
        if self._state == "uuid":
            self._cancel_watchdog()
            if kind != KIND_UUID or len(payload) != 16:
                self._fail(f"first frame kind {kind:#x}, want a UUID", "bad_frame")
                return
            self._start(str(uuidlib.UUID(bytes=payload)))
            self._arm_watchdog()
            return
        self._arm_watchdog()
        if kind == KIND_AUDIO:
            self._audio(payload)
        elif kind == KIND_DTMF:
            if self._state in ("listening", "speaking"):
                self._finish(SpeechResult("dtmf", digits=payload.decode("ascii", "replace")))
        elif kind == KIND_HANGUP:
            self._hangup()
        elif kind == KIND_ERROR:
            self._fail(f"Asterisk reported an error {payload!r}")
        else:
            self._fail(f"unknown frame kind {kind:#x}", "bad_frame")

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._cancel_watchdog()
        self.server.admission.release(self)
        if self._state == "uuid":
            self._state = "done"
        elif self._state != "done" and self._state != "recognizing":
            self._hangup()

    # --- the call's step -------------------------------------------------------------------

    def _start(self, call_uuid: str) -> None:
        expectation = self.server._claim(call_uuid)
        if expectation is None:
            self.server.refusals.refused(
                "unknown_call", self._wire.getPeer(),
                f"AudioSocket for call {call_uuid}, which no flow expects",
            )
            self._state = "done"
            self._wire.loseConnection()
            return
        self.server.admission.proven(self)
        self._uuid, self._expectation = call_uuid, expectation
        self._state = "listening"
        if expectation.prompt:
            self._endpointer.armed = False
            self._play(expectation.prompt)

    def _play(self, audio: bytes) -> None:
        """Send ``audio`` to the caller, 20 ms a frame paced by the clock, until it ends or
        :meth:`_stop_prompt`."""
        self._prompt = memoryview(audio)
        self._prompt_loop = LoopingCall(self._play_frame)
        self._prompt_loop.clock = cast(Any, self.clock)  # the reactor, or a test's Clock
        self._prompt_loop.start(FRAME_MS / 1000, now=True)

    def _play_frame(self) -> None:
        """Send the next 20 ms of the prompt, paced by the clock."""
        frame, self._prompt = (
            self._prompt[:PROMPT_FRAME_BYTES],
            self._prompt[PROMPT_FRAME_BYTES:],
        )
        if frame:
            self._wire.write(encode_frame(KIND_AUDIO, frame.tobytes()))
        if not self._prompt:
            self._stop_prompt()
            self._endpointer.arm()

    def _think(self) -> None:
        """Still deciding: the thinking cue, through the prompt's pacing, until the end."""
        self._thinking = None
        if self._state != "recognizing":
            return
        self.timings["thinking"] = self.clock.seconds()
        self._play(_THINKING_CUE)

    def _stop_prompt(self) -> None:
        if self._prompt_loop is not None and self._prompt_loop.running:
            self._prompt_loop.stop()
        self._prompt_loop = None
        self._prompt = memoryview(b"")

    def _audio(self, frame: bytes) -> None:
        if self._state not in ("listening", "speaking"):
            return
        event, audio = self._endpointer.feed(frame, len(frame) * 1000 // (TELEPHONE_RATE * 2))
        if event is Event.SPEECH_START:
            self.timings["speech_start"] = self.clock.seconds()
            self._state = "speaking"
            if self._prompt:
                self.timings["barge_in"] = self.clock.seconds()
            self._stop_prompt()  # barge-in
            self._open_recognizer()
        if audio and self._state == "speaking":
            self._pending.append(audio)
            self._pump()
        if event is Event.PAUSE and self._recognizer is not None:
            self._recognizer.paused()
        if event is Event.NO_SPEECH:
            self._finish(SpeechResult("silence"))
        elif event in (Event.END_OF_SPEECH, Event.MAX_LENGTH):
            self.timings["end_of_speech"] = self.clock.seconds()
            self._state = "recognizing"
            # The end of speech is the quiet stretch of the last pause (the endpointer's
            # PAUSE comes first in it); a cut at the maximum length may be mid-word.
            self._recognize(after_pause=event is Event.END_OF_SPEECH)

    def _open_recognizer(self) -> None:
        assert self._expectation is not None
        expectation = self._expectation

        def failed(failure: Failure) -> None:
            self._recognizer_failed(failure, "no recognizer for call {uuid}")

        try:
            self._recognizer = open_live(expectation.recognition.engine, expectation.lease,
                                         TELEPHONE_RATE, expectation.phrases)
        except Exception:  # no decoder process running at all: the menu, not dead air
            log.failure("no recognizer for call {uuid}", uuid=self._uuid)
            self._finish(SpeechResult("error"))
            return
        self._recognizer.opened().addErrback(failed)

    def _pump(self) -> None:
        """Hand buffered audio to the recognizer, one batch in flight at a time."""
        if self._feeding or not self._pending or self._recognizer is None:
            return
        batch, self._pending = b"".join(self._pending), []
        self._feeding = True

        def fed(outcome: object) -> None:
            self._feeding = False
            if isinstance(outcome, Failure):
                # Audio the recognizer did not take would make a wrong transcript: the
                # caller goes to the menu instead (busy: shed; anything else: an error).
                self._recognizer_failed(outcome, "recognizer failed on call {uuid}")
                return
            self._pump()

        self._recognizer.accept(batch).addBoth(fed)

    def _recognize(self, *, after_pause: bool) -> None:
        assert self._expectation is not None
        self._thinking = self.clock.callLater(THINKING_AFTER_S, self._think)
        self._feeding = True  # the final batch goes with the final job
        batch, self._pending = b"".join(self._pending), []
        classifier = self._expectation.recognition.classifier
        recognizer = self._recognizer
        if recognizer is None:  # the recognizer could not be made: already finished
            return

        def decided(transcript: Transcript) -> None:
            # On the reactor: a classification costs some 20 µs.
            verdict = classifier.classify(transcript.text) if transcript.text else None
            result = SpeechResult(
                "speech" if transcript.text else "silence",
                text=transcript.text,
                classification=verdict,
                confidence=transcript.confidence,
                engine=transcript.engine,
                model=transcript.model,
                decided_by=transcript.decided_by,
            )
            self._finish(result)

        def failed(failure: Failure) -> None:
            self._recognizer_failed(failure, "recognizer failed on call {uuid}")

        fed: Deferred[None] = recognizer.accept(batch) if batch else defer.succeed(None)
        fed.addCallback(lambda _: recognizer.final(after_pause=after_pause))
        fed.addCallbacks(decided, failed)

    def _recognizer_failed(self, failure: Failure, message: str) -> None:
        """A recognizer call failed: the caller goes to the menu (shed, or an error logged
        with ``message``). After the utterance ended (shed by an earlier request, hung up)
        the failures of the requests still in flight say nothing new: dropped quietly."""
        if self._state == "done" or self._shed(failure):
            return
        log.failure(message, failure, uuid=self._uuid)
        self._finish(SpeechResult("error"))

    def _shed(self, failure: Failure) -> bool:
        """A recognizer job that no worker started in time: the caller goes to the DTMF menu
        now (outcome ``busy``) rather than wait in silence for the workers to catch up."""
        if not isinstance(failure.value, RecognizerBusy):
            return False
        log.info("call {uuid}: no recognizer worker in time, to the menu", uuid=self._uuid)
        self._finish(SpeechResult("busy"))
        return True

    def _hangup(self) -> None:
        self._finish(SpeechResult("hangup"))

    def _fail(self, why: str, reason: str | None = None) -> None:
        """End the stream with outcome ``error``; with ``reason`` the peer broke the
        protocol (a refusal: counted, and logged at the refusals' pace)."""
        if reason is None or self.transport is None:
            log.warn("AudioSocket stream {uuid} closed: {why}", uuid=self._uuid, why=why)
        else:
            self.server.refusals.refused(
                reason, self._wire.getPeer(), f"AudioSocket stream {self._uuid}: {why}"
            )
        self._finish(SpeechResult("error"))

    def _finish(self, result: SpeechResult) -> None:
        """Deliver the result once, free the recognizer and the slot, close the socket."""
        if self._state == "done":
            return
        self._state = "done"
        self._buffer = b""
        if self._thinking is not None and self._thinking.active():
            self._thinking.cancel()
        self._stop_prompt()
        self._cancel_watchdog()
        self.timings["decision"] = self.clock.seconds()
        if "end_of_speech" in self.timings and result.outcome == "speech":
            self.timings["latency_ms"] = round(
                1000 * (self.timings["decision"] - self.timings["end_of_speech"]), 1
            )
        if self.transport is not None:
            self._wire.loseConnection()
        expectation, self._expectation = self._expectation, None
        if expectation is None:
            return
        lease = expectation.lease
        timed = SpeechResult(**{**result.__dict__, "timings": dict(self.timings),
                                "snr_db": self._endpointer.snr_db()})

        def deliver(_: object = None) -> None:
            if not expectation.deferred.called:  # the flow may have cancelled meanwhile
                expectation.deferred.callback(timed)

        def release(_: object) -> None:
            lease.release()

        if self._recognizer is not None:
            self._recognizer.close()
            self._recognizer = None
        if result.outcome == "busy":
            # The workers are behind: the caller goes to the menu now, not once they caught
            # up; the slot comes back when they did (no re-prompt follows a busy).
            deliver()
            lease.drained().addCallback(release)
        else:
            # After the slot is back, so the flow can re-prompt at once without finding its
            # own previous recognition still holding a slot.
            lease.drained().addCallback(release).addCallback(deliver)

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.reset(FRAME_GAP_S)
        elif self._state != "done":
            self._watchdog = self.clock.callLater(FRAME_GAP_S, self._stalled)

    def _cancel_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.active():
            self._watchdog.cancel()
        self._watchdog = None

    def _stalled(self) -> None:
        self._watchdog = None
        if self._state == "done":
            return
        # Asterisk ends the AudioSocket application after 2 s with no frame either way
        # (app_audiosocket.c, MAX_WAIT_TIMEOUT_MSEC), and with it the call's AGI: a caller
        # whose phone sends nothing while quiet (DTX, an RTP stream lost on the way) met a
        # service that sends nothing while it listens or decides. One silent frame per gap
        # keeps the stream up; the caller hears the same silence.
        if self._prompt_loop is None:
            self._wire.write(encode_frame(KIND_AUDIO, _SILENT_FRAME))
        if self._state == "recognizing":
            self._arm_watchdog()  # waiting on the recognizer, not on Asterisk
            return
        self._gap_s += FRAME_GAP_S
        for _ in range(round(FRAME_GAP_S * 1000 / FRAME_MS)):
            self._audio(_SILENT_FRAME)
            if self._state not in ("listening", "speaking"):
                return
        self._arm_watchdog()

    def _no_first_frame(self) -> None:
        self._watchdog = None
        if self._state == "uuid":
            self._fail(f"no UUID frame in {self.server.first_frame_timeout:g} s",
                       "first_frame_timeout")


class AudioSocketServer(ServerFactory):
    """Accepts Asterisk's AudioSocket connections for the calls the flows expect.

    ``engine`` and ``classifier`` understand calls that name no language; ``languages`` maps
    each language code to its :class:`Recognition` (the gateway names every call's
    language), chosen per call by :meth:`expect`.
    """

    protocol = AudioSocketProtocol

    def __init__(
        self,
        engine: Engine | None,
        classifier: IntentClassifier | None,
        pool: SpeechPool,
        clock: Clock,
        endpointing: EndpointingConfig | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        languages: dict[str, Recognition] | None = None,
        max_connections: int = MAX_CONNECTIONS,
        first_frame_timeout: float = FRAME_WATCHDOG_S,
    ) -> None:
        self.engine = engine
        self.classifier = classifier
        self.languages = dict(languages or {})
        self.pool = pool
        self.clock = clock
        self.endpointing = endpointing or EndpointingConfig()
        self.connect_timeout = connect_timeout
        self._expected: dict[str, _Expectation] = {}
        self.first_frame_timeout = first_frame_timeout
        self.refusals = RefusalLog("audiosocket", clock)
        self.admission = Admission(max_connections, self.refusals)

    def serve_languages(self, languages: dict[str, Recognition], default: str | None) -> None:
        """From the next call on, understand ``languages`` (``default``: the one used when a
        call names none). Calls already expected keep the recognition they started with."""
        self.languages = dict(languages)
        chosen = self.languages.get(default) if default is not None else None
        # No language left (speech switched off everywhere): the old model must not stay
        # referenced here, or its memory would outlive the reload.
        self.engine = chosen.engine if chosen else None
        self.classifier = chosen.classifier if chosen else None

    def buildProtocol(self, addr: Any) -> Protocol:
        """A stream, or over the cap (nothing to evict) a bare close: Asterisk's AudioSocket
        application ends, and the flow's speech step with it (outcome ``error``: the menu)."""
        proto = AudioSocketProtocol(self)
        if not self.admission.admit(proto, addr):
            return Refusal()
        proto.factory = self
        return proto

    def expect(
        self,
        call_uuid: str,
        prompt: bytes = b"",
        phrases: Sequence[str] | None = None,
        language: str | None = None,
        recognition: Recognition | None = None,
    ) -> Deferred[SpeechResult]:
        """Wait for the AudioSocket stream of ``call_uuid``; fires with how the step ended.

        Fires at once with outcome ``busy`` when no recognizer slot is free, so the caller
        goes to the DTMF menu without running AudioSocket at all. ``prompt``: 8 kHz slin
        played to the caller over the socket until they speak. If Asterisk does not connect
        within ``connect_timeout`` the outcome is ``error``. Cancelling the Deferred withdraws
        the expectation. ``recognition``: the engine and classifier to use, else those of
        ``language`` (a code of ``languages``), else the default ones. With none of them
        (a reload dropped the language meanwhile) the outcome is ``error`` at once, and the
        caller goes to the menu.
        """
        call_uuid = str(uuidlib.UUID(call_uuid))
        if recognition is None:
            if language is not None:
                recognition = self.languages.get(language)
            elif self.engine is not None and self.classifier is not None:
                recognition = Recognition(self.engine, self.classifier)
        if recognition is None:
            return defer.succeed(SpeechResult("error"))
        lease = self.pool.try_acquire()
        if lease is None:
            return defer.succeed(SpeechResult("busy"))

        def cancel(_: Deferred[SpeechResult]) -> None:
            self._withdraw(call_uuid)

        d: Deferred[SpeechResult] = Deferred(cancel)
        expectation = _Expectation(d, lease, prompt, phrases, recognition)
        expectation.timeout = self.clock.callLater(
            self.connect_timeout, self._connect_timed_out, call_uuid
        )
        self._expected[call_uuid] = expectation
        return d

    def _claim(self, call_uuid: str) -> _Expectation | None:
        expectation = self._expected.pop(call_uuid, None)
        if expectation is not None and expectation.timeout.active():
            expectation.timeout.cancel()
        return expectation

    def _withdraw(self, call_uuid: str) -> _Expectation | None:
        expectation = self._claim(call_uuid)
        if expectation is not None:
            expectation.lease.release()
        return expectation

    def _connect_timed_out(self, call_uuid: str) -> None:
        expectation = self._withdraw(call_uuid)
        if expectation is not None:
            log.warn("AudioSocket for call {uuid} never connected", uuid=call_uuid)
            expectation.deferred.callback(SpeechResult("error"))

    @property
    def expected(self) -> int:
        """Calls waiting for their stream to connect."""
        return len(self._expected)
