"""What users saw before, during and after the fault window, from the per-second load stats.

Percentiles of a phase come from the phase's merged histograms (never an average of per-second
percentiles). A row covers the second [ts, ts + 1): the second the fault landed in belongs to
"during", as does the second it was removed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from reliability.analysis import histogram
from reliability.analysis._frames import with_ts


@dataclass(frozen=True)
class PhaseImpact:
    seconds: int
    requests: int
    failures: int
    error_ratio: float | None
    failed_seconds: int  # seconds with at least one failure
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    ttft_p99_ms: float | None = None
    itl_p95_ms: float | None = None
    itl_p99_ms: float | None = None
    judged: int = 0
    wrong: int = 0
    good: int | None = None  # goodput: requests that met every latency target (None: not measured)
    output_tokens: int = 0
    max_latency_ms: float | None = None


def split_phases(stats: pd.DataFrame, fault_start: float, fault_end: float) -> dict[str, pd.DataFrame]:
    frame = with_ts(stats)
    ends = frame["ts"] + 1.0
    return {
        "before": frame[ends <= fault_start],
        "during": frame[(ends > fault_start) & (frame["ts"] < fault_end)],
        "after": frame[frame["ts"] >= fault_end],
    }


def impact(stats: pd.DataFrame, fault_start: float, fault_end: float) -> dict[str, PhaseImpact]:
    return {name: phase_impact(part) for name, part in split_phases(stats, fault_start, fault_end).items()}


def _sum(part: pd.DataFrame, column: str) -> int:
    return int(part[column].fillna(0).sum()) if column in part and not part.empty else 0


def _hist(part: pd.DataFrame, column: str) -> dict[float, int]:
    return histogram.merge(part[column]) if column in part else {}


def phase_impact(part: pd.DataFrame) -> PhaseImpact:
    requests, failures = _sum(part, "requests"), _sum(part, "failures")
    e2e, ttft, itl = _hist(part, "e2e_ms"), _hist(part, "ttft_ms"), _hist(part, "itl_ms")
    good = _sum(part, "good") if "good" in part and part["good"].notna().any() else None
    failed_seconds = int((part["failures"].fillna(0) > 0).sum()) if "failures" in part else 0
    return PhaseImpact(
        seconds=len(part),
        requests=requests,
        failures=failures,
        error_ratio=failures / requests if requests else None,
        failed_seconds=failed_seconds,
        p50_ms=histogram.percentile(e2e, 0.50),
        p95_ms=histogram.percentile(e2e, 0.95),
        p99_ms=histogram.percentile(e2e, 0.99),
        ttft_p50_ms=histogram.percentile(ttft, 0.50),
        ttft_p95_ms=histogram.percentile(ttft, 0.95),
        ttft_p99_ms=histogram.percentile(ttft, 0.99),
        itl_p95_ms=histogram.percentile(itl, 0.95),
        itl_p99_ms=histogram.percentile(itl, 0.99),
        judged=_sum(part, "judged"),
        wrong=_sum(part, "wrong"),
        good=good,
        output_tokens=_sum(part, "output_tokens"),
        max_latency_ms=max(e2e) if e2e else None,
    )
