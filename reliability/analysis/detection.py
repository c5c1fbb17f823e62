"""Time to detect: injection -> first firing sample of an expected alert."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from reliability.analysis._frames import with_ts


def ttd(alerts: pd.DataFrame, inject_ts: float, expected: Iterable[str]) -> float | None:
    """Seconds from injection to the first `firing` sample of any expected alert; None if none fired.

    Alerts already firing before the injection do not count as detection of this fault, so only
    samples at or after `inject_ts` are considered.
    """
    names = set(expected)
    if alerts.empty or not names:
        return None
    frame = with_ts(alerts)
    firing = frame[
        frame["alertname"].isin(names) & (frame["alertstate"] == "firing") & (frame["ts"] >= inject_ts)
    ]
    if firing.empty:
        return None
    return float(firing["ts"].iloc[0]) - inject_ts
