"""The ARI client the service holds: REST methods plus the event connection, one object."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS

from ivr.ari._events import (
    ARIEventConnection,
    Backoff,
    Connect,
    ConnectionState,
    EventDispatcher,
    EventHandler,
    events_url,
)
from ivr.ari._rest import ARIRest


def _endpoint_connect(reactor: Any, url: str, timeout: float) -> Connect:
    """TCP (or TLS for wss) to the host and port of ``url``."""
    parts = urlsplit(url)
    tls = parts.scheme == "wss"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if tls else 80)
    endpoint: Any = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if tls:
        endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)

    def connect(factory: WebSocketClientFactory) -> defer.Deferred[Any]:
        return endpoint.connect(factory)

    return connect


class ARIClient(ARIRest):
    """ARI for the hotline: :class:`ARIRest`'s requests, and events for the Stasis ``app``.

    ``base_url`` is Asterisk's ARI root, e.g. ``http://127.0.0.1:8088/ari``. The event
    connection starts with :meth:`start` and survives Asterisk restarts by itself; REST calls
    work whether or not it is connected (they fail with :class:`ARIUnavailable` while Asterisk
    is down). Tests pass ``http`` (a :class:`treq.testing.StubTreq`), ``connect`` and a
    :class:`twisted.internet.task.Clock` as ``reactor``.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        app: str = "hotline",
        reactor: Any = None,
        http: Any = None,
        connect: Connect | None = None,
        backoff: Backoff | None = None,
        random: Callable[[], float] = random.random,
        timeout: float = 10.0,
        subscribe_all: bool = True,
        ping_interval: float | None = 10.0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        self._pool = None
        if http is None:
            import treq.client
            from twisted.web.client import Agent, HTTPConnectionPool

            self._pool = HTTPConnectionPool(reactor, persistent=True)
            http = treq.client.HTTPClient(Agent(reactor, pool=self._pool))
        super().__init__(base_url, user, password, http=http, clock=reactor, timeout=timeout)
        self.app = app
        url = events_url(base_url, app, subscribe_all)
        self.events = ARIEventConnection(
            url,
            user,
            password,
            clock=reactor,
            connect=connect or _endpoint_connect(reactor, url, timeout),
            dispatcher=EventDispatcher(),
            backoff=backoff,
            random=random,
            connect_timeout=timeout,
            ping_interval=ping_interval,
        )

    def __repr__(self) -> str:
        return f"<ARIClient {self.base_url} app={self.app} {self.events.state.value}>"

    @property
    def state(self) -> ConnectionState:
        return self.events.state

    def start(self) -> None:
        """Connect the event WebSocket; reconnects on its own until :meth:`stop`."""
        self.events.start()

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Close the event WebSocket and idle HTTP connections."""
        yield self.events.stop()
        if self._pool is not None:
            yield self._pool.closeCachedConnections()

    def when_connected(self) -> defer.Deferred[None]:
        """Fires once events flow (immediately if they already do)."""
        return self.events.when_connected()

    def subscribe(self, event_type: str, handler: EventHandler) -> Callable[[], None]:
        """``handler(event)`` for each ARI event of ``event_type`` (``"*"``: all); returns the
        unsubscriber. Types: ``StasisStart``, ``StasisEnd``, ``ChannelStateChange``,
        ``ChannelDestroyed``, ``ChannelHangupRequest``, ``ChannelDtmfReceived``,
        ``DeviceStateChanged``, ``EndpointStateChange``, ..."""
        return self.events.dispatcher.subscribe(event_type, handler)

    def on_state_change(
        self, listener: Callable[[ConnectionState, ConnectionState], object]
    ) -> Callable[[], None]:
        """``listener(old, new)`` on each connection state change; returns the unsubscriber."""
        return self.events.on_state_change(listener)

    def subscribe_device(self, device: str) -> defer.Deferred[Any]:
        """Receive ``DeviceStateChanged`` for ``device`` (only needed without subscribeAll)."""
        return self.subscribe_event_source(self.app, f"deviceState:{device}")
