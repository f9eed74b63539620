"""The twisted.web shell of :class:`screens.app.Screens`, and the site's front door.

:class:`FrontResource` answers ``/screens/...`` with the screens and everything else with the
API's resource, as it always did: one site, one port, one reactor. A live stream stays open:
its request is handed to the aggregate as a :class:`~screens.aggregate.Connection` whose
writes are ``request.write``, dropped when the browser goes, or when it stops reading
(:class:`StreamPace`: a browser that vanished without closing, or one that never reads,
must not make the service buffer its stream without end).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web import resource, server

from api.channel import GuardedChannel
from hotline.text import as_text
from ivr.aio import deferred
from screens.aggregate import Aggregate, Connection
from screens.app import MAX_FORM_BYTES, Answer, ScreenRequest, ScreenResponse, Screens, StreamAnswer

__all__ = ["MAX_UNREAD_BYTES", "FrontResource", "ScreensResource", "StreamPace"]

Runner = Callable[[Coroutine[Any, Any, Any]], "Deferred[Any]"]
PREFIX = b"screens"
MAX_UNREAD_BYTES = 256 * 1024
"""What a live stream may queue beyond what the browser's connection takes (past the
transport's own 64 kB buffer): a screen's few fragments a second fit many times over."""


class StreamPace:
    """A live stream's writes, bounded when the browser stops reading (an ``IPushProducer``:
    twisted.web asks no more of a streaming producer than its three methods).

    Registered as the request's streaming producer, so twisted.web pauses it when the
    transport's buffer is full and resumes it once drained. A stream has nothing to hold
    back (events happen whether the browser reads or not), so while paused the writes still
    queue, up to ``max_unread`` bytes; past that the browser is gone or hopelessly behind:
    the connection is aborted (counted as a refusal, ``slow_reader``) and the browser, if it
    is still there, reconnects with its Last-Event-ID and misses nothing.

    ``_state``: ``flowing`` (writes go out), ``paused`` (writes counted against the
    bound), ``dropped`` (aborted or stopped: writes are ignored).
    """

    def __init__(self, request: server.Request, max_unread: int = MAX_UNREAD_BYTES) -> None:
        self.request = request
        self.max_unread = max_unread
        self._state = "flowing"
        self._unread = 0

    def write(self, data: bytes) -> None:
        if self._state == "dropped":
            return
        if self._state == "paused":
            self._unread += len(data)
            if self._unread > self.max_unread:
                self._drop()
                return
        self.request.write(data)

    def pauseProducing(self) -> None:
        if self._state == "flowing":
            self._state = "paused"

    def resumeProducing(self) -> None:
        if self._state == "paused":
            self._state, self._unread = "flowing", 0

    def stopProducing(self) -> None:
        self._state = "dropped"

    def _drop(self) -> None:
        self._state = "dropped"
        channel = getattr(self.request, "channel", None)
        if isinstance(channel, GuardedChannel):
            channel.admission.refusals.refused(
                "slow_reader", self.request.getClientAddress(),
                f"a live stream's browser left {self._unread} bytes unread",
            )
        transport = getattr(channel, "transport", None)
        if transport is not None:
            transport.abortConnection()


class ScreensResource(resource.Resource):
    """Every path under ``/screens``."""

    isLeaf = True

    def __init__(self, screens: Screens, aggregate: Aggregate, run: Runner = deferred) -> None:
        resource.Resource.__init__(self)
        self.screens = screens
        self.aggregate = aggregate
        self.run = run

    def render(self, request: server.Request) -> Any:
        gone: list[Failure] = []
        request.notifyFinish().addErrback(gone.append)
        declared = request.getHeader(b"content-length") or b""
        if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
            request.setResponseCode(413)
            return b"the form is too large"
        d = self.run(self.screens.respond(self._request(request)))
        d.addCallback(self._answer, request, gone)
        d.addErrback(self._failed, request, gone)
        return server.NOT_DONE_YET

    def _request(self, request: server.Request) -> ScreenRequest:
        headers = {
            name.decode("latin-1").lower(): values[0].decode("latin-1")
            for name, values in request.requestHeaders.getAllRawHeaders() if values
        }
        uri = request.uri.decode("latin-1")
        query = parse_qs(uri.partition("?")[2], keep_blank_values=True)
        form: dict[str, str] = {}
        if request.method == b"POST":
            for key, values in (request.args or {}).items():
                if values:
                    form[as_text(key, "replace")] = as_text(values[0], "replace")
        parts = [as_text(p, "replace") for p in (request.postpath or [])[1:] if p]
        peer = request.getClientAddress()
        return ScreenRequest(
            method=request.method.decode("latin-1"), parts=parts, query=query,
            headers=headers, form=form, address=str(getattr(peer, "host", "") or peer),
        )

    def _answer(self, answer: Answer, request: server.Request, gone: list[Failure]) -> Any:
        if gone:
            return None
        if isinstance(answer, StreamAnswer):
            return self._stream(answer, request, gone)
        self._write(answer, request)
        return None

    @staticmethod
    def _write(answer: ScreenResponse, request: server.Request) -> None:
        request.setResponseCode(answer.status)
        request.setHeader(b"content-type", answer.content_type.encode())
        for name, value in answer.headers.items():
            request.setHeader(name.encode("ascii"), value.encode("ascii"))
        request.write(answer.body)
        request.finish()

    def _stream(self, answer: StreamAnswer, request: server.Request,
                gone: list[Failure]) -> Deferred[None]:
        request.setResponseCode(200)
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        request.setHeader(b"x-content-type-options", b"nosniff")
        pace = StreamPace(request)
        # On the channel itself: Request.registerProducer adds nothing a stream needs (it
        # ends with its connection), and twisted's DummyRequest (no channel) would loop on it.
        channel = getattr(request, "channel", None)
        if channel is not None:
            channel.registerProducer(pace, True)
            request.notifyFinish().addBoth(lambda _: channel.unregisterProducer())
        conn = Connection(answer.page, answer.key, pace.write)
        request.notifyFinish().addBoth(lambda _: self.aggregate.disconnect(conn))
        return self.run(self.aggregate.connect(conn, answer.last_event_id))

    def _failed(self, failure: Failure, request: server.Request, gone: list[Failure]) -> None:
        from twisted.logger import Logger

        Logger().failure("writing a screen failed", failure)
        if gone or request.finished:
            return
        if request.startedWriting:
            request.finish()  # a stream that could not start: the browser reconnects
            return
        request.setResponseCode(500)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.write(b"internal error")
        request.finish()


class FrontResource(resource.Resource):
    """The site's root: ``/screens/...`` to the screens, anything else to ``api``."""

    isLeaf = True

    def __init__(self, api: resource.Resource, screens: ScreensResource) -> None:
        resource.Resource.__init__(self)
        self.api = api
        self.screens = screens

    def render(self, request: server.Request) -> Any:
        path = request.postpath or []
        if path and path[0] == PREFIX:
            return self.screens.render(request)
        return self.api.render(request)
