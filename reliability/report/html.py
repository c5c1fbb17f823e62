"""`report.html`: one self-contained file (plotly JS inlined) - opens offline, attaches to a ticket."""

from __future__ import annotations

import html as html_escape
from datetime import UTC, datetime

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reliability.analysis import budget_spent_over_time, histogram, per_second
from reliability.report.links import RunbookLinks
from reliability.report.model import RunResult
from reliability.report.summary import fmt, headline, impact_lines, pct, summary_sentence, utc, with_unit
from reliability.scenario import Scenario
from reliability.slo.model import SLO


def _dt(ts: pd.Series | float) -> pd.Series | datetime:
    if isinstance(ts, pd.Series):
        return pd.to_datetime(ts, unit="s", utc=True)
    return datetime.fromtimestamp(ts, tz=UTC)


def _period(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def build_figure(
    r: RunResult, load: pd.DataFrame, by_region: pd.DataFrame | None, slos: list[SLO] | None = None
) -> go.Figure:
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=(
            "Error ratio (load generator)",
            "Latency (ms, per second)",
            "Traffic per region (responses/s, Prometheus)",
            "Error budget spent, per SLO",
        ),
    )
    if not load.empty:
        x = _dt(load["ts"])
        ratio = load["failures"] / load["requests"].where(load["requests"] > 0)
        fig.add_trace(go.Scatter(x=x, y=ratio, name="error ratio", mode="lines"), row=1, col=1)
        for col in ("p50_ms", "p95_ms", "p99_ms"):
            fig.add_trace(
                go.Scatter(x=x, y=load[col], name=col.removesuffix("_ms"), mode="lines"), row=2, col=1
            )
        for column, label in (("ttft_ms", "TTFT p95"), ("itl_ms", "ITL p95")):
            if column in load:
                p95 = [histogram.percentile(histogram.as_hist(h), 0.95) for h in load[column]]
                if any(v is not None for v in p95):
                    fig.add_trace(go.Scatter(x=x, y=p95, name=label, mode="lines"), row=2, col=1)
        from reliability.report.analyze import client_spec

        for slo in slos or []:
            spec = client_spec(slo)
            if spec is None:
                continue
            spent = budget_spent_over_time(
                per_second(load, spec), float(slo.objective_ratio), float(slo.period_s)
            )
            if spent is not None:
                fig.add_trace(go.Scatter(x=x, y=spent, name=f"budget {slo.name}", mode="lines"), row=4, col=1)
    if by_region is not None and not by_region.empty and "server" in by_region:
        per = by_region.groupby(["timestamp", "server"])["value"].sum().reset_index()
        for region, part in per.groupby("server"):
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


def _alerts(r: RunResult, links: RunbookLinks) -> str:
    rows = []
    for a in r.alerts:
        if a.alertname in links.by_alert:
            rid, href = links.by_alert[a.alertname]
            runbook = f"<a href='{_e(href)}'>{_e(rid)}</a>"
        else:
            runbook = "<span class='fail'>no runbook!</span>"
        expected = "expected" if a.expected else "<span class='fail'>unexpected</span>"
        resolved = utc(a.end_ts) if a.end_ts is not None else "still firing"
        rows.append(
            f"<tr><td>{_e(a.alertname)}</td><td>{_e(a.severity)}</td><td>{expected}</td>"
            f"<td>{_e(utc(a.start_ts))}</td><td>{_e(resolved)}</td><td>{_e(fmt(a.ttd_seconds))}</td>"
            f"<td>{runbook}</td></tr>\n"
        )
    fired = (
        "<table id='alerts'>\n<tr><th>Alert</th><th>Severity</th><th>Expected</th><th>Fired (UTC)</th>"
        f"<th>Resolved (UTC)</th><th>s after injection</th><th>Runbook</th></tr>\n{''.join(rows)}</table>"
        if rows
        else "<p id='alerts'>No alert fired after the injection.</p>"
    )
    silent = "".join(f"<li>{_e(a)}</li>\n" for a in r.expected_alerts_silent)
    if silent:
        fired += f"\n<p class='fail'>Expected but never fired:</p>\n<ul id='silent-alerts'>\n{silent}</ul>"
    detect = "".join(
        f" Time to detect ({_e(d.severity)}): {_e(fmt(d.ttd_seconds))} s ({_e(d.alertname)})."
        for d in r.detection
    )
    intro = f"Each alert that fired, with the runbook on-call would have followed.{detect}"
    return f"<h2>Alerts</h2>\n<p>{intro}</p>\n{fired}"


def _findings(r: RunResult) -> str:
    if not r.findings:
        return ""
    items = "".join(f"<li><b>{_e(f.kind.replace('_', ' '))}</b>: {_e(f.message)}</li>\n" for f in r.findings)
    return f"<h2>Findings</h2>\n<ul id='findings'>\n{items}</ul>"


def _impact(r: RunResult) -> str:
    lines = "".join(f"<li>{_e(line)}</li>\n" for line in impact_lines(r))
    stated = (
        f"<ul id='impact-lines'>\n{lines}</ul>" if lines else "<p>Users saw no impact during the fault.</p>"
    )
    if not r.impact:
        table = "<p>No load data to compare.</p>"
    else:
        rows = "".join(
            f"<tr><td>{_e(name)}</td><td>{p.requests}</td><td>{p.failures}</td>"
            f"<td>{_e(fmt(p.error_ratio, 4))}</td><td>{_e(fmt(p.p50_ms))}</td><td>{_e(fmt(p.p95_ms))}</td>"
            f"<td>{_e(fmt(p.p99_ms))}</td><td>{_e(fmt(p.ttft_p95_ms))}</td><td>{_e(fmt(p.itl_p95_ms))}</td>"
            f"<td>{p.wrong}/{p.judged}</td></tr>\n"
            for name, p in r.impact.items()
        )
        table = (
            "<table id='impact'>\n<tr><th>Phase</th><th>Requests</th><th>Failed</th><th>Error ratio</th>"
            "<th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>TTFT p95 ms</th><th>ITL p95 ms</th>"
            f"<th>Wrong answers</th></tr>\n{rows}</table>"
        )
    budget = "".join(
        f"<tr><td>{_e(s.slo)}</td><td>{_e(pct(s.objective, 3))}</td><td>{_e(pct(s.budget_spent, 3))}</td>"
        f"<td>{_e(s.budget_evidence)}</td></tr>\n"
        for s in r.slis
    )
    budget_table = (
        "<table id='budget'>\n<tr><th>SLO</th><th>Objective</th><th>Budget spent</th><th>Source</th></tr>\n"
        f"{budget}</table>"
        if budget
        else ""
    )
    return f"<h2>Impact</h2>\n{stated}\n{table}\n<h3>Error budget per SLO</h3>\n{budget_table}"


def render_html(
    r: RunResult,
    sc: Scenario,
    load: pd.DataFrame,
    by_region: pd.DataFrame | None,
    links: RunbookLinks | None = None,
    slos: list[SLO] | None = None,
) -> str:
    """The report page; `links` are the runbooks as `find_runbook_links` found them (none: no links)."""
    links = links or RunbookLinks()
    charts = build_figure(r, load, by_region, slos).to_html(include_plotlyjs=True, full_html=False)
    status = headline(r)
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
{_alerts(r, links)}
{_findings(r)}
{_impact(r)}
<h2>Charts</h2>
{charts}
</body></html>
"""
