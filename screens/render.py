"""Templates (``screens/templates``, Jinja2, autoescaped: a caller's name is text, never
markup) and the words of the configured language, in one place the pages render through."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from screens.i18n import Strings

__all__ = ["ASSETS", "ROWS_EVENT", "Fragments", "Renderer", "Rows", "Table"]

ASSETS = {
    # the static files served, by name (nothing else under /screens/static/ answers)
    "screens.css": "text/css; charset=utf-8",
    "screens.js": "text/javascript; charset=utf-8",
    # vendored from the npm registry, versions pinned in the names, licenses beside them
    "vendor/htmx-2.0.11.min.js": "text/javascript; charset=utf-8",
    "vendor/htmx-ext-sse-2.2.4.min.js": "text/javascript; charset=utf-8",
    "vendor/htmx-2.0.11.LICENSE.txt": "text/plain; charset=utf-8",
    "vendor/htmx-ext-sse-2.2.4.LICENSE.txt": "text/plain; charset=utf-8",
}


ROWS_EVENT = "rows"
"""The SSE event of changed rows alone: htmx swaps each out of band, in place of its row."""

_ROW_KEY = re.compile(r"[A-Za-z0-9_.-]{1,100}\Z")


class Table(str):
    """A fragment that is a table of rows (``rows``: each row's key -> its HTML, in the
    table's order), each row's first tag carrying its key in the attribute ``key_attr``,
    the table inside the element ``target`` (a CSS selector). A browser that has a table with
    the same rows on screen is sent only the rows that changed (:meth:`swaps_from`), not the
    whole table again: a wallboard's 180 agents change one at a time."""

    rows: Mapping[str, str]
    target: str
    key_attr: str

    def __new__(cls, html: str, rows: Mapping[str, str], *, target: str,
                key_attr: str) -> Table:
        made = super().__new__(cls, html)
        made.rows, made.target, made.key_attr = rows, target, key_attr
        return made

    def swaps_from(self, shown: Table) -> str | None:
        """The rows that differ from those of ``shown``, each marked to be swapped out of
        band in place of the row with its key; ``None`` when the rows are not the same ones
        in the same order, or a row's first tag does not carry its key (then the table is
        sent whole)."""
        if len(shown.rows) != len(self.rows) or any(
                a != b for a, b in zip(shown.rows, self.rows, strict=True)):
            return None
        out = []
        for key, html in self.rows.items():
            before = shown.rows[key]
            if before is html or before == html:
                continue
            text = str(html)  # not Markup: its + would escape the mark
            start = text.find("<")
            end = text.find(" ", start)
            if (start < 0 or end < 0 or not _ROW_KEY.match(key)
                    or f'{self.key_attr}="{key}"' not in text[start:text.find(">", start)]):
                return None
            where = f"{self.target} [{self.key_attr}='{key}']"
            out.append(f'{text[:end]} hx-swap-oob="outerHTML:{where}"{text[end:]}')
        return "".join(out)


class Renderer:
    def __init__(self, strings: Strings) -> None:
        self.strings = strings
        self.env = Environment(
            loader=PackageLoader("screens", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals["t"] = strings
        self.env.globals["lang"] = strings.language

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context)

    def notice(self, since: float | None) -> str:
        """A live view's ``notice``: its data unavailable since ``since`` ("" when fine)."""
        if since is None:
            return ""
        return self.render("_notice.html", since=self.strings.clock(since, seconds=True))


class Fragments:
    """A live page's fragments, each rendered again only when its view model changed since
    that view's last rendering (view models are frozen data: equality is cheap next to a
    template, and most rounds change a few fragments of a few views)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._last: dict[tuple[Hashable, str], tuple[dict[str, Any], str]] = {}

    def render(self, view: Hashable, template: str, **model: Any) -> str:
        last = self._last.get((view, template))
        if last is not None and last[0] == model:
            return last[1]
        html = self.renderer.render(template, **model)
        self._last[(view, template)] = (model, html)
        return html


class Rows:
    """Rows of a table, each rendered once per distinct value of its model, whichever view
    and round it appears in: a wallboard's agents table of a few hundred rows changes a few
    rows a round, and every wallboard shows the same row the same way (its model says what
    the viewer may do). The models must be hashable (frozen data)."""

    def __init__(self, renderer: Renderer, template: str, kept: int = 20_000) -> None:
        self.renderer = renderer
        self.template = template
        self.kept = kept
        self._made: dict[Hashable, Markup] = {}

    def render(self, model: Hashable, **context: Any) -> Markup:
        """The row of ``model`` (``context``: what the template needs beside it, the same
        for every row, part of the key too)."""
        key = (model, tuple(sorted(context.items())))
        html = self._made.get(key)
        if html is None:
            if len(self._made) >= self.kept:
                self._made.clear()  # rows of states long gone; the live ones come back
            html = self._made[key] = Markup(self.renderer.render(self.template, row=model,
                                                                 **context))
        return html
