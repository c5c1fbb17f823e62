"""The `slo budget --json` document: one typed shape, also published as a JSON Schema
(`reliability schema slo-budget`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "reliability/slo-budget/v1"
SERVER_SIDE_NOTE = (
    "Server-side numbers: Prometheus evaluated each SLO's SLI queries over each window at the "
    "evaluation time. Game days add client-side measurements (per-request, in a run's result.json)."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Window(_Strict):
    duration: str = Field(description="As Prometheus writes it (28d is `4w`).")
    seconds: int
    start: datetime
    end: datetime = Field(description="The evaluation time.")


class Events(_Strict):
    """Counted by Prometheus (`rate(...[window]) x window`): fractional when Prometheus extrapolates a
    counter to the edges of the window."""

    good: float
    bad: float
    total: float


class PolicyStepStatus(_Strict):
    name: str
    window: str
    window_seconds: int
    burn_rate_threshold: float
    action: str
    error_ratio: float | None = Field(description="None: no traffic (or no data) in the window.")
    burn_rate: float | None = Field(description="error_ratio / budget_target.")
    triggers: bool = Field(description="burn_rate >= burn_rate_threshold.")
    valid: bool = Field(description="False when the data does not cover the window or it had no traffic.")
    reason: str | None = None


class AlertWindowStatus(_Strict):
    severity: Literal["page", "ticket"]
    long_window: str
    short_window: str
    burn_rate_threshold: float = Field(description="The alert's factor: both windows must burn faster.")
    long_burn_rate: float | None
    short_burn_rate: float | None
    triggers: bool = Field(
        description="Both burn rates above the threshold (the alert's condition before its "
        "minimum-traffic gate and `for`); `firing_alerts` says what Prometheus actually fires."
    )
    valid: bool
    reason: str | None = None


class SLOBudget(_Strict):
    service: str
    slo: str
    id: str
    file: str
    sli_type: Literal["events", "latency", "raw"]
    objective_percent: float
    budget_target: float = Field(description="1 - objective (a ratio): the share of events allowed to fail.")
    window: Window
    valid: bool = Field(description="False: the numbers are shown but do not describe the whole window.")
    reasons: list[str] = Field(description="Why the report is not valid; empty when valid.")
    notes: list[str] = Field(description="Remarks that do not invalidate the numbers.")
    data_since: datetime | None = Field(
        description="First probe step in the window at which the SLI's total-events query (raw SLIs: "
        "the error-ratio query) had data; within 1/720 of the window of its start when the data covers "
        "the window, to a few seconds otherwise."
    )
    events: Events | None = Field(description="None for raw-ratio SLIs (events unknown) or without data.")
    sli: float | None = Field(description="Good share over the window.")
    error_ratio: float | None
    burn_rate: float | None = Field(description="Over the whole window: the share of the budget spent.")
    budget_minutes: float = Field(description="Window x budget_target, in minutes of full outage.")
    error_minutes: float | None = Field(description="Window x error_ratio: budget spent, in minutes.")
    budget_remaining: float | None = Field(description="1 - burn_rate; negative when overspent.")
    budget_remaining_minutes: float | None = Field(description="budget_minutes x budget_remaining.")
    policy: list[PolicyStepStatus] = Field(description="Every step of the SLO's error_budget_policy.")
    alert_windows: list[AlertWindowStatus]
    firing_alerts: list[str] = Field(description="The SLO's alerts firing in Prometheus (name (severity)).")


class BudgetReport(_Strict):
    format: Literal["reliability/slo-budget/v1"] = FORMAT
    evaluated_at: datetime
    timestamp: int = Field(description="evaluated_at in Unix seconds.")
    prometheus: str
    measured: Literal["server-side"] = "server-side"
    note: str = SERVER_SIDE_NOTE
    slos: list[SLOBudget]


def budget_json_schema() -> dict[str, Any]:
    schema = BudgetReport.model_json_schema()
    schema["title"] = "slo budget --json"
    return schema
