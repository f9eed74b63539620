"""Templates (``screens/templates``, Jinja2, autoescaped: a caller's name is text, never
markup) and the words of the configured language, in one place the pages render through."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from screens.i18n import Strings

__all__ = ["ASSETS", "Fragments", "Renderer", "Rows"]

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
