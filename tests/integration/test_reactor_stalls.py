"""The watchdog on a real reactor: code that holds the reactor thread is named in the log."""

from __future__ import annotations

import logging
import time

import pytest_twisted
from twisted.internet import reactor, task

from hotline.stalls import STALLS, Watchdog


def hold_the_reactor_for(seconds: float) -> None:
    """Stands for code that blocks every call (a synchronous read, a long loop)."""
    time.sleep(seconds)


def _stall_count() -> float:
    for metric in STALLS.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                return sample.value
    return 0.0


def watching(threshold_s: float) -> Watchdog:
    dog = Watchdog(reactor, threshold_s=threshold_s)
    dog.start()
    return dog


@pytest_twisted.inlineCallbacks
def test_a_blocked_reactor_logs_the_blocking_stack_and_the_stall_length(caplog):
    """Held 0.8 s: one warning with the stack (naming the blocking function) while it is
    held, one with the length when the reactor turns again, and the histogram counts it.
    (A busy test machine may add stalls of its own: only this one is looked for.)"""
    caplog.set_level(logging.WARNING, logger="hotline.stalls")
    dog = watching(0.3)
    try:
        before = _stall_count()
        yield task.deferLater(reactor, 0.3, lambda: None)  # the watchdog's first beats
        hold_the_reactor_for(0.8)
        yield task.deferLater(reactor, 0.3, lambda: None)  # the beat that ends the stall
    finally:
        dog.stop()
    messages = [r.getMessage() for r in caplog.records]
    named = [m for m in messages if "reactor stalled" in m and "hold_the_reactor_for" in m]
    assert len(named) == 1
    lengths = [float(m.split("held ")[1].split(" s")[0])
               for m in messages if "reactor stall over" in m]
    assert any(0.7 <= held < 3.0 for held in lengths)
    assert _stall_count() >= before + 1


@pytest_twisted.inlineCallbacks
def test_a_turning_reactor_logs_nothing(caplog):
    """Short work between turns (20 ms, a threshold of 1 s) is not a stall."""
    caplog.set_level(logging.WARNING, logger="hotline.stalls")
    dog = watching(1.0)
    try:
        for _ in range(5):
            hold_the_reactor_for(0.02)
            yield task.deferLater(reactor, 0.05, lambda: None)
    finally:
        dog.stop()
    assert not [r for r in caplog.records if r.name == "hotline.stalls"]
