"""Every shipped scenario, run on the LLM twin with its fault timings drawn at random, measures what
the lab's ground truth says happened: TTD per severity (Prometheus' own alert evaluations), RTO per
SLI (the events that end each fault's effect), capacity RTO (node readiness events), RPO (the
store's acknowledgements), and the availability budget (Locust's own request counts) - each within
1 s (budget within 1%). `benchmarks/bench_verdict_truth.py` runs the long version with a table.

The lab is started by the test (with the scenario's own lab config and SLOs) and the run attaches
to it, so Prometheus' raw samples can be read back after the run.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Any

import pytest

from tests.gameday.truth import SHIPPED, Truth, run_with_truth

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("RELIABILITY_TRUTH_SEED", random.SystemRandom().randrange(1 << 30)))


@pytest.mark.parametrize("name", SHIPPED, ids=SHIPPED)
def test_shipped_scenario_measures_the_ground_truth(name: str, tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-{name}")
    truth = run_with_truth(name, tmp_path, rng)
    print(f"seed {SEED}: {name} {truth.timings}")  # reproduce with RELIABILITY_TRUTH_SEED
    check(truth)


SCRAPE_INTERVAL_S = 1.0  # the lab's Prometheus


LATENCY_SLOS = ("time-to-first-token", "inter-token-latency")


def noisy_baselines(r: dict[str, Any]) -> set[str]:
    """Latency SLIs whose baseline already missed the objective: the shared 2-core box stalls now
    and then (a process starting, a collection), and a few slow first tokens out of ~20 a second
    are enough. The harness must then refuse an RTO and fail the objective, saying why."""
    return {s["slo"] for s in r["slis"] if s["slo"] in LATENCY_SLOS and s["status"] == "baseline_violated"}


def unpredicted(objective: str, t: Truth, noisy: set[str]) -> bool:
    """A latency objective the fault has no ending event for, or whose baseline was noisy: a stall
    of the shared box, which the harness rightly measures and the test cannot predict. Its numbers
    are still checked against Prometheus by the report; its verdict is not."""
    slo = objective.split(":", 1)[1] if ":" in objective else ""
    return slo in LATENCY_SLOS and (slo not in t.rto_truth or slo in noisy)


def check(t: Truth) -> None:
    r = t.result
    expect = t.expect
    verdicts = _verdicts(r)
    noisy = noisy_baselines(r)
    for slo in noisy:
        objective = next(o for o in r["objectives"] if o["name"] == f"rto:{slo}")
        assert objective["verdict"] == "fail" and "baseline" in objective["detail"], objective
    predicted = {k: v for k, v in verdicts.items() if not unpredicted(k, t, noisy)}
    wrong = {k: v for k, v in predicted.items() if v != expect.verdicts.get(k, "pass")}
    assert r["status"] in ("passed", "failed") and not wrong, (r["status"], r.get("error"), wrong)
    if expect.status == "failed" or predicted == verdicts:
        assert r["status"] == expect.status, (r["status"], verdicts)
    assert abs(r["inject_ts"] - t.fault_ts) <= 1.0, (r["inject_ts"], t.fault_ts)
    for severity, alert_truth in t.alert_truth.items():
        measured = next(d for d in r["detection"] if d["severity"] == severity)
        assert abs(measured["ttd_seconds"] - alert_truth) <= 1.0, (severity, measured, alert_truth)
    for slo, rto_truth in t.rto_truth.items():
        if slo in noisy:
            continue
        sli = next(s for s in r["slis"] if s["slo"] == slo)
        assert sli["status"] == "recovered", (slo, sli)
        latest = t.rto_truth_latest.get(slo, rto_truth)
        # A latency SLI comes from per-second histograms, with no time of the last slow event in its
        # second: its recovery can only fall on a second's start, the first after the truth. And the
        # steps in flight at the clear still end slow: one gap per stream, 28 of ~1,000 a second, is
        # over the 1% the objective allows, so the second after the clear is still bad.
        late_allowance = (
            math.ceil(r["inject_ts"] + latest) - (r["inject_ts"] + latest) + 1.0
            if slo in LATENCY_SLOS
            else 0.0
        )
        assert rto_truth - 1.0 <= sli["rto_seconds"] <= latest + 1.0 + late_allowance, (
            slo,
            sli["rto_seconds"],
            rto_truth,
            latest,
        )
    if t.capacity_truth is not None:
        cap = r["capacity"]
        assert cap["status"] == "recovered", cap
        assert abs(cap["rto_seconds"] - t.capacity_truth) <= 1.0, (cap, t.capacity_truth)
        # Prometheus' view (pod readiness scraped every second) agrees within its resolution; a loss
        # shorter than a scrape (a warm standby) can fall between two and show no dip at all.
        if cap["rto_prometheus_seconds"] is not None or t.capacity_truth >= SCRAPE_INTERVAL_S:
            assert cap["rto_prometheus_seconds"] is not None, cap
            assert abs(cap["rto_prometheus_seconds"] - t.capacity_truth) <= 2.5, cap
    if t.rpo_truth is not None:
        assert r["rpo"] is not None and abs(r["rpo"]["rpo_seconds"] - t.rpo_truth) <= 1.0, (
            r["rpo"],
            t.rpo_truth,
        )
    # Every request Locust counted itself is in the per-second stats, once.
    assert t.locust_totals is not None, "no final summary from Locust"
    assert t.client_totals == t.locust_totals
    for name, verdict in expect.verdicts.items():
        assert _verdicts(r).get(name) == verdict, (name, _verdicts(r))


def _verdicts(r: dict[str, Any]) -> dict[str, str]:
    return {o["name"]: o["verdict"] for o in r["objectives"]}


def test_truth_helpers_cover_every_shipped_scenario() -> None:
    shipped = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
    assert sorted(SHIPPED) == shipped
    json.dumps(SEED)
