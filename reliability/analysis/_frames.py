"""Column normalisation shared by the analysis functions."""

from __future__ import annotations

import pandas as pd


def with_ts(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted by `ts`; Prometheus frames name it `timestamp`."""
    if "ts" not in frame.columns and "timestamp" in frame.columns:
        frame = frame.rename(columns={"timestamp": "ts"})
    if "ts" not in frame.columns:
        raise ValueError("frame has no 'ts' column")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)
