"""From a run directory's data to a `RunResult`: finds the fault window and runs the analysis."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from reliability import analysis
from reliability.report.model import ObjectiveVerdict, PhaseSummary, RunResult
from reliability.report.rundir import RunData

# The SLO period the game day's budget is charged against (the SLO files' default window).
DEFAULT_PERIOD_S = 30 * 86400.0
# Lab ground-truth events that mark a fault going in / coming out, used when the timeline lacks them.
FAULT_EVENTS = {"node_killed", "node_xid", "partition_applied", "fault_set", "store_promoted"}
HEAL_EVENTS = {"partition_removed", "fault_cleared", "replacement_ready"}


def fault_window(data: RunData) -> tuple[float | None, float | None]:
    """(injection, end of fault). Injection = the first action of the experiment's method, as the
    chaos timeline recorded it; end = the start of the rollback."""
    inject = next(
        (
            float(r["ts"])
            for r in data.timeline
            if r.get("event") == "activity_start" and r.get("phase") == "method" and r.get("type") == "action"
        ),
        None,
    )
    if inject is None:
        inject = next((float(r["ts"]) for r in data.events if r.get("event") in FAULT_EVENTS), None)
    end = next(
        (float(r["ts"]) for r in data.timeline if r.get("event") == "rollback_start" and _after(r, inject)),
        None,
    )
    if end is None and inject is not None:
        end = next(
            (float(r["ts"]) for r in data.events if r.get("event") in HEAL_EVENTS and _after(r, inject)),
            inject + data.scenario.phases.fault_hold,
        )
    return inject, end


def fault_landed(data: RunData, inject: float | None) -> float | None:
    """When the injecting call returned (the fault had landed by then), from the chaos timeline."""
    for r in data.timeline:
        if r.get("event") == "fault_injected" and _after(r, inject) and isinstance(r.get("returned"), dict):
            return float(r["returned"]["ts"])
    return None


def failed_action(data: RunData) -> str | None:
    """The first action of the experiment's method that failed, said as an error: the fault it was
    meant to inject may not have happened, so the run cannot be judged (never "no visible impact")."""
    for r in data.timeline:
        if (
            r.get("event") == "activity_end"
            and r.get("phase") == "method"
            and r.get("type") == "action"
            and r.get("status") == "failed"
        ):
            why = f": {r['error']}" if r.get("error") else ""
            name = r.get("name", "?")
            return f"experiment action {name!r} failed, so its fault may not have been injected{why}"
    return None


def missing_series(data: RunData) -> str | None:
    """A measurement an objective needs whose Prometheus series was not pulled: the objective
    cannot be judged (an absent ALERTS series must not read as "the alert never fired")."""
    obj = data.scenario.objectives
    needs = {"alerts": obj.ttd_max is not None, "ready_nodes": obj.capacity_rto_max is not None}
    missing = [name for name, needed in needs.items() if needed and name not in data.series]
    if not missing:
        return None
    return f"series/{', '.join(m + '.csv' for m in missing)} missing (Prometheus query failed?): cannot judge"


def _after(record: dict[str, Any], ts: float | None) -> bool:
    return ts is not None and float(record.get("ts", 0.0)) >= ts


def budget_basis(data: RunData) -> tuple[float, float]:
    """(objective, period seconds) the game day's budget is charged against: the availability SLO
    of the scenario's SLO files when a copy sits in the run directory (`slos/<name>`), else the
    scenario's per-second objective over a 30-day period."""
    from reliability.slo import load_slo_files

    copies = [data.root / "slos" / Path(rel).name for rel in data.scenario.slos]
    found = [p for p in copies if p.is_file()]
    if found:
        slos = [slo for svc in load_slo_files(found) for slo in svc.slos]
        if slos:
            slo = next((s for s in slos if "availab" in s.name), slos[0])
            return float(slo.objective_ratio), float(slo.period_s)
    return data.scenario.slo_objective, DEFAULT_PERIOD_S


def error_ratio_series(data: RunData) -> pd.DataFrame | None:
    """The Prometheus view of the SLI as (`ts`, `value`) error ratio, for the RTO cross-check."""
    quality = data.scenario.sli == "quality"
    frame = data.series.get("canary" if quality else "requests_by_region")
    column = "outcome" if quality else "code"
    if frame is None or frame.empty or column not in frame:
        return None
    labels = frame[column].astype(str)
    is_bad = labels != "correct" if quality else ~labels.str.startswith("2")
    frame = frame.assign(bad=frame["value"].where(is_bad, 0.0))
    grouped = frame.groupby("timestamp")[["value", "bad"]].sum()
    ratio = grouped["bad"] / grouped["value"].where(grouped["value"] > 0)
    return pd.DataFrame({"ts": grouped.index.astype(float), "value": ratio.to_numpy()})


def analyse(data: RunData) -> RunResult:
    sc = data.scenario
    inject, end = fault_window(data)
    obj = sc.objectives
    ttd = rto_s = rpo_s = budget = rto_prom = capacity_s = None
    capacity_status = "unknown"
    recovery = "unknown"
    lost = None
    recovered_ts = None
    fired: list[str] = []
    impact: dict[str, PhaseSummary] = {}
    alerts = data.series.get("alerts")
    if alerts is not None and not alerts.empty and "alertname" in alerts:
        fired = sorted(set(alerts.loc[alerts["alertstate"] == "firing", "alertname"].astype(str)))
    if inject is not None:
        if alerts is not None and "alertname" in alerts:
            ttd = analysis.ttd(alerts, inject, obj.expected_alerts)
        prom = error_ratio_series(data)
        if prom is not None:
            rto_prom = analysis.rto_from_series(prom, inject, 1 - sc.slo_objective, sc.phases.recovered_hold)
        if sc.sli == "availability" and not data.load.empty:
            rec = analysis.rto(data.load, inject, sc.slo_objective, sc.phases.recovered_hold)
        else:
            rec = rto_prom
        if rec is not None:
            recovery, rto_s, recovered_ts = rec.status, rec.rto_seconds, rec.recovered_ts
        capacity = data.series.get("ready_nodes")
        if capacity is not None and not capacity.empty:
            cap = analysis.capacity_rto(capacity, inject, sc.phases.recovered_hold)
            capacity_status, capacity_s = cap.status, cap.rto_seconds
        if data.canary is not None:
            r = analysis.rpo(data.canary, inject, fault_landed(data, inject))
            if r is not None:
                rpo_s, lost = r.rpo_seconds, r.lost_writes
        if not data.load.empty and end is not None:
            impact = {
                k: PhaseSummary(**asdict(v)) for k, v in analysis.impact(data.load, inject, end).items()
            }
    budget_objective, period_s = budget_basis(data)
    spent = analysis.budget_spent_over_time(data.load, budget_objective, period_s)
    if spent is not None:
        budget = float(spent.iloc[-1])
    results = analysis.verdicts(
        rto_max=obj.rto_max,
        rpo_max=obj.rpo_max,
        ttd_max=obj.ttd_max,
        max_budget_spent=obj.max_budget_spent,
        ttd_seconds=ttd,
        rto_seconds=rto_s,
        recovery=recovery,
        rpo_seconds=rpo_s,
        budget_spent=budget,
        expected_alerts=tuple(obj.expected_alerts),
        capacity_rto_max=obj.capacity_rto_max,
        capacity_rto_seconds=capacity_s,
        capacity_recovery=capacity_status,
    )
    error = data.previous_error or failed_action(data) or missing_series(data)
    if inject is None and error is None:
        error = "no fault injection found in timeline.jsonl or events.jsonl"
    return RunResult(
        scenario=sc.name,
        passed=analysis.all_passed(results) and error is None,
        objectives=[ObjectiveVerdict(**asdict(r)) for r in results],
        ttd_seconds=ttd,
        rto_seconds=rto_s,
        rpo_seconds=rpo_s,
        capacity_rto_seconds=capacity_s,
        budget_spent=budget,
        recovery=recovery,  # type: ignore[arg-type]
        rto_prometheus_seconds=rto_prom.rto_seconds if rto_prom is not None else None,
        lost_writes=lost,
        inject_ts=inject,
        fault_end_ts=end,
        detect_ts=inject + ttd if inject is not None and ttd is not None else None,
        recovered_ts=recovered_ts,
        alerts_fired=fired,
        impact=impact,
        error=error,
        budget_objective=budget_objective,
        slo_period_s=period_s,
    )
