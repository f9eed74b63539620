"""Hostile clients on the HTTP port (api.channel): slow-loris, oversized and chunked bodies,
garbage, the connection cap, idle keep-alive, and live streams that are never read
(screens.web.StreamPace). The real twisted.web channel on a StringTransport and a task.Clock."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web import resource, server

from api.channel import GuardedChannel, GuardedSite, HTTPLimits
from screens.web import StreamPace

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
GET = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"


def refused(reason: str) -> float:
    labels = {"server": "http", "reason": reason}
    return REGISTRY.get_sample_value("hotline_connections_refused_total", labels) or 0.0


class Hello(resource.Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytes] = []
        self.streams: list[server.Request] = []

    def render(self, request: server.Request) -> Any:
        if request.path == b"/stream":
            self.streams.append(request)
            return server.NOT_DONE_YET
        self.bodies.append(request.content.read() if request.content else b"")
        return b"hello"


class Site:
    def __init__(self, **limits: Any) -> None:
        self.clock = task.Clock()
        self.resource = Hello()
        self.site = GuardedSite(self.resource, HTTPLimits(**limits), reactor=self.clock)

    def connect(self) -> tuple[Any, StringTransport]:
        channel = self.site.buildProtocol(ADDRESS)
        transport = StringTransport(peerAddress=ADDRESS)
        channel.makeConnection(transport)
        return channel, transport


def test_a_request_is_answered_as_before() -> None:
    """The guarded channel serves an ordinary request and keeps the connection alive."""
    site = Site()
    channel, transport = site.connect()
    channel.dataReceived(GET)
    assert transport.value().startswith(b"HTTP/1.1 200 OK") and b"hello" in transport.value()
    assert not transport.disconnecting


def test_headers_trickled_a_byte_at_a_time_are_cut_off_with_408() -> None:
    """Bytes every few seconds keep twisted.web's idle timeout from firing, not the header
    deadline: after header_timeout_s the client gets 408 and the connection closes."""
    site = Site(header_timeout_s=10.0, idle_timeout_s=60.0)
    channel, transport = site.connect()
    before = refused("header_timeout")
    for byte in GET[:5]:
        channel.dataReceived(bytes([byte]))
        site.clock.advance(2.5)
    assert transport.value().startswith(b"HTTP/1.1 408")
    assert transport.disconnecting
    assert refused("header_timeout") == before + 1


def test_the_deadline_of_a_later_request_starts_at_its_first_byte() -> None:
    """An idle keep-alive connection is not a slow request: the next request's deadline
    runs from its first byte, and the idle timeout closes an idle connection."""
    site = Site(header_timeout_s=10.0, idle_timeout_s=60.0)
    channel, transport = site.connect()
    channel.dataReceived(GET)
    transport.clear()
    site.clock.advance(30.0)  # idle, under the idle timeout
    assert not transport.disconnecting
    channel.dataReceived(GET)
    assert transport.value().startswith(b"HTTP/1.1 200")
    site.clock.advance(61.0)
    assert transport.disconnecting  # idle timeout


def test_a_declared_body_past_the_limit_is_refused_from_the_headers() -> None:
    """A Content-Length past max_body_bytes gets 413 at once: the body is not read (no temp
    file of gigabytes), the resource never runs."""
    site = Site(max_body_bytes=1000)
    channel, transport = site.connect()
    before = refused("body_too_large")
    channel.dataReceived(b"POST /api/x HTTP/1.1\r\nContent-Length: 10000000000\r\n\r\n" + b"x" * 50)
    assert transport.value().startswith(b"HTTP/1.1 413")
    assert transport.disconnecting and site.resource.bodies == []
    assert refused("body_too_large") == before + 1


def test_a_chunked_body_is_refused_with_411() -> None:
    """A body without a declared length (chunked) could grow without bound: 411."""
    site = Site()
    channel, transport = site.connect()
    channel.dataReceived(
        b"POST /api/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
    )
    assert transport.value().startswith(b"HTTP/1.1 411")
    assert transport.disconnecting and site.resource.bodies == []


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(600)) + b"\r\n",
        GET[:20] + b"\r\n\x00\xff garbage\r\n\r\n",
    ],
)
def test_garbage_and_oversized_headers_are_refused_and_counted(data: bytes) -> None:
    """Garbage, a header line past the limit, too many headers, a valid start then garbage:
    400 and closed, counted as bad_request; the resource never runs."""
    site = Site()
    channel, transport = site.connect()
    before = refused("bad_request")
    channel.dataReceived(data)
    assert transport.value().startswith(b"HTTP/1.1 400") and transport.disconnecting
    assert refused("bad_request") == before + 1
    assert site.resource.bodies == []


def test_over_the_cap_a_client_gets_503_and_slow_ones_make_room() -> None:
    """With the cap held by clients that never finished their headers, a newcomer evicts
    the oldest; once every slot has sent a request, the next client gets 503."""
    site = Site(max_connections=2)
    slow, slow_transport = site.connect()
    slow.dataReceived(b"GE")
    served, _served_transport = site.connect()
    served.dataReceived(GET)
    newcomer, newcomer_transport = site.connect()
    assert isinstance(newcomer, GuardedChannel)
    assert slow_transport.disconnected  # aborted
    newcomer.dataReceived(GET)
    assert newcomer_transport.value().startswith(b"HTTP/1.1 200")
    before = refused("too_many_connections")
    _refusal, transport = site.connect()
    assert transport.value().startswith(b"HTTP/1.1 503") and transport.disconnecting
    assert refused("too_many_connections") == before + 1


def test_a_live_stream_never_read_is_dropped_past_its_bound() -> None:
    """A browser that stops reading its live stream (vanished without FIN, or never reads):
    once the transport is full, writes queue up to the bound, then the connection is
    aborted and counted as slow_reader; a stream that drains in time is kept."""
    site = Site()
    channel, transport = site.connect()
    channel.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    request = site.resource.streams[0]
    pace = StreamPace(request, max_unread=1000)
    channel.registerProducer(pace, True)
    pace.write(b"a" * 100)
    channel.pauseProducing()  # what the TCP transport says once its buffer is full
    pace.write(b"b" * 900)
    channel.resumeProducing()
    pace.write(b"c" * 100)
    assert not transport.disconnected
    channel.pauseProducing()
    before = refused("slow_reader")
    for _ in range(11):
        pace.write(b"d" * 100)
    assert transport.disconnected
    assert refused("slow_reader") == before + 1
    written = len(transport.value())
    pace.write(b"e" * 100)
    assert len(transport.value()) == written
