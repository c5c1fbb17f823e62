"""What users saw before, during and after the fault window, from the per-second load stats."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reliability.analysis._frames import with_ts


@dataclass(frozen=True)
class PhaseImpact:
    requests: int
    failures: int
    error_ratio: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


def impact(stats: pd.DataFrame, fault_start: float, fault_end: float) -> dict[str, PhaseImpact]:
    """Totals per phase. Latency percentiles of a phase are the request-weighted mean of the
    per-second percentiles (the raw samples are not kept), and the worst second for p99.

    A row covers the second [ts, ts + 1). The second the fault landed in belongs to "during"
    (its failures are the fault's, not the baseline's), as does the second it was removed in."""
    frame = with_ts(stats)
    ends = frame["ts"] + 1.0
    phases = {
        "before": frame[ends <= fault_start],
        "during": frame[(ends > fault_start) & (frame["ts"] < fault_end)],
        "after": frame[frame["ts"] >= fault_end],
    }
    return {name: _phase(part) for name, part in phases.items()}


def _phase(part: pd.DataFrame) -> PhaseImpact:
    requests = int(part["requests"].sum()) if not part.empty else 0
    failures = int(part["failures"].sum()) if not part.empty else 0
    return PhaseImpact(
        requests=requests,
        failures=failures,
        error_ratio=failures / requests if requests else None,
        p50_ms=_weighted(part, "p50_ms"),
        p95_ms=_weighted(part, "p95_ms"),
        p99_ms=float(part["p99_ms"].max()) if "p99_ms" in part and part["p99_ms"].notna().any() else None,
    )


def _weighted(part: pd.DataFrame, column: str) -> float | None:
    if column not in part:
        return None
    rows = part[part[column].notna() & (part["requests"] > 0)]
    if rows.empty:
        return None
    return float((rows[column] * rows["requests"]).sum() / rows["requests"].sum())
