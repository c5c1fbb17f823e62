"""Time to detect: injection -> the first expected alert that *starts* firing after it."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from reliability.analysis._frames import with_ts

# Two samples of one alert further apart than this belong to two firing episodes. Prometheus
# evaluates every 1 s in the lab and writes a stale marker when an alert resolves, so a firing
# alert has a sample at every step of the range query.
MIN_EPISODE_GAP_S = 2.0
_NOT_LABELS = {"ts", "timestamp", "value", "alertstate", "__name__"}


def ttd(alerts: pd.DataFrame, inject_ts: float, expected: Iterable[str]) -> float | None:
    """Seconds from injection to the first firing episode of an expected alert that began at or
    after `inject_ts`; None if none did.

    An alert already firing when the fault went in (another incident, or the previous game day on
    the same target) does not detect this fault, however long it keeps firing; one that resolved
    and fires again does.
    """
    names = set(expected)
    if alerts.empty or not names or "alertname" not in alerts.columns:
        return None
    frame = with_ts(alerts)
    firing = frame[frame["alertname"].isin(names) & (frame["alertstate"] == "firing")]
    if firing.empty:
        return None
    gap = max(MIN_EPISODE_GAP_S, 2.5 * _step(frame))
    labels = sorted(c for c in firing.columns if c not in _NOT_LABELS)
    starts = []
    for _, series in firing.groupby(labels, dropna=False, sort=False):
        ts = series["ts"].astype(float)
        begins = ts[ts.diff().isna() | (ts.diff() > gap)]
        starts.extend(t for t in begins if t >= inject_ts)
    return min(starts) - inject_ts if starts else None


def _step(frame: pd.DataFrame) -> float:
    """The range query's step: the smallest spacing between samples."""
    diffs = frame["ts"].astype(float).drop_duplicates().diff().dropna()
    diffs = diffs[diffs > 0]
    return float(diffs.min()) if not diffs.empty else 0.0
