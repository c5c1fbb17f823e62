"""Objective verdicts: each scenario objective against what was measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verdict = Literal["pass", "fail", "no_data"]


@dataclass(frozen=True)
class ObjectiveResult:
    name: str
    target: float
    measured: float | None
    unit: str
    verdict: Verdict
    detail: str = ""


def verdicts(
    *,
    rto_max: float | None = None,
    rpo_max: float | None = None,
    ttd_max: float | None = None,
    max_budget_spent: float | None = None,
    ttd_seconds: float | None = None,
    rto_seconds: float | None = None,
    recovery: str = "unknown",
    rpo_seconds: float | None = None,
    budget_spent: float | None = None,
    expected_alerts: tuple[str, ...] = (),
    capacity_rto_max: float | None = None,
    capacity_rto_seconds: float | None = None,
    capacity_recovery: str = "unknown",
) -> list[ObjectiveResult]:
    """One verdict per objective set (None = not set).

    A missing measurement fails where the event is required (an alert that never fired, a service
    that never recovered); it is `no_data` only where there was nothing to measure (no visible
    impact: nothing to recover from; no canary data).
    """
    out: list[ObjectiveResult] = []
    if ttd_max is not None:
        alerts = ", ".join(expected_alerts)
        if ttd_seconds is None:
            out.append(ObjectiveResult("ttd", ttd_max, None, "s", "fail", f"{alerts} never fired"))
        else:
            out.append(_upper("ttd", ttd_max, ttd_seconds, "s", f"first of {alerts}"))
    if rto_max is not None:
        if recovery == "no_impact":
            out.append(ObjectiveResult("rto", rto_max, None, "s", "no_data", "no visible impact"))
        elif recovery != "recovered" or rto_seconds is None:
            out.append(ObjectiveResult("rto", rto_max, None, "s", "fail", "did not recover"))
        else:
            out.append(_upper("rto", rto_max, rto_seconds, "s"))
    if capacity_rto_max is not None:
        if capacity_recovery == "no_impact":
            out.append(
                ObjectiveResult("capacity_rto", capacity_rto_max, None, "s", "no_data", "no capacity lost")
            )
        elif capacity_recovery != "recovered" or capacity_rto_seconds is None:
            out.append(
                ObjectiveResult("capacity_rto", capacity_rto_max, None, "s", "fail", "capacity not restored")
            )
        else:
            out.append(_upper("capacity_rto", capacity_rto_max, capacity_rto_seconds, "s", "ready GPU nodes"))
    if rpo_max is not None:
        if rpo_seconds is None:
            out.append(ObjectiveResult("rpo", rpo_max, None, "s", "no_data", "no canary data"))
        else:
            out.append(_upper("rpo", rpo_max, rpo_seconds, "s"))
    if max_budget_spent is not None:
        if budget_spent is None:
            out.append(
                ObjectiveResult("budget_spent", max_budget_spent, None, "ratio", "no_data", "no traffic")
            )
        else:
            out.append(_upper("budget_spent", max_budget_spent, budget_spent, "ratio"))
    return out


def _upper(name: str, target: float, measured: float, unit: str, detail: str = "") -> ObjectiveResult:
    return ObjectiveResult(name, target, measured, unit, "pass" if measured <= target else "fail", detail)


def all_passed(results: list[ObjectiveResult]) -> bool:
    return all(r.verdict != "fail" for r in results)
