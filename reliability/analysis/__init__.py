"""Game-day analysis: pure functions over pandas frames, no I/O.

Public API (timestamps are epoch seconds floats, column `ts`):
- `burn_rate(error_ratio, objective) -> float`; `budget_used(error_ratio, objective, window_s, period_s)`.
- `budget_spent(bad_events, total_events, duration_s, objective, period_s) -> float | None`:
  bad events of the run / bad events the SLO allows over its whole period at the observed request rate.
- `budget_spent_over_time(stats, objective, period_s) -> Series | None`: the same, second by second
  (its last value is the run's `budget_spent`).
- `ttd(alerts, inject_ts, expected) -> float | None`: `alerts` is an ALERTS-style frame with columns
  `ts, alertname, alertstate` (the Prometheus `timestamp` column is accepted too); None = never fired.
- `rto(stats, inject_ts, objective, hold_s, end_ts=None) -> Recovery`: `stats` is the load generator's
  per-second frame (`ts, requests, failures`); `Recovery.status` is "recovered" | "no_impact" |
  "unrecovered", `Recovery.rto_seconds` is set only for "recovered".
- `rto_from_series(series, inject_ts, max_error_ratio, hold_s)`: the same over a Prometheus error-ratio
  series (`ts, value`), for the cross-check.
- `rpo(writes, fault_ts) -> Rpo`: `writes` from the canary (`seq, ts, acked, survived`).
- `impact(stats, fault_start, fault_end) -> dict[str, PhaseImpact]` (keys before/during/after).
- `verdicts(rto_max=, rpo_max=, ttd_max=, max_budget_spent=, <measurements>) -> list[ObjectiveResult]`
  (name, target, measured, unit, verdict "pass"|"fail"|"no_data", detail); `all_passed(results)`.
"""

from reliability.analysis.budget import budget_spent, budget_spent_over_time, budget_used, burn_rate
from reliability.analysis.detection import ttd
from reliability.analysis.impact import PhaseImpact, impact
from reliability.analysis.objectives import ObjectiveResult, all_passed, verdicts
from reliability.analysis.recovery import Recovery, capacity_rto, rto, rto_from_series
from reliability.analysis.rpo import Rpo, rpo

__all__ = [
    "ObjectiveResult",
    "PhaseImpact",
    "Recovery",
    "Rpo",
    "all_passed",
    "budget_spent",
    "budget_spent_over_time",
    "budget_used",
    "burn_rate",
    "capacity_rto",
    "impact",
    "rpo",
    "rto",
    "rto_from_series",
    "ttd",
    "verdicts",
]
