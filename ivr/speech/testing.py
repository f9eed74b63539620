"""Fakes for tests of code that uses speech: a scripted engine and AudioSocket frames.

The fake engine honours the real :class:`~ivr.speech.engines.Engine` interface, so the
AudioSocket server and the call flows are tested with exactly the calls production makes.
"""

from __future__ import annotations

import math
import uuid as uuidlib
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ivr.speech.audio import SAMPLE_WIDTH, TELEPHONE_RATE
from ivr.speech.audiosocket import (
    KIND_AUDIO,
    KIND_UUID,
    AudioSocketServer,
    SpeechResult,
    encode_frame,
)
from ivr.speech.engines import Transcript

FRAME_BYTES = TELEPHONE_RATE * SAMPLE_WIDTH // 50  # 20 ms


class FakeRecognizer:
    """Records the audio it is fed; its final transcript is the one its engine was given."""

    def __init__(self, engine: FakeEngine, text: str, phrases: Sequence[str] | None) -> None:
        self.engine = engine
        self.text = text
        self.phrases = phrases
        self.audio = b""
        self.closed = False
        self.finished = False

    def accept(self, pcm: bytes) -> str | None:
        assert not self.closed, "audio fed to a closed recognizer"
        self.audio += pcm
        return None

    def final(self) -> Transcript:
        assert not self.closed, "final() on a closed recognizer"
        self.finished = True
        return Transcript(self.text, 0.9 if self.text else 0.0, self.engine.name, "fake")

    def close(self) -> None:
        self.closed = True


class FakeEngine:
    """Each new recognizer "hears" the next text of ``transcripts`` (the last one repeats)."""

    name = "fake"
    model = "fake"

    def __init__(self, transcripts: Sequence[str] = ("",)) -> None:
        self.transcripts = list(transcripts)
        self.recognizers: list[FakeRecognizer] = []

    def recognizer(self, rate: int = 8000, phrases: Sequence[str] | None = None) -> FakeRecognizer:
        index = min(len(self.recognizers), len(self.transcripts) - 1)
        rec = FakeRecognizer(self, self.transcripts[index], phrases)
        self.recognizers.append(rec)
        return rec


def tone_frame(amplitude: int = 3000, hz: float = 440.0) -> bytes:
    """20 ms of a sine at 8 kHz: loud enough to count as speech for the endpointer."""
    samples = [
        int(amplitude * math.sin(2 * math.pi * hz * i / TELEPHONE_RATE))
        for i in range(FRAME_BYTES // SAMPLE_WIDTH)
    ]
    return b"".join(s.to_bytes(2, "little", signed=True) for s in samples)


def silence_frame() -> bytes:
    """20 ms of digital silence at 8 kHz."""
    return b"\0" * FRAME_BYTES


def uuid_frame(call_uuid: str) -> bytes:
    """The first frame Asterisk sends on an AudioSocket connection."""
    return encode_frame(KIND_UUID, uuidlib.UUID(call_uuid).bytes)


def audio_frames(pcm: bytes) -> bytes:
    """Audio as Asterisk streams it: 20 ms frames of slin."""
    return b"".join(
        encode_frame(KIND_AUDIO, pcm[i : i + FRAME_BYTES]) for i in range(0, len(pcm), FRAME_BYTES)
    )


def stream_call(
    server: AudioSocketServer,
    clock: Clock,
    pcm: bytes,
    call_uuid: str | None = None,
    trailing_silence_s: float = 1.5,
    prompt: bytes = b"",
) -> tuple[Deferred[SpeechResult], StringTransport]:
    """Play a whole call into ``server`` as Asterisk would: UUID, then 20 ms frames paced by
    ``clock``, then silence; returns the result Deferred and the transport (what we sent).
    ``prompt``: what the server plays the caller first (its endpointer armed when it ends)."""
    call_uuid = call_uuid or str(uuidlib.uuid4())
    result = server.expect(call_uuid, prompt=prompt)
    proto = server.buildProtocol(None)
    # Twisted leaves StringTransport and makeConnection unannotated.
    transport = StringTransport()  # type: ignore[no-untyped-call]
    proto.makeConnection(transport)  # type: ignore[no-untyped-call]
    proto.dataReceived(uuid_frame(call_uuid))
    pcm = pcm + silence_frame() * int(trailing_silence_s * 50)
    for i in range(0, len(pcm), FRAME_BYTES):
        if transport.disconnecting:
            break
        proto.dataReceived(audio_frames(pcm[i : i + FRAME_BYTES]))
        clock.advance(0.02)
    return result, transport


class ManualRunner:
    """Speech workers that run a job only when the test says so, like busy threads (a
    :class:`~ivr.speech.pool.SpeechPool` runner)."""

    def __init__(self) -> None:
        self.queued: list[tuple[Callable[[], Any], Deferred[Any]]] = []

    def __call__(self, job: Callable[[], Any]) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.queued.append((job, d))
        return d

    def run_next(self) -> None:
        job, d = self.queued.pop(0)
        try:
            d.callback(job())
        except Exception as exc:  # handed to the Deferred, as deferToThread does
            d.errback(exc)
