"""The soak's verdict (``benchmarks.load.soak``): pure arithmetic over the samples."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.load.soak import DECODERS, Sample, decoder_pids, verdict, warm_up_rounds


def at(round_: int, serve_mb: float, serve_fds: int, calls: int = 10) -> Sample:
    return Sample(round_, round_ * 2.0, {"asterisk": 100.0, "ivr serve": serve_mb},
                  {"asterisk": 40, "ivr serve": serve_fds}, calls, calls, 0)


def test_growth_is_measured_from_after_the_warm_up_round() -> None:
    """The first round's growth (caches, decoders) is not a leak: the baseline is the sample
    after it, and a process that then stays within 5 % with no new descriptors is flat."""
    samples = [at(0, 80.0, 30, calls=0), at(1, 120.0, 36), at(2, 121.0, 36), at(3, 124.0, 36)]
    result = verdict(samples)
    assert result.rss_growth_pct == {"asterisk": 0.0, "ivr serve": 3.33}
    assert result.fd_growth == {"asterisk": 0, "ivr serve": 0}
    assert (result.calls, result.completed, result.dropped) == (30, 30, 0)
    assert result.flat


def test_five_percent_more_memory_or_one_more_descriptor_is_growth() -> None:
    """RSS growth at the 5 % limit, or a descriptor left open per some rounds, fails."""
    assert not verdict([at(0, 80.0, 30), at(1, 100.0, 36), at(2, 105.0, 36)]).flat
    assert not verdict([at(0, 80.0, 30), at(1, 100.0, 36), at(2, 100.0, 37)]).flat
    climbing = [at(0, 80.0, 30), *(at(n, 100.0, 35 + n) for n in range(1, 7))]
    assert verdict(climbing).fd_growth["ivr serve"] == 3 and not verdict(climbing).flat
    assert verdict([at(0, 80.0, 30), at(1, 100.0, 36), at(2, 99.0, 35)]).flat


def test_a_single_round_compares_with_the_start_and_no_round_is_refused() -> None:
    """One round: nothing to warm up against, the start is the baseline."""
    assert verdict([at(0, 100.0, 30), at(1, 102.0, 30)]).rss_growth_pct["ivr serve"] == 2.0
    with pytest.raises(ValueError):
        verdict([at(0, 100.0, 30)])


def test_a_pool_that_grew_early_and_stayed_is_not_a_descriptor_leak() -> None:
    """A connection pool that took one more connection in the first half of the run and
    kept it is what the load needs, not growth: the last sample is compared with the most
    the first half saw."""
    samples = [at(0, 80.0, 30), at(1, 100.0, 36), at(2, 100.0, 37), at(3, 100.0, 37),
               at(4, 100.0, 37), at(5, 100.0, 37)]
    assert verdict(samples).fd_growth["ivr serve"] == 0
    assert verdict(samples).flat


def redis_at(round_: int, rss_mb: float, data_mb: float, calls: int = 100) -> Sample:
    return Sample(round_, round_ * 2.0, {"asterisk": 80.0, "redis-server": rss_mb},
                  {"asterisk": 19, "redis-server": 24}, calls, calls, 0,
                  data_mb={"redis-server": data_mb})


def test_redis_is_judged_by_its_memory_less_the_data_it_keeps() -> None:
    """Every call leaves its order in Redis (kept for years): RSS 14 -> 26 MB while its
    data goes 2 -> 13.5 MB is 12.0 -> 12.5 MB of its own (+4.17 %), flat; the data's
    growth is reported apart, per call of the rounds after the baseline (11.5 MB over 300
    calls: 39.25 KB a call). Processes without data are judged by RSS alone."""
    samples = [redis_at(0, 12.0, 0.5), redis_at(1, 14.0, 2.0), redis_at(2, 18.0, 6.0),
               redis_at(3, 22.0, 9.8), redis_at(4, 26.0, 13.5)]
    result = verdict(samples)
    assert result.rss_growth_pct == {"asterisk": 0.0, "redis-server": 85.71}
    assert result.memory_growth_pct == {"asterisk": 0.0, "redis-server": 4.17}
    assert result.data_kb_per_call == {"redis-server": 39.25}
    assert result.flat


def test_redis_memory_beyond_its_data_still_counts_as_growth() -> None:
    """Data subtracted, what is left growing 12 -> 13 MB (+8.33 %) is growth: the verdict
    forgives the data, not the server."""
    result = verdict([redis_at(0, 12.0, 0.5), redis_at(1, 14.0, 2.0), redis_at(2, 27.0, 14.0)])
    assert result.memory_growth_pct["redis-server"] == 8.33
    assert not result.flat


def test_without_data_the_judged_memory_is_the_rss() -> None:
    samples = [at(0, 80.0, 30), at(1, 100.0, 36), at(2, 104.0, 36)]
    result = verdict(samples)
    assert result.memory_growth_pct == result.rss_growth_pct == {"asterisk": 0.0,
                                                                 "ivr serve": 4.0}
    assert result.data_kb_per_call == {}


def test_the_decoders_are_judged_as_one_group_when_seen_at_both_ends() -> None:
    """``ivr serve``'s decoder processes are summed into one entry; a run without them (or
    whose last sample lost them) judges the processes it saw at both ends."""
    def with_decoders(round_: int, mb: float) -> Sample:
        return Sample(round_, 0.0, {"ivr serve": 120.0, DECODERS: mb},
                      {"ivr serve": 28, DECODERS: 8}, 10, 10, 0)
    samples = [with_decoders(0, 260.0), with_decoders(1, 270.0), with_decoders(2, 283.5)]
    assert verdict(samples).memory_growth_pct == {"ivr serve": 0.0, DECODERS: 5.0}
    assert not verdict(samples).flat
    lost = [*samples[:2], at(2, 120.0, 28)]
    assert set(verdict(lost).memory_growth_pct) == {"ivr serve"}


def test_decoder_processes_are_found_among_the_children_by_their_module() -> None:
    """A child whose command line runs ``ivr.speech.decoders`` is a decoder; another child
    (a recording's encoder) is not."""
    waiting = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    with subprocess.Popen([*waiting, "ivr.speech.decoders"], stdin=subprocess.PIPE) as decoder, \
            subprocess.Popen(waiting, stdin=subprocess.PIPE) as other:
        try:
            found = decoder_pids(os.getpid())
        finally:
            for child in (decoder, other):
                assert child.stdin is not None
                child.stdin.close()
    assert decoder.pid in found and other.pid not in found


def test_a_longer_warm_up_moves_the_baseline_to_after_its_rounds() -> None:
    """``warm_up`` rounds before the baseline: growth that stops once a bounded cache is
    full is left out; at least one round is always compared."""
    filling = [at(0, 80.0, 30), at(1, 100.0, 36), at(2, 106.0, 36), at(3, 112.0, 36),
               at(4, 113.0, 36), at(5, 113.5, 36)]
    assert not verdict(filling).flat
    assert verdict(filling, warm_up=3).rss_growth_pct["ivr serve"] == 1.34
    assert verdict(filling, warm_up=3).flat
    assert verdict(filling, warm_up=9).rss_growth_pct["ivr serve"] == 0.44


def test_warm_up_rounds_cover_the_calls_asked() -> None:
    assert warm_up_rounds(0, 96) == 1
    assert warm_up_rounds(1_000, 96) == 11
    assert warm_up_rounds(960, 96) == 10
