"""What simulated callers say: a sentence synthesized once into a file Asterisk plays."""

from __future__ import annotations

import hashlib

from ivr.prompts import synthesize_to_wav
from testbed.asterisk import Asterisk


def spoken(asterisk: Asterisk, text: str) -> str:
    """The sentence as a sound file Asterisk can play (path without extension), cached; a
    ``caller-sim`` script plays it with ``p<path>``."""
    name = "utterance-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    target = asterisk.sounds_dir / "testcalls" / f"{name}.wav"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        synthesize_to_wav(text, target, rate=8000)
    return f"{asterisk.asterisk_sounds_dir}/testcalls/{name}"
