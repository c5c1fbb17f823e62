"""Recovery time objective, measured: injection -> SLI back within objective for the hold period."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from reliability.analysis._frames import with_ts

Status = Literal["recovered", "no_impact", "unrecovered"]


@dataclass(frozen=True)
class Recovery:
    status: Status
    rto_seconds: float | None
    impact_start_ts: float | None = None
    recovered_ts: float | None = None


def rto(
    stats: pd.DataFrame, inject_ts: float, objective: float, hold_s: float, end_ts: float | None = None
) -> Recovery:
    """RTO from the per-second load stats (`ts, requests, failures`).

    A second is bad when its success ratio is below `objective`; seconds without requests are
    bad too (no traffic served is not availability). With no bad second after injection the fault
    had no visible impact - reported as such, never as RTO 0.
    """
    frame = with_ts(stats)
    frame = frame[frame["ts"] >= inject_ts]
    if end_ts is not None:
        frame = frame[frame["ts"] <= end_ts]
    requests = frame["requests"].astype(float)
    success = (requests - frame["failures"].astype(float)) / requests.where(requests > 0)
    good = (success >= objective).fillna(False)
    last_failure = frame["last_failure_ts"].astype(float).to_numpy() if "last_failure_ts" in frame else None
    return _recovery(
        frame["ts"].to_numpy(dtype=float), good.to_numpy(dtype=bool), inject_ts, hold_s, last_failure
    )


def rto_from_series(
    series: pd.DataFrame, inject_ts: float, max_error_ratio: float, hold_s: float
) -> Recovery:
    """The same over a Prometheus error-ratio series (`ts`/`timestamp`, `value`); NaN counts as bad."""
    frame = with_ts(series)
    frame = frame[frame["ts"] >= inject_ts]
    good = (frame["value"].astype(float) <= max_error_ratio).to_numpy(dtype=bool)
    return _recovery(frame["ts"].to_numpy(dtype=float), good, inject_ts, hold_s)


def capacity_rto(series: pd.DataFrame, inject_ts: float, hold_s: float) -> Recovery:
    """Time from injection until serving capacity (`value`, e.g. ready GPU nodes) is back at its level
    just before the injection and stays there for `hold_s`. The client-visible RTO can be "no
    impact" while a lost node is still being replaced; this is the capacity side of recovery."""
    frame = with_ts(series).sort_values("ts")
    before = frame[frame["ts"] < inject_ts]["value"].astype(float)
    if before.empty:
        return Recovery("no_impact", None)
    baseline = float(before.iloc[-3:].max())
    after = frame[frame["ts"] >= inject_ts]
    good = (after["value"].astype(float) >= baseline).to_numpy(dtype=bool)
    return _recovery(after["ts"].to_numpy(dtype=float), good, inject_ts, hold_s)


def _recovery(
    ts: np.ndarray, good: np.ndarray, inject_ts: float, hold_s: float, last_failure: np.ndarray | None = None
) -> Recovery:
    """Over samples at `ts` (a sample covers [ts, next ts)). Recovery is the start of the first good
    run lasting `hold_s` - or, when known, the last failure inside the bad sample before it, which
    places recovery within the second instead of at the next second's boundary."""
    bad_idx = np.flatnonzero(~good)
    if bad_idx.size == 0:
        return Recovery("no_impact", None)
    impact_start = float(ts[bad_idx[0]])
    # Candidates: each good sample that ends a bad stretch; the first whose good run lasts hold_s wins.
    starts = np.flatnonzero(good & np.r_[True, ~good[:-1]])
    for start in starts[starts > bad_idx[0]]:
        later_bad = bad_idx[bad_idx > start]
        run_end = ts[later_bad[0]] if later_bad.size else ts[-1]
        if run_end - ts[start] >= hold_s:
            recovered = float(ts[start])
            if last_failure is not None and start > 0 and np.isfinite(last_failure[start - 1]):
                recovered = min(recovered, max(float(last_failure[start - 1]), float(ts[start - 1])))
            return Recovery("recovered", recovered - inject_ts, impact_start, recovered)
    return Recovery("unrecovered", None, impact_start)
