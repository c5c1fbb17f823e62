"""Recording rules of one SLO: SLI error ratios per window, the period SLI and the meta series."""

from __future__ import annotations

from typing import Any

from reliability.slo import templates as t
from reliability.slo.durations import format_duration
from reliability.slo.model import SLO, EventsSLI
from reliability.slo.render import number, selector, sloth_labels, with_window
from reliability.slo.windows import windows_to_record

Rule = dict[str, Any]


def base_window(slo: SLO) -> int:
    """The shortest window: the resolution of the period SLI and of the current burn rate."""
    return windows_to_record(slo.windows)[0] if slo.windows else 300


def sli_rules(slo: SLO) -> list[Rule]:
    labels = sloth_labels(slo)
    windows = sorted({*windows_to_record(slo.windows), base_window(slo)})
    rules: list[Rule] = []
    for w in windows:
        if isinstance(slo.sli, EventsSLI):
            expr = t.EVENTS_RATIO.format(
                error=with_window(slo.sli.error_query, w), total=with_window(slo.sli.total_query, w)
            )
        else:
            expr = t.RAW_RATIO.format(raw=with_window(slo.sli.error_ratio_query, w))
        rules.append(_record(f"slo:sli_error:ratio_rate{format_duration(w)}", expr, labels, w))
    base = base_window(slo)
    sel = selector(slo)
    period = format_duration(slo.period_s)
    if isinstance(slo.sli, EventsSLI):
        error = with_window(slo.sli.error_query, base)
        total = with_window(slo.sli.total_query, base)
        rules.append(
            _record(
                f"slo:sli_error_events:rate{format_duration(base)}",
                t.EVENTS_ERRORS.format(error=error, total=total),
                labels,
                base,
            )
        )
        rules.append(
            _record(
                f"slo:sli_total_events:rate{format_duration(base)}",
                t.EVENTS_TOTAL.format(total=total),
                labels,
                base,
            )
        )
        expr = t.PERIOD_WEIGHTED.format(base=format_duration(base), sel=sel, period=period)
    else:
        expr = t.PERIOD_MEAN.format(base=format_duration(base), sel=sel, period=period)
    rules.append(_record(f"slo:sli_error:ratio_rate{period}", expr, labels, slo.period_s))
    return rules


def meta_rules(slo: SLO) -> list[Rule]:
    labels = sloth_labels(slo)
    sel = selector(slo)
    objective = number(slo.objective_ratio)
    info = {
        **labels,
        "sloth_mode": slo.mode,
        "sloth_objective": number(slo.objective),
        "sloth_spec": slo.spec,
        "sloth_version": "reliability",
    }
    return [
        {"record": "slo:objective:ratio", "expr": f"vector({objective})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({number(slo.error_budget)})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({number(slo.period_days)})", "labels": labels},
        {
            "record": "slo:current_burn_rate:ratio",
            "expr": t.BURN_RATE.format(window=format_duration(base_window(slo)), sel=sel),
            "labels": labels,
        },
        {
            "record": "slo:period_burn_rate:ratio",
            "expr": t.BURN_RATE.format(window=format_duration(slo.period_s), sel=sel),
            "labels": labels,
        },
        {
            "record": "slo:period_error_budget_remaining:ratio",
            "expr": t.REMAINING.format(sel=sel),
            "labels": labels,
        },
        {"record": "sloth_slo_info", "expr": "vector(1)", "labels": info},
    ]


def _record(name: str, expr: str, labels: dict[str, str], window_s: int) -> Rule:
    return {"record": name, "expr": expr, "labels": {**labels, "sloth_window": format_duration(window_s)}}
