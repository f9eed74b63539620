"""The Asterisk configuration in asterisk/ offers what the service relies on.

Parsed with pyst2's ``asterisk.config`` (an independent reader of Asterisk's .conf syntax),
so a typo in a context name or a dropped module is caught before Asterisk starts. pyst2 does
not understand ``#include`` or ``[name](template)`` sections, so pjsip.conf and ari.conf are
checked by the end-to-end tests instead (Asterisk itself loads them there).
"""

from __future__ import annotations

from pathlib import Path

import asterisk.config
import pytest

ASTERISK = Path(__file__).resolve().parents[2] / "asterisk"


def _config(name: str) -> asterisk.config.Config:
    return asterisk.config.Config(str(ASTERISK / name))


def test_modules_the_service_needs_are_loaded() -> None:
    """FastAGI, AudioSocket, PJSIP, Dial, music on hold, ARI and the HTTP server are loaded
    explicitly (modules.conf uses autoload=no, so a missing line means a missing feature)."""
    (modules,) = _config("modules.conf").categories
    loaded = {item.value.strip() for item in modules.items if item.name.strip() == "load"}
    autoload = {item.value.strip() for item in modules.items if item.name.strip() == "autoload"}
    assert autoload == {"no"}
    for module in (
        "res_agi.so", "app_audiosocket.so", "res_audiosocket.so", "chan_pjsip.so",
        "app_dial.so", "res_musiconhold.so", "res_ari.so", "res_http_websocket.so",
        "app_senddtmf.so", "app_playback.so",
    ):
        assert module in loaded, f"modules.conf does not load {module}"


@pytest.mark.parametrize(
    "context",
    ["globals", "hotline", "hotline-answered", "caller-sim", "survey", "hotline-inbound"],
)
def test_dialplan_contexts_exist(context: str) -> None:
    """The contexts named in docs/contracts.md exist in extensions.conf."""
    names = {category.name for category in _config("extensions.conf").categories}
    assert context in names


def test_globals_point_at_the_fastagi_service() -> None:
    """HOTLINE_AGI and HOTLINE_AGI_BACKUP name the primary and backup FastAGI instances on
    loopback, where ``ivr serve`` listens by default (config/service.yaml: agi.port 4573)."""
    (globals_,) = [c for c in _config("extensions.conf").categories if c.name == "globals"]
    values = {item.name.strip(): item.value.strip() for item in globals_.items}
    assert values["HOTLINE_AGI"] == "127.0.0.1:4573"
    assert values["HOTLINE_AGI_BACKUP"] == "127.0.0.1:4574"


def test_hotline_context_runs_the_agi_and_falls_back() -> None:
    """The hotline context hands the call to FastAGI script ``hotline`` and has a way to the
    operator when the service fails (no dead air)."""
    (hotline,) = [c for c in _config("extensions.conf").categories if c.name == "hotline"]
    text = "\n".join(item.value for item in hotline.items)
    assert "AGI(agi://${HOTLINE_AGI}/hotline" in text
    assert "AGISTATUS" in text
    assert "operator" in text
