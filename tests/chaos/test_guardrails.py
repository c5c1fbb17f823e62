"""Stop conditions: over the limit continuously for N seconds, not just once."""

from __future__ import annotations

from reliability.chaos.guardrails import StopCondition


def cond(for_seconds: float) -> StopCondition:
    return StopCondition(name="errors", query="q", above=0.1, for_seconds=for_seconds)


def test_trips_only_after_holding_for_the_window() -> None:
    c = cond(3)
    assert [c.observe(t, 0.5) for t in (0, 1, 2)] == [False, False, False]
    assert c.observe(3, 0.5) is True


def test_a_dip_below_the_limit_restarts_the_window() -> None:
    c = cond(2)
    assert not c.observe(0, 0.5)
    assert not c.observe(1, 0.05)
    assert not c.observe(2, 0.5)
    assert not c.observe(3, 0.5)
    assert c.observe(4, 0.5)


def test_no_data_is_not_a_breach() -> None:
    c = cond(1)
    assert not c.observe(0, 0.5)
    assert not c.observe(1, None)
    assert not c.observe(2, 0.5)
    assert c.observe(3, 0.5)


def test_zero_window_trips_at_once_and_equal_is_not_over() -> None:
    assert cond(0).observe(0, 0.2)
    assert not cond(0).observe(0, 0.1)
