"""Multi-window multi-burn-rate alert rules of one SLO (page and ticket)."""

from __future__ import annotations

from typing import Any

from reliability.errors import InputError
from reliability.slo import templates as t
from reliability.slo.durations import format_duration
from reliability.slo.model import SLO, AlertSpec, AlertWindow, EventsSLI
from reliability.slo.render import number, runbook_url, selector, with_window

Rule = dict[str, Any]
SEVERITIES = ("page", "ticket")


def alert_expr(slo: SLO, windows: list[AlertWindow]) -> str:
    sel = selector(slo)
    budget = number(slo.error_budget)
    pairs = []
    for w in windows:
        factor = number(w.factor)
        gate = ""
        if slo.min_request_rate is not None and isinstance(slo.sli, EventsSLI):
            gate = t.GATE.format(
                total=with_window(slo.sli.total_query, w.long_s), min_rate=number(slo.min_request_rate)
            )
        pairs.append(
            t.PAIR.format(
                short_check=t.WINDOW_CHECK.format(
                    window=format_duration(w.short_s), sel=sel, factor=factor, budget=budget
                ),
                long_check=t.WINDOW_CHECK.format(
                    window=format_duration(w.long_s), sel=sel, factor=factor, budget=budget
                ),
                gate=gate,
            )
        )
    return "\nor\n".join(pairs)


def alert_rules(slo: SLO, runbook_base_url: str) -> list[Rule]:
    spec_of: dict[str, AlertSpec] = {"page": slo.alerting.page, "ticket": slo.alerting.ticket}
    rules: list[Rule] = []
    for severity in SEVERITIES:
        spec = spec_of[severity]
        windows = [w for w in slo.windows if w.severity == severity]
        if spec.disable or not windows:
            continue
        if not slo.alerting.name:
            raise InputError(
                f"{slo.source}: slos.{slo.name}.alerting.name",
                f"an alert name is required unless {severity}_alert.disable is true",
            )
        annotations = {
            "summary": t.DEFAULT_SUMMARY,
            "title": t.DEFAULT_TITLE.format(severity=severity),
            **slo.alerting.annotations,
            **spec.annotations,
        }
        if slo.runbook and "runbook_url" not in annotations:
            annotations["runbook_url"] = runbook_url(slo.runbook, runbook_base_url)
        rules.append(
            {
                "alert": slo.alerting.name,
                "expr": alert_expr(slo, windows),
                "labels": {**slo.alerting.labels, **spec.labels, "sloth_severity": severity},
                "annotations": dict(sorted(annotations.items())),
            }
        )
    return rules
