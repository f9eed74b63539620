"""Hostile peers on the AudioSocket port: garbage, oversized frames, trickled bytes, unknown
calls and the connection cap; the expected call's stream is not disturbed. StringTransport
and task.Clock."""

from __future__ import annotations

import uuid as uuidlib

import pytest
from prometheus_client import REGISTRY
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ivr.speech.audiosocket import (
    FRAME_WATCHDOG_S,
    KIND_AUDIO,
    KIND_UUID,
    AudioSocketProtocol,
    AudioSocketServer,
    SpeechResult,
    encode_frame,
)
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import FakeEngine, stream_call, tone_frame

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)


class Classifier:
    def classify(self, text: str) -> None:
        return None


def refused(reason: str) -> float:
    labels = {"server": "audiosocket", "reason": reason}
    return REGISTRY.get_sample_value("hotline_connections_refused_total", labels) or 0.0


def make_server(max_connections: int = 256) -> tuple[AudioSocketServer, Clock]:
    clock = Clock()
    server = AudioSocketServer(
        FakeEngine(["my internet is down"]), Classifier(),  # type: ignore[arg-type]
        SpeechPool.inline(4), clock, max_connections=max_connections,
    )
    return server, clock


def connect(server: AudioSocketServer) -> tuple[object, StringTransport]:
    proto = server.buildProtocol(ADDRESS)
    transport = StringTransport(peerAddress=ADDRESS)
    proto.makeConnection(transport)
    return proto, transport


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "frame_too_large"),  # kind "G", length "ET"
        (b"\x47\x00\x02hi", "bad_frame"),
        (encode_frame(KIND_AUDIO, b"\0" * 320), "bad_frame"),  # audio before the UUID
        (encode_frame(KIND_UUID, b"short"), "bad_frame"),
        (b"\x10\xff\xff" + b"x" * 100, "frame_too_large"),
        # A fresh UUID: a stable id, so every pytest-xdist worker collects the same tests.
        pytest.param(encode_frame(KIND_UUID, uuidlib.uuid4().bytes), "unknown_call",
                     id="fresh-uuid-unknown_call"),
    ],
)
def test_garbage_oversized_and_unknown_streams_are_refused(data: bytes, reason: str) -> None:
    """Whatever a peer sends that is not a UUID frame of an expected call closes the
    connection, counted under server=audiosocket by reason."""
    server, _clock = make_server()
    proto, transport = connect(server)
    before = refused(reason)
    proto.dataReceived(data)  # type: ignore[attr-defined]
    assert transport.disconnecting
    assert refused(reason) == before + 1


def test_a_trickled_first_frame_is_cut_off_at_the_deadline() -> None:
    """One byte every few seconds never completes the UUID frame: the stream is closed
    FRAME_WATCHDOG_S after it connected."""
    server, clock = make_server()
    proto, transport = connect(server)
    before = refused("first_frame_timeout")
    frame = encode_frame(KIND_UUID, uuidlib.uuid4().bytes)
    for byte in frame[:4]:
        proto.dataReceived(bytes([byte]))  # type: ignore[attr-defined]
        clock.advance(3.0)
    assert transport.disconnecting
    assert refused("first_frame_timeout") == before + 1
    assert clock.seconds() >= FRAME_WATCHDOG_S - 1e-6


def test_over_the_cap_a_stream_is_closed_and_slow_ones_make_room() -> None:
    """Unproven streams (no UUID yet) are evicted for a newcomer; with every slot streaming
    an expected call, the next connection is closed at once and counted."""
    server, _clock = make_server(max_connections=2)
    _idle, idle_transport = connect(server)
    call = str(uuidlib.uuid4())
    results: list[SpeechResult] = []
    server.expect(call).addCallback(results.append)
    streaming, _t = connect(server)
    streaming.dataReceived(encode_frame(KIND_UUID, uuidlib.UUID(call).bytes))  # type: ignore[attr-defined]
    newcomer, _t2 = connect(server)
    assert isinstance(newcomer, AudioSocketProtocol)
    assert idle_transport.disconnected
    other = str(uuidlib.uuid4())
    server.expect(other)
    newcomer.dataReceived(encode_frame(KIND_UUID, uuidlib.UUID(other).bytes))
    before = refused("too_many_connections")
    refusal, transport = connect(server)
    assert not isinstance(refusal, AudioSocketProtocol)
    assert transport.disconnecting and transport.value() == b""
    assert refused("too_many_connections") == before + 1


def test_the_expected_call_is_recognized_while_garbage_streams_come_and_go() -> None:
    """A hundred garbage connections around it do not disturb a real call's stream."""
    server, clock = make_server()
    for _ in range(100):
        proto, _t = connect(server)
        proto.dataReceived(b"\xff\x00\x01x")  # type: ignore[attr-defined]
    result, _transport = stream_call(server, clock, tone_frame() * 50)
    clock.advance(10)
    outcome = result.result if hasattr(result, "result") else None
    assert outcome is not None and outcome.outcome == "speech"
    assert outcome.text == "my internet is down"
