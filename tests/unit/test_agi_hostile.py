"""Hostile peers on the FastAGI port: the factory's cap, slow and garbage peers, refusals
counted and logged, and hostile caller IDs through the hotline's own commands. In memory:
StringTransport and task.Clock."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from twisted.internet import task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent

from ivr.agi import AGILimits, AGISession, FastAGIFactory, FastAGIProtocol
from ivr.testing import FakeAsterisk, result_of

ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
HEADER = b"agi_network_script: hotline\nagi_uniqueid: 1.1\nagi_callerid: 5551234\n\n"


def refused(reason: str) -> float:
    labels = {"server": "agi", "reason": reason}
    return REGISTRY.get_sample_value("hotline_connections_refused_total", labels) or 0.0


class Server:
    """A FastAGIFactory on task.Clock whose flow waits until told, so calls stay open."""

    def __init__(self, **limits: float) -> None:
        self.clock = task.Clock()
        self.sessions: list[AGISession] = []
        self.factory = FastAGIFactory(
            {"hotline": self._flow}, self.clock, limits=AGILimits(**limits)  # type: ignore[arg-type]
        )

    async def _flow(self, session: AGISession) -> None:
        self.sessions.append(session)
        await session.protocol.when_closed()

    def connect(self) -> tuple[object, StringTransport]:
        protocol = self.factory.buildProtocol(ADDRESS)
        transport = StringTransport(peerAddress=ADDRESS)
        protocol.makeConnection(transport)
        return protocol, transport


def test_over_the_cap_a_call_is_answered_failure_and_closed() -> None:
    """With every slot held by a call past its header, the next connection gets FAILURE
    (AGISTATUS=FAILURE: the dialplan's operator fallback) and is closed at once; counted."""
    server = Server(max_connections=2)
    for _ in range(2):
        protocol, _t = server.connect()
        assert isinstance(protocol, FastAGIProtocol)
        protocol.dataReceived(HEADER)
    before = refused("too_many_connections")
    protocol, transport = server.connect()
    assert not isinstance(protocol, FastAGIProtocol)
    assert transport.value() == b"FAILURE\n"
    assert transport.disconnecting
    assert refused("too_many_connections") == before + 1


def test_slow_loris_connections_make_room_for_the_real_call() -> None:
    """A server full of connections that never finish their header evicts the oldest for a
    new connection, which completes its call; calls past their header are never evicted."""
    server = Server(max_connections=3)
    real, _t = server.connect()
    assert isinstance(real, FastAGIProtocol)
    real.dataReceived(HEADER)
    slow = [server.connect() for _ in range(2)]
    for protocol, _transport in slow:
        protocol.dataReceived(b"agi_net")  # type: ignore[attr-defined]
    newcomer, _transport = server.connect()
    assert isinstance(newcomer, FastAGIProtocol)
    assert slow[0][1].disconnected and not slow[1][1].disconnected  # aborted, not closed
    newcomer.dataReceived(HEADER)
    assert len(server.sessions) == 2
    assert server.factory.admission.open == 3


def test_a_header_trickled_a_byte_at_a_time_is_cut_off_at_the_deadline() -> None:
    """A byte every few seconds does not extend the header deadline (slow-loris): after
    header_timeout the connection gets FAILURE and is closed, and the slot is free again."""
    server = Server(header_timeout=10.0, max_connections=1)
    protocol, transport = server.connect()
    before = refused("header_timeout")
    for byte in HEADER[:4]:
        protocol.dataReceived(bytes([byte]))  # type: ignore[attr-defined]
        server.clock.advance(3.0)
    assert transport.value() == b"FAILURE\n" and transport.disconnecting
    assert refused("header_timeout") == before + 1
    protocol.connectionLost()  # type: ignore[attr-defined]
    assert server.factory.admission.open == 0


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\xff\xfe garbage\n", "bad_header"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_header"),
        (b"a" * 9000, "line_too_long"),
        (b"agi_x: " + b"y" * 9000 + b"\n", "line_too_long"),
        (b"".join(b"agi_h%d: v\n" % n for n in range(300)), "header_too_large"),
        (HEADER[:30] + b"\n\x16\x03\x01 tls hello\n", "bad_header"),
    ],
)
def test_garbage_oversized_or_valid_then_garbage_is_refused(data: bytes, reason: str) -> None:
    """Whatever the bytes, the connection ends with FAILURE, the reason is counted under
    server=agi, and no flow ever runs."""
    server = Server()
    protocol, transport = server.connect()
    before = refused(reason)
    protocol.dataReceived(data)  # type: ignore[attr-defined]
    assert transport.value() == b"FAILURE\n" and transport.disconnecting
    assert refused(reason) == before + 1
    assert server.sessions == []


def test_a_flood_of_refusals_logs_a_burst_not_a_line_each(log_events: list[LogEvent]) -> None:
    """A thousand garbage connections write at most the burst's lines (plus one summary
    later), each of the first naming its peer; every one of them is counted."""
    server = Server()
    before = refused("bad_header")
    for _ in range(1000):
        protocol, _t = server.connect()
        protocol.dataReceived(b"garbage\n")  # type: ignore[attr-defined]
    said = [e for e in log_events if e.get("server") == "agi"]
    assert 1 <= len(said) <= 10
    assert "127.0.0.1" in said[0]["peer"]
    assert refused("bad_header") == before + 1000
    server.clock.advance(60)
    said = [e for e in log_events if e.get("server") == "agi"]
    assert said[-1]["count"] == 1000 - (len(said) - 1)


def test_a_peer_that_never_reads_costs_one_command_at_most() -> None:
    """What we write to a peer is bounded by the protocol: one command in flight; a peer that
    never answers (vanished without FIN) is dropped at the command timeout."""
    server = Server(command_timeout=60.0)

    async def chatty(session: AGISession) -> None:
        for _ in range(100):
            await session.verbose("x" * 1000)

    server.factory.flows = {"hotline": chatty}
    protocol, transport = server.connect()
    protocol.dataReceived(HEADER)  # type: ignore[attr-defined]
    assert transport.value().count(b"\n") == 1
    server.clock.advance(60)
    assert transport.value().endswith(b"FAILURE\n") and transport.disconnecting


# -- hostile caller IDs in the header and in what we send back ------------------------------

HOSTILE_CALLER_IDS = [
    'Eve "the boss" <sip:evil@x>',
    "back\\slash\\\\ end\\",
    "${SHELL(reboot)}${EXTEN}$[1+1]",
    "Eve\r\nVia: SIP/2.0/UDP evil;branch=z9hG4bK",  # header injection, CR LF raw
    "Eve\nagi_arg_9: x",
    '"; EXEC System "rm -rf /',
    "x,Dial(PJSIP/evil)|(g)[h]",
    "김철수 📞",
]


@pytest.mark.parametrize("value", HOSTILE_CALLER_IDS)
@pytest.mark.parametrize("header", ["callerid", "calleridname"])
def test_hostile_caller_id_is_read_verbatim_or_fails_safe(header: str, value: str) -> None:
    """A hostile number or name is read back exactly, CR and line breaks included, or, when
    its second line forges an agi_* header, the call fails safe (AGISTATUS=FAILURE, the
    operator fallback) with nothing trusted."""
    seen: dict[str, str] = {}

    async def flow(session: AGISession) -> None:
        seen.update(session.env)

    fake = FakeAsterisk(env={header: value})
    result_of(fake.run(flow))
    if "\nagi_" in value:
        assert fake.agi_status == "FAILURE" and seen == {}
    else:
        assert seen[header] == value
        assert fake.agi_status == "SUCCESS"


@pytest.mark.parametrize("value", [v for v in HOSTILE_CALLER_IDS if "\n" not in v])
def test_hostile_caller_id_stays_one_literal_word_in_set_variable_and_exec(value: str) -> None:
    """Stored on the channel and passed to an application, a hostile caller ID is one
    argument that Asterisk parses back exactly: no extra word, command, or application
    argument, no ${...} evaluated."""

    async def flow(session: AGISession) -> None:
        await session.set_variable("HOTLINE_CALLER", session.env["callerid"])
        await session.exec_("Set", session.env["callerid"])
        await session.exec_("Playback", session.env["calleridname"], "noanswer")

    fake = FakeAsterisk(env={"callerid": value, "calleridname": value})
    result_of(fake.run(flow))
    assert fake.commands[0] == ("SET", "VARIABLE", "HOTLINE_CALLER", value)
    assert fake.variables["HOTLINE_CALLER"] == value
    assert fake.exec_calls == [("Set", [value]), ("Playback", [value, "noanswer"])]
    assert fake.verbs == ["SET VARIABLE", "EXEC", "EXEC"]
