"""Pulling what Prometheus saw during the run into `series/*.csv` (long format: one row per sample).

Long format (`timestamp`, one column per label, `value`) keeps every label set without knowing
them in advance and loads straight into a pandas frame for the analysis.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prometheus_api_client import PrometheusConnect

from reliability.files import write_atomic

# The rate window of the per-region and quality series: Prometheus' view of the SLI trails the load
# generator's by about this much.
RATE_WINDOW_S = 5

# name -> PromQL. SLI recording rules follow Sloth's names (slo:sli_error:ratio_rate<window>).
SERIES: dict[str, str] = {
    "alerts": "ALERTS",
    "sli_error_ratio": '{__name__=~"slo:sli_error:ratio_rate.*"}',
    "requests_by_region": (
        f'sum by (region, code) (rate(inference_requests_total{{service="inference-api"}}[{RATE_WINDOW_S}s]))'
    ),
    "latency_p99": (
        "histogram_quantile(0.99, sum by (le) "
        '(rate(inference_request_duration_seconds_bucket{service="inference-api"}[5s])))'
    ),
    "canary": (
        'sum by (region, outcome) (rate(inference_canary_predictions_total{service="inference-api"}[5s]))'
    ),
    "gpu_up": "gpu_up",
    # Serving capacity: GPU nodes passing their region gateway's readiness check, fleet-wide.
    "ready_nodes": "sum(region_gateway_ready_nodes)",
    "store_role": "store_role",
    "store_last_applied_seq": "store_last_applied_seq",
}


# Series the measurements are read from at a finer step than the 1 s scrape/evaluation interval:
# a sample is then seen within 0.25 s of when Prometheus recorded it, not up to 1 s later.
FINE_STEP_S = {"alerts": 0.25, "ready_nodes": 0.25}


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


def pull_series(prometheus_url: str, out_dir: Path, start: float, end: float) -> dict[str, Path]:
    """Write every series of `SERIES` to `out_dir/<name>.csv`; a failing query is skipped, not fatal
    (a run's verdicts must not be lost to one bad query), and noted in the returned map's absence."""
    prom = PrometheusConnect(url=prometheus_url, disable_ssl=True)
    written: dict[str, Path] = {}
    for name, query in SERIES.items():
        try:
            frame = range_frame(prom, query, start, end, FINE_STEP_S.get(name, 1.0))
        except Exception:
            continue
        path = Path(out_dir) / f"{name}.csv"
        write_atomic(path, frame.to_csv(index=False))
        written[name] = path
    return written
