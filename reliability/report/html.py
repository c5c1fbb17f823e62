"""`report.html`: one self-contained file (plotly JS inlined) - opens offline, attaches to a ticket."""

from __future__ import annotations

import html as html_escape
from datetime import UTC, datetime

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reliability.analysis import budget_spent_over_time
from reliability.report.links import RunbookLinks
from reliability.report.model import RunResult
from reliability.report.summary import fmt, pct, silent_alerts, summary_sentence, with_unit
from reliability.scenario import Scenario


def _dt(ts: pd.Series | float) -> pd.Series | datetime:
    if isinstance(ts, pd.Series):
        return pd.to_datetime(ts, unit="s", utc=True)
    return datetime.fromtimestamp(ts, tz=UTC)


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def budget_title(r: RunResult) -> str:
    """The budget chart's title, naming the SLO it is charged against (as result.json's `budget_spent`)."""
    if r.budget_objective is None or r.slo_period_s is None:
        return "Error budget spent"
    return f"Error budget spent ({r.budget_objective * 100:g}% over {_period(r.slo_period_s)})"


def build_figure(r: RunResult, load: pd.DataFrame, by_region: pd.DataFrame | None) -> go.Figure:
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("Error ratio", "Latency (ms)", "Traffic per region (req/s)", budget_title(r)),
    )
    if not load.empty:
        x = _dt(load["ts"])
        ratio = load["failures"] / load["requests"].where(load["requests"] > 0)
        fig.add_trace(go.Scatter(x=x, y=ratio, name="error ratio", mode="lines"), row=1, col=1)
        for col in ("p50_ms", "p95_ms", "p99_ms"):
            fig.add_trace(
                go.Scatter(x=x, y=load[col], name=col.removesuffix("_ms"), mode="lines"), row=2, col=1
            )
        spent = (
            budget_spent_over_time(load, r.budget_objective, r.slo_period_s)
            if r.budget_objective is not None and r.slo_period_s is not None
            else None
        )
        if spent is not None:
            fig.add_trace(go.Scatter(x=x, y=spent, name="budget spent", mode="lines"), row=4, col=1)
    if by_region is not None and not by_region.empty and "region" in by_region:
        per = by_region.groupby(["timestamp", "region"])["value"].sum().reset_index()
        for region, part in per.groupby("region"):
            fig.add_trace(
                go.Scatter(x=_dt(part["timestamp"]), y=part["value"], name=f"region {region}", mode="lines"),
                row=3,
                col=1,
            )
    if r.inject_ts is not None and r.fault_end_ts is not None:
        fig.add_vrect(
            x0=_dt(r.inject_ts),
            x1=_dt(r.fault_end_ts),
            fillcolor="red",
            opacity=0.12,
            line_width=0,
            annotation_text="fault",
            annotation_position="top left",
        )
    for ts, label, color in (
        (r.inject_ts, "inject", "red"),
        (r.detect_ts, "detect", "orange"),
        (r.recovered_ts, "recover", "green"),
    ):
        if ts is not None:
            # add_vline's annotation cannot place datetimes on shared axes, so the label is a trace name.
            fig.add_vline(x=_dt(ts).timestamp() * 1000, line_color=color, line_dash="dash")
            fig.add_trace(
                go.Scatter(
                    x=[_dt(ts)] * 2, y=[0, 0], name=label, mode="lines", line={"color": color, "dash": "dash"}
                ),
                row=1,
                col=1,
            )
    fig.update_layout(height=1100, title_text=f"Game day: {r.scenario}", hovermode="x unified")
    return fig


def _e(value: object) -> str:
    return html_escape.escape(str(value), quote=True)


def _objectives(r: RunResult) -> str:
    rows = "".join(
        f"<tr><td>{_e(o.name)}</td><td>{_e(with_unit(o.target, o.unit, 'g'))}</td>"
        f"<td>{_e(with_unit(o.measured, o.unit, '.3f'))}</td>"
        f"<td class='{_e(o.verdict)}'>{_e(o.verdict)}</td><td>{_e(o.detail)}</td></tr>\n"
        for o in r.objectives
    )
    return (
        "<h2>Objectives</h2>\n<table id='objectives'>\n"
        "<tr><th>Objective</th><th>Target</th><th>Measured</th><th>Verdict</th><th>Detail</th></tr>\n"
        f"{rows}</table>"
    )


def _alerts(r: RunResult, sc: Scenario, links: RunbookLinks) -> str:
    expected = set(sc.objectives.expected_alerts)
    items = []
    for alert in r.alerts_fired:
        tag = " (expected)" if alert in expected else ""
        if alert in links.by_alert:
            rid, href = links.by_alert[alert]
            runbook = f"runbook <a href='{_e(href)}'>{_e(rid)}</a>"
        else:
            runbook = "<span class='fail'>no runbook!</span>"
        items.append(f"<li>{_e(alert)}{tag}: {runbook}</li>\n")
    fired = f"<ul id='alerts'>\n{''.join(items)}</ul>" if items else "<p id='alerts'>No alert fired.</p>"
    silent = "".join(f"<li>{_e(a)}</li>\n" for a in silent_alerts(r, sc))
    if silent:
        fired += f"\n<p class='fail'>Expected but never fired:</p>\n<ul id='silent-alerts'>\n{silent}</ul>"
    detect = f" Time to detect: {_e(fmt(r.ttd_seconds))} s." if r.ttd_seconds is not None else ""
    expected_text = ", ".join(sc.objectives.expected_alerts) or "(none set)"
    return (
        "<h2>Alerts</h2>\n<p>Each alert that fired, with the runbook on-call would have followed. "
        f"Expected: {_e(expected_text)}.{detect}</p>\n{fired}"
    )


def _impact(r: RunResult) -> str:
    if not r.impact:
        table = "<p>No load data to compare.</p>"
    else:
        rows = "".join(
            f"<tr><td>{_e(name)}</td><td>{p.requests}</td><td>{p.failures}</td>"
            f"<td>{_e(fmt(p.error_ratio, 4))}</td><td>{_e(fmt(p.p50_ms))}</td><td>{_e(fmt(p.p95_ms))}</td>"
            f"<td>{_e(fmt(p.p99_ms))}</td></tr>\n"
            for name, p in r.impact.items()
        )
        table = (
            "<table id='impact'>\n<tr><th>Phase</th><th>Requests</th><th>Failed</th><th>Error ratio</th>"
            f"<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>\n{rows}</table>"
        )
    return (
        f"<h2>Impact</h2>\n{table}\n<p>Error budget spent by the game day: {_e(pct(r.budget_spent))} "
        "of the SLO period's budget.</p>"
    )


def render_html(
    r: RunResult,
    sc: Scenario,
    load: pd.DataFrame,
    by_region: pd.DataFrame | None,
    links: RunbookLinks | None = None,
) -> str:
    """The report page; `links` are the runbooks as `find_runbook_links` found them (none: no links)."""
    links = links or RunbookLinks()
    charts = build_figure(r, load, by_region).to_html(include_plotlyjs=True, full_html=False)
    status = "PASSED" if r.passed else "FAILED"
    title = f"Game day {_e(r.scenario)}: {status}"
    error = f"<p class='fail'>Harness error: {_e(r.error)}</p>\n" if r.error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 10px;border:1px solid #ccc}}
table{{border-collapse:collapse}} .pass{{color:green}} .fail{{color:#c00;font-weight:bold}}
.no_data{{color:#888}}</style>
</head><body>
<h1>{title}</h1>
{error}<p id="summary">{_e((sc.description or sc.name).strip())} {_e(summary_sentence(r))}</p>
{_objectives(r)}
{_alerts(r, sc, links)}
{_impact(r)}
<h2>Charts</h2>
{charts}
</body></html>
"""
