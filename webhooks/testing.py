"""Fakes for unit tests of the webhooks: a receiver answering from a script, a stream in memory.

Both keep what they were given, so tests assert on what a real receiver or Redis would see::

    poster = ScriptedPoster([Answer(503), ConnectionRefusedError(), Answer(200)])
    stream = MemoryStream([Entry("1-0", {"kind": "WOCREATE", ...})])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from events.consumer import Entry
from webhooks.deadletter import DeadLetter
from webhooks.delivery import Answer


@dataclass(frozen=True)
class Sent:
    """One POST as the receiver got it."""

    url: str
    body: bytes
    headers: Mapping[str, str]


class ScriptedPoster:
    """A receiver that answers each POST with the next item of ``script``: an
    :class:`Answer`, an exception (a network error), or None (no answer at all: the attempt
    runs into its timeout). After the script: ``Answer(200)``."""

    def __init__(self, script: Iterable[Answer | Exception | None] = ()) -> None:
        self.script = list(script)
        self.sent: list[Sent] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> defer.Deferred[Answer]:
        self.sent.append(Sent(url, body, dict(headers)))
        item = self.script.pop(0) if self.script else Answer(200)
        if item is None:
            return defer.Deferred()
        if isinstance(item, Exception):
            return defer.fail(item)
        return defer.succeed(item)


@dataclass
class MemoryStream:
    """A webhook's consumer group and lists in memory (``webhooks.deliverer.WebhookStream``).

    ``entries`` come out one batch each ``next_batch``; with none left, ``next_batch`` waits
    ``block_s`` on ``clock`` like XREADGROUP's BLOCK (without a clock it answers at once:
    drive such a stream with ``round()``, not ``start()``). Acknowledged ids land in
    ``acked``, dead letters in ``dead``; re-driven letters are taken from ``redrive`` (raw
    JSON)."""

    entries: list[Entry] = field(default_factory=list)
    clock: IReactorTime | None = None
    block_s: float = 1.0
    batch: int = 100
    acked: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    redrive: list[str] = field(default_factory=list)
    failures: int = 0
    _next: int = 0

    def ensure(self) -> defer.Deferred[bool]:
        return defer.succeed(False)

    def next_batch(self) -> defer.Deferred[list[Entry]]:
        batch = self.entries[self._next:self._next + self.batch]
        self._next += len(batch)
        if not batch and self.clock is not None:
            return task.deferLater(self.clock, self.block_s, list)
        return defer.succeed(batch)

    def ack(self, *ids: str) -> defer.Deferred[None]:
        self.acked.extend(ids)
        return defer.succeed(None)

    def keep(self, *ids: str) -> defer.Deferred[None]:
        self.kept.extend(ids)
        return defer.succeed(None)

    def failed(self) -> None:
        self.failures += 1
        self._next = 0
        self.entries = [e for e in self.entries if e.id not in self.acked]

    def add(self, letter: DeadLetter) -> defer.Deferred[None]:
        self.dead.append(letter)
        return defer.succeed(None)

    def next_redriven(self) -> defer.Deferred[tuple[str, DeadLetter] | None]:
        if not self.redrive:
            return defer.succeed(None)
        return defer.succeed((self.redrive[0], DeadLetter.from_json(self.redrive[0])))

    def redriven(self, raw: str) -> defer.Deferred[None]:
        self.redrive.remove(raw)
        return defer.succeed(None)


class CountedFailures:
    """A :class:`webhooks.delivery.FailureLog` that counts (tests)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.recoveries = 0

    def failed(self, error: str) -> None:
        self.errors.append(error)

    def succeeded(self) -> None:
        self.recoveries += 1
