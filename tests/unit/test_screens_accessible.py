"""The screens as a keyboard and a screen reader meet them, and what they load: every form
control has a label, every action is a native button or form (reachable by Tab, pressed with
Enter or Space), every colour comes with words, the chart has a description; the pages load
only the package's own assets, vendored with their versions pinned, none from a CDN."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

from access import Identity, Role
from api.services import AgentService
from api.testing import FakeAudit, FakeRouter, run_now
from routing import core
from routing.testing import agent, call, shipped_config, snapshot
from screens.desk.view import CallFacts, DeskData, desk_view
from screens.i18n import load_strings
from screens.render import ASSETS, Renderer
from screens.settings import ScreensSettings
from screens.testing import board
from screens.wallboard.page import WallboardKey, WallboardPage
from screens.wallboard.view import queue_detail
from workorders.clocks import ClockPolicy
from workorders.model import Event, Policy, apply, create_order

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_800_000_000.0
T = load_strings()
CONFIG = shipped_config()
SETTINGS = ScreensSettings()
RENDERER = Renderer(T)


class Controls(HTMLParser):
    """The document's controls, labels, actions and coloured figures."""

    def __init__(self) -> None:
        super().__init__()
        self.labelled: set[str] = set()  # ids named by a <label for>
        self.controls: list[dict[str, str | None]] = []
        self.actions: list[tuple[str, dict[str, str | None]]] = []  # (tag, attrs) with hx-*
        self.buttons: list[list[str]] = []  # each button's text and aria-label
        self.levels: list[str] = []  # lvl-* classes seen
        self.svgs: list[dict[str, str | None]] = []
        self._button: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labelled.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append(a)
        if any(k in a for k in ("hx-get", "hx-post")):
            self.actions.append((tag, a))
        if tag == "button":
            self._button = [a.get("aria-label") or ""]
            self.buttons.append(self._button)
        if tag == "svg":
            self.svgs.append(a)
        for cls in (a.get("class") or "").split():
            if cls.startswith("lvl-") and cls != "lvl-ok":
                self.levels.append(cls)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button.append(data.strip())


def _parsed(html: str) -> Controls:
    parsed = Controls()
    parsed.feed(html)
    return parsed


def _order() -> object:
    order = create_order("1", "c-1", "+15550100", "Alice", NOW - 60, Policy(),
                         category="fault", urgency="urgent", transcript="dead line",
                         confidence=0.9, menu_path=["main", "fault"])
    order = apply(order, Event.ASSIGN, NOW - 59, "router", Policy(), agent="agent101")
    return apply(order, Event.START, NOW - 58, "agent101", Policy())


def _desk_html() -> str:
    """Every panel of a desk on a call: state with its controls, pop, order, my orders."""
    order = _order()
    live = {"agent101": {"status": "on_call", "call_id": "c-1", "since": str(NOW - 30)}}
    data = DeskData(CallFacts("c-1", "faults", NOW - 90, NOW - 30), order, (order,), (order,))
    view = desk_view(board(CONFIG, now=NOW, agents=live), "agent101", data, ClockPolicy(),
                     SETTINGS, T)
    paused = desk_view(board(CONFIG, now=NOW, agents={"agent101": {
        "status": "paused", "since": str(NOW - 5), "pause_reason": "lunch"}}), "agent101",
        DeskData(), ClockPolicy(), SETTINGS, T)
    page = RENDERER.render("desk.html", title="Desk", identity=Identity("agent101", Role.AGENT),
                           csrf="x", live=True, now=NOW)
    parts = [RENDERER.render("_state.html", s=paused.state),
             RENDERER.render("_pop.html", pop=view.pop),
             RENDERER.render("_order.html", order=view.order),
             RENDERER.render("_orders.html", orders=view.my_orders)]
    return page.replace("</main>", "".join(parts) + "</main>")


def _wallboard_html() -> str:
    """A supervisor's wallboard with a busy queue, paused agents and their actions."""
    live = {"agent101": {"status": "paused", "since": str(NOW - 4000), "pause_reason": "lunch"},
            "agent102": {"status": "available", "since": str(NOW - 10)}}
    agents = [agent("agent101", {"billing": 5}, status=core.AgentStatus.PAUSED),
              agent("agent102", {"billing": 5})]
    calls = [call(f"c{i}", "inquiry", "billing", NOW - 90) for i in range(7)]
    b = board(CONFIG, now=NOW, agents=live, snapshot=snapshot(NOW, agents, calls))
    page = WallboardPage(RENDERER, SETTINGS, AgentService(FakeRouter(CONFIG), FakeAudit(),
                                                          lambda a: None))
    sup = Identity("sam", Role.SUPERVISOR, "billing-desk")
    fragments = run_now(page.fragments(b, WallboardKey.of(sup)))
    shell = RENDERER.render("wallboard.html", title="Wallboard", identity=sup, csrf="x",
                            live=True, now=NOW)
    detail = queue_detail(b, "billing", sup, SETTINGS, T)
    extra = [*fragments.values(), RENDERER.render("_detail.html", detail=detail),
             page.clocks(b, sup)]
    return shell.replace("</main>", "".join(extra) + "</main>")


def _login_html() -> str:
    return RENDERER.render("login.html", title="Sign in", identity=None, csrf="", live=False,
                           error="", closed=False)


def test_every_control_has_a_label_and_every_button_words() -> None:
    """Inputs, selects and text areas of the sign-in, the desk and the wallboard are each
    named by a ``<label for>`` (or an aria-label); every button says what it does."""
    for html in (_login_html(), _desk_html(), _wallboard_html()):
        parsed = _parsed(html)
        assert parsed.controls
        for control in parsed.controls:
            assert control.get("aria-label") or control.get("id") in parsed.labelled, control
        for words in parsed.buttons:
            assert any(words), words


def test_every_action_is_a_native_button_or_form() -> None:
    """What htmx sends is a button or a form (the keyboard reaches and presses those
    without a script of ours), never a clickable div or span."""
    for html in (_desk_html(), _wallboard_html()):
        actions = _parsed(html).actions
        assert actions
        assert {tag for tag, _a in actions} <= {"button", "form"}, actions


def test_colours_come_with_words_and_the_chart_with_a_description() -> None:
    """Each warning or alarm colour is followed by its words for screen readers; the page
    names its language; the chart is an image with a description."""
    html = _wallboard_html()
    parsed = _parsed(html)
    assert parsed.levels  # seven waiting, a 66-minute pause: coloured
    marks = html.count('<span class="sr-only"> (warning)</span>') + html.count(
        '<span class="sr-only"> (alarm)</span>')
    assert marks >= len(parsed.levels)
    assert '<html lang="en">' in html
    assert parsed.svgs and all(s.get("role") == "img" and s.get("aria-labelledby")
                               for s in parsed.svgs)


def test_the_pages_load_only_the_packages_own_pinned_assets() -> None:
    """Scripts and styles come from /screens/static/, each one listed in ASSETS and shipped
    in the package (package data); the vendored ones carry their version in their name and
    their licence beside them; no template names another host."""
    templates = resources.files("screens") / "templates"
    for template in templates.iterdir():
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), template.name
        for path in re.findall(r"/screens/static/([^\"']+)", text):
            assert path in ASSETS, path
    for path in ASSETS:
        assert (resources.files("screens") / "static" / path).is_file(), path
        if path.startswith("vendor/") and path.endswith(".js"):
            assert re.search(r"-\d+\.\d+\.\d+\.min\.js\Z", path), path
            assert path.removesuffix(".min.js") + ".LICENSE.txt" in ASSETS
    shipped = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["package-data"]["screens"]
    assert {"templates/*.html", "strings/*.yaml", "static/*", "static/vendor/*"} <= set(shipped)


def test_configured_thresholds_colour_the_numbers() -> None:
    """The same queue is plain with the shipped thresholds and an alarm when
    ``config/screens.yaml`` sets the waiting alarm at 2 calls."""
    from screens.wallboard.view import queue_tiles

    calls = [call("c1", "inquiry", "billing", NOW - 5), call("c2", "inquiry", "billing", NOW)]
    b = board(CONFIG, now=NOW, snapshot=snapshot(NOW, [], calls))
    strict = ScreensSettings.model_validate({"thresholds": {"waiting": {"warn": 1, "alarm": 2}}})
    shipped = {t.name: t for t in queue_tiles(b, SETTINGS, T)}["billing"]
    configured = {t.name: t for t in queue_tiles(b, strict, T)}["billing"]
    assert (shipped.waiting.level, configured.waiting.level) == ("ok", "alarm")


def test_the_queue_drill_down_says_which_agents_are_paused_and_why() -> None:
    """Behind a queue's numbers: its agents by state, the paused ones with their reason,
    and the tile counts the agents by state."""
    from screens.wallboard.view import queue_tiles

    html = _wallboard_html()
    assert "<li>Kim Minji: Paused (Lunch), 1:06:40</li>" in html  # agent101, 4000 s
    live = {"agent101": {"status": "paused", "since": str(NOW - 5), "pause_reason": "lunch"}}
    agents = [agent("agent101", {"billing": 5}, status=core.AgentStatus.PAUSED),
              agent("agent102", {"billing": 5})]
    b = board(CONFIG, now=NOW, agents=live, snapshot=snapshot(NOW, agents, []))
    tile = {t.name: t for t in queue_tiles(b, SETTINGS, T)}["billing"]
    assert dict(tile.agents) == {"Available": 1, "Paused": 1}
