"""ARI events: the WebSocket protocol, dispatch, and the reconnect state machine."""

from __future__ import annotations

import logging

import pytest
from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from ivr.ari import (
    ARIClient,
    ARIEventConnection,
    Backoff,
    ConnectionState,
    EventDispatcher,
    events_url,
)
from ivr.ari.testing import FakeAsteriskEvents

BASE = "http://127.0.0.1:8088/ari"
BACKOFF = Backoff(initial=1.0, factor=2.0, cap=8.0, jitter=0.5)

result_of = SynchronousTestCase().successResultOf


def make(rand: float = 0.0) -> tuple[ARIEventConnection, FakeAsteriskEvents, task.Clock, list]:
    """A connection with a fake Asterisk, a clock, fixed jitter, and a log of every event."""
    clock = task.Clock()
    asterisk = FakeAsteriskEvents()
    conn = ARIEventConnection(
        events_url(BASE, "hotline"),
        "hotline",
        "s3cret",
        clock=clock,
        connect=asterisk,
        dispatcher=EventDispatcher(),
        backoff=BACKOFF,
        random=lambda: rand,
        connect_timeout=10.0,
        ping_interval=None,
    )
    seen: list = []
    conn.dispatcher.subscribe("*", seen.append)
    return conn, asterisk, clock, seen


# --- backoff and dispatch (pure) ----------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap():
    """Delays double per attempt and stop growing at the cap (at the top of the jitter range)."""
    assert [BACKOFF.delay(n, 0.999999) for n in range(6)] == pytest.approx(
        [1.0, 2.0, 4.0, 8.0, 8.0, 8.0], rel=1e-5
    )


def test_backoff_jitter_stays_within_its_fraction():
    """With jitter 0.5 a delay lies between half and all of its ceiling, never zero."""
    assert BACKOFF.delay(2, 0.0) == 2.0
    assert 2.0 <= BACKOFF.delay(2, 0.5) <= 4.0
    assert BACKOFF.delay(1000, 0.0) == 4.0  # huge attempt counts do not overflow


def test_dispatcher_routes_by_type_and_star_gets_everything():
    """Handlers get only their event type; "*" handlers get every event; unsubscribing stops
    delivery."""
    dispatcher = EventDispatcher()
    destroyed, everything = [], []
    unsubscribe = dispatcher.subscribe("ChannelDestroyed", destroyed.append)
    dispatcher.subscribe("*", everything.append)
    dispatcher.dispatch({"type": "ChannelDestroyed", "channel": {"id": "a"}})
    dispatcher.dispatch({"type": "StasisStart"})
    unsubscribe()
    dispatcher.dispatch({"type": "ChannelDestroyed", "channel": {"id": "b"}})
    assert [e["channel"]["id"] for e in destroyed] == ["a"]
    assert [e["type"] for e in everything] == [
        "ChannelDestroyed",
        "StasisStart",
        "ChannelDestroyed",
    ]


def test_dispatcher_survives_a_failing_handler(caplog):
    """A handler that raises is logged; the other handlers still get the event."""
    dispatcher = EventDispatcher()
    got = []

    def broken(event):
        raise KeyError("bug")

    dispatcher.subscribe("DeviceStateChanged", broken)
    dispatcher.subscribe("DeviceStateChanged", got.append)
    with caplog.at_level(logging.ERROR, "ivr.ari"):
        dispatcher.dispatch({"type": "DeviceStateChanged"})
    assert got == [{"type": "DeviceStateChanged"}]
    assert "failed on a DeviceStateChanged event" in caplog.text


# --- the WebSocket protocol ---------------------------------------------------------------------


def test_handshake_authenticates_by_header_not_url():
    """The upgrade request asks for /ari/events for our app with subscribeAll, and carries the
    credentials in a basic Authorization header, never in the URL."""
    conn, asterisk, _clock, _seen = make()
    conn.start()
    request = asterisk.connect_tcp().request().decode()
    request_line, headers = request.split("\r\n", 1)
    assert request_line == "GET /ari/events?app=hotline&subscribeAll=true HTTP/1.1"
    assert "Authorization: Basic aG90bGluZTpzM2NyZXQ=" in headers  # hotline:s3cret
    assert "s3cret" not in request_line and "s3cret" not in conn.url


def test_events_after_handshake_reach_subscribers():
    """After the real WebSocket handshake, each JSON text frame is dispatched as one event."""
    conn, asterisk, _clock, seen = make()
    conn.start()
    asterisk.accept()
    assert conn.state is ConnectionState.CONNECTED
    asterisk.send({"type": "ChannelDestroyed", "channel": {"id": "call-1"}, "cause": 16})
    asterisk.send({"type": "DeviceStateChanged", "device_state": {"name": "PJSIP/agent101"}})
    assert [e["type"] for e in seen] == ["ChannelDestroyed", "DeviceStateChanged"]
    assert seen[0]["channel"]["id"] == "call-1"


@pytest.mark.parametrize(
    "payload",
    [b"{not json", b"[1, 2]", b'{"no": "type"}', b'{"type": 7}', b'{"type": "X"'],
)
def test_malformed_messages_are_logged_and_dropped(caplog, payload):
    """A frame that is not a JSON object with a string type is logged and ignored; the
    connection stays up and the next good event still arrives."""
    conn, asterisk, _clock, seen = make()
    conn.start()
    asterisk.accept()
    with caplog.at_level(logging.WARNING, "ivr.ari"):
        asterisk.send(payload)
    asterisk.send({"type": "StasisStart"})
    assert "ignoring" in caplog.text
    assert conn.state is ConnectionState.CONNECTED
    assert seen == [{"type": "StasisStart"}]


def test_undecodable_or_binary_message_is_logged_and_dropped(caplog):
    """onMessage drops a payload that is not UTF-8 and any binary frame, with a warning."""
    conn, asterisk, _clock, seen = make()
    conn.start()
    protocol = asterisk.accept().protocol
    with caplog.at_level(logging.WARNING, "ivr.ari"):
        protocol.onMessage(b"\xff\xfe{}", False)
        protocol.onMessage(b'{"type": "StasisStart"}', True)
    assert caplog.text.count("ignoring") == 2
    assert seen == []
    assert conn.state is ConnectionState.CONNECTED


def test_application_replaced_is_logged_as_an_error(caplog):
    """ApplicationReplaced (another client took our app name) is logged as an error and still
    dispatched."""
    conn, asterisk, _clock, seen = make()
    conn.start()
    asterisk.accept()
    with caplog.at_level(logging.ERROR, "ivr.ari"):
        asterisk.send({"type": "ApplicationReplaced", "application": "hotline"})
    assert "ApplicationReplaced" in caplog.text
    assert seen[0]["type"] == "ApplicationReplaced"


# --- the reconnect state machine ----------------------------------------------------------------


def test_start_connects_and_when_connected_fires():
    """start -> CONNECTING; the handshake -> CONNECTED, firing when_connected waiters; a
    waiter that comes later fires at once."""
    conn, asterisk, _clock, _seen = make()
    states = []
    conn.on_state_change(lambda old, new: states.append(new))
    waiting = conn.when_connected()
    conn.start()
    assert conn.state is ConnectionState.CONNECTING
    assert not waiting.called
    asterisk.accept()
    assert result_of(waiting) is None
    assert result_of(conn.when_connected()) is None
    assert states == [ConnectionState.CONNECTING, ConnectionState.CONNECTED]


def test_refused_connection_backs_off_then_retries(caplog):
    """A refused connection logs a warning and waits the backoff delay before trying again."""
    conn, asterisk, clock, _seen = make()
    conn.start()
    with caplog.at_level(logging.WARNING, "ivr.ari"):
        asterisk.refuse()
    assert conn.state is ConnectionState.BACKING_OFF
    assert "cannot connect to Asterisk" in caplog.text
    assert "retrying in 0.5s" in caplog.text  # initial 1.0 with jitter 0.5 at rand 0
    clock.advance(0.49)
    assert len(asterisk.attempts) == 1
    clock.advance(0.01)
    assert conn.state is ConnectionState.CONNECTING
    assert len(asterisk.attempts) == 2


def test_delays_grow_while_asterisk_stays_down_and_reset_after_success():
    """Consecutive failures wait 1, 2, 4, 8, 8 s (rand near 1); one success resets the next
    delay to the initial one."""
    conn, asterisk, clock, _seen = make(rand=0.999999)
    conn.start()
    delays = []
    for _ in range(5):
        asterisk.refuse()
        (call,) = clock.getDelayedCalls()
        delays.append(call.getTime() - clock.seconds())
        clock.advance(call.getTime() - clock.seconds())
    assert delays == pytest.approx([1.0, 2.0, 4.0, 8.0, 8.0], rel=1e-5)
    asterisk.accept()
    asterisk.drop()
    (call,) = clock.getDelayedCalls()
    assert call.getTime() - clock.seconds() == pytest.approx(1.0, rel=1e-5)


def test_lost_connection_reconnects_and_logs_the_outage(caplog):
    """Asterisk going away while connected is logged; the client reconnects on its own and
    logs how long events were down; events flow again."""
    conn, asterisk, clock, seen = make()
    conn.start()
    asterisk.accept()
    with caplog.at_level(logging.INFO, "ivr.ari"):
        asterisk.drop()
        assert conn.state is ConnectionState.BACKING_OFF
        clock.advance(0.5)
        asterisk.refuse()  # Asterisk still restarting
        clock.advance(1.0)
        asterisk.accept()
    assert conn.state is ConnectionState.CONNECTED
    assert "lost the Asterisk event connection" in caplog.text
    assert "reconnected to Asterisk events after 1.5s" in caplog.text
    asterisk.send({"type": "StasisStart"})
    assert seen == [{"type": "StasisStart"}]


def test_handshake_that_never_completes_times_out():
    """TCP connects but no handshake answer comes: after connect_timeout the socket is aborted
    and the client backs off."""
    conn, asterisk, clock, _seen = make()
    conn.start()
    attempt = asterisk.connect_tcp()
    clock.advance(9.9)
    assert conn.state is ConnectionState.CONNECTING
    clock.advance(0.1)
    assert conn.state is ConnectionState.BACKING_OFF
    assert attempt.transport.disconnecting


def test_handshake_rejected_counts_as_a_failed_attempt():
    """A socket that closes before the handshake completes (say Asterisk answered 401) is a
    failed attempt: back off, not "connected then lost"."""
    conn, asterisk, _clock, _seen = make()
    conn.start()
    asterisk.connect_tcp()
    asterisk.drop()
    assert conn.state is ConnectionState.BACKING_OFF


def test_stop_while_backing_off_cancels_the_retry():
    """stop in BACKING_OFF cancels the retry timer: no further attempts, no timers left."""
    conn, asterisk, clock, _seen = make()
    conn.start()
    asterisk.refuse()
    result_of(conn.stop())
    assert conn.state is ConnectionState.DISCONNECTED
    assert clock.getDelayedCalls() == []
    clock.advance(100)
    assert len(asterisk.attempts) == 1


def test_stop_fails_pending_when_connected_waiters():
    """Waiters for a connection that stop() abandons fail with CancelledError instead of
    hanging forever."""
    conn, asterisk, _clock, _seen = make()
    conn.start()
    asterisk.refuse()
    waiting = conn.when_connected()
    conn.stop()
    SynchronousTestCase().failureResultOf(waiting, defer.CancelledError)


def test_stop_while_connecting_cancels_the_attempt():
    """stop during the TCP connect cancels it and leaves no timer."""
    conn, asterisk, clock, _seen = make()
    conn.start()
    result_of(conn.stop())
    assert asterisk.last.deferred.called  # cancelled
    assert conn.state is ConnectionState.DISCONNECTED
    assert clock.getDelayedCalls() == []


def test_stop_while_connected_closes_and_fires_when_closed():
    """stop while connected starts the WebSocket closing handshake; its Deferred fires once
    the socket is closed, and no reconnect follows."""
    conn, asterisk, clock, _seen = make()
    conn.start()
    attempt = asterisk.accept()
    before = len(attempt.request())
    stopped = conn.stop()
    assert conn.state is ConnectionState.DISCONNECTED
    assert attempt.request()[before] == 0x88  # a close frame went out
    assert not stopped.called
    asterisk.drop()
    assert result_of(stopped) is None
    clock.advance(100)
    assert len(asterisk.attempts) == 1


def test_late_callbacks_of_an_abandoned_socket_are_ignored():
    """A socket from a timed-out attempt that finishes its handshake later does not flip the
    state or deliver events."""
    conn, asterisk, clock, seen = make()
    conn.start()
    old = asterisk.connect_tcp()
    clock.advance(10.0)  # handshake timeout: abandoned
    assert conn.state is ConnectionState.BACKING_OFF
    old.protocol.onOpen()  # too late
    old.protocol.onMessage(b'{"type": "StasisStart"}', False)
    assert conn.state is ConnectionState.BACKING_OFF
    assert seen == []


def test_undeclared_inputs_are_refused():
    """An input the transition table does not declare for the current state is a bug and
    raises instead of being silently absorbed."""
    conn, _asterisk, _clock, _seen = make()
    with pytest.raises(RuntimeError, match="'lost' in state"):
        conn._input("lost")


def test_client_exposes_the_event_connection():
    """ARIClient.start/subscribe/state/stop drive its event connection to the app's URL."""
    asterisk = FakeAsteriskEvents()
    ari = ARIClient(
        BASE, "hotline", "s3cret", reactor=task.Clock(), connect=asterisk, ping_interval=None
    )
    got = []
    ari.subscribe("ChannelDestroyed", got.append)
    ari.start()
    asterisk.accept()
    assert ari.state is ConnectionState.CONNECTED
    asterisk.send({"type": "ChannelDestroyed", "channel": {"id": "x"}})
    assert got[0]["channel"]["id"] == "x"
    d = ari.stop()
    asterisk.drop()
    assert result_of(d) is None
    assert ari.state is ConnectionState.DISCONNECTED
