"""WCAG 2.1 contrast arithmetic (screens.contrast), the check the screens' end-to-end test
applies to every text the browser draws."""

from __future__ import annotations

import pytest

from screens.contrast import (
    contrast_ratio,
    effective_background,
    is_large_text,
    luminance,
    parse_colour,
    required_ratio,
)

BLACK = (0.0, 0.0, 0.0, 1.0)
WHITE = (255.0, 255.0, 255.0, 1.0)


def test_computed_colours_parse_in_every_form_the_browser_gives() -> None:
    """``rgb()``, ``rgba()`` with commas, the space form with a slash and a percentage."""
    assert parse_colour("rgb(26, 26, 26)") == (26.0, 26.0, 26.0, 1.0)
    assert parse_colour("rgba(0, 0, 0, 0)") == (0.0, 0.0, 0.0, 0.0)
    assert parse_colour("rgb(255 0 0 / 50%)") == (255.0, 0.0, 0.0, 0.5)
    with pytest.raises(ValueError):
        parse_colour("color(srgb 1 0 0)")


def test_luminance_and_ratio_match_wcag_reference_values() -> None:
    """Black on white is 21:1, a colour on itself 1:1; #777 on white is 4.48:1 (just under
    AA, the textbook example), #767676 4.54:1 (just over); order does not matter."""
    assert luminance(WHITE) == pytest.approx(1.0)
    assert luminance(BLACK) == 0.0
    assert contrast_ratio(BLACK, WHITE) == pytest.approx(21.0)
    assert contrast_ratio(WHITE, WHITE) == pytest.approx(1.0)
    grey_777, grey_767676 = parse_colour("rgb(119, 119, 119)"), parse_colour("rgb(118, 118, 118)")
    assert contrast_ratio(grey_777, WHITE) == pytest.approx(4.48, abs=0.01)
    assert contrast_ratio(grey_767676, WHITE) == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio(WHITE, BLACK) == contrast_ratio(BLACK, WHITE)


def test_the_background_is_the_first_opaque_one_with_translucent_layers_over_it() -> None:
    """Transparent layers are passed over; a half-transparent black over white makes mid
    grey; with no opaque background the canvas (white) is behind; a half-transparent text
    colour is laid over its background before comparing."""
    clear = (0.0, 0.0, 0.0, 0.0)
    red = (183.0, 28.0, 28.0, 1.0)
    assert effective_background([clear, red, WHITE]) == red
    assert effective_background([clear]) == WHITE
    grey = effective_background([(0.0, 0.0, 0.0, 0.5), clear, WHITE])
    assert grey == (127.5, 127.5, 127.5, 1.0)
    assert contrast_ratio((0.0, 0.0, 0.0, 0.5), WHITE) == pytest.approx(
        contrast_ratio(grey, WHITE))


def test_large_text_needs_three_to_one_and_normal_text_four_and_a_half() -> None:
    """24 px, or 18.66 px bold, is large (3:1); 18 px bold or 23 px regular is not."""
    assert is_large_text(24.0, 400) and is_large_text(18.66, 700)
    assert not is_large_text(18.0, 700) and not is_large_text(23.0, 400)
    assert required_ratio(24.0, 400) == 3.0
    assert required_ratio(15.0, 600) == 4.5
