"""Where the chaos layer finds Prometheus, and single-number queries against it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from prometheus_api_client import PrometheusConnect

from reliability.chaos.state import resolve_state_file

PROM_ENV = "RELIABILITY_PROMETHEUS_URL"


def resolve_prometheus_url(url: str | None = None, configuration: dict[str, Any] | None = None) -> str:
    """Explicit, then the experiment's `prometheus_url`, then $RELIABILITY_PROMETHEUS_URL, then the
    lab's state file (the lab runs its own Prometheus)."""
    chosen = url or (configuration or {}).get("prometheus_url") or os.environ.get(PROM_ENV)
    if chosen:
        return str(chosen)
    state = resolve_state_file(None, configuration)
    try:
        data = json.loads(Path(state).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"no Prometheus URL given and lab state {state} unreadable: {exc}") from exc
    found = data.get("prometheus_url") or (data.get("prometheus") or {}).get("url")
    if not found:
        raise RuntimeError(f"no Prometheus URL given and none in lab state {state}")
    return str(found)


def connect(url: str) -> PrometheusConnect:
    return PrometheusConnect(url=url, disable_ssl=True)


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
