"""The webhooks inside ``ivr serve``: one deliverer per webhook, each with its consumer group.

Each webhook reads ``<prefix>events`` through its own consumer group ``webhooks:<name>``
(consumer: the service's ``instance``), so each has its own progress: a receiver that is
down delays its own events only. A deliverer's round:

1. a letter sent back by ``ivr webhooks redrive`` (oldest first), if any: delivered, then
   taken off the re-drive list;
2. else the next batch of the group (``events.consumer.ConsumerGroup``: its own pending
   entries after a restart, entries of dead instances, new ones): each entry whose kind
   matches ``kinds`` is delivered (:class:`webhooks.delivery.Delivery`: retries, then the
   dead-letter list), and every entry is acknowledged once it is dealt with.

Order, chosen: one event at a time per webhook, so a webhook gets its events in stream order,
the next one only once the previous one was accepted or given up (a dead letter, or a
re-driven one, comes out of order). With several instances the group spreads the events over
them: each instance keeps its share in order, but the receiver can see two instances' events
interleaved; the ``webhook-id`` (stream id, ordered by time) lets it sort them.

At-least-once: an event is acknowledged only after the receiver accepted it or it went to the
dead-letter list; a deliverer stopped or killed in between delivers it again after its
restart (or another instance does, after ``claim_idle_s``). While a delivery runs, its entry's
idle time is reset every ``claim_idle_s / 3`` so that no instance takes a live delivery over.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from events.consumer import ConsumerGroup, Entry
from hotline.redisclient import is_cluster_client
from ivr.aio import deferred
from webhooks.deadletter import DeadLetter, DeadLetters
from webhooks.delivery import Delivery, FailureLog, TreqPoster
from webhooks.retry import Backoff
from webhooks.schema import WebhooksConfig, WebhookSettings

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1.0  # after Redis failed a round


class WebhookStream(Protocol):
    """A webhook's side of Redis, as the reactor awaits it: its consumer group and its
    dead-letter and re-drive lists (:class:`StreamOnReactor`; a fake in
    ``webhooks.testing``)."""

    def ensure(self) -> defer.Deferred[bool]: ...

    def next_batch(self) -> defer.Deferred[list[Entry]]: ...

    def ack(self, *ids: str) -> defer.Deferred[None]: ...

    def keep(self, *ids: str) -> defer.Deferred[None]: ...

    def failed(self) -> None: ...

    def add(self, letter: DeadLetter) -> defer.Deferred[None]: ...

    def next_redriven(self) -> defer.Deferred[tuple[str, DeadLetter] | None]: ...

    def redriven(self, raw: str) -> defer.Deferred[None]: ...


class StreamOnReactor(WebhookStream):
    """:class:`WebhookStream` over ``redis.asyncio``: each call runs as an asyncio Task on the
    reactor's loop (``ivr.aio``)."""

    def __init__(self, webhook: str, group: ConsumerGroup, letters: DeadLetters) -> None:
        self.webhook = webhook
        self.group = group
        self.letters = letters

    def ensure(self) -> defer.Deferred[bool]:
        return deferred(self.group.ensure())

    def next_batch(self) -> defer.Deferred[list[Entry]]:
        return deferred(self.group.next_batch())

    def ack(self, *ids: str) -> defer.Deferred[None]:
        return deferred(self.group.ack(*ids))

    def keep(self, *ids: str) -> defer.Deferred[None]:
        return deferred(self.group.keep(*ids))

    def failed(self) -> None:
        self.group.failed()

    def add(self, letter: DeadLetter) -> defer.Deferred[None]:
        return deferred(self.letters.add(letter))

    def next_redriven(self) -> defer.Deferred[tuple[str, DeadLetter] | None]:
        return deferred(self.letters.next_redriven(self.webhook))

    def redriven(self, raw: str) -> defer.Deferred[None]:
        return deferred(self.letters.redriven(self.webhook, raw))


def matches(kinds: Sequence[str], kind: str) -> bool:
    """Whether an event of ``kind`` goes to a webhook that wants ``kinds`` (shell patterns)."""
    return any(fnmatch.fnmatchcase(kind, pattern) for pattern in kinds)


class WebhookDeliverer:
    """Runs one webhook: see the module docstring. ``failures``: the log of the stream's
    failures (Redis away), said once and summed up."""

    def __init__(
        self,
        name: str,
        kinds: Sequence[str],
        stream: WebhookStream,
        delivery: Delivery,
        clock: IReactorTime,
        failures: FailureLog,
        keep_every_s: float,
    ) -> None:
        self.name = name
        self.kinds = tuple(kinds)
        self.stream = stream
        self.delivery = delivery
        self.clock = clock
        self.failures = failures
        self.keep_every_s = keep_every_s
        self._run: defer.Deferred[None] | None = None
        # Set by stop(): the loop ends at its next step even when the cancellation does not
        # reach it (a Redis call's future already done when it is cancelled hands its result
        # on through Deferred.fromFuture, and the loop would go on).
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._run = defer.ensureDeferred(self._loop())
        self._run.addErrback(self._ended)

    def stop(self) -> defer.Deferred[None]:
        """Stop now: a delivery in progress is abandoned unacknowledged (delivered again
        after the restart). Fires once the loop has ended."""
        run, self._run = self._run, None
        self._stopping = True
        if run is None:
            return defer.succeed(None)
        run.cancel()
        return run

    def _ended(self, failure: Any) -> None:
        # stopped: twisted's CancelledError, or asyncio's from a Redis call cancelled
        if not failure.check(defer.CancelledError, asyncio.CancelledError):
            log.error("webhook %s: deliverer ended: %s", self.name, failure.getTraceback())

    async def _loop(self) -> None:
        ensured = False
        while not self._stopping:
            try:
                if not ensured:
                    await self.stream.ensure()
                    ensured = True
                await self.round()
                self.failures.succeeded()
            except defer.CancelledError:
                raise
            except Exception as exc:
                self.stream.failed()  # what was not acknowledged comes again, first
                self.failures.failed(f"{type(exc).__name__}: {exc}")
                await task.deferLater(self.clock, RETRY_AFTER_S)

    async def round(self) -> None:
        """One re-driven letter, or one batch of the stream."""
        redriven = await self.stream.next_redriven()
        if redriven is not None:
            raw, letter = redriven
            await self.delivery.deliver(letter.entry())
            await self.stream.redriven(raw)
            return
        skipped: list[str] = []
        for entry in await self.stream.next_batch():
            if self._stopping:
                return  # the rest stays unacknowledged: read again after the restart
            if not matches(self.kinds, entry.kind):
                skipped.append(entry.id)
                continue
            if skipped:
                await self.stream.ack(*skipped)
                skipped = []
            await self._deliver_kept(entry)
            await self.stream.ack(entry.id)
        if skipped:
            await self.stream.ack(*skipped)

    async def _deliver_kept(self, entry: Entry) -> None:
        """Deliver, resetting the entry's idle time meanwhile (no claim of a live delivery)."""

        def keep() -> defer.Deferred[None]:
            return self.stream.keep(entry.id).addErrback(lambda _: None)

        keeper = task.LoopingCall(keep)
        keeper.clock = self.clock
        keeper.start(self.keep_every_s, now=False)
        try:
            await self.delivery.deliver(entry)
        finally:
            keeper.stop()


class Webhooks:
    """Every configured webhook's deliverer, started and stopped together."""

    def __init__(self, deliverers: Sequence[WebhookDeliverer], poster: TreqPoster | None) -> None:
        self.deliverers = list(deliverers)
        self._poster = poster

    @classmethod
    def from_config(
        cls,
        config: WebhooksConfig | None,
        redis: Redis,
        reactor: Any,
        *,
        instance: str,
        prefix: str,
        failures: Callable[[str], FailureLog],
        environ: Mapping[str, str] = os.environ,
    ) -> Webhooks | None:
        """The webhooks of ``webhooks.yaml``; None when none is configured. ``failures``
        gives the failure log of a task by name (the service's ``RepeatedFailure``s).
        Raises ``webhooks.schema.WebhookSecretError`` for a secret that is not there."""
        if config is None or not config.webhooks:
            return None
        poster = TreqPoster(reactor)
        letters = DeadLetters(redis, prefix, cluster=is_cluster_client(redis))
        deliverers = []
        for name, hook in config.webhooks.items():
            group = ConsumerGroup(
                redis, group=f"webhooks:{name}", consumer=instance, clock=reactor.seconds,
                prefix=prefix, claim_idle_s=config.claim_idle_s,
            )
            stream = StreamOnReactor(name, group, letters)
            deliverers.append(WebhookDeliverer(
                name, hook.kinds, stream,
                delivery_of(name, hook, stream, poster, reactor, reactor.seconds,
                            failures(f"webhook {name}"), environ),
                reactor, failures(f"webhook {name}: events"), config.claim_idle_s / 3,
            ))
        return cls(deliverers, poster)

    def start(self) -> None:
        for deliverer in self.deliverers:
            deliverer.start()
            log.info("webhook %s: delivering %s", deliverer.name, ", ".join(deliverer.kinds))

    def stop(self) -> defer.Deferred[Any]:
        """Every deliverer stopped, then the HTTP connections closed."""
        stopped = defer.DeferredList([d.stop() for d in self.deliverers])
        if self._poster is not None:
            poster = self._poster
            stopped.addCallback(lambda _: poster.close())
        return stopped


def delivery_of(
    name: str, hook: WebhookSettings, stream: WebhookStream, poster: Any,
    clock: IReactorTime, now: Callable[[], float], failures: FailureLog,
    environ: Mapping[str, str] = os.environ,
) -> Delivery:
    """The delivery of one webhook's events as configured (its secret read now)."""
    retry = hook.retry
    return Delivery(
        name=name, url=hook.url, key=hook.secret(environ),
        backoff=Backoff(retry.attempts, retry.initial_s, retry.max_s, retry.multiplier),
        timeout_s=hook.timeout_s, poster=poster, clock=clock, now=now, dead_letters=stream,
        failures=failures,
    )
