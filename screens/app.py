"""The screens as a coroutine from request to answer, no Twisted in it (:mod:`screens.web` is
the shell): sign-in and sessions, CSRF, who may open what, the pages and their fragments.

Paths (under ``/screens``):

========================================  ======================================  ============
``GET  /``                                 to the desk (agents) or the wallboard   session
``GET|POST /login``, ``POST /logout``      sign in with a token; sign out          -, CSRF
``GET  /wallboard``, ``/wallboard/events`` the page, its live stream (SSE)         queues:read
``GET  /wallboard/queues/<q>``             drill-down: waiting calls, agents       queues:read
``GET  /wallboard/clocks``                 drill-down: the order clocks at risk    queues:read
``POST /wallboard/agents/<id>/<action>``   pause (``reason``), resume, logout      agents:state
``GET  /desk``, ``/desk/events``           the agent's desk, its live stream       agents
``POST /desk/state/<action>``              login, pause, resume, ready, logout     agents:state
``GET  /desk/orders?status=``             my open orders, filtered                agents
``GET  /desk/orders/<id>``                 an order's panel (audited read)         workorders
``POST /desk/orders/<id>/<action>``        note, hold, resume, resolve             workorders
``GET  /static/<file>``                    the assets (``screens.render.ASSETS``)  -
========================================  ======================================  ============

Sign-in: the token (``ivr tokens create``) typed once into the form becomes a session
(:mod:`access.sessions`: an ``HttpOnly``, ``Secure``, ``SameSite=Strict`` cookie holding only
a random id; revoking the token ends the session). Every change (POST) carries the session's
CSRF token (the ``X-CSRF-Token`` header htmx sends from the page, or a ``csrf`` form field):
the login form is the one POST without a session. A page asked for without a session answers
with the login page; a fragment or a stream with 401.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

from access import AccessDenied, Identity, Permission, Role, Unauthenticated, authorize
from access.sessions import (
    Session,
    cleared_session_cookie,
    session_cookie,
    session_id_from_cookies,
)
from api.errors import ApiError, NotFound, as_api_error, status_of
from api.routes import Actor
from screens import sse
from screens.board import Board
from screens.desk.page import DeskPage
from screens.render import ASSETS, Renderer
from screens.wallboard.page import WallboardKey, WallboardPage
from workorders.values import TransitionRefused, WorkOrderError

__all__ = ["ScreenRequest", "ScreenResponse", "Screens", "SessionSource", "StreamAnswer"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
MAX_FORM_BYTES = 8 * 1024
MAX_REQUESTS = 16  # requests answered at once; the others wait their turn
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SessionSource(Protocol):
    """:class:`access.sessions.SessionStore` as the screens use it."""

    async def login(self, token: str, now: float) -> Session: ...

    async def identity(self, session_id: str | None, now: float) -> Identity: ...

    def csrf(self, session_id: str) -> str: ...

    def csrf_valid(self, session_id: str, presented: str | None) -> bool: ...

    async def logout(self, session_id: str) -> None: ...


@dataclass(frozen=True)
class ScreenRequest:
    method: str
    parts: Sequence[str]  # the path after /screens
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    form: Mapping[str, str] = field(default_factory=dict)
    address: str = ""


@dataclass(frozen=True)
class ScreenResponse:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamAnswer:
    """Open a live stream: the shell keeps the connection and hands it to the aggregate."""

    page: WallboardPage | DeskPage
    key: object
    last_event_id: str | None


Answer = ScreenResponse | StreamAnswer


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class _CsrfRefused(Exception):
    pass


class Screens:
    def __init__(self, *, renderer: Renderer, sessions: SessionSource | None,
                 wallboard: WallboardPage, desk: DeskPage,
                 board: Callable[[], Awaitable[Board]], clock: Callable[[], float]) -> None:
        """``board``: the current board (the aggregate's; read now if no browser keeps the
        aggregate running)."""
        self.renderer = renderer
        self.sessions = sessions
        self.wallboard = wallboard
        self.desk = desk
        self._board = board
        self.clock = clock
        # A room of screens reconnecting at once (after a restart) queues here rather than
        # take every connection of the service's Redis pool, which refuses past its size.
        self._admitted = asyncio.Semaphore(MAX_REQUESTS)

    async def board(self) -> Board:
        return await self._board()

    # --- dispatch ---------------------------------------------------------------------------

    async def respond(self, request: ScreenRequest) -> Answer:
        fragment = request.headers.get("hx-request") == "true" or (
            len(request.parts) > 1 and request.parts[-1] == "events")
        try:
            async with self._admitted:
                return await self._route(request)
        except _Redirect as redirect:
            return self._redirect(redirect.location)
        except _CsrfRefused:
            return self._error(403, self.renderer.strings("error.csrf"), fragment)
        except TransitionRefused as exc:
            return self._error(409, self.renderer.strings("error.refused", reason=exc),
                               fragment)
        except WorkOrderError as exc:
            return self._error(400, self.renderer.strings("error.refused", reason=exc),
                               fragment)
        except Exception as exc:
            error = as_api_error(exc)
            status = status_of(error)
            if status == 401 and not fragment and request.method == "GET":
                return self._login_page()
            if status >= 500:
                log.error("screens: %s /screens/%s failed", request.method,
                          "/".join(request.parts)[:200], exc_info=exc)
            return self._error(status, self._message(error, status), fragment)

    def _message(self, error: ApiError, status: int) -> str:
        t = self.renderer.strings
        if status == 403:
            return t("error.forbidden", reason=error)
        if status == 404:
            return t("error.not_found")
        if status >= 500:
            return str(error)
        return t("error.refused", reason=error)

    async def _route(self, request: ScreenRequest) -> Answer:
        method, parts = request.method, list(request.parts)
        match (method, parts):
            case ("GET", ["static", *path]):
                return self._static("/".join(path))
            case ("GET", ["login"]):
                return self._login_page()
            case ("POST", ["login"]):
                return await self._login(request)
            case ("POST", ["logout"]):
                return await self._logout(request)
            case ("GET", []):
                identity, _ = await self._identity(request)
                raise _Redirect("/screens/desk" if identity.role is Role.AGENT
                                else "/screens/wallboard")
        identity, session_id = await self._identity(request)
        if method == "POST" and not self._csrf_ok(request, session_id):
            raise _CsrfRefused()
        actor = Actor(identity, request.address, self.clock())
        match (method, parts):
            case ("GET", ["wallboard"]):
                authorize(identity, Permission.QUEUES_READ)
                return self._page("wallboard.html", identity, session_id,
                                  title=self.renderer.strings("wallboard.title"))
            case ("GET", ["wallboard", "events"]):
                authorize(identity, Permission.QUEUES_READ)
                return StreamAnswer(self.wallboard, WallboardKey.of(identity),
                                    sse.last_event_id(request.headers, request.query))
            case ("GET", ["wallboard", "queues", queue]):
                authorize(identity, Permission.QUEUES_READ)
                html = self.wallboard.detail(await self.board(), queue, identity)
                if html is None:
                    raise NotFound("no such screen")
                return self._html(html)
            case ("GET", ["wallboard", "clocks"]):
                authorize(identity, Permission.QUEUES_READ)
                return self._html(self.wallboard.clocks(await self.board(), identity))
            case ("POST", ["wallboard", "agents", agent_id, action]) if action in (
                    "pause", "resume", "logout"):
                authorize(identity, Permission.QUEUES_READ)
                return self._html(await self.wallboard.act(
                    actor, agent_id, action, request.form.get("reason", "")))
            case ("GET", ["desk"]):
                self._desk_owner(identity)
                return self._page("desk.html", identity, session_id,
                                  title=self.renderer.strings("desk.title"))
            case ("GET", ["desk", "events"]):
                self._desk_owner(identity)
                return StreamAnswer(self.desk, identity.user,
                                    sse.last_event_id(request.headers, request.query))
            case ("POST", ["desk", "state", action]):
                self._desk_owner(identity)
                return self._html(await self.desk.change_state(
                    actor, action, request.form.get("reason", "")))
            case ("GET", ["desk", "orders"]):
                self._desk_owner(identity)
                status = next(iter(request.query.get("status", ())), "") or None
                return self._html(await self.desk.orders_list(identity.user, status))
            case ("GET", ["desk", "orders", order_id]) if _NAME.match(order_id):
                return self._html(await self.desk.show_order(actor, order_id,
                                                             await self.board()))
            case ("POST", ["desk", "orders", order_id, action]) if _NAME.match(order_id):
                return self._html(await self.desk.change_order(
                    actor, order_id, action, request.form, await self.board()))
        raise NotFound("no such screen")

    # --- sessions ---------------------------------------------------------------------------

    async def _identity(self, request: ScreenRequest) -> tuple[Identity, str]:
        if self.sessions is None:
            raise Unauthenticated("no token store is configured")
        session_id = session_id_from_cookies(request.headers.get("cookie"))
        identity = await self.sessions.identity(session_id, self.clock())
        assert session_id is not None  # identity() refuses a missing one
        return identity, session_id

    def _csrf_ok(self, request: ScreenRequest, session_id: str) -> bool:
        assert self.sessions is not None
        presented = request.headers.get("x-csrf-token") or request.form.get("csrf")
        return self.sessions.csrf_valid(session_id, presented)

    def _desk_owner(self, identity: Identity) -> None:
        """The desk is an agent's own: other roles have no softphone in the pool."""
        if identity.role is not Role.AGENT:
            raise AccessDenied(f"{identity.role} {identity.user} has no desk: it is an agent's")

    async def _login(self, request: ScreenRequest) -> Answer:
        if self.sessions is None:
            return self._login_page(status=503)
        try:
            session = await self.sessions.login(request.form.get("token", ""), self.clock())
        except Unauthenticated as exc:
            return self._login_page(error=self.renderer.strings("login.failed",
                                                                reason=exc.reason), status=401)
        target = ("/screens/desk" if session.identity.role is Role.AGENT
                  else "/screens/wallboard")
        return self._redirect(target, {"Set-Cookie": session_cookie(
            session.session_id, session.expires - self.clock())})

    async def _logout(self, request: ScreenRequest) -> Answer:
        session_id = session_id_from_cookies(request.headers.get("cookie"))
        if self.sessions is not None and session_id is not None:
            if not self._csrf_ok(request, session_id):
                raise _CsrfRefused()
            await self.sessions.logout(session_id)
        return self._redirect("/screens/login", {"Set-Cookie": cleared_session_cookie()})

    # --- answers ----------------------------------------------------------------------------

    def _page(self, template: str, identity: Identity, session_id: str, *,
              title: str) -> ScreenResponse:
        assert self.sessions is not None
        csrf = self.sessions.csrf(session_id)
        # now: the service's clock, for the page's running durations (screens.js)
        return self._html(self.renderer.render(template, title=title, identity=identity,
                                               csrf=csrf, live=True, now=self.clock()))

    def _login_page(self, error: str = "", status: int = 200) -> ScreenResponse:
        t = self.renderer.strings
        html = self.renderer.render("login.html", title=t("login.title"), identity=None,
                                    csrf="", live=False, error=error,
                                    closed=self.sessions is None)
        return self._html(html, 503 if self.sessions is None and status == 200 else status)

    def _html(self, html: str, status: int = 200) -> ScreenResponse:
        return ScreenResponse(status, html.encode(), headers={
            **_SECURITY_HEADERS, "Cache-Control": "no-store"})

    def _redirect(self, location: str, extra: Mapping[str, str] | None = None
                  ) -> ScreenResponse:
        return ScreenResponse(303, b"", headers={
            **_SECURITY_HEADERS, "Location": location, "Cache-Control": "no-store",
            **(extra or {})})

    def _error(self, status: int, message: str, fragment: bool) -> ScreenResponse:
        if fragment:
            html = self.renderer.render("_message.html", error=True, message=message)
        else:
            html = self.renderer.render("error.html", title=self.renderer.strings(
                "error.title"), identity=None, csrf="", live=False, message=message)
        return self._html(html, status)

    def _static(self, path: str) -> ScreenResponse:
        content_type = ASSETS.get(path)
        if content_type is None:
            raise NotFound("no such screen")
        body = (resources.files("screens") / "static" / path).read_bytes()
        return ScreenResponse(200, body, content_type, {
            "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

