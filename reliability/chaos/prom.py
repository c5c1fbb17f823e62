"""Where the chaos layer finds Prometheus and its auth, and single-number queries against it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from prometheus_api_client import PrometheusConnect

from reliability.chaos.state import resolve_state_file

PROM_ENV = "RELIABILITY_PROMETHEUS_URL"


def _state(configuration: dict[str, Any] | None) -> tuple[Path, dict[str, Any] | None]:
    state = resolve_state_file(None, configuration)
    try:
        return state, json.loads(Path(state).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return state, None


def resolve_prometheus_url(url: str | None = None, configuration: dict[str, Any] | None = None) -> str:
    """Explicit, then the experiment's `prometheus_url`, then $RELIABILITY_PROMETHEUS_URL, then the
    target's state file (the lab runs its own Prometheus; a Kubernetes target names its own)."""
    chosen = url or (configuration or {}).get("prometheus_url") or os.environ.get(PROM_ENV)
    if chosen:
        return str(chosen)
    state, data = _state(configuration)
    if data is None:
        raise RuntimeError(f"no Prometheus URL given and target state {state} unreadable")
    found = data.get("prometheus_url") or (data.get("prometheus") or {}).get("url")
    if not found:
        raise RuntimeError(f"no Prometheus URL given and none in target state {state}")
    return str(found)


def prometheus_headers(configuration: dict[str, Any] | None = None) -> dict[str, str]:
    """Auth headers for Prometheus: $RELIABILITY_PROMETHEUS_HEADERS / $RELIABILITY_PROMETHEUS_BEARER_TOKEN
    when set, else what a Kubernetes target's state file names (the *names* of environment variables:
    no secret is ever written to a file, so a chaos child inherits the values from the harness)."""
    from reliability.slo.budget import auth_headers

    headers = auth_headers()
    if headers:
        return headers
    _, data = _state(configuration)
    if not data or data.get("kind") != "kubernetes":
        return {}
    from reliability.k8s.target import PrometheusSpec

    return PrometheusSpec.model_validate((data.get("target") or {}).get("prometheus") or {}).headers()


def connect(
    url: str, headers: dict[str, str] | None = None, configuration: dict[str, Any] | None = None
) -> PrometheusConnect:
    """A client for `url`; `headers` None: the auth `prometheus_headers` finds."""
    auth = prometheus_headers(configuration) if headers is None else headers
    return PrometheusConnect(url=url, disable_ssl=True, headers=auth or None)


def query_value(prom: PrometheusConnect, query: str) -> float | None:
    """The first sample of an instant query as a float; None when the result is empty or NaN."""
    result = prom.custom_query(query=query)
    if not result:
        return None
    value = result[0].get("value")
    if value is None:
        return None
    out = float(value[1])
    return None if math.isnan(out) else out
