"""The non-speech set of ``benchmarks/speech/conditions.py``: the six kinds stay the calls
they were (figures compare across sessions) and the speaking TV is its own kind."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.speech import channel, conditions
from benchmarks.speech.synthesize import load_eval_set

RATE = channel.RATE


def voice_like(seed: int, seconds: float = 3.0) -> np.ndarray:
    """Band-limited noise in syllable-like bursts: enough of a voice for levels and lengths."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    bursts = (np.arange(n) % 1600 < 1100).astype(float)
    return channel.band_limit(rng.normal(0, 3000, n)) * bursts


POOL = [voice_like(i) for i in range(6)]


def fake_say(voice: str, text: str) -> np.ndarray:
    return voice_like(conditions.seed_of(voice, text) % 1000)


def test_the_default_set_is_the_six_kinds_in_turn_without_the_speaking_tv() -> None:
    """``--nonspeech 120`` is still hiss, cough, music, tv (backwards), street, white in
    turn; the speaking TV only comes when named."""
    clips = conditions.nonspeech_clips(12, POOL)
    assert [kind for kind, _, _ in clips] == list(conditions.NONSPEECH_KINDS) * 2
    assert conditions.TV_SPEECH not in conditions.NONSPEECH_KINDS


def test_a_clip_of_the_six_kinds_does_not_depend_on_the_kinds_asked_with_it() -> None:
    """Clip ``i`` of a kind is made from the seed of ``i`` alone: asking for the speaking TV
    alongside does not change another kind's audio made at the same index."""
    alone = conditions.nonspeech_clips(6, POOL)
    mixed = conditions.nonspeech_clips(
        6, POOL, kinds=(*conditions.NONSPEECH_KINDS[:5], conditions.TV_SPEECH), say=fake_say
    )
    for i in range(5):
        assert alone[i][1] == mixed[i][1]
    assert mixed[5][0] == conditions.TV_SPEECH


def test_with_the_line_s_end_the_sound_runs_the_whole_call_and_starts_as_before() -> None:
    """With ``line_s`` (``--line-end noise``) a TV, music, traffic or a hiss in the room goes
    on for the whole call, and a cough's line goes on after the coughs; the call starts as
    the short clip does (the same draws), and a clip without ``line_s`` is as before."""
    short = conditions.nonspeech_clips(6, POOL)
    long = conditions.nonspeech_clips(6, POOL, line_s=14.0)
    for (kind, before, _), (same_kind, after, _) in zip(short, long, strict=True):
        assert kind == same_kind
        assert len(after) == 2 * round(14.0 * RATE), kind
        assert 2 * 2 * RATE <= len(before) <= 2 * 5 * RATE
        levels = [channel.loud_level(after[k:k + 2 * RATE]) for k in range(0, len(after),
                                                                           2 * RATE)]
        if kind == "cough":
            # The coughs where they were (the line's filter sees a longer call: not to the
            # sample), the handset's faint hiss after them.
            head = after[: len(before)]
            assert channel.loud_level(head) == pytest.approx(channel.loud_level(before), rel=0.1)
            assert channel.loud_level(after[len(before):]) < 200
        else:
            assert min(levels) > 0.05 * max(levels), kind  # no end to the sound (a lull)


def test_speaking_tv_clips_say_every_line_in_turn_in_rotating_voices_below_a_caller() -> None:
    """Each TV clip says one line of ``tv_lines.yaml`` in one development voice; on the
    second pass over the lines another voice says each; its voice is 10-20 dB below a
    caller's at the handset (through the band-limited mu-law line) and lasts 3-6 s."""
    lines = conditions.load_tv_lines()
    n = len(lines) + 3
    clips = conditions.nonspeech_clips(n, POOL, kinds=(conditions.TV_SPEECH,), say=fake_say)
    assert [about["line"] for _, _, about in clips[: len(lines)]] == [x["text"] for x in lines]
    for j in range(3):
        assert clips[j][2]["line"] == clips[len(lines) + j][2]["line"]
        assert clips[j][2]["voice"] != clips[len(lines) + j][2]["voice"]
    again = conditions.nonspeech_clips(3, POOL, kinds=(conditions.TV_SPEECH,), say=fake_say)
    assert [pcm for _, pcm, _ in again] == [pcm for _, pcm, _ in clips[:3]]  # reproducible
    for _, pcm, about in clips:
        x = channel.to_array(pcm)
        assert 3.0 * RATE <= len(x) <= 6.0 * RATE
        below = 20 * np.log10(conditions.SPEECH_RMS / np.sqrt(channel.speech_power(x)))
        assert 9.0 <= below <= 21.0, about
        assert 10.0 <= float(about["below_caller_db"]) <= 20.0


def test_a_tv_programme_plays_on_for_the_whole_call_below_a_caller() -> None:
    """``tv-programme``: the TV lines one after another for the whole call (under the prompt
    too), never the digital silence ``tv-speech`` pauses into; its voice 10-20 dB below a
    caller's; the same clips on every run."""
    line_s = 12.0
    clips = conditions.nonspeech_clips(4, POOL, kinds=(conditions.TV_PROGRAMME,),
                                       say=fake_say, line_s=line_s)
    again = conditions.nonspeech_clips(4, POOL, kinds=(conditions.TV_PROGRAMME,),
                                       say=fake_say, line_s=line_s)
    assert [pcm for _, pcm, _ in again] == [pcm for _, pcm, _ in clips]
    for kind, pcm, about in clips:
        assert kind == conditions.TV_PROGRAMME
        x = channel.to_array(pcm)
        assert len(x) == round(line_s * RATE)
        seconds = [x[i * RATE:(i + 1) * RATE] for i in range(int(line_s))]
        assert all(np.sqrt(np.mean(s ** 2)) > 50 for s in seconds)  # sound in every second
        below = 20 * np.log10(conditions.SPEECH_RMS / np.sqrt(channel.speech_power(x)))
        assert 9.0 <= below <= 21.0, about
    with pytest.raises(ValueError, match="needs a voice"):
        conditions.nonspeech_clips(2, POOL, kinds=(conditions.TV_PROGRAMME,))


def test_unknown_kinds_and_a_tv_without_a_voice_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown non-speech kinds"):
        conditions.nonspeech_clips(2, POOL, kinds=("tv", "radio"))
    with pytest.raises(ValueError, match="needs a voice"):
        conditions.nonspeech_clips(2, POOL, kinds=(conditions.TV_SPEECH,))


def test_tv_lines_are_many_genres_adverts_about_phones_and_no_evaluation_sentence() -> None:
    """A few dozen lines of news, weather, adverts, film...; some adverts talk of phones,
    broadband and prices; none is a sentence of the evaluation set (the TV must not be a
    caller's request copied)."""
    lines = conditions.load_tv_lines()
    assert len(lines) >= 36
    assert {"news", "weather", "advert", "film"} <= {x["genre"] for x in lines}
    adverts = " ".join(x["text"] for x in lines if x["genre"] == "advert")
    for word in ("broadband", "smartphone", "data", "price"):
        assert word in adverts
    said = {u["text"] for u in load_eval_set()}
    assert not said & {x["text"] for x in lines}


def test_the_blind_tv_says_other_lines_of_the_same_genres_in_the_voices_it_is_given() -> None:
    """``tv_lines_blind.yaml``: lines of the same genres, adverts about phones again, none
    said by the first TV or a caller of the evaluation; ``tv_lines`` and ``tv_voices``
    reach the clips."""
    blind = conditions.load_tv_lines(conditions.TV_LINES.with_name("tv_lines_blind.yaml"))
    first = conditions.load_tv_lines()
    assert len(blind) >= 36
    assert {x["genre"] for x in blind} == {x["genre"] for x in first}
    adverts = " ".join(x["text"] for x in blind if x["genre"] == "advert")
    for word in ("broadband", "phone", "data", "price"):
        assert word in adverts
    texts = {x["text"] for x in blind}
    assert not texts & {x["text"] for x in first}
    assert not texts & {u["text"] for u in load_eval_set()}
    voices = ("flite:slt", "flite:rms")
    clips = conditions.nonspeech_clips(
        3, POOL, kinds=(conditions.TV_SPEECH,), say=fake_say, tv_voices=voices,
        tv_lines=conditions.TV_LINES.with_name("tv_lines_blind.yaml"))
    assert [about["line"] for _, _, about in clips] == [x["text"] for x in blind[:3]]
    assert {about["voice"] for _, _, about in clips} == set(voices)


def test_separate_sets_thresholds_from_the_callers_and_counts_both_sides() -> None:
    """``separate.py``: a rule "no request below T" with T at the lowest 10% of the callers
    taken right loses those callers and stops the non-speech requests below T."""
    from benchmarks.speech.separate import requests, thresholds

    right = [{"level": float(v)} for v in range(100, 1100, 10)]  # 100 callers: 100..1090
    tv = [{"level": 150.0, "predicted": "fault"}, {"level": 500.0, "predicted": "inquiry"},
          {"level": 90.0, "predicted": "(none)"}]
    accepted = requests(tv)
    assert len(accepted) == 2
    rule = {t["share"]: t for t in thresholds(right, accepted, "level")}
    assert rule[0.10]["threshold"] == 200.0
    assert (rule[0.10]["right_lost"], rule[0.10]["stopped"]) == (10, 1)
    assert (rule[0.01]["right_lost"], rule[0.01]["stopped"]) == (1, 0)


def test_a_far_talker_in_a_room_is_less_modulated_than_the_same_talker_close() -> None:
    """``gate_scores.modulation``: the reverberation of a room fills the gaps between
    syllables, so the same voice across a room moves less in level than at the handset."""
    from benchmarks.speech.gate_scores import modulation

    close = voice_like(7)
    far = channel.room(close, reverberance=90, room_scale=100, pre_delay_ms=20)
    assert modulation(channel.to_pcm(far)) < modulation(channel.to_pcm(close)) - 3


def test_a_call_runs_past_the_endpointers_latest_verdict() -> None:
    """With the line's noise to the end, the call lasts longer than the longest utterance and
    its trailing silence after the voice's lead: the endpointer, not the harness's digital
    silence, ends every call."""
    from ivr.speech.schema import EndpointingConfig

    endpointing = EndpointingConfig()
    seconds = conditions.call_seconds(endpointing)
    latest = (endpointing.max_utterance_ms + endpointing.trailing_silence_ms) / 1000
    assert seconds > conditions.voice_cache.LEAD_SILENCE_S + latest
    assert conditions.LINE_ENDS[0] == "noise"  # the default: a real line's end


def test_the_caller_speaks_after_the_prompt_with_the_line_under_it() -> None:
    """``prompt_s``: the call opens with the prompt's length of the caller's line (its noise
    and codec), the words after it; without it the call is the harness's before."""
    said = channel.to_pcm(voice_like(3, seconds=1.0))
    seed = conditions.seed_of("prompt")
    before = conditions.line_call(said, "band+white:10+ulaw", seed, line_s=2.0)
    call = conditions.line_call(said, "band+white:10+ulaw", seed, line_s=2.0, prompt_s=1.5)
    assert len(before) == 2 * round(2.0 * RATE)
    assert len(call) == 2 * round(3.5 * RATE)
    under_prompt, words = call[: 2 * RATE], call[2 * round(1.5 * RATE):][: 2 * RATE]
    assert 0 < channel.loud_level(under_prompt) < 0.5 * channel.loud_level(words)
    assert conditions.line_call(said, "band+white:10+ulaw", seed, line_s=2.0,
                                prompt_s=0.0) == before
    assert conditions.PROMPT_S == 3.9


def test_the_blind_sets_are_apart_from_the_development_voices_and_each_other() -> None:
    """blind2 is a fresh set: none of its voices was developed on or in the first blind set."""
    from benchmarks.speech import voices

    assert len(voices.BLIND2_VOICES) == 6
    assert not set(voices.BLIND2_VOICES) & set(voices.DEV_VOICES)
    assert not set(voices.BLIND2_VOICES) & set(voices.BLIND_VOICES)
    assert conditions.PARTS["blind2"] == voices.BLIND2_VOICES
    assert len(voices.BLIND3_VOICES) == 6
    for earlier in (voices.DEV_VOICES, voices.BLIND_VOICES, voices.BLIND2_VOICES):
        assert not set(voices.BLIND3_VOICES) & set(earlier)
    # Not even the same accent and variant at another speed.
    spoken = {v.partition("@")[0] for v in voices.BLIND3_VOICES}
    assert len(spoken) == 6
    for earlier in (voices.DEV_VOICES, voices.BLIND_VOICES, voices.BLIND2_VOICES):
        assert not spoken & {v.partition("@")[0] for v in earlier}
    assert conditions.PARTS["blind3"] == voices.BLIND3_VOICES


def test_the_summary_counts_what_the_gateway_would_take_without_asking() -> None:
    """The evaluation reports, by the gateway's own rule: wrong requests taken without a
    confirmation question (misrouted calls), right ones the caller confirms, and non-speech
    requests taken unasked (a TV cannot press 1)."""
    from ivr.speech.schema import load_intents

    intents = load_intents()
    snr = intents.confirm_below_snr_db

    def row(category: str, predicted: str, confidence: float, snr_db: float | None) -> dict:
        return {"category": category, "predicted": predicted, "confidence": confidence,
                "snr_db": snr_db, "condition": "band+ulaw", "voice": "v", "cpu_s": 0.1,
                "audio_s": 1.0, "outcome": "speech"}

    rows = [
        row("fault", "fault", 0.9, 40.0),      # right, unasked
        row("fault", "fault", 0.9, snr - 3),   # right, confirmed on a noisy line
        row("fault", "inquiry", 0.9, 40.0),    # wrong, unasked: misrouted
        row("fault", "inquiry", 0.9, snr - 3),  # wrong, confirmed: the caller says no
        row("fault", "inquiry", 0.3, 40.0),    # wrong, doubtful: confirmed
        row("fault", "operator", 0.9, snr - 3),  # the operator is never confirmed
        row("fault", "(none)", 0.0, None),
    ]
    tv = [{**row("", "complaint", 0.95, snr - 5), "kind": "tv-programme", "heard": "x"},
          {**row("", "other", 0.95, snr + 5), "kind": "tv-programme", "heard": "y"}]
    summary = conditions.summarize(rows, tv, intents)
    assert (summary["wrong_unasked"], summary["right_asked"]) == (2, 1)
    assert (summary["nonspeech"]["false_accepts"], summary["nonspeech"]["unasked"]) == (2, 1)
