"""The screens' twisted.web shell (screens.web): the front door sends /screens to the screens
and everything else to the API as before; a live stream stays open, is fed by the aggregate
and is dropped when the browser goes. No sockets: twisted's DummyRequest."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.web import resource, server
from twisted.web.test.requesthelper import DummyRequest

from access import Identity, Role
from access.sessions import COOKIE_NAME
from api.testing import run_now
from routing.testing import shipped_config
from screens.aggregate import Aggregate
from screens.app import ScreenRequest
from screens.testing import FakeStream, screens_under_test
from screens.web import FrontResource, ScreensResource

CONFIG = shipped_config()
TOKENS = {"tok-ops": Identity("olga", Role.OPS)}


class ApiStub(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[bytes]] = []

    def render(self, request: server.Request) -> bytes:
        self.seen.append(list(request.postpath))
        return b"{}"


def _site() -> tuple[FrontResource, ApiStub, Aggregate, Any]:
    ut = screens_under_test(CONFIG, TOKENS, {}, now=1000.0)
    aggregate = Aggregate(FakeStream([("5-0", {"kind": "PAUSE", "agent": "agent101",
                                                "reason": "lunch", "time": "x"})]),
                          ut.router, clock=lambda: 1000.0, autostart=False)
    api = ApiStub()
    front = FrontResource(api, ScreensResource(ut.screens, aggregate, run=defer.ensureDeferred))
    return front, api, aggregate, ut


def _session(ut: Any) -> str:
    answer = run_now(ut.screens.respond(ScreenRequest("POST", ["login"],
                                                      form={"token": "tok-ops"})))
    return str(answer.headers["Set-Cookie"].split(";")[0].split("=", 1)[1])


def test_api_paths_still_reach_the_api() -> None:
    """/api/queues and /health go to the API resource with their path untouched."""
    front, api, _aggregate, _ut = _site()
    for path in ([b"api", b"queues"], [b"health"]):
        request = DummyRequest(path)
        front.render(request)
        assert api.seen[-1] == path


def test_a_screens_page_is_rendered_by_the_screens() -> None:
    """/screens/login answers the sign-in form, with the security headers."""
    front, api, _aggregate, _ut = _site()
    request = DummyRequest([b"screens", b"login"])
    assert front.render(request) == server.NOT_DONE_YET
    assert request.finished and api.seen == []
    assert b'name="token"' in b"".join(request.written)
    assert request.responseHeaders.getRawHeaders(b"x-frame-options") == [b"DENY"]


def test_a_stream_stays_open_gets_frames_and_is_dropped_when_the_browser_goes() -> None:
    """The wallboard's stream answers text/event-stream, receives the aggregate's frames
    (the activity replayed after Last-Event-ID 4-0, then the state), stays open, and leaves
    the aggregate's connections when the request ends."""
    front, _api, aggregate, ut = _site()
    request = DummyRequest([b"screens", b"wallboard", b"events"])
    request.requestHeaders.setRawHeaders(b"cookie", [f"{COOKIE_NAME}={_session(ut)}".encode()])
    request.requestHeaders.setRawHeaders(b"last-event-id", [b"4-0"])
    front.render(request)
    assert request.responseHeaders.getRawHeaders(b"content-type") == [
        b"text/event-stream; charset=utf-8"]
    body = b"".join(request.written)
    assert b"id: 5-0\nevent: activity\n" in body and b"agent101 paused" in body
    assert b"event: queues\n" in body
    assert not request.finished and len(aggregate.connections) == 1
    request.finish()
    assert aggregate.connections == []
