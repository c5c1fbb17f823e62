"""`slo budget`: error-budget status of each SLO, read from a live Prometheus."""

from __future__ import annotations

import json
import math
import os
from typing import Any

from reliability.errors import HarnessError, InputError
from reliability.slo import templates as t
from reliability.slo.compiler import all_slos
from reliability.slo.durations import format_duration
from reliability.slo.model import SLO, EventsSLI, ServiceSLOs
from reliability.slo.render import number, selector, with_window

TOKEN_ENV = "RELIABILITY_PROMETHEUS_BEARER_TOKEN"
HEADERS_ENV = "RELIABILITY_PROMETHEUS_HEADERS"


def auth_headers(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ) if env is None else env
    headers: dict[str, str] = {}
    if env.get(HEADERS_ENV):
        try:
            extra = json.loads(env[HEADERS_ENV])
        except json.JSONDecodeError as exc:
            raise InputError(HEADERS_ENV, f"not valid JSON: {exc.msg}") from exc
        if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
            raise InputError(HEADERS_ENV, "expected a JSON object of string header values")
        headers.update(extra)
    if env.get(TOKEN_ENV):
        headers["Authorization"] = f"Bearer {env[TOKEN_ENV]}"
    return headers


def ratio_query(slo: SLO, window_s: int) -> str:
    """The error ratio over any window, straight from the SLI (policy windows need not be recorded)."""
    if isinstance(slo.sli, EventsSLI):
        return t.EVENTS_RATIO.format(
            error=with_window(slo.sli.error_query, window_s), total=with_window(slo.sli.total_query, window_s)
        )
    return t.RAW_RATIO.format(raw=with_window(slo.sli.error_ratio_query, window_s))


class _Client:
    def __init__(self, url: str) -> None:
        from prometheus_api_client import PrometheusConnect

        self.prom = PrometheusConnect(url=url, headers=auth_headers(), disable_ssl=False)

    def scalar(self, query: str) -> float | None:
        """The first sample's value, None when the query has no sample (or NaN)."""
        try:
            result = self.prom.custom_query(query)
        except Exception as exc:  # the client raises several unrelated types for one cause
            raise HarnessError(f"Prometheus query failed: {exc}") from exc
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def alerts(self, slo: SLO) -> list[str]:
        if not slo.alerting.name:
            return []
        q = f'ALERTS{{alertname="{slo.alerting.name}", alertstate="firing", sloth_id="{slo.id}"}}'
        try:
            result = self.prom.custom_query(q)
        except Exception as exc:
            raise HarnessError(f"Prometheus query failed: {exc}") from exc
        return sorted({f"{slo.alerting.name} ({r['metric'].get('sloth_severity', '?')})" for r in result})


def slo_status(slo: SLO, client: _Client) -> dict[str, Any]:
    sel = "{" + selector(slo) + "}"
    budget = float(slo.error_budget)
    period_ratio = client.scalar(f"slo:sli_error:ratio_rate{format_duration(slo.period_s)}{sel}")
    burn: dict[str, float | None] = {}
    for w in sorted({w.short_s for w in slo.windows} | {w.long_s for w in slo.windows}):
        r = client.scalar(f"slo:sli_error:ratio_rate{format_duration(w)}{sel}")
        burn[format_duration(w)] = None if r is None else r / budget
    step = None
    for p in slo.policy:
        r = client.scalar(ratio_query(slo, p.window_s))
        if r is not None and r / budget >= float(p.burn_rate_threshold):
            step = {
                "name": p.name,
                "window": format_duration(p.window_s),
                "action": p.action,
                "burn_rate": r / budget,
            }
            break
    return {
        "service": slo.service,
        "slo": slo.name,
        "objective": float(number(slo.objective)),
        "period": format_duration(slo.period_s),
        "sli": None if period_ratio is None else 1 - period_ratio,
        "error_budget_remaining": None if period_ratio is None else 1 - period_ratio / budget,
        "burn_rates": burn,
        "firing_alerts": client.alerts(slo),
        "policy_step": step,
    }


def budget_report(services: list[ServiceSLOs], prometheus_url: str) -> list[dict[str, Any]]:
    client = _Client(prometheus_url)
    return [slo_status(slo, client) for slo in all_slos(services)]


def _pct(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x * 100:.{digits}f}%"


def render_table(report: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="SLO error budgets")
    for col in ("SLO", "objective", "SLI (period)", "budget left", "burn rates", "firing", "policy step"):
        table.add_column(col)
    for row in report:
        burns = " ".join(f"{w}={'-' if b is None else f'{b:.2f}'}" for w, b in row["burn_rates"].items())
        step = row["policy_step"]
        table.add_row(
            f"{row['service']}/{row['slo']}",
            f"{row['objective']}% / {row['period']}",
            _pct(row["sli"]),
            _pct(row["error_budget_remaining"], 1),
            burns,
            ", ".join(row["firing_alerts"]) or "-",
            "-" if step is None else f"{step['name']}: {step['action']}",
        )
    Console().print(table)
