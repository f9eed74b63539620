"""Erlang C and Erlang A against the test vectors of shared/TESTBED.md."""

import pytest

from routing import erlang

LAM = 200 / 3600  # 200 calls per hour
AHT = 180.0


def test_erlang_c_vector_14_agents():
    """10 Erlangs on 14 agents: Pw 0.17413, SL(20 s) 0.88835, ASA 7.836 s, occupancy 0.714."""
    m = erlang.erlang_c(14, LAM, AHT, 20)
    assert m.p_wait == pytest.approx(0.17413, abs=5e-6)
    assert m.service_level == pytest.approx(0.88835, abs=5e-6)
    assert m.asa == pytest.approx(7.836, abs=5e-4)
    assert m.occupancy == pytest.approx(0.714, abs=5e-4)


def test_erlang_c_vector_13_agents():
    """One agent fewer: service level 0.7956."""
    assert erlang.erlang_c(13, LAM, AHT, 20).service_level == pytest.approx(0.7956, abs=5e-5)


def test_erlang_a_vector_patience_five_minutes():
    """Erlang A, mean patience 300 s: Pw 0.14526, SL 0.916792, ASA 4.195 s, abandonment
    0.013984 (exact model, not an approximation)."""
    m = erlang.erlang_a(14, LAM, AHT, 300, 20)
    assert m.p_wait == pytest.approx(0.14526, abs=5e-6)
    assert m.service_level == pytest.approx(0.916792, abs=5e-7)
    assert m.asa == pytest.approx(4.195, abs=5e-4)
    assert m.abandonment == pytest.approx(0.013984, abs=5e-7)


def test_erlang_a_tends_to_erlang_c_with_long_patience():
    """With near-infinite patience Erlang A gives Erlang C's figures."""
    a = erlang.erlang_a(14, LAM, AHT, 1e9, 20)
    c = erlang.erlang_c(14, LAM, AHT, 20)
    assert a.p_wait == pytest.approx(c.p_wait, rel=1e-4)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-4)
    assert a.abandonment < 1e-6


def test_erlang_a_stable_when_overloaded():
    """Abandonment keeps Erlang A finite where Erlang C has no steady state."""
    with pytest.raises(ValueError, match="unstable"):
        erlang.erlang_c(9, LAM, AHT, 20)
    a = erlang.erlang_a(9, LAM, AHT, 300, 20)
    assert 0 < a.service_level < 1
    assert 0 < a.abandonment < 1
    # Carried load equals offered minus abandoned.
    assert a.occupancy * 9 == pytest.approx(10 * (1 - a.abandonment), rel=1e-6)


def test_erlang_b_known_value():
    """Erlang B for 10 Erlangs on 14 lines is 0.05682 (standard table value)."""
    assert erlang.erlang_b(14, 10) == pytest.approx(0.05682, abs=5e-5)


def test_agents_for_service_level():
    """80/20 at 10 Erlangs needs 14 agents: 13 give 0.7956."""
    assert erlang.agents_for_service_level(LAM, AHT, 20, 0.80) == 14
