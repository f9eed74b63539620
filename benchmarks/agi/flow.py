"""The benchmark's call flow: one menu walk, written once, driven by every server under test.

A hotline menu as production runs it (welcome, main menu with one re-prompt, submenus, the
verdict left in channel variables, a confirmation), expressed as a generator of `Step`s. It does
no I/O: each server's adapter turns a step into its own library's call (our `AGISession`,
panoramisk's `Request.send_command`, pyst2's `AGI` methods) and sends back the digits a
GET DATA read. So the three servers run the same decisions and the same AGI commands, and
what the benchmark compares is only the AGI layer and its event loop.

A walk with a submenu sends 11 commands: ANSWER, STREAM FILE, GET DATA, GET DATA,
SET VARIABLE x5, STREAM FILE x2.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Literal

SCRIPT = "bench-menu"
"""The `agi_network_script` the load generator requests and every server routes."""

MENU_TIMEOUT_MS = 5000
WELCOME = "hotline/welcome"
MAIN_MENU = "hotline/main-menu"
CONNECTING = "hotline/connecting"

Action = Literal["answer", "stream_file", "get_data", "set_variable"]


@dataclass(frozen=True, slots=True)
class Step:
    """One AGI command the flow wants sent.

    `args` are positional, in the order of the AGI command: `stream_file` (file, escape digits),
    `get_data` (prompt, timeout ms, max digits), `set_variable` (name, value).
    """

    action: Action
    args: tuple[str | int, ...] = ()

    def agi_line(self) -> str:
        """The command as it goes on the wire, for servers that speak raw AGI text.

        Every value the flow sends is a fixed word without spaces or quotes, so plain joining
        is the same text the other libraries produce; escaping is not what is measured here.
        """
        if self.action == "answer":
            return "ANSWER"
        if self.action == "stream_file":
            name, escape = self.args
            return f'STREAM FILE {name} "{escape}"'
        if self.action == "get_data":
            prompt, timeout_ms, max_digits = self.args
            return f"GET DATA {prompt} {timeout_ms} {max_digits}"
        name, value = self.args
        return f'SET VARIABLE {name} "{value}"'


@dataclass(frozen=True, slots=True)
class Branch:
    """A main-menu choice: where the call goes and what the submenu (if any) refines."""

    category: str
    urgency: str
    queue: str
    submenu: str | None = None
    topics: tuple[tuple[str, str], ...] = ()


MAIN_CHOICES: dict[str, Branch] = {
    "1": Branch(
        "billing",
        "normal",
        "billing",
        "hotline/billing-menu",
        (("1", "balance"), ("2", "payment"), ("3", "refund")),
    ),
    "2": Branch(
        "plans", "low", "sales", "hotline/plans-menu", (("1", "upgrade"), ("2", "new-line"))
    ),
    "3": Branch(
        "faults",
        "high",
        "support",
        "hotline/faults-menu",
        (("1", "no-service"), ("2", "slow-internet"), ("3", "device")),
    ),
    "4": Branch("complaints", "high", "retention"),
    "0": Branch("operator", "normal", "operator"),
}
"""Digit pressed at the main menu -> branch; anything else (or nothing) is re-prompted once."""


def walk() -> Generator[Step, str | None, None]:
    """The menu walk. Send the digits back after each `get_data` step (None after others).

    Two failed main-menu reads (timeout or invalid digit) send the caller to the operator, as
    the hotline does.
    """
    yield Step("answer")
    yield Step("stream_file", (WELCOME, ""))
    branch = None
    path: list[str] = []
    for _attempt in range(2):
        digits = yield Step("get_data", (MAIN_MENU, MENU_TIMEOUT_MS, 1))
        branch = MAIN_CHOICES.get(digits or "")
        if branch is not None:
            path.append(digits or "")
            break
    if branch is None:
        branch = MAIN_CHOICES["0"]
        path.append("operator")
    topic = branch.category
    if branch.submenu is not None:
        digits = yield Step("get_data", (branch.submenu, MENU_TIMEOUT_MS, 1))
        topic = dict(branch.topics).get(digits or "", "other")
        path.append(digits or "none")
    yield Step("set_variable", ("HOTLINE_CATEGORY", branch.category))
    yield Step("set_variable", ("HOTLINE_URGENCY", branch.urgency))
    yield Step("set_variable", ("HOTLINE_QUEUE", branch.queue))
    yield Step("set_variable", ("HOTLINE_MENU_PATH", "-".join(path)))
    yield Step("stream_file", (f"hotline/confirm-{topic}", ""))
    yield Step(
        "set_variable", ("HOTLINE_NEXT", "operator" if branch.queue == "operator" else "queue")
    )
    yield Step("stream_file", (CONNECTING, ""))
