"""One event to one webhook: signed POSTs, retried with backoff, dead-lettered at the end.

Twisted side: the POST goes through a :class:`Poster` (treq on the reactor in the service,
a fake in unit tests), each attempt bounded by ``timeout_s`` on the injected clock, the waits
between attempts on the same clock (``task.Clock`` in tests: a ten-attempt schedule runs in
microseconds). Verdicts and waits are the pure ones of :mod:`webhooks.retry`; the headers
and body those of :mod:`webhooks.signature`.

A delivery cancelled from outside (the service stopping) raises ``CancelledError`` and
writes nothing: its entry is still unacknowledged, so it is delivered again after the
restart.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from events.consumer import Entry
from webhooks import metrics
from webhooks.deadletter import DeadLetter
from webhooks.retry import Backoff, Judged, Verdict, judge_error, judge_status
from webhooks.signature import payload, signed_headers

log = logging.getLogger(__name__)

USER_AGENT = "hotline-webhooks/1"
_BODY_KEPT = 1024  # bytes of a receiver's answer kept for the log


@dataclass(frozen=True)
class Answer:
    """What the receiver answered: the status, its Retry-After header, the body's start."""

    status: int
    retry_after: str | None = None
    body: bytes = b""


class Poster(Protocol):
    """Sends one POST; fires with the answer, or fails with the network error."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> defer.Deferred[Answer]:
        ...


class DeadLetterSink(Protocol):
    """Where given-up deliveries go (``webhooks.deadletter.DeadLetters`` on the reactor)."""

    def add(self, letter: DeadLetter) -> defer.Deferred[None]: ...


class FailureLog(Protocol):
    """A repeating task's failures (``hotline.failures.RepeatedFailure``): said once, then
    summed up, and one line when it recovers."""

    def failed(self, error: str) -> None: ...

    def succeeded(self) -> None: ...


class TreqPoster:
    """:class:`Poster` over treq on ``reactor``, with its own pool of persistent connections
    (closed by :meth:`close`). Redirects are not followed (a signed POST goes where it was
    configured to go, or fails)."""

    def __init__(self, reactor: Any) -> None:
        from treq.client import HTTPClient
        from twisted.web.client import Agent, HTTPConnectionPool
        from twisted.web.iweb import IAgent

        self._pool = HTTPConnectionPool(reactor, persistent=True)
        # Agent provides IAgent through zope's @implementer, unseen by mypy
        self._client = HTTPClient(cast(IAgent, Agent(reactor, pool=self._pool)))

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> defer.Deferred[Answer]:
        import treq

        async def send() -> Answer:
            sent: dict[bytes | str, list[bytes | str]] = {
                name: [value] for name, value in {**headers, "user-agent": USER_AGENT}.items()
            }
            response = await self._client.post(url, data=body, headers=sent)
            kept: list[bytes] = []

            def keep(chunk: bytes) -> None:
                if sum(map(len, kept)) < _BODY_KEPT:
                    kept.append(chunk)

            await treq.collect(response, keep)  # read to the end: the connection is reused
            retry_after = response.headers.getRawHeaders(b"retry-after", [None])[0]
            return Answer(
                int(response.code),
                retry_after.decode("latin-1") if retry_after is not None else None,
                b"".join(kept)[:_BODY_KEPT],
            )

        return defer.ensureDeferred(send())

    def close(self) -> defer.Deferred[None]:
        closed: defer.Deferred[None] = self._pool.closeCachedConnections()
        return closed


class Delivery:
    """Delivers events to the webhook ``name`` at ``url``, signed with ``key``. ``clock``
    times the attempts and the waits, ``now`` is its time (``clock.seconds``), ``draw``
    picks the jitter of each wait (``random.random``)."""

    def __init__(
        self, *, name: str, url: str, key: bytes, backoff: Backoff, timeout_s: float,
        poster: Poster, clock: IReactorTime, now: Callable[[], float], dead_letters: DeadLetterSink,
        failures: FailureLog, draw: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.url = url
        self.key = key
        self.backoff = backoff
        self.timeout_s = timeout_s
        self.poster = poster
        self.clock = clock
        self.now = now
        self.dead_letters = dead_letters
        self.failures = failures
        self.draw = draw

    async def deliver(self, entry: Entry) -> bool:
        """Deliver ``entry``: True once the receiver accepted it, False when it was given up
        and written to the dead-letter list."""
        body = payload(entry)
        judged: Judged | None = None
        attempt = 0
        for attempt in range(1, self.backoff.attempts + 1):
            judged = await self._attempt(entry, body)
            if judged.verdict is Verdict.DELIVERED:
                metrics.DELIVERIES.labels(self.name).inc()
                self.failures.succeeded()
                return True
            metrics.FAILURES.labels(self.name, judged.cause).inc()
            self.failures.failed(f"event {entry.id} ({entry.kind}): {judged.reason}")
            if judged.verdict is Verdict.FINAL or attempt == self.backoff.attempts:
                break
            wait = self.backoff.delay(attempt, self.draw(), judged.retry_after_s)
            await task.deferLater(self.clock, wait)
        assert judged is not None  # attempts >= 1
        final = "refused" if judged.verdict is Verdict.FINAL else f"failed {attempt} times"
        letter = DeadLetter.of(self.name, entry, judged.reason, attempt, self.now())
        await self.dead_letters.add(letter)
        metrics.DEAD_LETTERS.labels(self.name).inc()
        log.error("webhook %s: event %s (%s) %s, last: %s; kept in its dead-letter list "
                  "(ivr webhooks dead %s)", self.name, entry.id, entry.kind, final,
                  judged.reason, self.name)
        return False

    async def _attempt(self, entry: Entry, body: bytes) -> Judged:
        headers = signed_headers(self.key, entry.id, int(self.now()), body)
        sent = self.poster.post(self.url, body, headers)
        sent.addTimeout(self.timeout_s, self.clock)
        try:
            answer = await sent
        except defer.TimeoutError:
            return judge_error(f"no answer within {self.timeout_s:g} s", timed_out=True)
        except defer.CancelledError:
            raise  # the service stops: nothing is written, the entry comes again
        except Exception as exc:
            if _cancelled(exc):  # the same, as the HTTP client reports it
                raise defer.CancelledError() from exc
            return judge_error(_error_text(exc), timed_out=False)
        judged = judge_status(answer.status, answer.retry_after, self.now())
        if judged.verdict is not Verdict.DELIVERED and answer.body:
            text = answer.body.decode("utf-8", "replace")[:200]
            judged = Judged(judged.verdict, f"{judged.reason}: {text}", judged.cause,
                            judged.retry_after_s)
        return judged


def _cancelled(exc: BaseException) -> bool:
    """Whether ``exc`` is the request's cancellation: twisted.web's client aborts the
    connection and fails with ResponseNeverReceived([Failure(CancelledError)])."""
    reasons = getattr(exc, "reasons", None) or ()
    return any(getattr(r, "check", lambda *_: False)(defer.CancelledError) for r in reasons)


def _error_text(exc: BaseException) -> str:
    # treq wraps the real reason: ResponseNeverReceived([Failure(ConnectionLost...)])
    reasons = getattr(exc, "reasons", None)
    if reasons:
        return "; ".join(str(r.getErrorMessage()) for r in reasons)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
