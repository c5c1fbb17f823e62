"""Error-budget arithmetic (docs: /shared/DESIGN.md, "Definitions")."""

from __future__ import annotations

import pandas as pd


def burn_rate(error_ratio: float, objective: float) -> float:
    """How many times faster than sustainable the budget burns: error ratio / (1 - objective)."""
    if not 0 < objective < 1:
        raise ValueError(f"objective must be in (0, 1), got {objective}")
    return error_ratio / (1.0 - objective)


def budget_used(error_ratio: float, objective: float, window_s: float, period_s: float) -> float:
    """Share of the period's budget a window at this error ratio consumes."""
    return burn_rate(error_ratio, objective) * window_s / period_s


def budget_spent(
    bad_events: float, total_events: float, duration_s: float, objective: float, period_s: float
) -> float | None:
    """Bad events of the run / bad events the SLO allows over its whole period at the observed rate.

    None when nothing was counted: with no event rate there is no budget to compare against.
    """
    if total_events <= 0 or duration_s <= 0:
        return None
    allowed = (total_events / duration_s) * period_s * (1.0 - objective)
    return bad_events / allowed


def budget_spent_over_time(seconds: pd.DataFrame, objective: float, period_s: float) -> pd.Series | None:
    """Error budget spent by the end of each second of the run, charged exactly as the whole run
    is (same event rate and span), so the last value is the run's budget spent. `seconds` has one
    row per second with `ts`, `total` and `bad` events of one SLI (`analysis.sli.per_second`)."""
    if seconds.empty:
        return None
    span = float(seconds["ts"].max() - seconds["ts"].min()) + 1.0
    total = float(seconds["total"].sum())
    if total <= 0:
        return None
    bad = seconds["bad"].astype(float).fillna(0.0).cumsum()
    return bad.map(lambda b: budget_spent(float(b), total, span, objective, period_s)).astype(float)
