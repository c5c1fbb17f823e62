"""Error budgets against a live Prometheus: SLI over the period, budget left, burn per window,
firing alerts and the budget-policy step that applies (in the style of slo-generator)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from reliability.errors import HarnessError, InputError
from reliability.slo.durations import format_duration
from reliability.slo.model import SLO, WINDOW_PLACEHOLDER, EventsSLI, ServiceSLOs
from reliability.slo.windows import windows_to_record

TOKEN_ENV = "RELIABILITY_PROMETHEUS_BEARER_TOKEN"
HEADERS_ENV = "RELIABILITY_PROMETHEUS_HEADERS"


@dataclass
class WindowBurn:
    window: str
    error_ratio: float | None
    burn_rate: float | None


@dataclass
class PolicyVerdict:
    name: str
    window: str
    burn_rate_threshold: float
    burn_rate: float | None
    triggered: bool
    action: str


@dataclass
class BudgetReport:
    service: str
    slo: str
    objective: float
    period: str
    sli: float | None  # success ratio over the period
    error_budget_remaining: float | None
    burn_rates: list[WindowBurn] = field(default_factory=list)
    firing_alerts: list[dict[str, str]] = field(default_factory=list)
    policy: list[PolicyVerdict] = field(default_factory=list)
    policy_step: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def auth_headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    raw = os.environ.get(HEADERS_ENV)
    if raw:
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(HEADERS_ENV, f"not a JSON object: {exc.msg}") from exc
        if not isinstance(parsed, dict):
            raise InputError(HEADERS_ENV, "not a JSON object")
        headers.update({str(k): str(v) for k, v in parsed.items()})
    token = os.environ.get(TOKEN_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def burn_rate(error_ratio: float | None, objective_percent: Decimal) -> float | None:
    """Burn rate = error ratio / (1 - objective)."""
    if error_ratio is None:
        return None
    return error_ratio / float(1 - objective_percent / 100)


def policy_step(steps: list[PolicyVerdict]) -> str | None:
    """The first step, in the order written, whose burn-rate threshold is reached."""
    for step in steps:
        if step.triggered:
            return step.name
    return None


class _Client:
    def __init__(self, url: str) -> None:
        from prometheus_api_client import PrometheusConnect

        self.prom = PrometheusConnect(url=url, headers=auth_headers() or None, disable_ssl=False)

    def scalar(self, query: str) -> float | None:
        try:
            result = self.prom.custom_query(query)
        except Exception as exc:  # the client raises bare exceptions for HTTP and query errors
            raise HarnessError(f"Prometheus query failed: {exc}") from exc
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def vector(self, query: str) -> list[dict[str, Any]]:
        try:
            return list(self.prom.custom_query(query))
        except Exception as exc:
            raise HarnessError(f"Prometheus query failed: {exc}") from exc


def _error_ratio_query(slo: SLO, window: str) -> str:
    if isinstance(slo.sli, EventsSLI):
        err = slo.sli.error_query.replace(WINDOW_PLACEHOLDER, window)
        tot = slo.sli.total_query.replace(WINDOW_PLACEHOLDER, window)
        return f"(({err}) or (({tot}) * 0)) / (({tot}) > 0)"
    return slo.sli.error_ratio_query.replace(WINDOW_PLACEHOLDER, window)


def slo_budget(client: _Client, slo: SLO) -> BudgetReport:
    sel = f'sloth_id="{slo.id}"'
    period = format_duration(slo.period_s)
    remaining = client.scalar(f"slo:period_error_budget_remaining:ratio{{{sel}}}")
    period_err = client.scalar(f"slo:sli_error:ratio_rate{period}{{{sel}}}")
    report = BudgetReport(
        service=slo.service,
        slo=slo.name,
        objective=float(slo.objective),
        period=period,
        sli=None if period_err is None else 1 - period_err,
        error_budget_remaining=remaining,
    )
    for w in windows_to_record(slo.windows):
        wn = format_duration(w)
        ratio = client.scalar(f"slo:sli_error:ratio_rate{wn}{{{sel}}}")
        report.burn_rates.append(WindowBurn(wn, ratio, burn_rate(ratio, slo.objective)))
    if slo.alerting.name:
        for s in client.vector(f'ALERTS{{alertname="{slo.alerting.name}", {sel}, alertstate="firing"}}'):
            report.firing_alerts.append(
                {"alertname": slo.alerting.name, "severity": s["metric"].get("sloth_severity", "")}
            )
    for step in slo.policy:
        wn = format_duration(step.window_s)
        br = burn_rate(client.scalar(_error_ratio_query(slo, wn)), slo.objective)
        report.policy.append(
            PolicyVerdict(
                step.name, wn, float(step.burn_rate_threshold), br,
                br is not None and br >= float(step.burn_rate_threshold), step.action,
            )
        )
    report.policy_step = policy_step(report.policy)
    return report


def budgets(services: list[ServiceSLOs], prometheus_url: str) -> list[BudgetReport]:
    client = _Client(prometheus_url)
    return [slo_budget(client, slo) for svc in services for slo in svc.slos]
