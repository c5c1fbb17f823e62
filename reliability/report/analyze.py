"""From a run directory's data to a `RunResult`: the fault window, every SLI of the scenario judged
per second from the client (Prometheus as the cross-check), detection per severity, capacity from
ground truth, RPO, budget per SLO, impact and the objective verdicts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from reliability import analysis
from reliability.analysis.sli import SliSpec
from reliability.report.model import (
    AlertEpisode,
    CapacityResult,
    DetectionResult,
    Finding,
    ObjectiveVerdict,
    PhaseSummary,
    RpoResult,
    RunResult,
    SliResult,
    StageTime,
)
from reliability.report.rundir import RunData
from reliability.slo.model import SLO, EventsSLI
from reliability.slo.recording import base_window

# Lab ground-truth events that mark a fault going in / coming out, used when the timeline lacks them.
FAULT_EVENTS = {"node_killed", "node_xid", "partition_applied", "fault_set", "store_promoted"}
HEAL_EVENTS = {"partition_removed", "fault_cleared"}
# The load generator's first seconds ramp users up: not part of the baseline judgement.
BASELINE_WARMUP_S = 3.0
# A GPU failure's handling, stage by stage: (stage, ground-truth events).
# A GPU failure's handling, stage by stage: (stage, ground-truth events, the Prometheus series of
# the signals profile that shows it, its label naming the node, other label filters, value test).
GPU_STAGES: tuple[tuple[str, frozenset[str], str | None, str, dict[str, str], str], ...] = (
    ("Xid reported", frozenset({"node_xid", "xid_reported"}), "xid", "Hostname", {}, "nonzero"),
    (
        "node condition set",
        frozenset({"node_condition"}),
        "node_conditions",
        "node",
        {"condition": "GPUUnhealthy"},
        "nonzero",
    ),
    ("node cordoned", frozenset({"node_cordoned"}), "unschedulable", "node", {}, "nonzero"),
    (
        "gateway ejected the node",
        frozenset({"gateway_server_down"}),
        "gateway_servers",
        "server",
        {"proxy": "vllm"},
        "zero",
    ),
    ("replacement ready", frozenset({"replacement_ready"}), None, "", {}, ""),
)


def _after(record: dict[str, Any], ts: float | None) -> bool:
    return ts is not None and float(record.get("ts", 0.0)) >= ts


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
    """The first action of the experiment's method that failed: the fault it was meant to inject
    may not have happened, so the run cannot be judged (never "no visible impact")."""
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


def hypothesis_failed(data: RunData) -> str | None:
    """The experiment's steady-state hypothesis was not met before the method: Chaos Toolkit
    injected nothing, so there is nothing to judge - said as such, not as "no fault found"."""
    for r in data.timeline:
        if r.get("event") == "method_start":
            return None
        if r.get("event") == "hypothesis" and r.get("met") is False:
            failed = r.get("failed_probes") or []
            which = f" (probe {', '.join(map(str, failed))})" if failed else ""
            return f"the steady-state hypothesis was not met before the fault{which}: nothing was injected"
    return None


def client_spec(slo: SLO) -> SliSpec | None:
    """What the load generator measures for this SLO: the SLO's `client_sli`, or for a latency SLI
    on a known histogram (TTFT, ITL, TPOT, end-to-end) the matching client latency."""
    kind = getattr(slo, "client_sli", None)
    threshold = float(slo.latency.le) * 1000.0 if slo.latency is not None else None
    if kind is None and slo.latency is not None:
        metric = slo.latency.metric
        kind = (
            "ttft"
            if "time_to_first_token" in metric
            else "itl"
            if "inter_token" in metric
            else "tpot"
            if "per_output_token" in metric
            else "latency"
        )
    if kind is None:
        return None
    return SliSpec(slo.name, kind, float(slo.objective_ratio), threshold)


def _prometheus_sli(data: RunData, slo: SLO) -> tuple[pd.DataFrame | None, str]:
    """Prometheus' error ratio of this SLO at its shortest recorded window."""
    frame = data.series.get("sli_error_ratio")
    window = base_window(slo)
    from reliability.slo.durations import format_duration

    name = f"slo:sli_error:ratio_rate{format_duration(window)}"
    evidence = f'{name}{{sloth_slo="{slo.name}"}} (trails by up to {window} s)'
    if frame is None or frame.empty or "sloth_slo" not in frame:
        return None, evidence
    part = frame[(frame["sloth_slo"].astype(str) == slo.name)]
    if "__name__" in part:
        part = part[part["__name__"].astype(str) == name]
    if part.empty:
        return None, evidence
    return part.rename(columns={"timestamp": "ts"})[["ts", "value"]], evidence


def _prometheus_budget(data: RunData, slo: SLO, span: float) -> tuple[float | None, str]:
    """Budget spent as Prometheus counted the events (rates integrated over the run)."""
    if not isinstance(slo.sli, EventsSLI):
        return None, ""
    sums = []
    for series_name in ("slo_error_events", "slo_total_events"):
        frame = data.series.get(series_name)
        if frame is None or frame.empty or "sloth_slo" not in frame:
            return None, ""
        part = frame[frame["sloth_slo"].astype(str) == slo.name].sort_values("timestamp")
        if part.empty:
            return None, ""
        step = float(np.min(np.diff(part["timestamp"].unique()))) if part["timestamp"].nunique() > 1 else 1.0
        sums.append(float(part["value"].fillna(0).sum()) * step)
    bad, total = sums
    spent = analysis.budget_spent(bad, total, span, float(slo.objective_ratio), float(slo.period_s))
    return spent, f"Prometheus: slo:sli_error_events / slo:sli_total_events integrated over {span:.0f} s"


def judge_slis(data: RunData, inject: float, fault_end: float | None = None) -> list[SliResult]:
    out: list[SliResult] = []
    load = data.load
    hold = data.scenario.phases.recovered_hold
    start = float(load["ts"].min()) if not load.empty else inject
    span = float(load["ts"].max() - load["ts"].min()) + 1.0 if not load.empty else 0.0
    for slo in data.slos:
        spec = client_spec(slo)
        objective = float(slo.objective_ratio)
        prom, prom_evidence = _prometheus_sli(data, slo)
        # The fault's impact starts while it is in place (or right after it is removed); an SLI that
        # first leaves its objective later had a blip of its own.
        impact_by = None if fault_end is None else fault_end + hold
        prom_rec = (
            analysis.rto_from_series(
                prom,
                inject,
                1.0 - objective,
                hold,
                None if impact_by is None else impact_by + base_window(slo),
            )
            if prom is not None
            else None
        )
        seconds = analysis.per_second(load, spec) if spec is not None and not load.empty else None
        measured_by_client = seconds is not None and bool((seconds["status"] >= 0).any())
        result: dict[str, Any] = {
            "slo": slo.name,
            "client_sli": spec.kind if spec else None,
            "objective": objective,
            "threshold_ms": spec.threshold_ms if spec else None,
            "period_s": float(slo.period_s),
            "prometheus_evidence": prom_evidence,
            "rto_prometheus_seconds": prom_rec.rto_seconds if prom_rec is not None else None,
        }
        if measured_by_client:
            assert seconds is not None and spec is not None
            share, _ = analysis.baseline_share(seconds, start + BASELINE_WARMUP_S, inject)
            rec = analysis.rto_from_seconds(seconds, inject, hold, impact_by, objective)
            if share is not None and share < objective:
                rec = analysis.Recovery("baseline_violated", None, detail="baseline outside objective")
            bad, total = analysis.sli.bad_and_total(load, spec)
            result.update(
                source="client",
                evidence=f"load generator, per second: {spec.kind}"
                + (f" <= {spec.threshold_ms:g} ms" if spec.threshold_ms else ""),
                baseline_share=share,
                bad_events=bad,
                total_events=total,
                budget_spent=analysis.budget_spent(bad, total, span, objective, float(slo.period_s)),
                budget_evidence=f"client: {bad:.0f} bad of {total:.0f} events over {span:.0f} s",
            )
        else:
            rec = prom_rec or analysis.Recovery("unmeasured", None, detail="no client or Prometheus data")
            spent, evidence = _prometheus_budget(data, slo, span)
            result.update(
                source="prometheus",
                evidence=prom_evidence,
                budget_spent=spent,
                budget_evidence=evidence,
                rto_prometheus_seconds=None,  # it is the measurement itself, not a cross-check
            )
        result.update(
            status=rec.status,
            rto_seconds=rec.rto_seconds,
            impact_start_ts=rec.impact_start_ts,
            recovered_ts=rec.recovered_ts,
            detail=rec.detail,
        )
        out.append(SliResult(**result))
    return out


def _recovery_of(s: SliResult) -> analysis.Recovery:
    return analysis.Recovery(s.status, s.rto_seconds, s.impact_start_ts, s.recovered_ts, s.detail)


def _episode(
    ep: analysis.Episode, inject: float, expected: set[str], fault_end: float | None
) -> AlertEpisode:
    return AlertEpisode(
        alertname=ep.alertname,
        severity=ep.severity,
        labels={k: v for k, v in ep.labels.items() if k not in ("alertname",)},
        start_ts=ep.start_ts,
        end_ts=None if ep.still_firing else ep.end_ts,
        expected=ep.alertname in expected,
        ttd_seconds=ep.start_ts - inject,
        late=fault_end is not None and ep.start_ts >= fault_end,
    )


def judge_capacity(data: RunData, inject: float, observed_until: float) -> tuple[CapacityResult, Any]:
    hold = data.scenario.phases.recovered_hold
    steps = analysis.ready_count(data.events)
    loss = analysis.capacity_recovery(steps, inject, hold, observed_until) if not steps.empty else None
    prom = data.series.get("ready_nodes")
    prom_rec = (
        analysis.capacity_rto(prom.rename(columns={"timestamp": "ts"}), inject, hold)
        if prom is not None and not prom.empty
        else None
    )
    if loss is None:
        return CapacityResult(status="unmeasured", evidence="no node_state events"), None
    rec = loss.recovery
    return (
        CapacityResult(
            status=rec.status,  # type: ignore[arg-type]
            baseline=loss.baseline,
            lowest=loss.lowest,
            rto_seconds=rec.rto_seconds,
            recovered_ts=rec.recovered_ts,
            rto_prometheus_seconds=prom_rec.rto_seconds if prom_rec is not None else None,
            evidence="events.jsonl node_state (ground truth); Prometheus: ready GPU nodes",
        ),
        loss,
    )


def stage_times(data: RunData, inject: float, detection: list[DetectionResult]) -> list[StageTime]:
    """Each stage of a GPU failure's handling, seconds after injection: from the ground-truth events
    and, where the signals profile has a series for it, as Prometheus saw it."""
    node = next(
        (str(e["node"]) for e in data.events if e.get("event") == "node_xid" and _after(e, inject)), None
    )
    stages: list[StageTime] = []
    for stage, names, series, node_label, filters, test in GPU_STAGES:
        event = next((e for e in data.events if e.get("event") in names and _after(e, inject)), None)
        if event is None:
            continue
        seen = (
            _first_seen(data.series.get(series or ""), inject, node_label, node, filters, test)
            if node
            else None
        )
        stages.append(
            StageTime(
                stage=stage,
                ground_truth_s=float(event["ts"]) - inject,
                prometheus_s=None if seen is None else seen - inject,
                evidence=f"events.jsonl: {event['event']}"
                + (f"; Prometheus: series/{series}.csv" if seen else ""),
            )
        )
    if stages:
        for det in detection:
            stages.append(
                StageTime(
                    stage=f"{det.severity} alert ({det.alertname})",
                    prometheus_s=det.ttd_seconds,
                    evidence="ALERTS",
                )
            )
    return stages


def _first_seen(
    frame: pd.DataFrame | None, since: float, node_label: str, node: str, filters: dict[str, str], test: str
) -> float | None:
    """The first sample at/after `since` of the node's series that passes the test."""
    if frame is None or frame.empty or node_label not in frame:
        return None
    part = frame[(frame[node_label].astype(str) == node) & (frame["timestamp"].astype(float) >= since)]
    for label, value in filters.items():
        if label not in part:
            return None
        part = part[part[label].astype(str) == value]
    values = part["value"].astype(float)
    hits = part[values != 0] if test == "nonzero" else part[values == 0]
    return float(hits["timestamp"].min()) if not hits.empty else None


def observed_load(data: RunData) -> None:
    """The load generator's seconds up to the end of the observation: the last seconds, while the
    load was being stopped, are partial and say nothing about the service."""
    observed = next(
        (
            float(r["ts"])
            for r in data.timeline
            if r.get("event") == "gameday_phase" and r.get("name") == "observed"
        ),
        None,
    )
    if observed is not None and not data.load.empty:
        data.load = data.load[data.load["ts"] + 1.0 <= observed].reset_index(drop=True)


def analyse(data: RunData) -> RunResult:
    observed_load(data)
    sc = data.scenario
    obj = sc.objectives
    info = data.info
    inject, end = fault_window(data)
    result = RunResult(
        scenario=sc.name,
        inject_ts=inject,
        fault_end_ts=end,
        fault_landed_ts=fault_landed(data, inject),
        started_ts=info.started_ts if info else None,
        ended_ts=info.ended_ts if info else None,
        interrupted=info.interrupted if info else None,
    )
    error = (info.error if info else None) or failed_action(data)
    if inject is None:
        if result.interrupted:
            result.status = "interrupted"
            result.error = error
            return result
        result.error = (
            error or hypothesis_failed(data) or "no fault injection found in timeline.jsonl or events.jsonl"
        )
        return result
    expected = analysis.ExpectedAlerts(tuple(obj.all_of()), tuple(tuple(g) for g in obj.any_of()))
    observed_until = max(
        [float(data.load["ts"].max()) + 1.0] if not data.load.empty else [],
        default=inject,
    )
    if info and info.ended_ts:
        observed_until = max(observed_until, info.ended_ts)

    slis = judge_slis(data, inject, end)
    alerts_frame = data.series.get("alerts")
    alert_report = (
        analysis.analyse_alerts(alerts_frame, inject, end, expected, until=data.series_end)
        if alerts_frame is not None
        else None
    )
    capacity, loss = judge_capacity(data, inject, observed_until)
    rpo_value = None
    rpo_result = None
    if data.canary is not None:
        rpo_value = analysis.rpo(data.canary, inject, result.fault_landed_ts)
        failed = analysis.failed_writes(data.canary, inject)
        if rpo_value is not None or failed.count:
            rpo_result = RpoResult(
                rpo_seconds=rpo_value.rpo_seconds if rpo_value else None,
                lost_writes=rpo_value.lost_writes if rpo_value else None,
                failed_writes=failed.count,
                failed_span_s=failed.span_seconds if failed.count else None,
            )
    impact = (
        {k: PhaseSummary(**asdict(v)) for k, v in analysis.impact(data.load, inject, end).items()}
        if not data.load.empty and end is not None
        else {}
    )
    budget_limits = obj.budget_limits([s.name for s in data.slos])
    unknown_budget = sorted(set(budget_limits) - {s.name for s in data.slos})
    targets = analysis.ObjectiveTargets(
        rto_max=obj.rto_max,
        capacity_rto_max=obj.capacity_rto_max,
        rpo_max=obj.rpo_max,
        ttd_max=obj.ttd_max,
        ttd_ticket_max=obj.ttd_ticket_max,
        expect_alerts=bool(obj.expected_alerts),
        max_budget_spent=budget_limits,
    )
    measured = analysis.Measured(
        slis=[
            analysis.SliOutcome(
                s.slo,
                s.objective,
                _recovery_of(s),
                s.source,
                s.evidence,
                s.baseline_share,
                s.budget_spent,
                s.budget_evidence,
            )
            for s in slis
        ],
        capacity=loss,
        capacity_evidence=capacity.evidence,
        rpo=rpo_value,
        alerts=alert_report,
    )
    verdicts = analysis.verdicts(targets, measured)
    if alert_report is None and (obj.ttd_max is not None or obj.expected_alerts):
        error = error or "series/alerts.csv missing (Prometheus query failed?): cannot judge detection"
    if unknown_budget:
        error = error or f"max_budget_spent names SLOs not in the scenario: {', '.join(unknown_budget)}"

    names = expected.names
    if alert_report is not None:
        result.alerts = [_episode(e, inject, names, end) for e in alert_report.episodes]
        result.alerts_before_injection = [
            _episode(e, inject, names, end) for e in alert_report.before_injection
        ]
        result.detection = [DetectionResult(**asdict(d)) for d in alert_report.detection.values()]
        result.expected_alerts_silent = list(alert_report.silent) + [
            " or ".join(g) for g in alert_report.unmet_any_of
        ]
    result.findings = findings(result, slis, rpo_result)
    result.slis = slis
    result.capacity = (
        capacity if capacity.status != "unmeasured" or obj.capacity_rto_max is not None else None
    )
    result.rpo = rpo_result
    result.stages = stage_times(data, inject, result.detection)
    result.impact = impact
    result.objectives = [ObjectiveVerdict(**asdict(v)) for v in verdicts]
    page = next((d for d in result.detection if d.severity == "page"), None)
    first = page or (min(result.detection, key=lambda d: d.ts) if result.detection else None)
    result.ttd_seconds = first.ttd_seconds if first else None
    result.detect_ts = first.ts if first else None
    recovered = [s for s in slis if s.status == "recovered" and s.rto_seconds is not None]
    if recovered and not any(s.status in ("unrecovered", "baseline_violated") for s in slis):
        worst = max(recovered, key=lambda s: s.rto_seconds or 0.0)
        result.rto_seconds, result.recovered_ts = worst.rto_seconds, worst.recovered_ts
    result.rpo_seconds = rpo_result.rpo_seconds if rpo_result else None
    result.capacity_rto_seconds = capacity.rto_seconds
    spent = [s.budget_spent for s in slis if s.budget_spent is not None]
    result.budget_spent = max(spent) if spent else None
    result.error = error
    if error:
        result.status = "error"
    elif result.interrupted:
        result.status = "interrupted"
    else:
        result.passed = analysis.all_passed(verdicts)
        result.status = "passed" if result.passed else "failed"
    return result


def findings(result: RunResult, slis: list[SliResult], rpo: RpoResult | None) -> list[Finding]:
    out: list[Finding] = []
    for ep in result.alerts:
        if not ep.expected:
            kind = "unexpected_page" if ep.severity == "page" else "unexpected_alert"
            out.append(
                Finding(
                    kind=kind,
                    ts=ep.start_ts,
                    message=f"{ep.alertname} ({ep.severity}) fired but was not expected" + _labels(ep.labels),
                )
            )
        elif ep.late:
            out.append(
                Finding(
                    kind="late_alert",
                    ts=ep.start_ts,
                    message=f"{ep.alertname} ({ep.severity}) fired only after the fault had been removed",
                )
            )
    for ep in result.alerts_before_injection:
        out.append(
            Finding(
                kind="firing_before_injection",
                ts=ep.start_ts,
                message=f"{ep.alertname} ({ep.severity}) was already firing when the fault was injected",
            )
        )
    for s in slis:
        if s.status == "baseline_violated":
            share = f"{s.baseline_share:.2%}" if s.baseline_share is not None else "?"
            out.append(
                Finding(
                    kind="baseline_outside_objective",
                    message=f"{s.slo}: the baseline was already outside its objective "
                    f"({share} < {s.objective:.2%})",
                )
            )
    if rpo is not None and rpo.failed_writes:
        span = f" over {rpo.failed_span_s:.1f} s" if rpo.failed_span_s else ""
        out.append(Finding(kind="failed_writes", message=f"{rpo.failed_writes} canary write(s) failed{span}"))
    return out


def _labels(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k in ("node", "region", "instance", "sloth_slo", "Hostname")}
    return f" ({', '.join(f'{k}={v}' for k, v in sorted(shown.items()))})" if shown else ""
