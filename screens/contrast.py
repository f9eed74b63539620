"""WCAG 2.1 contrast, pure: what the screens' end-to-end test applies to every text the
browser draws (``tests/e2e/test_screens.py``), so "high contrast" is measured, not claimed.

The browser gives computed colours as CSS ``rgb()``/``rgba()`` strings; a text's colour is
laid over its effective background (its own and its ancestors' backgrounds, from the first
opaque one up, over the white canvas), then compared by relative luminance
(https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio). Normal text needs 4.5:1, large text
(24 px, or 18.66 px bold: 18 pt and 14 pt) 3:1 (success criterion 1.4.3, level AA).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["Colour", "contrast_ratio", "effective_background", "is_large_text", "luminance",
           "over", "parse_colour", "required_ratio"]

Colour = tuple[float, float, float, float]  # r, g, b in 0-255, alpha in 0-1

NORMAL_AA = 4.5
LARGE_AA = 3.0
WHITE: Colour = (255.0, 255.0, 255.0, 1.0)

_RGB = re.compile(r"rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)\s*(?:[,/]\s*([\d.]+%?))?\s*\)")


def parse_colour(text: str) -> Colour:
    """A computed colour (``rgb(26, 26, 26)``, ``rgba(0, 0, 0, 0)``, ``rgb(0 0 0 / 50%)``)."""
    match = _RGB.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an rgb()/rgba() colour: {text!r}")
    r, g, b, a = match.groups()
    alpha = 1.0 if a is None else (float(a[:-1]) / 100 if a.endswith("%") else float(a))
    return float(r), float(g), float(b), alpha


def over(top: Colour, below: Colour) -> Colour:
    """``top`` drawn over an opaque ``below`` (source-over compositing)."""
    a = top[3]
    return (top[0] * a + below[0] * (1 - a), top[1] * a + below[1] * (1 - a),
            top[2] * a + below[2] * (1 - a), 1.0)


def effective_background(backgrounds: Sequence[Colour]) -> Colour:
    """The colour behind a text: ``backgrounds`` are the element's own and its ancestors',
    innermost first; those above the first opaque one are laid over it (the canvas, white,
    when none is opaque)."""
    layers: list[Colour] = []
    base = WHITE
    for colour in backgrounds:
        if colour[3] >= 1.0:
            base = colour
            break
        if colour[3] > 0.0:
            layers.append(colour)
    for layer in reversed(layers):
        base = over(layer, base)
    return base


def luminance(colour: Colour) -> float:
    """Relative luminance of an opaque colour (sRGB, WCAG 2.1's formula and threshold)."""
    def channel(value: float) -> float:
        c = value / 255.0
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(text: Colour, background: Colour) -> float:
    """Of ``text`` (laid over ``background`` if not opaque) against the opaque
    ``background``: from 1 (none) to 21 (black on white)."""
    fore = over(text, background) if text[3] < 1.0 else text
    lighter, darker = sorted((luminance(fore), luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def is_large_text(size_px: float, weight: int) -> bool:
    """18 pt (24 px), or 14 pt (18.66 px) and bold (700 or more)."""
    return size_px >= 24.0 or (size_px >= 18.66 and weight >= 700)


def required_ratio(size_px: float, weight: int) -> float:
    return LARGE_AA if is_large_text(size_px, weight) else NORMAL_AA
