"""Where a caller's utterance starts and ends, from the energy of 20 ms frames.

Pure: it counts audio time (frames fed), not wall-clock time, so a test feeds frames and reads
the verdict; the AudioSocket protocol adds a wall-clock watchdog for a line that goes quiet
without sending frames at all.

States:
- ``waiting``: no speech yet. ``speech_start_ms`` of consecutive voiced frames -> ``speaking``;
  ``no_speech_timeout_ms`` of armed waiting -> ``NO_SPEECH``.
- ``speaking``: ``early_decode_ms`` of consecutive unvoiced frames -> ``PAUSE`` (once per quiet
  stretch, a hint: the utterance may be over); ``trailing_silence_ms`` of them ->
  ``END_OF_SPEECH`` (always after a ``PAUSE`` in the same stretch, when that is on);
  ``max_utterance_ms`` of utterance -> ``MAX_LENGTH``. Either becomes ``NO_SPEECH`` when the
  utterance's level hardly moved (``min_modulation_db``): a voice rises and falls with every
  syllable, a line's hiss, a fan, traffic or a hum stay level, and a recognizer given them
  answers with words all the same.
- ``done``: a verdict was given; further frames are ignored.

A frame is voiced at ``speech_threshold`` or, with ``noise_margin_db``, that far above the
line's noise if that is higher: the median level of the last three seconds of frames while
waiting (the caller has not spoken yet; the prompt is playing), fixed once the utterance
starts.
A quiet line keeps the fixed threshold; on a line whose hiss or babble is above it, the
caller is heard to start and to stop against the line, not held to ``max_utterance_ms``.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from enum import Enum

from ivr.speech.audio import FRAME_MS, frame_energy
from ivr.speech.schema import EndpointingConfig

# Audio kept from before the detected start, so the first syllable reaches the recognizer.
PRE_ROLL_MS = 300
# The modulation of an utterance: loud frames (this quantile) over quiet ones (1 - it). 95/5
# rather than 90/10: a short phrase said in one breath ("outstanding amount") has few quiet
# frames, and its 10th percentile is still mid-word.
MODULATION_QUANTILE = 0.95
# The line's noise: the median frame level over this much of the waiting before speech.
# Babble rises and falls over seconds: a one-second window often caught a lull just before
# the caller spoke, and the babble's return after the words then held the endpointer open
# (babble 10 dB + GSM 42 -> 54 of 96 with three seconds, docs/speech-conditions.md). The
# speech prompt (3.9 s) fills them before a caller who waits for it; one who speaks over it
# is measured against what there was.
NOISE_WINDOW_MS = 3000


def modulation_db(energies: list[float]) -> float:
    """How far the level of an utterance moves: the 95th over the 5th percentile of its
    frames' RMS, in dB (speech: 15 dB and more, 12 at 10 dB SNR; steady noise: a few dB)."""
    if not energies:
        return 0.0
    ranked = sorted(energies)
    high, low = quantile(ranked, MODULATION_QUANTILE), quantile(ranked, 1 - MODULATION_QUANTILE)
    return 20 * math.log10(max(high, 1.0) / max(low, 1.0))


def quantile(ranked: list[float], q: float) -> float:
    """The ``q`` quantile of levels sorted in ascending order (nearest rank, no interpolation)."""
    return ranked[min(len(ranked) - 1, int(q * len(ranked)))]


class Event(Enum):
    SPEECH_START = "speech_start"
    END_OF_SPEECH = "end_of_speech"
    MAX_LENGTH = "max_length"
    NO_SPEECH = "no_speech"
    # The caller has been quiet for early_decode_ms: what they said so far may be all of it.
    PAUSE = "pause"


class Endpointer:
    """Energy voice-activity detection with hangover; one per utterance."""

    def __init__(self, config: EndpointingConfig, armed: bool = True) -> None:
        self.config = config
        self.state = "waiting"
        # Not armed while the prompt plays: the caller cannot be "silent" before being asked.
        self.armed = armed
        self._waited_ms = 0
        self._voiced_ms = 0
        self._silent_ms = 0
        self._utterance_ms = 0
        self._pre_roll: deque[bytes] = deque(maxlen=max(1, PRE_ROLL_MS // FRAME_MS))
        # RMS of the utterance's frames (from the voiced frames that started it), for its
        # modulation.
        self._energies: list[float] = []
        self._start_energies: deque[float] = deque(
            maxlen=max(1, config.speech_start_ms // FRAME_MS)
        )
        self._line: deque[float] = deque(maxlen=NOISE_WINDOW_MS // FRAME_MS)
        self._margin = 10 ** (config.noise_margin_db / 20) if config.noise_margin_db else 0.0
        self.threshold = config.speech_threshold  # what a frame must reach to be voiced

    def _line_threshold(self) -> float:
        """The fixed threshold, or the margin over the line's noise when that is higher."""
        return max(self.config.speech_threshold, self._margin * statistics.median_low(self._line))

    def arm(self) -> None:
        """Start the no-speech timeout (the prompt has finished)."""
        self.armed = True

    def feed(self, frame: bytes, frame_ms: int = FRAME_MS) -> tuple[Event | None, bytes]:
        """Take one frame; return (event or None, audio to pass to the recognizer now).

        Before speech starts nothing is passed on (no CPU spent on silence); at the start the
        pre-roll is released with the frame; while speaking every frame is passed on.
        """
        if self.state == "done":
            return None, b""
        energy = frame_energy(frame)
        if self.state == "waiting" and self._margin:
            self._line.append(energy)
            self.threshold = self._line_threshold()
        voiced = energy >= self.threshold
        if self.state == "waiting":
            self._pre_roll.append(frame)
            self._voiced_ms = self._voiced_ms + frame_ms if voiced else 0
            self._start_energies.append(energy)
            if self._voiced_ms >= self.config.speech_start_ms:
                self.state = "speaking"
                audio = b"".join(self._pre_roll)
                self._pre_roll.clear()
                self._utterance_ms = self._voiced_ms
                self._energies = list(self._start_energies)
                return Event.SPEECH_START, audio
            if self.armed:
                self._waited_ms += frame_ms
                if self._waited_ms >= self.config.no_speech_timeout_ms:
                    self.state = "done"
                    return Event.NO_SPEECH, b""
            return None, b""
        # speaking
        self._utterance_ms += frame_ms
        self._silent_ms = 0 if voiced else self._silent_ms + frame_ms
        self._energies.append(energy)
        event = None
        if self._silent_ms >= self.config.trailing_silence_ms:
            event = Event.END_OF_SPEECH
        elif self._utterance_ms >= self.config.max_utterance_ms:
            event = Event.MAX_LENGTH
        if event is None:
            early = self.config.early_decode_ms
            if early and self._silent_ms - frame_ms < early <= self._silent_ms:
                return Event.PAUSE, frame
            return None, frame
        self.state = "done"
        event = self._verdict(event)
        return event, b"" if event is Event.NO_SPEECH else frame

    def _verdict(self, event: Event) -> Event:
        """``event``, or ``NO_SPEECH`` when the utterance (its trailing silence left out) was
        too level to be a voice."""
        if self.config.min_modulation_db <= 0:
            return event
        if modulation_db(self._sounded()) < self.config.min_modulation_db:
            return Event.NO_SPEECH
        return event

    def snr_db(self) -> float | None:
        """How far the utterance's loud frames (95th percentile) rose over the line's noise
        heard before it, in dB; None before an utterance, or with no line measured
        (``noise_margin_db`` 0). A caller close to the phone is 25 dB and more over a quiet
        line; a TV in the room, heard under the prompt and then taken for the caller, only
        its own rise and fall. Sound already there when the step starts (a TV talking as the
        prompt begins) is measured against what little of it came first
        (docs/speech-conditions.md). The line stops being taken in when the utterance starts,
        so its median then is the noise the utterance is held against."""
        if not self._line or not self._energies:
            return None
        loud = quantile(sorted(self._sounded() or self._energies), MODULATION_QUANTILE)
        line = statistics.median_low(self._line)
        return round(20 * math.log10(max(loud, 1.0) / max(line, 1.0)), 1)

    def _sounded(self) -> list[float]:
        """The utterance's frame levels, its trailing silence left out."""
        return self._energies[: len(self._energies) - self._silent_frames()]

    def _silent_frames(self) -> int:
        """How many of the last frames were the trailing silence."""
        count = 0
        for energy in reversed(self._energies):
            if energy >= self.threshold:
                break
            count += 1
        return count
