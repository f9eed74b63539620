"""The telephone conditions and non-speech sounds of the multi-condition speech evaluation
(``benchmarks/speech/channel.py``): pure, seeded signal arithmetic, checked without a model."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.speech import channel

RATE = channel.RATE


def tone(hz: float, seconds: float = 1.0, amplitude: float = 3000.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * hz * t)


def power(x: np.ndarray) -> float:
    return float(np.mean(x**2))


def test_band_limit_keeps_the_voice_band_and_removes_what_a_phone_line_cannot_carry() -> None:
    """A 1 kHz tone passes the 300-3400 Hz band unchanged; 100 Hz hum and 3.8 kHz hiss
    are gone."""
    assert power(channel.band_limit(tone(1000))) == pytest.approx(power(tone(1000)), rel=0.01)
    assert power(channel.band_limit(tone(100))) < 1e-3 * power(tone(100))
    assert power(channel.band_limit(tone(3800))) < 1e-3 * power(tone(3800))


def test_noise_is_added_at_the_asked_snr_against_the_voiced_part() -> None:
    """The SNR is measured against the speech level over voiced frames, so a sentence with
    pauses is not given less noise than one without."""
    speech = np.concatenate([np.zeros(RATE // 2), tone(500), np.zeros(RATE // 2)])
    noise = channel.white_noise(len(speech), np.random.default_rng(1))
    noisy = channel.add_noise(speech, noise, 10.0)
    added = noisy - speech
    snr = 10 * np.log10(channel.speech_power(speech) / power(added))
    assert snr == pytest.approx(10.0, abs=0.1)


def test_conditions_are_reproducible_and_seeded() -> None:
    """The same condition and seed give the same audio (figures do not move between runs);
    another seed gives other noise."""
    pcm = channel.to_pcm(tone(700))
    a = channel.apply("band+white:10+ulaw", pcm, seed=3)
    assert a == channel.apply("band+white:10+ulaw", pcm, seed=3)
    assert a != channel.apply("band+white:10+ulaw", pcm, seed=4)
    assert len(a) == len(pcm)


def test_level_and_clipping_steps() -> None:
    """``gain:-12`` divides the amplitude by four; ``clip:0.3`` flattens the peaks at 30% of
    full scale."""
    x = tone(700)
    quiet = channel.to_array(channel.apply("gain:-12", channel.to_pcm(x), 0))
    assert np.abs(quiet).max() == pytest.approx(np.abs(x).max() / 3.98, rel=0.01)
    clipped = channel.to_array(channel.apply("clip:0.3", channel.to_pcm(x), 0))
    assert np.abs(clipped).max() == pytest.approx(0.3 * channel.FULL_SCALE, abs=1)
    assert np.mean(np.abs(clipped) >= 0.3 * channel.FULL_SCALE - 1) > 0.3


def test_g711_laws_round_trip_close_to_the_input() -> None:
    """mu-law and A-law keep a voice-level tone within a few percent (their quantization)."""
    x = tone(700)
    for law in ("ulaw", "alaw"):
        y = channel.g711(x, law)
        assert power(y - x) < 0.01 * power(x)


def test_an_unknown_step_is_refused() -> None:
    """A typo in a condition name is an error, not a silently clean condition."""
    with pytest.raises(ValueError, match="unknown condition step"):
        channel.apply("band+ulaw+gsn", channel.to_pcm(tone(700)), 0)


def test_gsm_keeps_length_and_the_voice_band() -> None:
    """GSM 06.10 through sox returns as many samples as it was given, the tone still there."""
    x = tone(700, seconds=0.5)
    y = channel.sox_codec(x, "gsm")
    assert len(y) == len(x)
    assert power(y) > 0.3 * power(x)


def test_non_speech_sounds_have_their_intended_levels_and_lengths() -> None:
    """Each non-speech generator gives the asked duration; the loud ones are loud enough to
    open the endpointer (so the recognizer is really put to the test), hiss is not."""
    rng = np.random.default_rng(0)
    voices = [tone(200 + 50 * i, 1.0) for i in range(6)]
    sounds = {
        "hiss": channel.line_hiss(2.0, rng),
        "cough": channel.coughs(2.0, rng),
        "music": channel.music(2.0, rng),
        "tv": channel.wordless_babble(voices, 2.0, rng),
        "street": channel.street_alone(2.0, rng),
        "white": channel.white_alone(2.0, rng),
    }
    for name, x in sounds.items():
        assert len(x) == 2 * RATE, name
    assert np.sqrt(power(sounds["hiss"])) < 100
    for name in ("music", "tv", "street", "white"):
        assert np.sqrt(power(sounds[name])) > 500, name


def test_heard_plan_has_every_voice_meet_every_line_and_passes_differ() -> None:
    """``heard.py`` gives each tune sentence fixed (voice, condition) pairs: over as many
    sentences as voices x conditions every voice meets every condition once, and a second
    pass puts each sentence in another voice on another line (so a rerun writes the same
    file and a second pass adds new evidence)."""
    from benchmarks.speech.heard import pairs

    voices, conditions = ["a", "b", "c"], ["x", "y", "z", "w"]
    first = [pairs(i, 1, voices, conditions)[0] for i in range(12)]
    assert sorted(first) == sorted((v, c) for v in voices for c in conditions)
    for i in range(12):
        (v1, c1), (v2, c2) = pairs(i, 2, voices, conditions)
        assert v1 != v2 and c1 != c2


def test_opus_keeps_length_alignment_and_the_voice_band() -> None:
    """Opus through ffmpeg (pipes) returns as many samples as it was given, lined up with the
    input (the Ogg pre-skip is honoured: a burst comes out where it went in), the voice-band
    tone still there; no rate named is 12 kbit/s."""
    x = tone(700, seconds=1.0)
    y = channel.opus_codec(x, 8)
    assert len(y) == len(x)
    assert power(y) > 0.3 * power(x)
    burst = np.zeros(RATE)
    burst[4000:4800] = channel.band_limit(np.random.default_rng(2).normal(0, 3000, 800))
    out = channel.opus_codec(burst, 12)
    lag = int(np.argmax(np.correlate(out, burst, "full"))) - (len(burst) - 1)
    assert abs(lag) <= 2
    pcm = channel.to_pcm(x)
    assert channel.apply("band+opus", pcm, 0) == channel.apply("band+opus:12", pcm, 0)


def test_opus_at_a_low_rate_is_lossy_but_keeps_a_voice_and_is_reproducible() -> None:
    """Opus at 8 kbit/s is a low-rate codec, not a copy: on a voice-like signal (a gliding
    150 Hz pitch with its harmonics, in syllables) it changes the waveform by more than
    G.711 does, yet keeps most of it; the same input gives the same output every time."""
    t = np.arange(RATE) / RATE
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 3 * t)) / RATE
    x = sum((3000 / h) * np.sin(h * phase) for h in range(1, 20))
    x = channel.band_limit(x) * (np.arange(RATE) % 2000 < 1400)
    error = power(channel.opus_codec(x, 8) - x) / power(x)
    assert 0.05 < error < 0.8
    assert power(channel.g711(x, "ulaw") - x) / power(x) < 0.01
    pcm = channel.to_pcm(x)
    assert channel.apply("opus:8", pcm, 1) == channel.apply("opus:8", pcm, 2)


def test_a_room_keeps_length_and_adds_a_tail() -> None:
    """sox's reverb: same length, and sound carries on after a burst has stopped (what makes
    a TV across the room sound far)."""
    x = np.zeros(RATE)
    x[1000:3000] = np.random.default_rng(3).normal(0, 2000, 2000)
    y = channel.room(x, reverberance=80, room_scale=100, pre_delay_ms=10)
    assert len(y) == len(x)
    assert power(y[3200:4800]) > 1e-3 * power(x[1000:3000])
    assert power(x[3200:4800]) == 0


def test_a_speaking_tv_is_one_talker_at_the_asked_level_in_a_room() -> None:
    """``speaking_tv``: the asked length, its voiced frames at the asked RMS, and the room's
    tail after the line ends (the line is shorter than the clip here)."""
    talker = np.concatenate([tone(300, 0.4) * (np.arange(3200) % 800 < 600), np.zeros(4000)])
    x = channel.speaking_tv(talker, 2.0, np.random.default_rng(4), rms=700.0)
    assert len(x) == 2 * RATE
    assert np.sqrt(channel.speech_power(x)) == pytest.approx(700.0, rel=1e-6)
    assert channel.loud_level(channel.to_pcm(x)) > 300


def test_loud_level_is_the_loud_frames_rms() -> None:
    """The 95th percentile of the frames' RMS: a tone's RMS, pauses or not."""
    x = np.concatenate([np.zeros(RATE), tone(500, 1.0, 1000.0)])
    assert channel.loud_level(channel.to_pcm(x)) == pytest.approx(1000 / np.sqrt(2), rel=0.01)
    assert channel.loud_level(b"") == 0.0


def test_a_tv_under_the_caller_is_added_at_the_asked_voiced_level() -> None:
    """``tv:SNR``: one talker at a time in a room, its voiced frames SNR dB below the caller's
    (the TV's pauses do not count); reproducible; refused without the TV's lines."""
    talkers = [tone(200 + 40 * i, 0.8) * (np.arange(int(0.8 * RATE)) % 1600 < 1000)
               for i in range(3)]
    tv = channel.tv_source(talkers)
    caller = channel.to_pcm(tone(700, 2.0))
    a = channel.apply("tv:15", caller, seed=3, tv=tv)
    assert a == channel.apply("tv:15", caller, seed=3, tv=tv)
    added = channel.to_array(a) - channel.to_array(caller)
    snr = 10 * np.log10(channel.speech_power(channel.to_array(caller))
                        / channel.speech_power(added))
    assert snr == pytest.approx(15.0, abs=0.2)
    with pytest.raises(ValueError, match="needs its lines"):
        channel.apply("tv:15", caller, seed=3)


def test_an_open_line_pads_the_voice_with_silence_to_the_calls_length() -> None:
    """``open_line`` adds digital silence up to the call's length (the condition fills it),
    and leaves a voice already that long as it is."""
    voice = channel.to_pcm(tone(700, seconds=1.0))
    call = channel.open_line(voice, 3.0)
    assert len(call) == 3 * RATE * 2
    assert call[: len(voice)] == voice
    assert not any(call[len(voice) :])
    assert channel.open_line(voice, 0.5) == voice


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(power(x)))


def test_a_noisy_lines_noise_goes_on_after_the_words_as_on_a_real_line() -> None:
    """On an open line the condition's noise runs through the whole call at the level it
    has under the words (the endpointer's silence is the line's noise); without it the call
    ends with the voice, and the harness's digital silence follows."""
    words = np.concatenate([np.zeros(RATE // 4), tone(700, seconds=1.0), np.zeros(RATE // 2)])
    voice = channel.to_pcm(words)
    line = channel.open_line(voice, 4.0)
    open_call = channel.to_array(channel.apply("band+white:10+ulaw", line, 7))
    closed = channel.to_array(channel.apply("band+white:10+ulaw", voice, 7))
    assert len(closed) == len(words)
    before = rms(open_call[: RATE // 5])
    after = open_call[len(words) :]
    assert len(after) == 4 * RATE - len(words)
    # every 100 ms of the line after the voice carries the noise of the lead
    for i in range(0, len(after) - 800, 800):
        assert rms(after[i : i + 800]) == pytest.approx(before, rel=0.3)
    # the SNR against the words is the condition's, padding or not
    assert rms(closed[: RATE // 5]) == pytest.approx(before, rel=0.3)


def test_a_quiet_codec_lines_end_stays_near_silent() -> None:
    """On a line with no noise the open line's end is what the codec makes of silence:
    G.711 gives digital silence back, so the clean lines' calls end as before (a lead of
    silence, as every voice has: the band filter works on the whole call at once)."""
    words = [np.zeros(RATE // 4), tone(700, seconds=1.0), np.zeros(RATE // 2)]
    voice = channel.to_pcm(np.concatenate(words))
    call = channel.to_array(channel.apply("band+ulaw", channel.open_line(voice, 3.0), 1))
    assert rms(call[2 * RATE :]) < 5


def test_lossy_opus_keeps_length_and_alignment_and_its_losses_are_seeded() -> None:
    """``opus:KBITS:LOSS`` through libopus: as many samples as given, a burst where it went
    in; the same seed loses the same packets (the same audio), another seed others; with no
    loss it is a plain Opus line, and losses make it worse."""
    x = np.concatenate([np.zeros(2000), tone(700, seconds=1.0), np.zeros(2000)])
    x[3000:3010] += 20000
    pcm = channel.to_pcm(x)
    clean = channel.to_array(channel.apply("opus:12:0", pcm, 1))
    assert len(clean) == len(x)
    assert abs(int(np.argmax(np.abs(clean[2500:3500]))) + 2500 - 3000) <= 5

    def snr(y: np.ndarray) -> float:
        return float(10 * np.log10(power(x) / power(y - x)))

    lossy = channel.apply("opus:12:30", pcm, 1)
    assert lossy == channel.apply("opus:12:30", pcm, 1)
    assert lossy != channel.apply("opus:12:30", pcm, 2)
    assert snr(channel.to_array(lossy)) < snr(clean) - 3


def test_packets_are_lost_at_the_asked_rate() -> None:
    from benchmarks.speech import opus_loss

    lost = opus_loss.lost_packets(20_000, 5.0, np.random.default_rng(0))
    assert lost.mean() == pytest.approx(0.05, abs=0.005)
    assert not opus_loss.lost_packets(100, 0.0, np.random.default_rng(0)).any()
