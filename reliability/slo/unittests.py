"""Generated promtool unit tests for compiled SLO rules.

For every SLO with alerts: a healthy series (no alert), a fast burn (page fires), a slow burn
(ticket only) and zero traffic (no alert, no sample). Event and raw SLIs are exercised at the
SLI level: the window ratios are fed as input series to the alert and period rules, because an
arbitrary user query cannot be inverted into raw metrics. Latency SLIs, whose queries we write
ourselves, are exercised end to end from raw histogram counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from reliability.slo.alerts import alert_rules
from reliability.slo.durations import fmt, format_duration
from reliability.slo.model import SLO, EventsSLI, ServiceSLOs
from reliability.slo.recording import meta_rules, slo_labels, sli_rules
from reliability.slo.windows import windows_to_record

STEP_S = 60


@dataclass(frozen=True)
class Case:
    name: str
    error_ratio: Decimal | None  # None: zero traffic
    expect: tuple[str, ...]  # severities expected to fire


def burn_cases(slo: SLO) -> list[Case]:
    """Error ratios chosen from the SLO's own factors, so the cases hold for any period/windows."""
    budget = slo.error_budget
    page = [w.factor for w in slo.windows if w.severity == "page"]
    ticket = [w.factor for w in slo.windows if w.severity == "ticket"]
    sev_on = [s for s, f in (("page", page), ("ticket", ticket)) if f and not _disabled(slo, s)]
    cases = [Case("healthy", min(page + ticket) * budget / 2, ()), Case("zero-traffic", None, ())]
    top = max(page + ticket) * Decimal("1.5") * budget
    if top < 1:
        cases.append(Case("fast-burn", top, tuple(sev_on)))
    if page and ticket and min(ticket) < min(page):
        slow = (min(ticket) + min(page)) / 2 * budget
        cases.append(Case("slow-burn", slow, tuple(s for s in sev_on if s == "ticket")))
    return cases


def _disabled(slo: SLO, severity: str) -> bool:
    return (slo.alerting.page if severity == "page" else slo.alerting.ticket).disable


def _eval_s(slo: SLO) -> int:
    return max(windows_to_record(slo.windows)) + 10 * STEP_S


def _samples(value: str, slo: SLO) -> str:
    return f"{value}x{_eval_s(slo) // STEP_S + 1}"


def _series(metric: str, labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


def _is_latency(slo: SLO) -> bool:
    return isinstance(slo.sli, EventsSLI) and "_bucket{le=" in slo.sli.error_query


def _latency_inputs(slo: SLO, ratio: Decimal | None) -> list[dict[str, Any]]:
    assert isinstance(slo.sli, EventsSLI)
    q = slo.sli.total_query  # sum(rate(METRIC_count{SEL}[...]))
    metric = q[len("sum(rate(") : q.index("_count{")]
    sel = q[q.index("_count{") + len("_count{") : q.index("}[")]
    le = slo.sli.error_query.split('le="', 1)[1].split('"', 1)[0]
    labels = dict(p.split("=", 1) for p in (s.strip() for s in sel.split(",")) if p)
    labels = {k.strip(): v.strip().strip('"') for k, v in labels.items()}
    per_step = Decimal(6000)
    total_inc = per_step if ratio is not None else Decimal(0)
    good_inc = total_inc * (1 - (ratio or Decimal(0)))
    return [
        {"series": _series(f"{metric}_count", labels), "values": _samples(f"0+{fmt(total_inc)}", slo)},
        {"series": _series(f"{metric}_bucket", {**labels, "le": le}), "values": _samples(f"0+{fmt(good_inc)}", slo)},
    ]


def _sli_inputs(slo: SLO, ratio: Decimal | None) -> list[dict[str, Any]]:
    base = slo_labels(slo)
    shortest = format_duration(windows_to_record(slo.windows)[0])
    if ratio is None:
        # No traffic: the SLI ratios have no samples at all; event rates are zero.
        out = []
    else:
        out = [
            {
                "series": _series(f"slo:sli_error:ratio_rate{format_duration(w)}", {**base, "sloth_window": format_duration(w)}),
                "values": _samples(fmt(ratio), slo),
            }
            for w in windows_to_record(slo.windows)
        ]
    if isinstance(slo.sli, EventsSLI):
        rate = Decimal(100) if ratio is not None else Decimal(0)
        wl = {**base, "sloth_window": shortest}
        out.append({"series": _series(f"slo:sli_error:events_rate{shortest}", wl), "values": _samples(fmt(rate * (ratio or 0)), slo)})
        out.append({"series": _series(f"slo:sli_total:events_rate{shortest}", wl), "values": _samples(fmt(rate), slo)})
    return out


def _expected_alerts(slo: SLO, severities: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for rule in alert_rules(slo):
        sev = rule["labels"]["sloth_severity"]
        if sev in severities:
            labels = {**{k: v for k, v in slo_labels(slo).items()}, **rule["labels"]}
            out.append({"exp_labels": labels})
    return out


def slo_test_rules(slo: SLO) -> dict[str, Any]:
    """The rules under test: everything for latency SLIs; all but the window ratios otherwise."""
    svc_rules = sli_rules(slo)
    if not _is_latency(slo):
        svc_rules = [r for r in svc_rules if r["record"].startswith("slo:sli_error:ratio_rate") and r["labels"]["sloth_window"] == format_duration(slo.period_s)]
    groups = [
        {"name": "sli", "rules": svc_rules},
        {"name": "meta", "rules": meta_rules(slo)},
    ]
    alerts = alert_rules(slo)
    if alerts:
        groups.append({"name": "alerts", "rules": alerts})
    return {"groups": groups}


def slo_test_file(slo: SLO, rule_file: str) -> dict[str, Any]:
    eval_s = _eval_s(slo)
    tests = []
    alertname = slo.alerting.name
    for case in burn_cases(slo):
        inputs = _latency_inputs(slo, case.error_ratio) if _is_latency(slo) else _sli_inputs(slo, case.error_ratio)
        test: dict[str, Any] = {"name": f"{slo.id}: {case.name}", "interval": f"{STEP_S}s", "input_series": inputs}
        if alertname and alert_rules(slo):
            test["alert_rule_test"] = [
                {"eval_time": f"{eval_s}s", "alertname": alertname, "exp_alerts": _expected_alerts(slo, case.expect)}
            ]
        if case.error_ratio is None:
            # Zero traffic: no sample at all (Sloth would record NaN here and poison the period SLI).
            period = format_duration(slo.period_s)
            test["promql_expr_test"] = [
                {"expr": f'slo:sli_error:ratio_rate{period}{{sloth_id="{slo.id}"}}', "eval_time": f"{eval_s}s", "exp_samples": []},
                {"expr": f'slo:current_burn_rate:ratio{{sloth_id="{slo.id}"}}', "eval_time": f"{eval_s}s", "exp_samples": []},
            ]
        tests.append(test)
    return {"rule_files": [rule_file], "evaluation_interval": f"{STEP_S}s", "tests": tests}


def write_unit_tests(services: list[ServiceSLOs], out_dir: Path) -> list[Path]:
    """One rule file and one test file per SLO; returns the test files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for svc in services:
        for slo in svc.slos:
            rules = out_dir / f"{slo.id}.rules.yaml"
            rules.write_text(yaml.safe_dump(slo_test_rules(slo), sort_keys=False))
            test = out_dir / f"{slo.id}.test.yaml"
            test.write_text(yaml.safe_dump(slo_test_file(slo, rules.name), sort_keys=False))
            files.append(test)
    return files
