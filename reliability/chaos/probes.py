"""Chaos Toolkit python probes on Prometheus and the service endpoint.

Written on prometheus-api-client because the chaostoolkit-prometheus extension is broken (its
`compute_mean` raises) and sends no auth headers. No probe names a platform metric: SLIs are read
from the SLO recording rules (`slo:sli_error:ratio_rate<window>{sloth_slo=...}`) and detection from
`ALERTS`, so the probes work on the lab and on a real cluster alike.

`alert_fired_during_fault` belongs in an experiment's steady-state hypothesis: before the method it
holds trivially (no fault in place), after the method it holds only if the alert fired while the
fault was in place - so plain `chaos run` deviates when detection fails, as a game day does.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import requests

from reliability.chaos.prom import connect, query_value, resolve_prometheus_url
from reliability.chaos.state import resolve_state_file

Configuration = dict[str, Any]


def query(query: str, prometheus_url: str | None = None, configuration: Configuration = None) -> float | None:
    """The value of a PromQL instant query (first sample), None when there is no data."""
    return query_value(connect(resolve_prometheus_url(prometheus_url, configuration)), query)


def sli_error_ratio_query(slo: str, window: str = "5s") -> str:
    return f'max(slo:sli_error:ratio_rate{window}{{sloth_slo="{slo}"}})'


def burn_rate_below(
    threshold: float,
    slo: str,
    objective: float,
    window: str = "5s",
    prometheus_url: str | None = None,
    configuration: Configuration = None,
) -> bool:
    """True when the SLO's error ratio over `window` / (1 - objective) is below `threshold`;
    no traffic (no sample) counts as healthy."""
    value = query(sli_error_ratio_query(slo, window), prometheus_url, configuration)
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


def _fault_since(state_file: str | None, configuration: Configuration) -> float | None:
    """When the oldest fault still recorded as active in the ledger was injected, or None."""
    from reliability.chaos.ledger import FaultLedger, ledger_for_state

    state = resolve_state_file(state_file, configuration)
    explicit = (configuration or {}).get("fault_ledger")
    ledger = FaultLedger(Path(explicit) if explicit else ledger_for_state(state))
    if not ledger.path.exists():
        return None
    active = ledger.active()
    return min((e.ts for e in active), default=None)


def alert_fired_during_fault(
    alertname: str,
    severity: str | None = None,
    prometheus_url: str | None = None,
    state_file: str | None = None,
    configuration: Configuration = None,
) -> bool:
    """True when no fault is in place (nothing to detect yet), or when `alertname` (of `severity`
    when given: page/critical or ticket/warning labels) has fired since the fault was injected."""
    since = _fault_since(state_file, configuration)
    if since is None:
        return True
    window = max(1, math.ceil(time.time() - since) + 1)
    return bool(query(_fired_within(alertname, severity, window), prometheus_url, configuration))


def _fired_within(alertname: str, severity: str | None, window_s: int) -> str:
    """PromQL: 1 if the alert (of the severity, as platform or SLO alerts label it) fired within the
    last `window_s` seconds."""
    base = f'ALERTS{{alertname="{alertname}",alertstate="firing"'
    if severity in ("page", "critical"):
        selected = f'({base},severity=~"page|critical"}} or {base},sloth_severity="page"}})'
    elif severity in ("ticket", "warning"):
        selected = f'({base},severity=~"ticket|warning"}} or {base},sloth_severity="ticket"}})'
    else:
        selected = base + "}"
    return f"max(max_over_time({selected}[{window_s}s:250ms]))"


def lab_endpoint(state_file: str | None = None, configuration: Configuration = None) -> str:
    state = resolve_state_file(state_file, configuration)
    data = json.loads(Path(state).read_text(encoding="utf-8"))
    endpoint = data.get("endpoint")
    if not endpoint:
        raise RuntimeError(f"lab state {state} has no endpoint")
    return str(endpoint)


def endpoint_healthy(
    url: str | None = None,
    path: str = "/health",
    timeout: float = 2.0,
    state_file: str | None = None,
    configuration: Configuration = None,
) -> bool:
    """True when the service endpoint (default: the lab's ingress) answers below 500."""
    base = url or (configuration or {}).get("endpoint") or lab_endpoint(state_file, configuration)
    try:
        return requests.get(base.rstrip("/") + path, timeout=timeout).status_code < 500
    except requests.RequestException:
        return False


def node_health_green(
    node: str,
    path: str = "/health",
    timeout: float = 2.0,
    state_file: str | None = None,
    configuration: Configuration = None,
) -> bool:
    """True when the lab node's own health endpoint answers 200 - what a load balancer's health
    check sees. A gray failure keeps it green while the node fails its users."""
    from reliability.lab.state import read_state

    state = read_state(resolve_state_file(state_file, configuration))
    found = next((n for n in state.nodes if n.name == node), None) if state is not None else None
    if found is None or not found.api_url:
        raise RuntimeError(f"no node {node!r} in the lab state")
    try:
        return requests.get(found.api_url + path, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False
