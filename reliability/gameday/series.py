"""Pulling what Prometheus saw during the run into `series/*.csv` (long format: one row per sample).

Which series, and their PromQL, come from the target's signals profile (`reliability.signals`), so
the harness reads the lab and a real cluster the same way. Long format (`timestamp`, one column per
label, `value`) keeps every label set without knowing them in advance and loads straight into a
pandas frame for the analysis.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prometheus_api_client import PrometheusConnect

from reliability.files import write_atomic
from reliability.signals import SignalsProfile, load_profile


def range_frame(
    prom: PrometheusConnect, query: str, start: float, end: float, step: float = 1.0
) -> pd.DataFrame:
    """A range query as a long frame; empty frame (with `timestamp`, `value`) when nothing matched."""
    # Prometheus refuses more than 11000 points per series: widen the step on long runs.
    step = max(step, math.ceil((end - start) / 10) / 1000)
    result = prom.custom_query_range(
        query=query,
        start_time=datetime.fromtimestamp(start, tz=UTC),
        end_time=datetime.fromtimestamp(end, tz=UTC),
        step=f"{step:g}",  # seconds as a float: durations like "0.25s" do not parse
    )
    rows = []
    for series in result:
        labels = dict(series.get("metric", {}))
        for ts, value in series.get("values", []):
            rows.append({"timestamp": float(ts), **labels, "value": float(value)})
    if not rows:
        return pd.DataFrame({"timestamp": pd.Series(dtype=float), "value": pd.Series(dtype=float)})
    return pd.DataFrame(rows)


def pull_series(
    prometheus_url: str,
    out_dir: Path,
    start: float,
    end: float,
    profile: SignalsProfile | None = None,
    headers: dict[str, str] | None = None,
) -> list[str]:
    """Write every series of the profile to `out_dir/<name>.csv`; a failing query is skipped, not
    fatal (a run's verdicts must not be lost to one bad query). Returns the names that failed."""
    profile = profile or load_profile()
    from reliability.files import write_json_atomic

    # The range the samples cover: an alert sampled up to its end was still firing when pulled.
    write_json_atomic(Path(out_dir) / "range.json", {"start": start, "end": end})
    prom = PrometheusConnect(url=prometheus_url, disable_ssl=True, headers=headers)
    failed = []
    for name, spec in profile.series.items():
        try:
            frame = range_frame(prom, spec.query, start, end, spec.step)
        except Exception:
            failed.append(name)
            continue
        write_atomic(Path(out_dir) / f"{name}.csv", frame.to_csv(index=False))
    return failed
