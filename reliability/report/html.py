"""`report.html`: one self-contained file (plotly JS inlined) - opens offline, attaches to a ticket."""

from __future__ import annotations

import html as html_escape
from datetime import UTC, datetime

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reliability.report.model import RunResult


def _dt(ts: pd.Series | float) -> pd.Series | datetime:
    if isinstance(ts, pd.Series):
        return pd.to_datetime(ts, unit="s", utc=True)
    return datetime.fromtimestamp(ts, tz=UTC)


def build_figure(
    r: RunResult, load: pd.DataFrame, by_region: pd.DataFrame | None, objective: float, period_s: float
) -> go.Figure:
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.06,
        subplot_titles=("Error ratio", "Latency (ms)", "Traffic per region (req/s)", "Error budget spent"),
    )
    if not load.empty:
        x = _dt(load["ts"])
        ratio = load["failures"] / load["requests"].where(load["requests"] > 0)
        fig.add_trace(go.Scatter(x=x, y=ratio, name="error ratio", mode="lines"), row=1, col=1)
        for col in ("p50_ms", "p95_ms", "p99_ms"):
            fig.add_trace(
                go.Scatter(x=x, y=load[col], name=col.removesuffix("_ms"), mode="lines"), row=2, col=1
            )
        rate = load["requests"].sum() / max(len(load), 1)
        allowed = rate * period_s * (1 - objective)
        if allowed > 0:
            spent = load["failures"].cumsum() / allowed
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


def render_html(
    r: RunResult,
    load: pd.DataFrame,
    by_region: pd.DataFrame | None,
    objective: float,
    period_s: float,
) -> str:
    fig = build_figure(r, load, by_region, objective, period_s)
    body = fig.to_html(include_plotlyjs=True, full_html=False)
    rows = "".join(
        f"<tr><td>{html_escape.escape(o.name)}</td><td>{o.target:g} {o.unit}</td>"
        f"<td>{'n/a' if o.measured is None else f'{o.measured:.3f}'} {o.unit}</td>"
        f"<td class='{o.verdict}'>{o.verdict}</td><td>{html_escape.escape(o.detail)}</td></tr>"
        for o in r.objectives
    )
    status = "PASSED" if r.passed else "FAILED"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Game day {html_escape.escape(r.scenario)}: {status}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 10px;border:1px solid #ccc}}
table{{border-collapse:collapse}} .pass{{color:green}} .fail{{color:#c00;font-weight:bold}}
.no_data{{color:#888}}</style>
</head><body>
<h1>Game day {html_escape.escape(r.scenario)}: {status}</h1>
{f"<p class='fail'>Harness error: {html_escape.escape(r.error)}</p>" if r.error else ""}
<table id="objectives">
<tr><th>Objective</th><th>Target</th><th>Measured</th><th>Verdict</th><th>Detail</th></tr>
{rows}</table>
{body}
</body></html>
"""
