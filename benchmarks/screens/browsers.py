"""Simulated browsers: each signs in with its token (``POST /screens/login``, the session
cookie kept), opens its screen's live stream over real HTTP and reads the Server-Sent Events
as EventSource would, noting when each frame arrived.

Latency, from event to browser, per browser and stream entry (an entry's id is the Redis
server's clock in ms when it was written, on this same machine):

- ``activity``: until the entry's activity line arrived;
- ``update``: until the screen had the state that includes it: the first state fragment
  (queues, agents, clocks, desk state, pop, ...) whose id is at or past the entry, or the
  service's mark (an ``id`` alone, ``screens.sse.mark``) that the state on screen is
  current up to that id: the entry's change had reached the screen before its activity
  line (an agent's status is written before the event that tells of it).

Only entries written after ``measure_from`` count (the warm-up is left out).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlencode

__all__ = ["Browser", "Frame", "Latencies", "frames", "login"]

RETRIES = 8  # a stream refused (HTTP 503) is opened again, backing off, this many times


@dataclass(frozen=True)
class Frame:
    event: str
    event_id: str | None
    data: str


def frames(buffer: bytearray) -> Iterator[Frame]:
    """Complete frames at the start of ``buffer`` (removed from it), as EventSource reads
    them; comments and ``retry`` lines are skipped; an ``id`` alone (which moves the last
    event id and dispatches nothing) comes out as a frame with no event and no data."""
    while True:
        end = buffer.find(b"\n\n")
        if end < 0:
            return
        chunk = bytes(buffer[:end]).decode()
        del buffer[:end + 2]
        event, event_id, data = "message", None, []
        for line in chunk.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "id":
                event_id = value
            elif name == "data":
                data.append(value)
        if data:
            yield Frame(event, event_id, "\n".join(data))
        elif event_id is not None:
            yield Frame("", event_id, "")


def entry_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


@dataclass
class Latencies:
    """One browser's latencies (seconds), see the module docstring."""

    measure_from_ms: int = 2**62  # nothing counts until the measured window is set
    activity: list[float] = field(default_factory=list)
    update: list[float] = field(default_factory=list)
    waiting: list[tuple[int, str]] = field(default_factory=list)  # (ms, id) not yet on screen
    frames: int = 0
    bytes: int = 0

    def seen(self, frame: Frame, at: float) -> None:
        self.frames += 1
        if frame.event_id is None or frame.event == "notice":
            return
        ms = entry_ms(frame.event_id)
        if frame.event == "activity":
            if ms >= self.measure_from_ms:
                self.activity.append(at - ms / 1000)
                self.waiting.append((ms, frame.event_id))
            return
        key = _id_key(frame.event_id)
        still = []
        for when, entry in self.waiting:
            if _id_key(entry) <= key:
                self.update.append(at - when / 1000)
            else:
                still.append((when, entry))
        self.waiting = still


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def _request(host: str, port: int, head: str, body: bytes = b""
                   ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int, dict[str, str]]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head.encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = (await reader.readline()).decode().strip()
        if not line:
            break
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return reader, writer, status, headers


async def login(host: str, port: int, token: str) -> str:
    """Sign in as a browser does (the login form); the session cookie (``name=value``)."""
    body = urlencode({"token": token}).encode()
    head = (f"POST /screens/login HTTP/1.0\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    _reader, writer, status, headers = await _request(host, port, head, body)
    writer.close()
    if status != 303 or "set-cookie" not in headers:
        raise RuntimeError(f"sign-in refused: HTTP {status}")
    return headers["set-cookie"].split(";")[0]


@dataclass
class Browser:
    """One screen's live stream (HTTP/1.0: the stream ends with the connection)."""

    host: str
    port: int
    path: str
    cookie: str
    latencies: Latencies = field(default_factory=Latencies)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    retries: int = 0

    async def watch(self, stop: Callable[[], bool]) -> None:
        head = (f"GET {self.path} HTTP/1.0\r\nHost: {self.host}:{self.port}\r\n"
                f"Accept: text/event-stream\r\nCookie: {self.cookie}\r\n\r\n")
        for attempt in range(RETRIES):
            reader, writer, status, _headers = await _request(self.host, self.port, head)
            if status == 200:
                break
            writer.close()  # refused for now: try again as the page's script would
            self.retries += 1
            await asyncio.sleep(min(5.0, 0.5 * 2**attempt))
        else:
            raise RuntimeError(f"{self.path}: HTTP {status}, {RETRIES} times")
        self.connected.set()
        buffer = bytearray()
        try:
            while not stop():
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.5)
                except TimeoutError:
                    continue
                if not data:
                    raise RuntimeError(f"{self.path}: the stream ended")
                at = time.time()
                self.latencies.bytes += len(data)
                buffer += data
                for frame in frames(buffer):
                    self.latencies.seen(frame, at)
        finally:
            writer.close()
