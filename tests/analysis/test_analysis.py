"""Analysis functions over synthetic data whose ground truth is set by the test's parameters."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from reliability import analysis
from reliability.analysis import histogram
from reliability.analysis.detection import ExpectedAlerts
from reliability.analysis.recovery import Recovery
from reliability.analysis.sli import BAD, GOOD, UNKNOWN, SliSpec

T0 = 1_700_000_000.0


def stats(
    seconds: int,
    bad: list[tuple[int, int]] = (),  # type: ignore[assignment]
    rps: int = 20,
    fail_share: float = 0.5,
    slow_ms: float = 900.0,
    judged_every: int = 1,
    last_failure_at: float = 0.3,
) -> pd.DataFrame:
    """Per-second v2 stats: seconds within any [start, end) of `bad` fail at `fail_share`, have
    slow TTFTs and wrong judged answers; the others are healthy."""
    rows = []
    for i in range(seconds):
        failing = any(a <= i < b for a, b in bad)
        failures = int(rps * fail_share) if failing else 0
        ttft = slow_ms if failing else 80.0
        judged = 2 if i % judged_every == 0 else 0
        rows.append(
            {
                "ts": T0 + i,
                "requests": rps,
                "failures": failures,
                "last_failure_ts": T0 + i + last_failure_at if failures else None,
                "e2e_ms": {str(ttft + 400): rps},
                "ttft_ms": {str(ttft): rps - failures},
                "itl_ms": {"20.0": 30 * rps},
                "judged": judged,
                "wrong": judged if failing else 0,
                "last_wrong_ts": T0 + i + 0.5 if failing and judged else None,
                "good": rps - failures if not failing else 0,
                "p50_ms": ttft,
                "p95_ms": ttft,
                "p99_ms": ttft,
            }
        )
    return pd.DataFrame(rows)


AVAIL = SliSpec("availability", "availability", 0.99)
TTFT = SliSpec("ttft", "ttft", 0.99, 500.0)
QUALITY = SliSpec("quality", "quality", 0.99)


@pytest.mark.parametrize(
    ("ratio", "objective", "expected"), [(0.01, 0.99, 1.0), (0.144, 0.99, 14.4), (0.0, 0.999, 0.0)]
)
def test_burn_rate(ratio: float, objective: float, expected: float) -> None:
    assert analysis.burn_rate(ratio, objective) == pytest.approx(expected)


def test_budget_used_whole_period_at_burn_one_is_all_of_it() -> None:
    period = 30 * 86400.0
    assert analysis.budget_used(0.001, 0.999, period, period) == pytest.approx(1.0)


def test_budget_spent_at_observed_rate() -> None:
    # 10 events/s for 100 s, objective 0.99 over 1000 s allows 10*1000*0.01 = 100 bad events.
    assert analysis.budget_spent(25, 1000, 100, 0.99, 1000) == pytest.approx(0.25)
    assert analysis.budget_spent(0, 0, 100, 0.99, 1000) is None


def test_per_second_statuses_of_each_kind() -> None:
    frame = stats(10, [(4, 6)], judged_every=3)
    avail = analysis.per_second(frame, AVAIL)["status"].tolist()
    assert avail == [GOOD] * 4 + [BAD] * 2 + [GOOD] * 4
    ttft = analysis.per_second(frame, TTFT)["status"].tolist()
    assert ttft == avail
    quality = analysis.per_second(frame, QUALITY)["status"].tolist()
    # Judged answers every third second only: the other seconds say nothing.
    assert quality == [GOOD, UNKNOWN, UNKNOWN, GOOD, UNKNOWN, UNKNOWN, GOOD, UNKNOWN, UNKNOWN, GOOD]


def test_a_second_without_any_request_is_unavailable() -> None:
    frame = stats(5)
    frame.loc[2, "requests"] = 0
    assert analysis.per_second(frame, AVAIL)["status"].tolist()[2] == BAD
    assert analysis.per_second(frame, QUALITY)["status"].tolist()[2] == GOOD  # judged answers still came


@pytest.mark.parametrize("seed", range(12))
def test_rto_of_each_sli_matches_randomised_ground_truth(seed: int) -> None:
    """The fault starts at a random moment and lasts a random time: RTO is within 1 s of truth."""
    rng = random.Random(seed)
    start = rng.randint(10, 30)
    duration = rng.randint(2, 20)
    offset = rng.uniform(0.0, 0.9)
    inject = T0 + start + offset
    frame = stats(start + duration + 30, [(start + 1, start + 1 + duration)], last_failure_at=0.6)
    truth = (T0 + start + 1 + duration) - inject  # first good second after the fault, from injection
    for spec in (AVAIL, TTFT, QUALITY):
        rec = analysis.rto_from_seconds(analysis.per_second(frame, spec), inject, hold_s=5)
        assert rec.status == "recovered"
        assert rec.rto_seconds is not None and abs(rec.rto_seconds - truth) <= 1.0


def test_recovery_is_placed_at_the_last_failure_within_its_second() -> None:
    frame = stats(40, [(10, 15)], last_failure_at=0.3)
    rec = analysis.rto_from_seconds(analysis.per_second(frame, AVAIL), T0 + 10, hold_s=5)
    assert rec.rto_seconds == pytest.approx(4.3)  # last failure at T0 + 14.3


def test_a_relapse_shorter_than_the_hold_delays_recovery() -> None:
    frame = stats(60, [(10, 15), (17, 20)])
    rec = analysis.rto_from_seconds(analysis.per_second(frame, AVAIL), T0 + 10, hold_s=5)
    assert rec.recovered_ts == pytest.approx(T0 + 19.3)


def test_unknown_seconds_neither_break_nor_make_a_recovery() -> None:
    frame = stats(60, [(10, 20)], judged_every=4)
    rec = analysis.rto_from_seconds(analysis.per_second(frame, QUALITY), T0 + 10, hold_s=5)
    # Wrong answers were judged up to second 16; the first judged good answer is second 20.
    assert rec.status == "recovered" and rec.recovered_ts == pytest.approx(T0 + 20)


def test_no_visible_impact_is_not_rto_zero_and_no_data_is_unmeasured() -> None:
    frame = stats(40)
    assert analysis.rto_from_seconds(analysis.per_second(frame, AVAIL), T0 + 10, 5).status == "no_impact"
    empty = stats(40, judged_every=1000)
    empty["judged"] = 0
    assert analysis.rto_from_seconds(analysis.per_second(empty, QUALITY), T0 + 10, 5).status == "unmeasured"


def test_never_back_within_objective_is_unrecovered() -> None:
    frame = stats(40, [(10, 40)])
    rec = analysis.rto_from_seconds(analysis.per_second(frame, AVAIL), T0 + 10, 5)
    assert rec.status == "unrecovered" and rec.rto_seconds is None


def test_prometheus_cross_check_over_an_error_ratio_series() -> None:
    ts = T0 + np.arange(60, dtype=float)
    values = np.where((ts >= T0 + 12) & (ts < T0 + 25), 0.3, 0.0)
    values[3] = np.nan  # no traffic in the window: says nothing
    rec = analysis.rto_from_series(pd.DataFrame({"timestamp": ts, "value": values}), T0 + 10, 0.01, 5)
    assert rec.status == "recovered" and rec.recovered_ts == pytest.approx(T0 + 25)


def test_baseline_share_finds_a_baseline_already_outside_the_objective() -> None:
    frame = stats(40, [(0, 40)], fail_share=0.05)
    share, events = analysis.baseline_share(analysis.per_second(frame, AVAIL), T0, T0 + 20)
    assert share == pytest.approx(0.95) and events == 20 * 20


def node(ts: float, name: str, ready: bool, region: str = "us-east") -> dict:
    return {"ts": ts, "event": "node_state", "node": name, "region": region, "ready": ready}


def test_capacity_from_ground_truth_events() -> None:
    events = [node(T0, f"n{i}", True) for i in range(3)]
    events += [node(T0 + 20.4, "n1", False), node(T0 + 31.7, "n4", True)]
    steps = analysis.ready_count(events)
    assert steps["value"].tolist() == [1, 2, 3, 2, 3]
    loss = analysis.capacity_recovery(steps, T0 + 20.0, hold_s=5, observed_until=T0 + 60)
    assert loss is not None and (loss.baseline, loss.lowest) == (3, 2)
    assert loss.recovery.status == "recovered" and loss.recovery.rto_seconds == pytest.approx(11.7)


def test_capacity_that_never_drops_or_never_comes_back() -> None:
    events = [node(T0, f"n{i}", True) for i in range(2)]
    steps = analysis.ready_count(events)
    assert analysis.capacity_recovery(steps, T0 + 5, 5, T0 + 60).recovery.status == "no_impact"
    gone = analysis.ready_count([*events, node(T0 + 6, "n0", False)])
    assert analysis.capacity_recovery(gone, T0 + 5, 5, T0 + 60).recovery.status == "unrecovered"
    # Back, but only for 2 s before the next loss: not held.
    flap = analysis.ready_count(
        [*events, node(T0 + 6, "n0", False), node(T0 + 8, "n0", True), node(T0 + 10, "n1", False)]
    )
    assert analysis.capacity_recovery(flap, T0 + 5, 5, T0 + 60).recovery.status == "unrecovered"


def alerts_frame(episodes: list[tuple[str, str, float, float]], step: float = 0.25) -> pd.DataFrame:
    """ALERTS samples: (alertname, severity label value, start offset, end offset) each."""
    rows = []
    for name, severity, start, end in episodes:
        label = "sloth_severity" if severity in ("page", "ticket") else "severity"
        for t in np.arange(start, end, step):
            rows.append(
                {"timestamp": T0 + t, "alertname": name, "alertstate": "firing", label: severity, "value": 1}
            )
    # A sample of something else far out so the frame spans the whole run.
    rows.append({"timestamp": T0 + 200, "alertname": "Other", "alertstate": "pending", "value": 1})
    return pd.DataFrame(rows)


def test_detection_per_severity_unexpected_late_and_silent_alerts() -> None:
    frame = alerts_frame(
        [
            ("Old", "critical", 0, 30),  # already firing at injection: not a detection
            ("SLOHigh", "ticket", 12.5, 40),
            ("SLOHigh", "page", 16.0, 35),
            ("GPUNodeDown", "critical", 22.0, 30),  # unexpected page
            ("Failover", "warning", 41.0, 50),  # expected, but after the fault ended (40)
        ]
    )
    expected = ExpectedAlerts(("SLOHigh", "Failover", "NeverFires"), (("A", "B"), ("Failover", "X")))
    report = analysis.analyse_alerts(frame, T0 + 10, T0 + 40, expected)
    assert report.detection["ticket"].ttd_seconds == pytest.approx(2.5)
    assert report.detection["page"].ttd_seconds == pytest.approx(6.0)
    assert report.silent == ["NeverFires"]
    assert report.unmet_any_of == [("A", "B")]
    assert [e.alertname for e in report.unexpected] == ["GPUNodeDown"]
    assert [e.alertname for e in report.before_injection] == ["Old"]
    failover = next(e for e in report.episodes if e.alertname == "Failover")
    assert failover.start_ts >= T0 + 40  # late
    page = next(e for e in report.episodes if e.alertname == "SLOHigh" and e.severity == "page")
    assert page.end_ts == pytest.approx(T0 + 35)


def test_an_alert_that_resolves_and_fires_again_detects() -> None:
    frame = alerts_frame([("X", "page", 0, 8), ("X", "page", 15, 20)])
    report = analysis.analyse_alerts(frame, T0 + 10, None, ExpectedAlerts(("X",)))
    assert report.detection["page"].ttd_seconds == pytest.approx(5.0)


def test_phase_percentiles_come_from_merged_histograms_not_averages() -> None:
    rng = np.random.default_rng(3)
    raw = [rng.lognormal(3, 0.4, 50) for _ in range(19)] + [np.full(50, 1000.0)]
    rows = [
        {"ts": T0 + i, "requests": 50, "failures": 0, "e2e_ms": _hist(samples)}
        for i, samples in enumerate(raw)
    ]
    phase = analysis.impact(pd.DataFrame(rows), T0 + 100, T0 + 200)["before"]
    every = np.concatenate(raw)
    exact = float(np.sort(every)[int(np.ceil(0.95 * every.size)) - 1])
    assert phase.p95_ms == pytest.approx(exact, rel=0.011)
    averaged = float(np.mean([np.percentile(s, 95) for s in raw]))
    assert abs(phase.p95_ms - averaged) > 10  # the bug the issue describes


def _hist(samples: np.ndarray) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in samples:
        key = str(float(f"{value:.3g}"))
        out[key] = out.get(key, 0) + 1
    return out


def test_histogram_primitives() -> None:
    h = histogram.merge([{"10.0": 2, "20.0": 1}, {"20.0": 1, "30.0": 1}, None, {"x": 3}])
    assert h == {10.0: 2, 20.0: 2, 30.0: 1}
    assert histogram.percentile(h, 0.5) == 20.0 and histogram.percentile({}, 0.5) is None
    assert histogram.count_at_or_below(h, 20.0) == 4


def sli_outcome(status: str, rto: float | None = None, share: float | None = 1.0) -> analysis.SliOutcome:
    return analysis.SliOutcome("s", 0.99, Recovery(status, rto), "client", "load", share, 0.1)  # type: ignore[arg-type]


def test_set_but_unmeasured_is_a_failure_with_its_reason() -> None:
    targets = analysis.ObjectiveTargets(
        rto_max=30, rpo_max=5, ttd_max=20, capacity_rto_max=30, expect_alerts=True
    )
    measured = analysis.Measured(
        slis=[sli_outcome("unmeasured")], rpo=None, alerts=analysis.detection.AlertReport(), capacity=None
    )
    results = {r.name: r for r in analysis.verdicts(targets, measured)}
    assert results["rto:s"].verdict == "fail" and "not measured" in results["rto:s"].detail
    assert results["rpo"].verdict == "fail" and "not measured" in results["rpo"].detail
    assert results["ttd"].verdict == "fail" and "page" in results["ttd"].detail
    assert results["capacity_rto"].verdict == "fail"
    assert not analysis.all_passed(list(results.values()))


def test_no_visible_impact_passes_with_its_reason_and_a_bad_baseline_fails() -> None:
    targets = analysis.ObjectiveTargets(rto_max=30, max_budget_spent={"s": 0.5})
    ok = analysis.verdicts(targets, analysis.Measured(slis=[sli_outcome("no_impact")]))
    assert [(r.name, r.verdict) for r in ok] == [("rto:s", "pass"), ("budget_spent:s", "pass")]
    assert "no visible impact" in ok[0].detail
    bad = analysis.verdicts(targets, analysis.Measured(slis=[sli_outcome("baseline_violated", share=0.927)]))
    assert bad[0].verdict == "fail" and "92.70%" in bad[0].detail


def test_silent_expected_alerts_fail_the_expected_alerts_objective() -> None:
    report = analysis.detection.AlertReport(
        silent=["StoreReplicationLagHigh"], fired={"RegionUnavailable": T0}
    )
    results = analysis.verdicts(
        analysis.ObjectiveTargets(expect_alerts=True), analysis.Measured(alerts=report)
    )
    assert results[0].verdict == "fail" and "StoreReplicationLagHigh" in results[0].detail


def test_rpo_and_failed_writes() -> None:
    writes = pd.DataFrame(
        {
            "seq": range(10),
            "ts": [T0 + i * 0.5 for i in range(10)],
            "acked": [True] * 6 + [False] * 3 + [True],
            "survived": [True] * 4 + [False] * 2 + [False] * 3 + [True],
        }
    )
    r = analysis.rpo(writes, T0 + 2.9)
    assert r is not None and r.lost_writes == 2 and r.rpo_seconds == pytest.approx(1.0)
    failed = analysis.failed_writes(writes, T0 + 2.9)
    assert failed.count == 3 and failed.span_seconds == pytest.approx(1.0)


def test_a_blip_after_the_fault_was_removed_is_not_the_faults_impact() -> None:
    frame = stats(60, [(40, 41)])  # one bad second, long after a fault that ended at 20
    rec = analysis.rto_from_seconds(analysis.per_second(frame, AVAIL), T0 + 10, 5, impact_by=T0 + 25)
    assert rec.status == "no_impact" and "blip" in rec.detail
    during = stats(60, [(12, 15)])
    rec = analysis.rto_from_seconds(analysis.per_second(during, AVAIL), T0 + 10, 5, impact_by=T0 + 25)
    assert rec.status == "recovered"


def test_a_noisy_second_in_the_hold_does_not_restart_it_but_a_relapse_does() -> None:
    frame = stats(60, [(10, 15)], rps=100)
    frame.loc[18, "failures"] = 2  # 2% in one second: the 5 s hold still meets 99%
    seconds = analysis.per_second(frame, AVAIL)
    rec = analysis.rto_from_seconds(seconds, T0 + 10, 5, objective=0.99)
    assert rec.recovered_ts == pytest.approx(T0 + 14.3)
    strict = analysis.rto_from_seconds(seconds, T0 + 10, 5)
    assert strict.recovered_ts == pytest.approx(T0 + 19)
    frame.loc[18, "failures"] = 50  # a real relapse: the hold fails
    rec = analysis.rto_from_seconds(analysis.per_second(frame, AVAIL), T0 + 10, 5, objective=0.99)
    assert rec.recovered_ts == pytest.approx(T0 + 18.3)


def test_a_queue_that_drains_for_a_while_during_the_fault_has_not_recovered() -> None:
    """The fault (10..30) hurts in waves: 6 good seconds between them are no recovery while it is in
    place; after it is gone, a lone noisy second is no relapse and a later blip not the fault's."""
    frame = stats(80, [(10, 13), (19, 24)], rps=100)
    frame.loc[45, "failures"] = 2  # noise: the 5 s from it still meet 99%
    seconds = analysis.per_second(frame, AVAIL)
    rec = analysis.rto_from_seconds(seconds, T0 + 10, 5, impact_by=T0 + 35, objective=0.99)
    assert rec.status == "recovered" and rec.recovered_ts == pytest.approx(T0 + 23.3)
    # Without the fault's end, the relapse is judged up to the end of the data.
    rec = analysis.rto_from_seconds(seconds, T0 + 10, 5, objective=0.99)
    assert rec.recovered_ts == pytest.approx(T0 + 23.3)
    frame.loc[32, "failures"] = 60  # a relapse right after the fault was removed is still the fault's
    rec = analysis.rto_from_seconds(
        analysis.per_second(frame, AVAIL), T0 + 10, 5, impact_by=T0 + 35, objective=0.99
    )
    assert rec.recovered_ts == pytest.approx(T0 + 33)
