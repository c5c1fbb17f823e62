"""Analysis functions over synthetic frames whose ground truth is set by the test's parameters."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reliability.analysis import budget_spent, budget_used, burn_rate, impact, rpo, rto, rto_from_series, ttd

T0 = 1_700_000_000.0


def load_frame(
    seconds: int, bad: list[tuple[int, int]], rps: int = 20, fail_share: float = 0.5
) -> pd.DataFrame:
    """Per-second stats; seconds within any [start, end) of `bad` fail at `fail_share`."""
    rows = []
    for i in range(seconds):
        failing = any(a <= i < b for a, b in bad)
        failures = int(rps * fail_share) if failing else 0
        p = 200.0 if failing else 20.0
        rows.append(
            {
                "ts": T0 + i,
                "requests": rps,
                "failures": failures,
                "p50_ms": p / 2,
                "p95_ms": p,
                "p99_ms": p * 2,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("ratio", "objective", "expected"), [(0.01, 0.99, 1.0), (0.144, 0.99, 14.4), (0.0, 0.999, 0.0)]
)
def test_burn_rate(ratio: float, objective: float, expected: float) -> None:
    assert burn_rate(ratio, objective) == pytest.approx(expected)


def test_budget_used_whole_period_at_burn_one_is_all_of_it() -> None:
    period = 30 * 86400.0
    assert budget_used(0.001, 0.999, period, period) == pytest.approx(1.0)
    assert budget_used(0.0144, 0.999, 3600, period) == pytest.approx(14.4 / 720)


def test_burn_rate_rejects_impossible_objective() -> None:
    with pytest.raises(ValueError):
        burn_rate(0.1, 1.0)


def test_budget_spent_at_observed_rate() -> None:
    # 10 rps for 100 s, objective 0.99 over 1000 s allows 10*1000*0.01 = 100 bad events.
    assert budget_spent(25, 1000, 100, 0.99, 1000) == pytest.approx(0.25)
    assert budget_spent(0, 0, 100, 0.99, 1000) is None


@pytest.mark.parametrize("fault_at", [3, 10, 17])
@pytest.mark.parametrize("duration", [4, 9])
def test_rto_matches_the_end_of_the_bad_stretch(fault_at: int, duration: int) -> None:
    stats = load_frame(60, [(fault_at, fault_at + duration)])
    inject = T0 + fault_at - 0.4
    result = rto(stats, inject, objective=0.99, hold_s=5)
    assert result.status == "recovered"
    assert result.rto_seconds == pytest.approx(duration + 0.4)
    assert result.impact_start_ts == T0 + fault_at


def test_rto_needs_the_hold_period_after_a_relapse() -> None:
    # Good for 2 s between two bad stretches: shorter than the hold, so recovery is after the second.
    stats = load_frame(60, [(10, 15), (17, 20)])
    result = rto(stats, T0 + 10, objective=0.99, hold_s=5)
    assert result.rto_seconds == pytest.approx(10)


def test_no_visible_impact_is_not_rto_zero() -> None:
    result = rto(load_frame(30, []), T0 + 5, objective=0.99, hold_s=5)
    assert result.status == "no_impact"
    assert result.rto_seconds is None


def test_never_recovered_within_window() -> None:
    result = rto(load_frame(30, [(10, 40)]), T0 + 10, objective=0.99, hold_s=5)
    assert result.status == "unrecovered"
    assert result.rto_seconds is None


def test_recovery_too_close_to_window_end_is_unrecovered() -> None:
    result = rto(load_frame(30, [(10, 27)]), T0 + 10, objective=0.99, hold_s=5)
    assert result.status == "unrecovered"


def test_seconds_without_traffic_are_bad() -> None:
    stats = load_frame(40, [])
    stats.loc[(stats["ts"] >= T0 + 10) & (stats["ts"] < T0 + 14), ["requests", "failures"]] = 0
    assert rto(stats, T0 + 10, objective=0.99, hold_s=5).rto_seconds == pytest.approx(4)


def test_prometheus_cross_check_agrees_with_load_view() -> None:
    stats = load_frame(60, [(12, 20)])
    series = pd.DataFrame({"timestamp": stats["ts"], "value": stats["failures"] / stats["requests"]}).assign(
        value=lambda f: f["value"].where(f["timestamp"] != T0 + 13, math.nan)
    )
    by_load = rto(stats, T0 + 12, 0.99, 5)
    by_prom = rto_from_series(series, T0 + 12, 0.01, 5)
    assert by_prom.status == "recovered"
    assert by_prom.rto_seconds == pytest.approx(by_load.rto_seconds)


@pytest.mark.parametrize("delay", [0.5, 7.0, 31.0])
def test_ttd_first_firing_of_expected_alert(delay: float) -> None:
    inject = T0 + 100
    alerts = pd.DataFrame(
        [
            {"ts": T0 + 50, "alertname": "InferenceAPIHighErrorRate", "alertstate": "firing"},  # before fault
            {"ts": inject + delay / 2, "alertname": "InferenceAPIHighErrorRate", "alertstate": "pending"},
            {"ts": inject + 1, "alertname": "Unrelated", "alertstate": "firing"},
            {"ts": inject + delay, "alertname": "InferenceAPIHighErrorRate", "alertstate": "firing"},
            {"ts": inject + delay + 1, "alertname": "GPUNodeDown", "alertstate": "firing"},
        ]
    ).sample(frac=1.0, random_state=1)
    assert ttd(alerts, inject, ["InferenceAPIHighErrorRate", "GPUNodeDown"]) == pytest.approx(delay)


def test_ttd_ignores_an_alert_already_firing_when_the_fault_went_in() -> None:
    inject = T0 + 100

    def firing(start: float, end: float, name: str = "InferenceAPIHighErrorRate") -> list[dict]:
        n = int((end - start) / 0.25)
        return [{"ts": start + i * 0.25, "alertname": name, "alertstate": "firing"} for i in range(n)]

    # Firing since before the fault and still firing: not a detection of this fault.
    ongoing = pd.DataFrame(firing(T0 + 60, inject + 30))
    assert ttd(ongoing, inject, ["InferenceAPIHighErrorRate"]) is None
    # Resolved, then fires again 4 s after the injection: that is the detection.
    again = pd.DataFrame(firing(T0 + 60, inject - 5) + firing(inject + 4, inject + 30))
    assert ttd(again, inject, ["InferenceAPIHighErrorRate"]) == pytest.approx(4.0)
    # Same alert name, another label set (another region) starting after the fault: detected.
    other = pd.DataFrame(firing(inject + 2, inject + 9)).assign(region="eu-west")
    both = pd.concat([ongoing.assign(region="us-east"), other])
    assert ttd(both, inject, ["InferenceAPIHighErrorRate"]) == pytest.approx(2.0)


def test_ttd_none_when_never_fired() -> None:
    alerts = pd.DataFrame([{"timestamp": T0 + 5, "alertname": "X", "alertstate": "pending"}])
    assert ttd(alerts, T0, ["X"]) is None
    assert ttd(pd.DataFrame(), T0, ["X"]) is None


@pytest.mark.parametrize(("lost", "interval"), [(0, 0.1), (3, 0.1), (12, 0.25)])
def test_rpo_from_canary_writes(lost: int, interval: float) -> None:
    n = 100
    ts = T0 + np.arange(n) * interval
    fault_ts = float(ts[-1]) + interval / 2
    survived = np.arange(n) < n - lost
    writes = pd.DataFrame({"seq": np.arange(n), "ts": ts, "acked": True, "survived": survived})
    # Writes after the fault (not acked) must not count.
    late = pd.DataFrame({"seq": [n], "ts": [fault_ts + 1], "acked": [True], "survived": [False]})
    result = rpo(pd.concat([writes, late]), fault_ts)
    assert result is not None
    assert result.lost_writes == lost
    assert result.rpo_seconds == pytest.approx(lost * interval)


def test_rpo_none_without_acked_writes() -> None:
    writes = pd.DataFrame({"seq": [1], "ts": [T0], "acked": [False], "survived": [False]})
    assert rpo(writes, T0 + 10) is None


def test_impact_splits_phases() -> None:
    stats = load_frame(30, [(10, 20)], rps=10, fail_share=0.5)
    out = impact(stats, T0 + 10, T0 + 20)
    assert (out["before"].requests, out["before"].failures) == (100, 0)
    assert (out["during"].requests, out["during"].failures) == (100, 50)
    assert out["during"].error_ratio == pytest.approx(0.5)
    assert out["after"].failures == 0
    assert out["during"].p95_ms > out["before"].p95_ms


def test_the_second_the_fault_lands_in_is_not_baseline() -> None:
    # Injected 0.3 s into second 10: that second's failures are the fault's, not the baseline's.
    stats = load_frame(30, [(10, 20)], rps=10, fail_share=0.5)
    out = impact(stats, T0 + 10.3, T0 + 19.6)
    assert (out["before"].requests, out["before"].failures) == (100, 0)
    assert (out["during"].requests, out["during"].failures) == (100, 50)
    assert out["after"].requests == 100


def test_recovery_is_placed_at_the_last_failure_within_its_second() -> None:
    stats = load_frame(20, [(5, 9)], rps=10, fail_share=1.0)
    stats["last_failure_ts"] = np.where(stats["failures"] > 0, stats["ts"] + 0.3, np.nan)
    result = rto(stats, T0 + 5.1, objective=0.99, hold_s=3)
    # Seconds 5..8 fail; the last failure was at 8.3 s, not at the 9 s boundary.
    assert result.rto_seconds == pytest.approx(8.3 - 5.1)
    without = rto(stats.drop(columns=["last_failure_ts"]), T0 + 5.1, objective=0.99, hold_s=3)
    assert without.rto_seconds == pytest.approx(9 - 5.1)


def test_capacity_rto_from_ready_nodes() -> None:
    from reliability.analysis import capacity_rto

    ts = T0 + np.arange(30, dtype=float)
    ready = np.full(30, 6.0)
    ready[10:17] = 5.0  # a node lost at 10 s, its replacement ready at 17 s
    series = pd.DataFrame({"timestamp": ts, "value": ready})
    result = capacity_rto(series, T0 + 9.5, hold_s=3)
    assert result.status == "recovered" and result.rto_seconds == pytest.approx(7.5)
    assert capacity_rto(pd.DataFrame({"timestamp": ts, "value": 6.0}), T0 + 9.5, 3).status == "no_impact"
    never = ready.copy()
    never[10:] = 5.0
    assert capacity_rto(pd.DataFrame({"timestamp": ts, "value": never}), T0 + 9.5, 3).status == "unrecovered"


def test_budget_over_time_climbs_with_failures_and_ends_at_the_runs_budget() -> None:
    from reliability.analysis import budget_spent_over_time

    stats = load_frame(30, [(10, 20)], rps=10, fail_share=0.5)
    spent = budget_spent_over_time(stats, 0.99, 3600.0)
    assert spent is not None
    assert spent.iloc[9] == 0 and spent.is_monotonic_increasing
    whole = budget_spent(float(stats["failures"].sum()), float(stats["requests"].sum()), 30.0, 0.99, 3600.0)
    assert spent.iloc[-1] == pytest.approx(whole)
