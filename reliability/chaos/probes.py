"""Chaos Toolkit python probes on Prometheus and the lab endpoint.

Written on prometheus-api-client because the chaostoolkit-prometheus extension is broken
(its `compute_mean` raises) and sends no auth headers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from reliability.chaos.prom import connect, query_value, resolve_prometheus_url
from reliability.chaos.state import resolve_state_file

Configuration = dict[str, Any]

ERROR_RATIO = (
    'sum(rate(inference_requests_total{{service="inference-api",code!~"2.."}}[{w}]))'
    ' / sum(rate(inference_requests_total{{service="inference-api"}}[{w}]))'
)


def error_ratio_query(window: str = "10s") -> str:
    return ERROR_RATIO.format(w=window)


def query(query: str, prometheus_url: str | None = None, configuration: Configuration = None) -> float | None:
    """The value of a PromQL instant query (first sample), None when there is no data."""
    return query_value(connect(resolve_prometheus_url(prometheus_url, configuration)), query)


def burn_rate_below(
    threshold: float,
    objective: float = 0.99,
    error_ratio: str | None = None,
    window: str = "10s",
    prometheus_url: str | None = None,
    configuration: Configuration = None,
) -> bool:
    """True when error ratio / (1 - objective) is below `threshold`; no traffic counts as healthy."""
    value = query(error_ratio or error_ratio_query(window), prometheus_url, configuration)
    if value is None:
        return True
    return value / (1.0 - objective) < threshold


def alert_firing(
    alertname: str, prometheus_url: str | None = None, configuration: Configuration = None
) -> bool:
    value = query(
        f'count(ALERTS{{alertname="{alertname}",alertstate="firing"}})', prometheus_url, configuration
    )
    return bool(value)


def lab_endpoint(state_file: str | None = None, configuration: Configuration = None) -> str:
    state = resolve_state_file(state_file, configuration)
    data = json.loads(Path(state).read_text(encoding="utf-8"))
    endpoint = data.get("endpoint") or (data.get("gateway") or {}).get("url")
    if not endpoint:
        raise RuntimeError(f"lab state {state} has no endpoint")
    return str(endpoint)


def endpoint_healthy(
    url: str | None = None,
    path: str = "/healthz",
    timeout: float = 2.0,
    state_file: str | None = None,
    configuration: Configuration = None,
) -> bool:
    """True when the service endpoint (default: the lab's global gateway) answers below 500."""
    base = url or (configuration or {}).get("endpoint") or lab_endpoint(state_file, configuration)
    try:
        return requests.get(base.rstrip("/") + path, timeout=timeout).status_code < 500
    except requests.RequestException:
        return False
