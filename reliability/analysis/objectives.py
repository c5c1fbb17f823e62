"""Objective verdicts: each objective the scenario set, against what was measured.

Two verdicts only. An objective that was set but could not be measured is a failure that says why;
"no visible impact" passes only when every SLI was measured and none left its objective.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from reliability.analysis.capacity import CapacityLoss
from reliability.analysis.detection import AlertReport
from reliability.analysis.recovery import Recovery
from reliability.analysis.rpo import Rpo

Verdict = Literal["pass", "fail"]


@dataclass(frozen=True)
class ObjectiveResult:
    name: str
    target: float
    measured: float | None
    unit: str
    verdict: Verdict
    detail: str = ""
    evidence: str = ""  # which series / window / events the measurement comes from


@dataclass(frozen=True)
class SliOutcome:
    slo: str
    objective: float
    recovery: Recovery
    source: str  # "client" | "prometheus"
    evidence: str
    baseline_share: float | None = None
    budget_spent: float | None = None
    budget_evidence: str = ""


@dataclass(frozen=True)
class ObjectiveTargets:
    rto_max: float | None = None
    capacity_rto_max: float | None = None
    rpo_max: float | None = None
    ttd_max: float | None = None
    ttd_ticket_max: float | None = None
    expect_alerts: bool = False
    max_budget_spent: Mapping[str, float] = field(default_factory=dict)  # SLO name -> share


@dataclass(frozen=True)
class Measured:
    slis: Sequence[SliOutcome] = ()
    capacity: CapacityLoss | None = None
    capacity_evidence: str = ""
    capacity_unmeasured: str = "no ground-truth node readiness events"
    rpo: Rpo | None = None
    rpo_unmeasured: str = "no acknowledged canary write before the fault"
    alerts: AlertReport | None = None
    alerts_evidence: str = "ALERTS from Prometheus"


def verdicts(targets: ObjectiveTargets, m: Measured) -> list[ObjectiveResult]:
    out: list[ObjectiveResult] = []
    if targets.rto_max is not None:
        if not m.slis:
            out.append(ObjectiveResult("rto", targets.rto_max, None, "s", "fail", "no SLI to measure RTO on"))
        for sli in m.slis:
            out.append(_rto(f"rto:{sli.slo}", targets.rto_max, sli))
    if targets.capacity_rto_max is not None:
        out.append(_capacity(targets.capacity_rto_max, m))
    if targets.rpo_max is not None:
        if m.rpo is None:
            out.append(
                ObjectiveResult(
                    "rpo", targets.rpo_max, None, "s", "fail", f"not measured: {m.rpo_unmeasured}"
                )
            )
        else:
            detail = f"{m.rpo.lost_writes} acknowledged write(s) lost"
            out.append(_upper("rpo", targets.rpo_max, m.rpo.rpo_seconds, "s", detail, "canary_writes.jsonl"))
    alerts = m.alerts
    for severity, limit in (("page", targets.ttd_max), ("ticket", targets.ttd_ticket_max)):
        if limit is None:
            continue
        name = "ttd" if severity == "page" else "ttd_ticket"
        det = alerts.detection.get(severity) if alerts is not None else None
        if det is None:
            out.append(ObjectiveResult(name, limit, None, "s", "fail", f"no expected {severity} alert fired"))
        else:
            detail = f"{det.alertname} ({severity})" + (", after the fault was removed" if det.late else "")
            out.append(_upper(name, limit, det.ttd_seconds, "s", detail, m.alerts_evidence))
    if targets.expect_alerts and alerts is not None:
        missing = list(alerts.silent) + [" or ".join(g) for g in alerts.unmet_any_of]
        fired = len(alerts.fired)
        if missing:
            out.append(
                ObjectiveResult(
                    "expected_alerts",
                    0,
                    len(missing),
                    "silent",
                    "fail",
                    f"never fired: {', '.join(missing)}",
                    m.alerts_evidence,
                )
            )
        else:
            out.append(
                ObjectiveResult(
                    "expected_alerts",
                    0,
                    0,
                    "silent",
                    "pass",
                    f"{fired} expected alert(s) fired",
                    m.alerts_evidence,
                )
            )
    for sli in m.slis:
        limit = targets.max_budget_spent.get(sli.slo)
        if limit is None:
            continue
        name = f"budget_spent:{sli.slo}"
        if sli.budget_spent is None:
            out.append(
                ObjectiveResult(name, limit, None, "ratio", "fail", "not measured: no events of this SLI")
            )
        else:
            out.append(_upper(name, limit, sli.budget_spent, "ratio", "", sli.budget_evidence))
    return out


def _rto(name: str, limit: float, sli: SliOutcome) -> ObjectiveResult:
    rec = sli.recovery
    ev = sli.evidence
    if rec.status == "baseline_violated":
        share = f"{sli.baseline_share:.2%}" if sli.baseline_share is not None else "unknown"
        return ObjectiveResult(
            name,
            limit,
            None,
            "s",
            "fail",
            f"baseline already outside the objective ({share} < {sli.objective:.2%}): nothing to recover to",
            ev,
        )
    if rec.status == "unmeasured":
        return ObjectiveResult(name, limit, None, "s", "fail", f"not measured: {rec.detail}", ev)
    if rec.status == "no_impact":
        return ObjectiveResult(
            name, limit, None, "s", "pass", "no visible impact: never left its objective", ev
        )
    if rec.status != "recovered" or rec.rto_seconds is None:
        return ObjectiveResult(
            name, limit, None, "s", "fail", "did not recover within the observation window", ev
        )
    return _upper(name, limit, rec.rto_seconds, "s", "", ev)


def _capacity(limit: float, m: Measured) -> ObjectiveResult:
    cap = m.capacity
    if cap is None:
        return ObjectiveResult(
            "capacity_rto", limit, None, "s", "fail", f"not measured: {m.capacity_unmeasured}"
        )
    rec = cap.recovery
    if rec.status == "no_impact":
        return ObjectiveResult(
            "capacity_rto", limit, None, "s", "pass", "no capacity lost", m.capacity_evidence
        )
    if rec.status != "recovered" or rec.rto_seconds is None:
        return ObjectiveResult(
            "capacity_rto",
            limit,
            None,
            "s",
            "fail",
            f"capacity not restored (ready GPU nodes {cap.lowest} of {cap.baseline})",
            m.capacity_evidence,
        )
    detail = f"ready GPU nodes {cap.baseline} -> {cap.lowest} -> {cap.baseline}"
    return _upper("capacity_rto", limit, rec.rto_seconds, "s", detail, m.capacity_evidence)


def _upper(
    name: str, target: float, measured: float, unit: str, detail: str = "", evidence: str = ""
) -> ObjectiveResult:
    verdict: Verdict = "pass" if measured <= target else "fail"
    return ObjectiveResult(name, target, measured, unit, verdict, detail, evidence)


def all_passed(results: Sequence[ObjectiveResult]) -> bool:
    return all(r.verdict == "pass" for r in results)
