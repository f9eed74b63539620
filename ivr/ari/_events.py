"""ARI's event half: the WebSocket to ``/ari/events``, kept open across Asterisk restarts.

Ops restart Asterisk; the service must notice, say so in the log, and come back on its own.
:class:`ARIEventConnection` is that loop as a small state machine (see :class:`ConnectionState`
and ``_TRANSITIONS``): every input in every state is declared, anything else is a bug and is
refused loudly. Reconnect delays grow exponentially up to a cap, with jitter so that several
instances do not hammer a restarting Asterisk in step. Time comes from an injected clock.

Events are JSON objects with a ``type``; :class:`EventDispatcher` hands them to the handlers
subscribed to that type (or to ``"*"``). A malformed message is logged and dropped: one bad
frame must not cost us the connection.
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

log = logging.getLogger("ivr.ari")

Event = dict[str, Any]
EventHandler = Callable[[Event], object]
Connect = Callable[[WebSocketClientFactory], "defer.Deferred[Any]"]


class ConnectionState(enum.Enum):
    """Where the event connection is; see ``ARIEventConnection._TRANSITIONS``."""

    DISCONNECTED = "disconnected"  # not started, or stopped: no socket, no timer
    CONNECTING = "connecting"  # TCP connect and WebSocket handshake in flight, timer armed
    CONNECTED = "connected"  # handshake done: events flow to the dispatcher
    BACKING_OFF = "backing-off"  # the last attempt failed or the link dropped: retry timer armed


@dataclass(frozen=True)
class Backoff:
    """Capped exponential delays with jitter: attempt n waits between
    ``(1 - jitter) * d`` and ``d``, where ``d = min(cap, initial * factor ** n)``."""

    initial: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, rand: float) -> float:
        """The wait before retry ``attempt`` (0-based); ``rand`` is uniform in [0, 1)."""
        ceiling = min(self.cap, self.initial * self.factor ** min(attempt, 64))
        return ceiling * (1.0 - self.jitter + self.jitter * rand)


class EventDispatcher:
    """Handlers by ARI event type; ``"*"`` receives every event.

    A handler that raises is logged and the others still run: a bug in one consumer must not
    starve the rest of the service of channel or device events.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, list[EventHandler]] = {}

    def subscribe(self, event_type: str, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler(event)`` for each event of ``event_type``; returns the unsubscriber."""
        self._handlers.setdefault(event_type, []).append(handler)

        def unsubscribe() -> None:
            handlers = self._handlers.get(event_type, [])
            if handler in handlers:
                handlers.remove(handler)

        return unsubscribe

    def dispatch(self, event: Event) -> None:
        """Deliver one event to its type's handlers, then to the ``"*"`` handlers."""
        for handler in [*self._handlers.get(event["type"], ()), *self._handlers.get("*", ())]:
            try:
                handler(event)
            except Exception:
                log.exception("ARI: handler %r failed on a %s event", handler, event["type"])


class ARIEventProtocol(WebSocketClientProtocol):
    """One WebSocket to ``/ari/events``: parses frames and reports to its connection."""

    factory: _EventFactory

    def onOpen(self) -> None:
        self.factory.owner._input_opened(self.factory.generation, self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            log.warning("ARI: ignoring a binary WebSocket frame (%d bytes)", len(payload))
            return
        try:
            event = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            log.warning("ARI: ignoring a malformed event message: %r", payload[:200])
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            log.warning("ARI: ignoring an event without a type: %r", payload[:200])
            return
        self.factory.owner._input_event(self.factory.generation, event)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.owner._input_closed(self.factory.generation, self, f"code={code} {reason}")


class _EventFactory(WebSocketClientFactory):
    """Carries the owner and the attempt number, so late callbacks of old sockets are ignored."""

    protocol = ARIEventProtocol

    def __init__(self, owner: ARIEventConnection, generation: int, url: str, headers: dict):
        super().__init__(url, headers=headers)
        self.owner = owner
        self.generation = generation


class ARIEventConnection:
    """Keeps one ARI event WebSocket open for the Stasis application, reconnecting forever.

    ``connect(factory)`` opens the TCP connection and returns a Deferred (an endpoint's
    ``connect``); the handshake then runs in :class:`ARIEventProtocol`. The URL holds no
    secret: credentials go in the ``Authorization`` header, so logs never show them.
    """

    def __init__(
        self,
        url: str,
        user: str,
        password: str,
        *,
        clock: IReactorTime,
        connect: Connect,
        dispatcher: EventDispatcher,
        backoff: Backoff | None = None,
        random: Callable[[], float] = random.random,
        connect_timeout: float = 10.0,
        ping_interval: float | None = 10.0,
    ) -> None:
        self.url = url
        self._headers = {
            "Authorization": "Basic "
            + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        }
        self._clock = clock
        self._connect = connect
        self.dispatcher = dispatcher
        self._backoff = backoff or Backoff()
        self._random = random
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval

        self._state = ConnectionState.DISCONNECTED
        self._generation = 0  # bumped per attempt; callbacks of older attempts are stale
        self._attempt: defer.Deferred[Any] | None = None  # TCP connect in flight
        self._protocol: ARIEventProtocol | None = None  # socket of the current attempt
        self._timer: Any = None  # connect timeout (CONNECTING) or retry (BACKING_OFF)
        self._failures = 0  # consecutive failed attempts, for the backoff
        self._down_since: float | None = None
        self._closing: dict[ARIEventProtocol, list[defer.Deferred[None]]] = {}
        self._waiters: list[defer.Deferred[None]] = []
        self._listeners: list[Callable[[ConnectionState, ConnectionState], object]] = []

    # --- public --------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def start(self) -> None:
        """Begin connecting (and keep reconnecting until :meth:`stop`)."""
        self._input("start")

    def stop(self) -> defer.Deferred[None]:
        """Stop reconnecting and close the socket; fires once the socket is closed."""
        closing = self._protocol
        self._input("stop")
        if closing is not None and closing in self._closing:
            d: defer.Deferred[None] = defer.Deferred()
            self._closing[closing].append(d)
            return d
        return defer.succeed(None)

    def when_connected(self) -> defer.Deferred[None]:
        """Fires when the connection is (or next becomes) CONNECTED; fails with
        :class:`~twisted.internet.defer.CancelledError` if :meth:`stop` comes first."""
        if self._state is ConnectionState.CONNECTED:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        return d

    def on_state_change(
        self, listener: Callable[[ConnectionState, ConnectionState], object]
    ) -> Callable[[], None]:
        """Call ``listener(old, new)`` on every transition (e.g. to resync after reconnecting:
        events that happened while we were away are lost). Returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # --- inputs from sockets and timers ----------------------------------------------------------

    def _input_opened(self, generation: int, protocol: ARIEventProtocol) -> None:
        if generation == self._generation and protocol is self._protocol:
            self._input("opened")

    def _input_event(self, generation: int, event: Event) -> None:
        if generation == self._generation and self._state is ConnectionState.CONNECTED:
            if event["type"] == "ApplicationReplaced":
                log.error("ARI: another client took over Stasis app events (ApplicationReplaced)")
            self.dispatcher.dispatch(event)

    def _input_closed(self, generation: int, protocol: ARIEventProtocol, reason: str) -> None:
        for d in self._closing.pop(protocol, []):
            d.callback(None)
        if generation != self._generation or protocol is not self._protocol:
            return
        self._protocol = None
        if self._state is ConnectionState.CONNECTING:
            self._input("failed", f"handshake failed, {reason}")
        else:
            self._input("lost", reason)

    def _connected_tcp(self, protocol: ARIEventProtocol, generation: int) -> None:
        if generation != self._generation:  # stopped or timed out meanwhile
            protocol.dropConnection(abort=True)
            return
        self._attempt = None
        self._protocol = protocol
        self._closing[protocol] = []

    def _connect_failed(self, failure: Failure, generation: int) -> None:
        if generation == self._generation:
            self._attempt = None
            self._input("failed", failure.getErrorMessage() or failure.type.__name__)

    def _timer_fired(self, generation: int) -> None:
        if generation != self._generation:
            return
        self._timer = None
        if self._state is ConnectionState.CONNECTING:
            self._input("failed", f"no WebSocket handshake within {self._connect_timeout:g}s")
        else:
            self._input("retry")

    # --- the state machine -----------------------------------------------------------------------

    _TRANSITIONS: ClassVar[dict[tuple[ConnectionState, str], str]] = {
        (ConnectionState.DISCONNECTED, "start"): "_begin_attempt",
        (ConnectionState.DISCONNECTED, "stop"): "_nothing",
        (ConnectionState.CONNECTING, "start"): "_nothing",
        (ConnectionState.CONNECTING, "opened"): "_enter_connected",
        (ConnectionState.CONNECTING, "failed"): "_enter_backing_off",
        (ConnectionState.CONNECTING, "stop"): "_enter_disconnected",
        (ConnectionState.CONNECTED, "start"): "_nothing",
        (ConnectionState.CONNECTED, "lost"): "_enter_backing_off",
        (ConnectionState.CONNECTED, "stop"): "_enter_disconnected",
        (ConnectionState.BACKING_OFF, "start"): "_nothing",
        (ConnectionState.BACKING_OFF, "retry"): "_begin_attempt",
        (ConnectionState.BACKING_OFF, "stop"): "_enter_disconnected",
    }

    def _input(self, name: str, reason: str = "") -> None:
        action = self._TRANSITIONS.get((self._state, name))
        if action is None:
            raise RuntimeError(f"ARI event connection: input {name!r} in state {self._state}")
        getattr(self, action)(reason)

    def _set_state(self, new: ConnectionState) -> None:
        old, self._state = self._state, new
        if old is not new:
            for listener in list(self._listeners):
                try:
                    listener(old, new)
                except Exception:
                    log.exception("ARI: state listener %r failed", listener)

    def _nothing(self, reason: str) -> None:
        pass

    def _begin_attempt(self, reason: str) -> None:
        self._generation += 1
        generation = self._generation
        self._set_state(ConnectionState.CONNECTING)
        log.log(
            logging.INFO if self._failures == 0 else logging.DEBUG,
            "ARI: connecting to %s (attempt %d)",
            self.url,
            self._failures + 1,
        )
        factory = _EventFactory(self, generation, self.url, self._headers)
        if self._ping_interval:
            # Without pings a half-open TCP connection (host frozen, cable pulled) looks
            # healthy forever; Asterisk answers pings, so silence means the link is dead.
            factory.setProtocolOptions(
                autoPingInterval=self._ping_interval, autoPingTimeout=self._ping_interval
            )
        self._timer = self._clock.callLater(self._connect_timeout, self._timer_fired, generation)
        attempt = defer.maybeDeferred(self._connect, factory)
        if self._generation == generation and self._state is ConnectionState.CONNECTING:
            self._attempt = attempt
        attempt.addCallbacks(
            self._connected_tcp,
            self._connect_failed,
            callbackArgs=(generation,),
            errbackArgs=(generation,),
        )

    def _enter_connected(self, reason: str) -> None:
        self._cancel_timer()
        if self._down_since is not None:
            log.warning(
                "ARI: reconnected to Asterisk events after %.1fs",
                self._clock.seconds() - self._down_since,
            )
        else:
            log.info("ARI: connected to Asterisk events at %s", self.url)
        self._failures = 0
        self._down_since = None
        self._set_state(ConnectionState.CONNECTED)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def _enter_backing_off(self, reason: str) -> None:
        self._generation += 1  # whatever the failed attempt still does is now stale
        self._cancel_timer()
        self._abandon_attempt()
        delay = self._backoff.delay(self._failures, self._random())
        if self._state is ConnectionState.CONNECTED:
            self._down_since = self._clock.seconds()
            log.warning(
                "ARI: lost the Asterisk event connection (%s); retrying in %.1fs", reason, delay
            )
        else:
            if self._down_since is None:
                self._down_since = self._clock.seconds()
            log.warning(
                "ARI: cannot connect to Asterisk at %s (%s); attempt %d, retrying in %.1fs",
                self.url,
                reason,
                self._failures + 1,
                delay,
            )
        self._failures += 1
        self._timer = self._clock.callLater(delay, self._timer_fired, self._generation)
        self._set_state(ConnectionState.BACKING_OFF)

    def _enter_disconnected(self, reason: str) -> None:
        self._generation += 1  # whatever the attempt or socket still does is now stale
        self._cancel_timer()
        protocol = self._protocol
        self._abandon_attempt()
        if protocol is not None and self._state is ConnectionState.CONNECTED:
            protocol.sendClose()
        self._down_since = None
        self._failures = 0
        log.info("ARI: event connection stopped")
        self._set_state(ConnectionState.DISCONNECTED)
        waiters, self._waiters = self._waiters, []
        for d in waiters:  # nobody will connect for them any more
            d.errback(defer.CancelledError("ARI event connection stopped"))

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _abandon_attempt(self) -> None:
        """Drop the TCP connect or the half-done handshake of the current attempt."""
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.addErrback(lambda f: f.trap(defer.CancelledError))
            attempt.cancel()
        protocol, self._protocol = self._protocol, None
        if protocol is not None and self._state is ConnectionState.CONNECTING:
            protocol.dropConnection(abort=True)


def events_url(base_url: str, app: str, subscribe_all: bool = True) -> str:
    """``http://host:port/ari`` -> ``ws://host:port/ari/events?app=...``."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    query = f"app={app}" + ("&subscribeAll=true" if subscribe_all else "")
    return f"{scheme}://{parts.netloc}{parts.path}/events?{query}"
