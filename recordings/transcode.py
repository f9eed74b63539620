"""Raw WAV legs to Opus (or MP3), in memory: pydub reads and mixes, Debian's ffmpeg encodes.

pydub reads each leg (MixMonitor's WAV), pads the shorter leg with silence and puts two legs
side by side as a stereo pair (caller left, agent right). The PCM goes to ffmpeg on its
standard input and the encoded audio comes back on its standard output: no plaintext file
is written (pydub's own ``export`` would stage both in the system's temporary directory,
which is why it is not used).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Encoded", "FfmpegTranscoder", "TranscodeError", "Transcoder"]


class TranscodeError(Exception):
    """A leg that does not read as WAV, or ffmpeg missing or failing."""


@dataclass(frozen=True)
class Encoded:
    audio: bytes
    duration_seconds: float


class Transcoder(Protocol):
    """Blocking (run in a worker thread)."""

    format: str

    def encode(self, legs: Sequence[Path]) -> Encoded: ...


class FfmpegTranscoder:
    """``format`` ``opus`` (Ogg Opus, libopus) or ``mp3`` (libmp3lame) at ``bitrate``."""

    def __init__(self, format: str = "opus", bitrate: str = "24k", compression: int = 5,
                 ffmpeg: str | None = None, timeout: float = 600.0) -> None:
        if format not in ("opus", "mp3"):
            raise ValueError(f"format {format!r}: opus or mp3")
        self.format = format
        self.bitrate = bitrate
        self.compression = compression
        self.ffmpeg = ffmpeg
        self.timeout = timeout

    def encode(self, legs: Sequence[Path]) -> Encoded:
        segment = self._mixed(legs)
        command = [
            self.ffmpeg or _ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", f"s{8 * segment.sample_width}le", "-ar", str(segment.frame_rate),
            "-ac", str(segment.channels), "-i", "pipe:0", "-b:a", self.bitrate,
            *self._codec(), "pipe:1",
        ]
        try:
            done = subprocess.run(command, input=segment.raw_data, capture_output=True,
                                  timeout=self.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TranscodeError(f"ffmpeg could not run: {exc}") from None
        if done.returncode != 0 or not done.stdout:
            reason = done.stderr.decode("utf-8", "replace").strip()[-300:]
            raise TranscodeError(f"ffmpeg failed (exit {done.returncode}): {reason}")
        return Encoded(done.stdout, len(segment) / 1000.0)

    def _codec(self) -> list[str]:
        if self.format == "mp3":
            return ["-c:a", "libmp3lame", "-f", "mp3"]
        # libopus' default "audio" application: its "voip" mode costs a third more CPU
        # (benchmarks/recordings) for files a little smaller.
        return ["-c:a", "libopus", "-compression_level", str(self.compression), "-f", "ogg"]

    @staticmethod
    def _mixed(legs: Sequence[Path]) -> Any:
        from pydub import AudioSegment
        from pydub.exceptions import CouldntDecodeError

        try:
            segments = [AudioSegment.from_wav(str(leg)) for leg in legs]
        except (OSError, CouldntDecodeError, ValueError, EOFError) as exc:
            raise TranscodeError(f"a raw leg does not read as WAV: {exc}") from None
        if len(segments) == 1:
            return segments[0]
        caller, agent = (s.set_channels(1).set_sample_width(2) for s in segments)
        agent = agent.set_frame_rate(caller.frame_rate)
        longest = max(len(caller), len(agent))
        caller, agent = (s + AudioSegment.silent(longest - len(s), caller.frame_rate)
                         if len(s) < longest else s for s in (caller, agent))
        return AudioSegment.from_mono_audiosegments(caller, agent)


def _ffmpeg() -> str:
    from pydub.utils import get_encoder_name

    name: str = get_encoder_name()
    return name
