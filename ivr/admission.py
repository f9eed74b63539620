"""Who may hold a connection to one of the service's sockets, and how a refusal is told.

Every server of ``ivr serve`` (FastAGI, AudioSocket, HTTP) takes any peer that can reach its
port, so each bounds what a peer can make it hold: a cap on open connections
(:class:`Admission`), deadlines and size limits in its protocol. A connection the server ends
for the peer's fault (too many, garbage, too slow, too large) is *refused*: counted in
``hotline_connections_refused_total{server,reason}`` and logged through a
:class:`RefusalLog`, which says the first refusals of a burst one by one and sums up the
rest, so a flood of thousands of garbage connections writes a few lines, not thousands.

When a server is full, the oldest connection that has not yet proved itself (its FastAGI
header, its AudioSocket UUID, its first HTTP request's headers are not complete) is evicted
to make room: a slow-loris attack that fills the cap cannot keep Asterisk's next call out,
because Asterisk's own connections prove themselves within milliseconds. Only when every
open connection has proved itself is the newcomer refused.
"""

from __future__ import annotations

import typing
from collections import Counter as Tally
from typing import Final

from prometheus_client import Counter, Gauge
from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from ivr.timers import Clock, DelayedCall

__all__ = [
    "OPEN",
    "REASONS",
    "REFUSED",
    "Admission",
    "Evictable",
    "Refusal",
    "RefusalLog",
]

log = Logger()

REFUSED = Counter(
    "hotline_connections_refused",
    "Connections a server ended for the peer's fault (over the cap, garbage, too slow, "
    "too large), by server and reason",
    ["server", "reason"],
)
OPEN = Gauge("hotline_connections_open", "Connections open now, by server", ["server"])

REASONS: Final = {
    "agi": ("too_many_connections", "evicted", "line_too_long", "header_too_large",
            "header_timeout", "bad_header", "unexpected_line", "bad_reply"),
    "audiosocket": ("too_many_connections", "evicted", "frame_too_large", "bad_frame",
                    "unknown_call", "first_frame_timeout"),
    "http": ("too_many_connections", "evicted", "header_timeout", "body_too_large",
             "length_required", "bad_request", "slow_reader"),
}
"""Every server and reason, created up front so a scrape shows zeros rather than nothing."""
for _server, _reasons in REASONS.items():
    OPEN.labels(_server)
    for _reason in _reasons:
        REFUSED.labels(_server, _reason)

BURST: Final = 10
"""Refusals logged one by one in a window; the rest of the window's are summed up."""
SUMMARY_EVERY_S: Final = 30.0


class RefusalLog:
    """The refusals of one server (``"agi"``, ``"audiosocket"``, ``"http"``): each counted,
    the first ``burst`` of every ``every_s`` window logged with its peer and detail, the rest
    of the window summed up in one line (by reason) when the window ends."""

    def __init__(self, server: str, clock: Clock, *, burst: int = BURST,
                 every_s: float = SUMMARY_EVERY_S) -> None:
        self.server = server
        self.clock = clock
        self.burst = burst
        self.every_s = every_s
        self._window_end = -1.0
        self._said = 0
        self._unsaid: Tally[str] = Tally()
        self._summary: DelayedCall | None = None

    def refused(self, reason: str, peer: object, detail: str = "", **fields: object) -> None:
        """One refused connection; ``fields`` (such as a call's ``uniqueid``) go into the
        log event."""
        REFUSED.labels(self.server, reason).inc()
        now = self.clock.seconds()
        if now >= self._window_end and self._summary is None:
            self._window_end, self._said = now + self.every_s, 0
        if self._said < self.burst:
            self._said += 1
            log.warn(
                "{server} connection refused ({reason}) from {peer}: {detail}",
                server=self.server, reason=reason, peer=str(peer), detail=detail, **fields,
            )
            return
        self._unsaid[reason] += 1
        if self._summary is None:
            self._summary = self.clock.callLater(
                max(0.0, self._window_end - now), self._summarize
            )

    def _summarize(self) -> None:
        self._summary = None
        unsaid, self._unsaid = self._unsaid, Tally()
        log.warn(
            "{server}: {count} more connections refused in the last {every_s:.0f} s "
            "({reasons})",
            server=self.server, count=sum(unsaid.values()), every_s=self.every_s,
            reasons=", ".join(f"{reason}: {n}" for reason, n in sorted(unsaid.items())),
        )

    def stop(self) -> None:
        """Say what is still unsaid now (at shutdown)."""
        if self._summary is not None and self._summary.active():
            self._summary.cancel()
            self._summarize()


class Evictable(typing.Protocol):
    """A connection the cap may end to make room (aborts its transport)."""

    def evict(self) -> None: ...


class Admission:
    """The connection cap of one server.

    The factory asks :meth:`admit` for each new connection, the connection says
    :meth:`proven` once its peer has shown it speaks the protocol, and :meth:`release` when
    it is gone. Bookkeeping only: what a refusal or an eviction sends is the server's.
    """

    def __init__(self, limit: int, refusals: RefusalLog) -> None:
        if limit < 1:
            raise ValueError(f"a connection cap of {limit}: at least 1")
        self.limit = limit
        self.refusals = refusals
        self._gauge = OPEN.labels(refusals.server)
        self._open: set[Evictable] = set()
        # insertion-ordered: the first key is the oldest connection not yet proven
        self._unproven: dict[Evictable, object] = {}

    @property
    def open(self) -> int:
        return len(self._open)

    @property
    def unproven(self) -> int:
        return len(self._unproven)

    def admit(self, connection: Evictable, peer: object) -> bool:
        """Whether ``connection`` (from ``peer``) may stay; False: refuse it (counted and
        logged here). At the cap, the oldest unproven connection is evicted instead."""
        if len(self._open) >= self.limit:
            if not self._unproven:
                self.refusals.refused(
                    "too_many_connections", peer, f"{self.limit} connections are open"
                )
                return False
            oldest, oldest_peer = next(iter(self._unproven.items()))
            self.release(oldest)
            self.refusals.refused(
                "evicted", oldest_peer, f"server full ({self.limit}): the oldest connection "
                "that had not completed its handshake made room for a new one"
            )
            oldest.evict()
        self._open.add(connection)
        self._unproven[connection] = peer
        self._gauge.inc()
        return True

    def proven(self, connection: Evictable) -> None:
        """``connection`` completed its handshake: it is no longer evicted to make room."""
        self._unproven.pop(connection, None)

    def release(self, connection: Evictable) -> None:
        """``connection`` is gone (or evicted); a second call is a no-op."""
        if connection in self._open:
            self._open.remove(connection)
            self._unproven.pop(connection, None)
            self._gauge.dec()


class _Closable(typing.Protocol):
    def write(self, data: bytes) -> None: ...

    def loseConnection(self) -> None: ...


class Refusal(Protocol):
    """The answer to a connection over the cap: ``message`` (what the protocol's peer
    understands as "not now": C{FAILURE} for FastAGI, a 503 for HTTP), then close. A few bytes
    into an empty socket buffer: the descriptor is freed at once, read or not."""

    def __init__(self, message: bytes = b"") -> None:
        self.message = message

    def connectionMade(self) -> None:
        transport = typing.cast(_Closable, self.transport)
        if self.message:
            transport.write(self.message)
        transport.loseConnection()


LISTEN_BACKLOG: Final = 1024
"""Connections the kernel queues for accept() (Twisted's default is 50). With 50, a burst of
connections fills the queue and the kernel drops the rest of the handshakes: Asterisk's next
connection then waits for SYN retries (1 s, 3 s, 7 s), dead air for that caller. The kernel
caps it at ``net.core.somaxconn`` (4096 on current Linux)."""

DESCRIPTOR_MARGIN: Final = 256
"""Descriptors beyond the caps: Redis, ARI, log and spool files, the recognizers' models."""


def ensure_descriptors(caps: int, margin: int = DESCRIPTOR_MARGIN) -> str | None:
    """Raise the soft limit on open files to hold ``caps`` connections and ``margin``
    (up to the hard limit; systemd's default soft limit is 1024); a warning when the hard
    limit is too low: past it, accept() fails and the real calls are the ones refused."""
    import resource

    needed = caps + margin
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        return (f"the open-file limit ({soft}) is below the connection caps ({caps}) plus "
                f"{margin}: lower max_connections in service.yaml or raise LimitNOFILE")
    return None
