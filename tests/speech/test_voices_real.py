"""The evaluation's espeak-ng and Flite voices are the voices their names say (the real
espeak-ng and flite).

espeak-ng falls back to the accent's own voice, without a word, on a variant it does not
take, and flite to kal on a name it lacks: a voice set could then hold fewer voices than it
lists (session 16 found one).
"""

from __future__ import annotations

import pytest
import voices

pytestmark = pytest.mark.slow

# espeak-ng 1.51 (Debian bookworm) ignores every variant of ``en-gb``: this development voice
# is en-gb's default male voice at 150 words a minute, kept under its name so that every
# session's development figures stay comparable.
IGNORED = "espeak:en-gb+f3@150"


@pytest.mark.parametrize(
    "voice",
    [v for v in (*voices.DEV_VOICES, *voices.BLIND_VOICES, *voices.BLIND2_VOICES,
                 *voices.BLIND3_VOICES) if v.startswith("espeak:") and v != IGNORED],
)
def test_each_espeak_voice_speaks_with_its_variant(voice: str) -> None:
    assert voices.variant_applies(voice), f"{voice}: espeak-ng ignored its variant"


def test_the_development_voice_whose_variant_espeak_ignores_is_the_one_documented() -> None:
    assert IGNORED in voices.DEV_VOICES
    assert not voices.variant_applies(IGNORED)


def test_each_flite_voice_is_its_own_and_stretch_slows_it() -> None:
    # flite speaks with kal, without a word, for a name it does not have.
    said = {name: voices.Speaker(f"flite:{name}").say("i want to pay my bill")
            for name in voices.FLITE_VOICES}
    assert len(set(said.values())) == len(voices.FLITE_VOICES)
    slower = voices.Speaker("flite:slt@1.2").say("i want to pay my bill")
    assert len(slower) > 1.1 * len(said["slt"])
    assert all(v.partition("@")[0].removeprefix("flite:") in voices.FLITE_VOICES
               for v in voices.BLIND4_VOICES)


def test_a_flite_voice_flite_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="flite has kal, kal16, awb, rms, slt"):
        voices.parse("flite:joe")
