"""Fakes for testing code that uses :class:`ivr.ari.ARIClient`, without sockets or Asterisk.

:class:`FakeAsteriskEvents` is the ``connect`` function of an :class:`ARIClient`: each
connection attempt becomes a real :class:`ARIEventProtocol` over a ``StringTransport``, and the
test plays Asterisk's side of it: accept the WebSocket handshake (the real one, so
autobahn's client code runs), send event frames, drop the link, or refuse the connection.

``ari_http(responder)`` is the ``http`` of an :class:`ARIClient`: treq's in-memory stub whose
answers come from ``responder(method, url, params, headers, body) -> (code, headers, body)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory
from treq.testing import StringStubbingResource, StubTreq
from twisted.internet import defer, error
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from ivr.ari._events import ARIEventProtocol

_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class _TCPTransport(StringTransport):
    """Like a TCP transport, tolerates unregisterProducer without a producer (autobahn's
    dropConnection relies on that; the plain StringTransport raises)."""

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streaming = None


@dataclass
class Attempt:
    """One connection attempt the client made: its factory and the Deferred it waits on."""

    factory: WebSocketClientFactory
    deferred: defer.Deferred[Any]
    protocol: ARIEventProtocol | None = None
    transport: StringTransport = field(default_factory=_TCPTransport)

    def request(self) -> bytes:
        """What the client wrote: the HTTP upgrade request, then frames."""
        return self.transport.value()


class FakeAsteriskEvents:
    """Plays Asterisk's end of ``/ari/events`` for an :class:`ivr.ari.ARIEventConnection`."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []

    def __call__(self, factory: WebSocketClientFactory) -> defer.Deferred[Any]:
        attempt = Attempt(factory, defer.Deferred())
        self.attempts.append(attempt)
        return attempt.deferred

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    def connect_tcp(self, attempt: Attempt | None = None) -> Attempt:
        """The TCP connection succeeds; the client sends its handshake request."""
        attempt = attempt or self.last
        protocol = attempt.factory.buildProtocol(None)
        attempt.protocol = protocol
        protocol.makeConnection(attempt.transport)
        attempt.deferred.callback(protocol)
        return attempt

    def accept(self, attempt: Attempt | None = None) -> Attempt:
        """TCP connects and the WebSocket handshake succeeds (101 Switching Protocols)."""
        attempt = attempt or self.last
        if attempt.protocol is None:
            self.connect_tcp(attempt)
        assert attempt.protocol is not None
        key = _header(attempt.request(), b"sec-websocket-key")
        accept = base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())
        attempt.protocol.dataReceived(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        return attempt

    def refuse(self, attempt: Attempt | None = None) -> None:
        """The TCP connection is refused (Asterisk is not listening)."""
        (attempt or self.last).deferred.errback(Failure(error.ConnectionRefusedError()))

    def send(self, payload: bytes | dict[str, Any], attempt: Attempt | None = None) -> None:
        """Asterisk sends one text frame (a dict is sent as JSON)."""
        attempt = attempt or self.last
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        assert attempt.protocol is not None
        attempt.protocol.dataReceived(_text_frame(data))

    def drop(self, attempt: Attempt | None = None) -> None:
        """The TCP connection goes away without a closing handshake (Asterisk restarted)."""
        attempt = attempt or self.last
        assert attempt.protocol is not None
        attempt.transport.disconnecting = True
        attempt.protocol.connectionLost(Failure(error.ConnectionLost()))


def _header(request: bytes, name: bytes) -> bytes:
    head = request.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip()
    raise AssertionError(f"no {name!r} header in the handshake request")


def _text_frame(payload: bytes) -> bytes:
    """A server-to-client (unmasked) final text frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x81, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x81, 126, n)
    else:
        head = struct.pack("!BBQ", 0x81, 127, n)
    return head + payload


Responder = Callable[[bytes, str, dict, dict, bytes], tuple[int, dict, bytes | str]]


def ari_http(responder: Responder) -> StubTreq:
    """An in-memory treq whose answers come from ``responder``."""
    return StubTreq(StringStubbingResource(responder))
