"""`result.json`: the single source of truth for a game day's outcome."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ObjectiveVerdict(_Strict):
    name: str
    target: float
    measured: float | None
    unit: str
    verdict: Literal["pass", "fail", "no_data"]
    detail: str = ""


class PhaseSummary(_Strict):
    requests: int
    failures: int
    error_ratio: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class RunResult(_Strict):
    scenario: str
    passed: bool
    objectives: list[ObjectiveVerdict] = Field(default_factory=list)
    ttd_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    capacity_rto_seconds: float | None = Field(
        None, description="Injection -> serving capacity (ready GPU nodes) restored and held."
    )
    budget_spent: float | None = None
    recovery: Literal["recovered", "no_impact", "unrecovered", "unknown"] = "unknown"
    rto_prometheus_seconds: float | None = Field(None, description="RTO cross-checked on the Prometheus SLI.")
    lost_writes: int | None = None
    inject_ts: float | None = None
    fault_end_ts: float | None = None
    detect_ts: float | None = None
    recovered_ts: float | None = None
    alerts_fired: list[str] = Field(default_factory=list)
    impact: dict[str, PhaseSummary] = Field(default_factory=dict)
    budget_objective: float | None = Field(None, description="SLO objective the budget is charged against.")
    slo_period_s: float | None = Field(None, description="SLO period the budget is charged against.")
    error: str | None = None


def result_json_schema() -> dict[str, object]:
    return RunResult.model_json_schema()
