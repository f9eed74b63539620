"""The reactor-stall watchdog's state machine (hotline.stalls), with explicit times."""

from __future__ import annotations

import threading

import pytest

from hotline.stalls import Recovered, Stalled, StallWatch, thread_stack


def test_a_reactor_that_beats_is_never_reported() -> None:
    """Beats closer together than the threshold: every look finds it turning."""
    watch = StallWatch(0.25, now=0.0)
    for tick in range(1, 50):
        assert watch.beat(tick * 0.1) is None
        assert watch.look(tick * 0.1 + 0.05) is None


def test_a_stall_is_reported_once_and_its_end_gives_its_length() -> None:
    """Held past the threshold: the first look reports since when, later looks of the same
    stall do not report it again, and the next beat ends it with the whole length."""
    watch = StallWatch(0.25, now=0.0)
    watch.beat(1.0)
    assert watch.look(1.2) is None
    assert watch.look(1.3) == Stalled(since=1.0, held_s=pytest.approx(0.3))
    assert watch.look(1.5) is None
    assert watch.look(3.0) is None
    assert watch.beat(3.1) == Recovered(held_s=pytest.approx(2.1))
    assert watch.look(3.2) is None


def test_a_late_beat_without_a_look_is_not_a_reported_stall() -> None:
    """A gap the watching thread never saw (it looks every 0.1 s, so only a gap under the
    threshold can slip by) ends nothing: only reported stalls are measured."""
    watch = StallWatch(0.25, now=0.0)
    assert watch.beat(0.2) is None


def test_the_threshold_must_be_positive() -> None:
    """Off is ``stall_warning_ms: 0`` in the config, not a zero threshold here."""
    with pytest.raises(ValueError):
        StallWatch(0.0, now=0.0)


def test_thread_stack_shows_where_a_thread_stands() -> None:
    """The stack of another thread names the function it is in."""
    inside, release = threading.Event(), threading.Event()

    def waiting_in_a_named_place() -> None:
        inside.set()
        release.wait(5)

    thread = threading.Thread(target=waiting_in_a_named_place)
    thread.start()
    inside.wait(5)
    try:
        assert thread.ident is not None
        assert "waiting_in_a_named_place" in thread_stack(thread.ident)
    finally:
        release.set()
        thread.join()
    assert thread_stack(thread.ident) == "  (thread gone)"
