"""The load run's config for the service: what ``--speech KEY=VALUE`` sets."""

from __future__ import annotations

import pytest

from benchmarks.load.run import parse_args, service_overrides, speech_settings


def test_speech_options_become_keys_of_intents_speech_read_as_yaml() -> None:
    """An engine and a stream count measured side by side with the shipped ones: the number
    stays a number, and the rest of the run's config is the same."""
    args = parse_args(["--speech", "engine=pocketsphinx+whisper", "--speech", "max_streams=24"])
    speech = speech_settings(args.speech)
    assert speech == {"engine": "pocketsphinx+whisper", "max_streams": 24}
    overrides = service_overrides([], speech)
    assert overrides["intents.yaml"] == {"speech": speech}
    assert overrides["menus.yaml"] == service_overrides([])["menus.yaml"]
    assert "intents.yaml" not in service_overrides([])


@pytest.mark.parametrize("bad", ["max_streams", "=24"])
def test_a_speech_option_without_a_key_and_a_value_is_refused_with_an_example(bad: str) -> None:
    with pytest.raises(SystemExit, match=r"want KEY=VALUE, e\.g\. max_streams=24"):
        speech_settings([bad])
