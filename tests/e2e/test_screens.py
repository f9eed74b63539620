"""The screens in a real browser (headless Chromium, selenium) against the real stack: an
agent signs in to the desk, goes available, a real call through Asterisk rings the agent's
SIPp softphone and the desk pops the caller's category within a second of the ring; the
agent notes and resolves the order; the supervisor's wallboard counts the answered call; the
wallboard's live stream resumes after the service restarts, missing nothing and repeating
nothing. The run saves screenshots of both screens in docs/ (the README shows them).

Needs Debian's ``chromium`` and ``chromium-driver`` (scripts/setup-debian.sh).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from events import event_fields
from screens.contrast import contrast_ratio, effective_background, parse_colour, required_ratio
from testbed.checks import call_gone, wait_for, workorder
from testbed.service import REPO, HotlineService

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"
# faults keep a wrap-up, so the desk shows its countdown and "ready now"
WRAPUP = {"queues.yaml": {"queues": {"faults": {"wrapup_s": 120}}}}


@pytest.fixture
def browser() -> Iterator[Any]:
    """``browser()`` -> a headless Chromium at a laptop's size; all quit after the test."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("the screens' e2e test needs Debian's chromium and chromium-driver "
                    "(scripts/setup-debian.sh)", pytrace=False)
    made: list[WebDriver] = []

    def start() -> WebDriver:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1366,900", "--disable-gpu"):
            options.add_argument(flag)
        web = webdriver.Chrome(service=Service(driver), options=options)
        made.append(web)
        return web

    yield start
    for web in made:
        web.quit()


def token(service: HotlineService, user: str, role: str, team: str | None = None) -> str:
    """A token made as ops make one (``ivr tokens create``)."""
    ivr = Path(sys.executable).with_name("ivr")
    command = [str(ivr)] if ivr.exists() else [sys.executable, "-m", "hotline.cli"]
    extra = ["--team", team] if team else []
    made = subprocess.run(
        [*command, "tokens", "create", "--user", user, "--role", role, *extra, "--json"],
        env=service.env, capture_output=True, text=True, timeout=60, check=True, cwd=REPO)
    return str(json.loads(made.stdout)["token"])


def sign_in(web: WebDriver, service: HotlineService, secret: str, lands_on: str) -> None:
    web.get(service.url("/screens/login"))
    if not web.find_elements(By.ID, "token"):
        raise AssertionError(f"no sign-in form:\n{web.page_source[:2000]}\n{service.log_tail()}")
    web.find_element(By.ID, "token").send_keys(secret)
    web.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait_for(lambda: web.current_url.endswith(lands_on), 10, f"the {lands_on} page")
    live(web)


def live(web: WebDriver, timeout: float = 10) -> None:
    wait_for(lambda: web.find_element(By.ID, "live").get_attribute("data-live") == "on",
             timeout, "the live stream")


def screenshot(web: WebDriver, name: str) -> None:
    """The whole screen at a laptop's width, from the top, into docs/."""
    DOCS.mkdir(exist_ok=True)
    web.set_window_size(1366, 1150)
    web.execute_script("window.scrollTo(0, 0)")
    time.sleep(0.3)
    web.save_screenshot(str(DOCS / name))


def text_of(web: WebDriver, css: str) -> str:
    try:
        found = web.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:  # swapped by htmx meanwhile
        return ""


def class_of(web: WebDriver, css: str) -> str:
    try:
        found = web.find_elements(By.CSS_SELECTOR, css)
        return (found[0].get_attribute("class") or "") if found else ""
    except StaleElementReferenceException:
        return ""


def status_of(web: WebDriver) -> str:
    try:
        found = web.find_elements(By.CSS_SELECTOR, "#state [data-status]")
        return (found[0].get_attribute("data-status") or "") if found else ""
    except StaleElementReferenceException:
        return ""


# Every text the browser draws (its element's computed colour, font, and the backgrounds from
# the element up), and every form control's text; hidden, clipped (sr-only) and off-screen
# elements left out. SVG text is drawn in its fill.
TEXTS_JS = """
const out = [], seen = new Set();
const shown = (el) => {
  const rect = el.getBoundingClientRect(), cs = getComputedStyle(el);
  return rect.width > 1 && rect.height > 1 && rect.right > 0 && rect.bottom > 0
    && cs.visibility === "visible" && !el.closest(".sr-only, option, title, desc, [hidden]");
};
const sample = (el, text) => {
  if (seen.has(el) || !shown(el)) return;
  seen.add(el);
  const cs = getComputedStyle(el), backs = [];
  for (let e = el; e; e = e.parentElement) backs.push(getComputedStyle(e).backgroundColor);
  out.push({text: text.slice(0, 50), where: el.tagName.toLowerCase() + " "
              + (el.getAttribute("class") || "") + " " + (el.id || ""),
            colour: el.closest("svg") ? cs.fill : cs.color, backs: backs,
            size: parseFloat(cs.fontSize), weight: parseInt(cs.fontWeight, 10)});
};
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode;
  if (node.textContent.trim() && node.parentElement) sample(node.parentElement,
                                                            node.textContent.trim());
}
document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(
  (el) => sample(el, el.value || el.name || el.id));
return out;
"""


def contrast_failures(web: WebDriver, state: str) -> list[str]:
    """Every drawn text whose contrast against its effective background is under WCAG AA
    (4.5:1, 3:1 for large text)."""
    failures = []
    texts = web.execute_script(TEXTS_JS)
    assert texts, "no text found on the page"
    for t in texts:
        background = effective_background([parse_colour(c) for c in t["backs"]])
        ratio = contrast_ratio(parse_colour(t["colour"]), background)
        needed = required_ratio(t["size"], t["weight"])
        if ratio < needed:
            failures.append(f"{state}: {t['where'].strip()!r} {t['text']!r}: {t['colour']} on "
                            f"{background[:3]}, {ratio:.2f}:1 < {needed}:1")
    return failures


# The colours a screen takes as its numbers and states change (screens.css): every coloured
# element is put in each level (ok, warning, alarm: the thresholds and the order clocks) and
# every status, where it stands, and measured there.
LEVELS = ("ok", "warn", "alarm")
STATUSES = ("available", "paused", "offered", "on_call", "wrap_up", "logged_out")
RECOLOUR_JS = """
const [level, status] = arguments;
document.querySelectorAll("[class*='lvl-']").forEach((el) => {
  el.className = el.className.replace(/\\blvl-\\w+/g, "lvl-" + level);
});
document.querySelectorAll(".status").forEach((el) => {
  el.className = el.className.replace(/\\bstate-\\w+/g, "state-" + status);
});
return document.querySelectorAll("[class*='lvl-']").length;
"""


def assert_contrast(web: WebDriver, screen: str) -> None:
    """The screen's texts as they are, then with its coloured numbers and states in every
    level and status: WCAG AA everywhere."""
    failures = contrast_failures(web, f"{screen} as shown")
    coloured = 0
    for level, status in zip(LEVELS, STATUSES[:3], strict=True):
        coloured = web.execute_script(RECOLOUR_JS, level, status)
        failures += contrast_failures(web, f"{screen} at {level}/{status}")
    for status in STATUSES[3:]:
        web.execute_script(RECOLOUR_JS, "ok", status)
        failures += contrast_failures(web, f"{screen} at {status}")
    assert coloured, f"no coloured figure on the {screen} to try the levels on"
    assert not failures, "\n".join(failures)


# Every control a keyboard user needs: marked, and its accessible name (a label, aria-label
# or aria-labelledby, or a button's or link's words).
CONTROLS_JS = """
const names = [];
const controls = [...document.querySelectorAll(
  "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]")].filter((el) => {
  const rect = el.getBoundingClientRect();
  return !el.disabled && el.tabIndex >= 0 && rect.width > 0 && rect.height > 0
    && getComputedStyle(el).visibility === "visible";
});
controls.forEach((el, i) => {
  el.setAttribute("data-kbd", String(i));
  let name = el.getAttribute("aria-label") || "";
  const by = el.getAttribute("aria-labelledby");
  if (!name && by) name = by.split(/\\s+/).map((id) =>
    (document.getElementById(id) || {textContent: ""}).textContent).join(" ");
  if (!name && el.labels) name = [...el.labels].map((l) => l.textContent).join(" ");
  if (!name && (el.tagName === "BUTTON" || el.tagName === "A")) name = el.textContent;
  names.push({i: i, control: el.outerHTML.slice(0, 120), name: name.trim()});
});
return names;
"""


def assert_keyboard(web: WebDriver, screen: str) -> None:
    """Every visible control has an accessible name, and Tab from the top of the page
    reaches each one (those htmx replaced meanwhile aside)."""
    controls = web.execute_script(CONTROLS_JS)
    assert controls, f"no control on the {screen}"
    unnamed = [c["control"] for c in controls if not c["name"]]
    assert not unnamed, f"{screen}: controls without an accessible name: {unnamed}"
    web.execute_script("document.activeElement && document.activeElement.blur();"
                       "window.scrollTo(0, 0)")
    reached: set[str] = set()
    for _ in range(len(controls) + 10):
        ActionChains(web).send_keys(Keys.TAB).perform()
        mark = web.execute_script(
            "return document.activeElement && document.activeElement.getAttribute('data-kbd')")
        if mark is not None:
            reached.add(mark)
    still = web.execute_script(
        "return [...document.querySelectorAll('[data-kbd]')].map((el) => el.getAttribute("
        "'data-kbd'))")
    missed = [c["control"] for c in controls if str(c["i"]) in still and str(c["i"]) not in reached]
    assert not missed, f"{screen}: controls Tab does not reach: {missed}"


def click(web: WebDriver, css: str, timeout: float = 10) -> None:
    def ready() -> bool:
        try:
            web.find_element(By.CSS_SELECTOR, css).click()
            return True
        except Exception:
            return False

    wait_for(ready, timeout, f"{css} to click")


def refused_action_is_shown(desk: Any) -> None:
    """An action the service refuses is shown with its reason, not lost: the hold form is
    pointed at an order that does not exist (as a page left open on a merged or purged order
    would send), the service answers 404 with its message fragment, and the desk shows it as
    an alert in the order's message area while the order panel stays as it was."""
    desk.execute_script(
        "var form = document.querySelector('form[hx-post$=\"/hold\"]');"
        "form.setAttribute('hx-post', '/screens/desk/orders/999999999/hold');"
        "htmx.process(form);")
    desk.find_element(By.ID, "hold-reason").send_keys("waiting for the line test")
    click(desk, "#order-hold")
    wait_for(lambda: desk.find_elements(By.CSS_SELECTOR, '#order-result [role="alert"]'), 10,
             "the refusal's message")
    assert text_of(desk, '#order-result [role="alert"]')
    assert desk.find_elements(By.ID, "order-resolve"), "the order panel was replaced"


def test_agent_takes_a_real_call_on_the_desk_and_the_wallboard_counts_it(
    hotline, agents, caller, asterisk, db, browser
) -> None:
    """agent103 signs in, pauses and goes available from the desk; a fault call (key 3)
    rings the softphone and the pop shows "Fault" within 1 s of the ring (the offer's time
    in Redis); the agent notes and resolves the order with a disposition and is ready again
    after the call; the network team's supervisor sees the answered call on the wallboard;
    the agent may not open the wallboard. Both screens are used from the keyboard alone (every
control named and reached by Tab) and every text has WCAG AA contrast, its coloured numbers
and states in every level."""
    agents("agent103", answer_after=2.0, hold_for=4.0)
    service = hotline(agents=("agent103",), overrides=WRAPUP)
    desk, board = browser(), browser()
    sign_in(desk, service, token(service, "agent103", "agent"), "/screens/desk")
    sign_in(board, service, token(service, "nina", "supervisor", "network-desk"),
            "/screens/wallboard")

    if status_of(desk) == "logged_out":
        click(desk, "#state-login")
    wait_for(lambda: status_of(desk) == "available", 10, "agent103 available")
    Select(desk.find_element(By.ID, "pause-reason")).select_by_value("break")
    click(desk, "#state-pause")
    wait_for(lambda: status_of(desk) == "paused", 10, "agent103 paused")
    click(desk, "#state-resume")
    wait_for(lambda: status_of(desk) == "available", 10, "agent103 available again")

    call_id = caller("w2|d3", number="5550103", name="Alice Caller")
    offered = wait_for(lambda: (row := db.hgetall("hotline:{rt}:agent:agent103")).get(
        "status") == "offered" and row, 60, "the offer to agent103")
    rang_at = float(offered["since"])
    while text_of(desk, "#pop-category") != "Fault":
        assert time.time() - rang_at < 5, "no screen pop within 5 s"
        time.sleep(0.02)
    popped_after = time.time() - rang_at
    assert popped_after <= 1.0, f"the pop came {popped_after:.2f} s after the ring"
    assert text_of(desk, "#pop-number") == "5550103"
    assert text_of(desk, "#pop-name") == "Alice Caller"

    wait_for(lambda: desk.find_elements(By.ID, "order-resolve"), 20, "the order in progress")
    desk.find_element(By.ID, "note-text").send_keys("Line reset remotely; customer confirms.")
    click(desk, "#order-note")
    wait_for(lambda: "Line reset remotely" in text_of(desk, "#order-notes"), 10, "the note")
    refused_action_is_shown(desk)
    Select(desk.find_element(By.ID, "disposition")).select_by_value("fixed")
    click(desk, "#order-resolve")
    wait_for(lambda: desk.find_elements(By.CSS_SELECTOR, '#order-status[data-status="resolved"]'),
             10, "the order resolved")
    call_gone(asterisk, call_id)
    wait_for(lambda: status_of(desk) == "wrap_up", 10, "wrap-up")
    wait_for(lambda: text_of(desk, "[data-wrap-left]"), 5, "the wrap-up countdown")
    screenshot(desk, "screens-desk.png")
    assert_keyboard(desk, "desk")
    assert_contrast(desk, "desk")  # the pop, the order's clocks, the wrap-up countdown
    click(desk, "#state-ready")
    wait_for(lambda: status_of(desk) == "available", 10, "ready again")

    wait_for(lambda: text_of(board, '[data-queue="faults"] [data-figure="answered"]') == "1",
             10, "the wallboard's answered call")
    assert "agent103 answered a call from faults" in text_of(board, "#activity")
    screenshot(board, "screens-wallboard.png")
    # the agents table is kept row by row: agent103's row follows its state
    wait_for(lambda: "state-available" in class_of(
        board, '#agents tr[data-agent="agent103"] .status'), 10, "agent103's row available")
    assert_keyboard(board, "wallboard")
    assert_contrast(board, "wallboard")

    order = workorder(service, call_id)
    assert order is not None
    assert (order["status"], order["outcome"]) == ("resolved", "fixed")
    # The agent's note, then the resolution; after them only the flow's own note of the
    # conversation's end (the call ended after the agent resolved the order on the desk).
    history = [(h["event"], h["details"].get("text", "")) for h in order["history"]]
    noted = history.index(("note", "Line reset remotely; customer confirms."))
    resolved = [e for e, _ in history].index("resolve")
    assert noted < resolved
    assert all(e == "note" and t.startswith("conversation ended")
               for e, t in history[resolved + 1:]), history

    desk.get(service.url("/screens/wallboard"))
    assert "Not allowed" in desk.find_element(By.TAG_NAME, "body").text


def test_the_wallboard_stream_resumes_after_a_restart(hotline, db, browser) -> None:
    """The service stops under an open wallboard; meanwhile another instance's event lands
    in the shared stream; the restarted service resumes the browser's stream from its
    Last-Event-ID: the missed line appears once, later events follow, nothing repeats."""
    service = hotline(agents=("agent103",))
    board = browser()
    sign_in(board, service, token(service, "olga", "ops"), "/screens/wallboard")
    service.post("/api/agents/agent103/pause?reason=break")
    wait_for(lambda: "agent103 paused (Break)" in text_of(board, "#activity")
             or "agent103 paused (break)" in text_of(board, "#activity"), 10, "the pause")

    service.stop()
    wait_for(lambda: board.find_element(By.ID, "live").get_attribute("data-live") == "off",
             10, "the stream to drop")
    missed = db.xadd("hotline:events", event_fields("PAUSE", time.time(), agent="agent103",
                                                    reason="meeting"))
    again = hotline(agents=("agent103",), flush=False)
    live(board, timeout=90)
    wait_for(lambda: board.find_elements(By.ID, f"ev-{missed}"), 10, "the missed event")
    again.post("/api/agents/agent103/resume")
    wait_for(lambda: "agent103 resumed" in text_of(board, "#activity"), 10, "a new event")
    ids = [li.get_attribute("id") for li in board.find_elements(By.CSS_SELECTOR, "#activity li")]
    assert len(ids) == len(set(ids)), f"repeated activity lines: {ids}"
    assert ids.count(f"ev-{missed}") == 1
