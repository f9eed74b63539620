"""One HTTP client's connection, bounded: twisted.web's ``HTTPChannel`` with the limits a
hostile client meets, and the site that caps how many such connections are open.

What twisted.web leaves open, and what this adds:
  - its idle timeout is reset by every byte received, so a client sending one header byte
    every few seconds holds a connection forever (slow-loris): here a request's headers must
    be complete ``header_timeout_s`` after its first byte (after the connection, for the
    first request), or the client gets a 408 and the connection closes;
  - it reads a request's whole body before the resource sees it, into a temporary file past
    100 kB, whatever ``Content-Length`` says: here a declared length past ``max_body_bytes``
    is answered 413 from the headers alone, and a body without a length (chunked) 411 (the
    API and the screens' forms always send one);
  - its idle timeout defaults to twelve hours: here ``idle_timeout_s``;
  - no cap on connections: here :class:`~ivr.admission.Admission` (``max_connections``), a
    503 beyond it.
Each refusal is counted and logged through the site's :class:`~ivr.admission.RefusalLog`.
What we write is bounded by twisted.web's backpressure: the channel stops reading while the
client does not read its answer (one answer buffered at most); the screens' live streams,
which write without being asked, have their own bound (:mod:`screens.web`).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, cast

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http, resource, server

from ivr.admission import Admission, Refusal, RefusalLog
from ivr.timers import Clock

__all__ = ["GuardedChannel", "GuardedSite", "HTTPLimits"]


@dataclass(frozen=True)
class HTTPLimits:
    """Bounds on one client (``service.yaml``'s ``http`` section sets the first three)."""

    max_connections: int = 512
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    max_body_bytes: int = 64 * 1024  # above the API's own 16 kB, which answers in JSON
    max_header_bytes: int = 16 * 1024


def _answer(status: bytes, body: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
    )


_BUSY = _answer(b"503 Service Unavailable", b'{"error": "too many connections", "id": "busy"}')
_TOO_SLOW = _answer(b"408 Request Timeout")
_TOO_LARGE = _answer(
    b"413 Content Too Large", b'{"error": "the body is too large", "id": "body-too-large"}'
)
_NO_LENGTH = _answer(
    b"411 Length Required", b'{"error": "a body needs a Content-Length", "id": "bad-request"}'
)


class _Wire(typing.Protocol):
    """What the channel uses of its TCP transport (Twisted's zope C{ITCPTransport})."""

    def write(self, data: bytes) -> None: ...

    def abortConnection(self) -> None: ...

    def getPeer(self) -> object: ...


class GuardedChannel(http.HTTPChannel):
    """An ``HTTPChannel`` whose client must finish each request's headers in time and may
    not send a body past the limit.

    ``_awaiting_headers``: True from the connection (and again after each answer on a
    keep-alive connection) until a request's headers are complete; ``_deadline``: the
    header timer, running from the connection, or from the first byte of a later request
    (an idle keep-alive connection is the idle timeout's business).
    """

    def __init__(self, limits: HTTPLimits, admission: Admission, clock: Clock) -> None:
        http.HTTPChannel.__init__(self)
        self.limits = limits
        self.admission = admission
        self.totalHeadersSize = limits.max_header_bytes
        self._clock = clock
        self._awaiting_headers = True
        self._deadline: Any = None

    def connectionMade(self) -> None:
        http.HTTPChannel.connectionMade(self)
        self._arm()

    def dataReceived(self, data: bytes) -> None:
        if self._awaiting_headers and self._deadline is None and data:
            self._arm()
        http.HTTPChannel.dataReceived(self, data)

    def allHeadersReceived(self) -> None:
        self._awaiting_headers = False
        self._disarm()
        self.admission.proven(self)
        if self.length is None:
            self._refuse("length_required", _NO_LENGTH, "a body without Content-Length")
        elif self.length > self.limits.max_body_bytes:
            self._refuse("body_too_large", _TOO_LARGE, f"a body of {self.length} bytes")
        else:
            http.HTTPChannel.allHeadersReceived(self)

    def requestDone(self, request: http.Request) -> None:
        if self.persistent:
            # before the next pipelined request is read out of the buffer by requestDone
            self._awaiting_headers = True
        http.HTTPChannel.requestDone(self, request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        self.admission.release(self)
        http.HTTPChannel.connectionLost(self, reason)

    def evict(self) -> None:
        """Drop the connection at once: the site is full and this client never finished
        its first request's headers."""
        self._disarm()
        self._wire.abortConnection()

    def lineLengthExceeded(self, line: bytes) -> None:
        # LineReceiver's default closes without a word, and uncounted
        self._respondToBadRequestAndDisconnect()

    def _respondToBadRequestAndDisconnect(self) -> None:
        # twisted.web's one exit for a malformed request line, a header past the size or
        # count limits, a bad Content-Length or chunk: counted and logged as a refusal too.
        self.admission.refusals.refused("bad_request", self._wire.getPeer(),
                                        "malformed or oversized request headers")
        http.HTTPChannel._respondToBadRequestAndDisconnect(self)

    @property
    def _wire(self) -> _Wire:
        return cast(_Wire, self.transport)

    def _arm(self) -> None:
        self._deadline = self._clock.callLater(self.limits.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        deadline, self._deadline = self._deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()

    def _too_slow(self) -> None:
        self._deadline = None
        self._refuse("header_timeout", _TOO_SLOW,
                     f"headers not complete within {self.limits.header_timeout_s:g} s")

    def _refuse(self, reason: str, answer: bytes, detail: str) -> None:
        self.admission.refusals.refused(reason, self._wire.getPeer(), detail)
        self._wire.write(answer)
        http.HTTPChannel.loseConnection(self)


class GuardedSite(server.Site):
    """A ``Site`` of :class:`GuardedChannel` connections, at most ``limits.max_connections``
    at once (beyond: a 503 and close, after evicting any connection still in its first
    request's headers, see :mod:`ivr.admission`). ``reactor``: the clock of the timers."""

    def __init__(self, resource: resource.Resource, limits: HTTPLimits | None = None,
                 reactor: Any = None) -> None:
        limits = limits or HTTPLimits()
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        server.Site.__init__(self, resource, timeout=limits.idle_timeout_s, reactor=reactor)
        self.limits = limits
        self.clock = cast(Clock, reactor)
        self.refusals = RefusalLog("http", self.clock)
        self.admission = Admission(limits.max_connections, self.refusals)

    def buildProtocol(self, addr: IAddress | None) -> Any:
        # What HTTPFactory and Site.buildProtocol set on the HTTP/1.1 channel they build
        # (through _GenericHTTPChannelProtocol, only needed to negotiate HTTP/2, not served).
        channel = GuardedChannel(self.limits, self.admission, self.clock)
        channel.factory = self
        channel.requestFactory = self.requestFactory
        # TimeoutMixin's attributes, declared narrower than what Twisted itself assigns
        channel.callLater = self.clock.callLater  # type: ignore[method-assign,assignment]
        channel.timeOut = self.timeOut  # type: ignore[assignment]
        channel.site = self  # type: ignore[attr-defined]  # set by Site, undeclared in http
        if not self.admission.admit(channel, addr):
            return Refusal(_BUSY)
        return channel
