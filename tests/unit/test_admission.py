"""The connection cap and the refusal log every server shares (ivr.admission), on task.Clock."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent

from ivr.admission import Admission, Refusal, RefusalLog


def refused(server: str, reason: str) -> float:
    labels = {"server": server, "reason": reason}
    return REGISTRY.get_sample_value("hotline_connections_refused_total", labels) or 0.0


def open_now(server: str) -> float:
    return REGISTRY.get_sample_value("hotline_connections_open", {"server": server}) or 0.0


class Peer:
    """A connection as the cap sees it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.evicted = False

    def evict(self) -> None:
        self.evicted = True


def lines(events: list[LogEvent]) -> list[LogEvent]:
    return [e for e in events if e.get("server") == "audiosocket"]


def test_every_refusal_is_counted_by_server_and_reason() -> None:
    """Each refusal adds one to hotline_connections_refused_total{server,reason}."""
    log = RefusalLog("agi", task.Clock())
    before = refused("agi", "bad_header")
    log.refused("bad_header", "peer", "x")
    log.refused("bad_header", "peer", "y")
    assert refused("agi", "bad_header") == before + 2


def test_a_burst_is_logged_one_by_one_then_summed_up_once(log_events: list[LogEvent]) -> None:
    """The first ``burst`` refusals of a window are logged each with its peer; the rest make
    one summary line by reason when the window ends, not a line each."""
    clock = task.Clock()
    log = RefusalLog("audiosocket", clock, burst=3, every_s=30.0)
    for n in range(1000):
        log.refused("bad_frame" if n % 2 else "unknown_call", f"10.0.0.{n % 250}")
    assert len(lines(log_events)) == 3
    assert [e["peer"] for e in lines(log_events)] == ["10.0.0.0", "10.0.0.1", "10.0.0.2"]
    clock.advance(30.0)
    summary = lines(log_events)[-1]
    assert len(lines(log_events)) == 4
    assert summary["count"] == 997
    assert summary["reasons"] == "bad_frame: 499, unknown_call: 498"


def test_a_new_window_logs_a_new_burst(log_events: list[LogEvent]) -> None:
    """After a quiet window, the next refusals are logged one by one again."""
    clock = task.Clock()
    log = RefusalLog("audiosocket", clock, burst=1, every_s=10.0)
    log.refused("bad_frame", "a")
    log.refused("bad_frame", "b")
    clock.advance(10.0)  # the summary of "b"
    clock.advance(5.0)
    log.refused("bad_frame", "c")
    assert [e.get("peer") for e in lines(log_events)] == ["a", None, "c"]


def test_stop_says_what_is_unsaid(log_events: list[LogEvent]) -> None:
    """At shutdown the pending summary is written at once, not lost."""
    clock = task.Clock()
    log = RefusalLog("audiosocket", clock, burst=0)
    log.refused("bad_frame", "a")
    log.stop()
    assert lines(log_events)[-1]["count"] == 1
    assert not clock.getDelayedCalls()


def test_the_cap_admits_up_to_its_limit_then_refuses() -> None:
    """With every open connection proven, the one past the limit is refused (and counted);
    a released slot admits the next."""
    cap = Admission(2, RefusalLog("http", task.Clock()))
    a, b, c = Peer("a"), Peer("b"), Peer("c")
    before = refused("http", "too_many_connections")
    assert cap.admit(a, "a") and cap.admit(b, "b")
    cap.proven(a)
    cap.proven(b)
    assert not cap.admit(c, "c")
    assert refused("http", "too_many_connections") == before + 1
    cap.release(a)
    assert cap.admit(c, "c")
    assert cap.open == 2


def test_when_full_the_oldest_unproven_connection_makes_room() -> None:
    """A server full of connections that never finished their handshake (slow-loris) still
    admits a newcomer: the oldest unproven one is evicted, never a proven one."""
    cap = Admission(3, RefusalLog("agi", task.Clock()))
    proven, slow1, slow2, newcomer = Peer("p"), Peer("s1"), Peer("s2"), Peer("n")
    for peer in (proven, slow1, slow2):
        assert cap.admit(peer, peer.name)
    cap.proven(proven)
    before = refused("agi", "evicted")
    assert cap.admit(newcomer, "n")
    assert slow1.evicted and not slow2.evicted and not proven.evicted
    assert refused("agi", "evicted") == before + 1
    assert cap.open == 3
    cap.release(slow1)  # its connectionLost comes later: a no-op
    assert cap.open == 3


def test_open_connections_are_a_gauge_by_server() -> None:
    """hotline_connections_open{server} follows admissions and releases (twice is once)."""
    cap = Admission(5, RefusalLog("audiosocket", task.Clock()))
    before = open_now("audiosocket")
    peer = Peer("x")
    cap.admit(peer, "x")
    assert open_now("audiosocket") == before + 1
    cap.release(peer)
    cap.release(peer)
    assert open_now("audiosocket") == before


def test_a_cap_below_one_is_refused() -> None:
    """A cap of 0 would refuse every call: it is a mistake, not a setting."""
    with pytest.raises(ValueError):
        Admission(0, RefusalLog("agi", task.Clock()))


def test_the_refusal_says_its_message_and_closes() -> None:
    """A refused connection gets the protocol's "not now" and is closed at once."""
    transport = StringTransport()
    Refusal(b"FAILURE\n").makeConnection(transport)
    assert transport.value() == b"FAILURE\n"
    assert transport.disconnecting


def test_the_open_file_limit_is_raised_to_hold_the_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    """A soft limit below the caps (systemd's 1024) is raised toward the hard limit; a hard
    limit too low for them is said, not silently left to fail accept()."""
    import resource

    from ivr.admission import ensure_descriptors

    limits = {"now": (1024, 4096)}
    monkeypatch.setattr(resource, "getrlimit", lambda _kind: limits["now"])
    monkeypatch.setattr(resource, "setrlimit", lambda _kind, value: limits.update(now=value))
    assert ensure_descriptors(1792) is None
    assert limits["now"] == (1792 + 256, 4096)
    limits["now"] = (1024, 1024)
    warning = ensure_descriptors(1792)
    assert warning is not None and "max_connections" in warning
