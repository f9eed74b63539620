"""The screens' words (screens.i18n, screens/strings/) and settings (config/screens.yaml)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from screens.i18n import load_strings
from screens.settings import ScreensSettings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_literal_key_used_has_english_words() -> None:
    """Each ``t("key")`` with a literal key in the templates and the screens' code names a
    string of en.yaml: an agent never sees a key."""
    table = load_strings().table
    used = set()
    for path in [*(ROOT / "screens").rglob("*.py"), *(ROOT / "screens").rglob("*.html")]:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z_-]+)+)["']""", path.read_text()))
    assert used, "the scan found no key: its pattern is broken"
    assert sorted(used - set(table)) == []


def test_an_unknown_language_is_refused() -> None:
    """A language without its strings file stops the start rather than showing keys."""
    with pytest.raises(ValueError, match="no UI strings"):
        load_strings("xx")


def test_durations_and_percentages_read_as_the_language_writes_them() -> None:
    """m:ss under an hour, h:mm:ss from one, a dash for nothing; whole percents."""
    t = load_strings()
    assert (t.duration(59.9), t.duration(61), t.duration(3725), t.duration(None)) == (
        "0:59", "1:01", "1:02:05", "\u2014")
    assert t.percent(0.876) == "88 %"
    assert t.label("reason", "lunch") == "Lunch" and t.label("reason", "gym") == "gym"


def test_shipped_settings_validate_and_a_bad_threshold_names_the_key(tmp_path) -> None:
    """config/screens.yaml is valid; an alarm below its warning is refused with file and key;
    no file means the defaults."""
    assert load_settings(ROOT / "config") == ScreensSettings()
    (tmp_path / "screens.yaml").write_text("thresholds: {waiting: {warn: 5, alarm: 2}}\n")
    with pytest.raises(SettingsError, match=r"screens\.yaml: thresholds\.waiting"):
        load_settings(tmp_path)
    assert load_settings(tmp_path / "none") == ScreensSettings()
