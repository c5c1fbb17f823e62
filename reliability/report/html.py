"""`report.html`: one self-contained file (plotly JS inlined) - opens offline, attaches to a ticket.

Top to bottom: what happened (summary, objectives with their evidence, alerts, the GPU failure
stages, findings, impact), the story in time (timeline table, then every chart on one time axis),
what the chaos tool did (hypothesis, activities and rollbacks, guardrails), the load generator's
own errors, the run's metadata, and the previous runs of the scenario when they lie beside it.
"""

from __future__ import annotations

import html as html_escape
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import plotly.graph_objects as go

from reliability.report.charts import build_figure, dt
from reliability.report.links import RunbookLinks
from reliability.report.model import RunResult
from reliability.report.rundir import RunData
from reliability.report.summary import fmt, headline, impact_lines, pct, summary_sentence, utc, with_unit

if TYPE_CHECKING:
    from reliability.runs.discover import RunSummary


def _e(value: object) -> str:
    return html_escape.escape(str(value), quote=True)


def _table(table_id: str, headers: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already (escape with `_e`)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f"<table id='{table_id}'>\n<tr>{head}</tr>\n{body}</table>"


def _objectives(r: RunResult) -> str:
    rows = "".join(
        f"<tr><td>{_e(o.name)}</td><td>{_e(with_unit(o.target, o.unit, 'g'))}</td>"
        f"<td>{_e(with_unit(o.measured, o.unit, '.3f'))}</td>"
        f"<td class='{_e(o.verdict)}'>{_e(o.verdict)}</td><td>{_e(o.detail)}</td>"
        f"<td class='evidence'>{_e(o.evidence)}</td></tr>\n"
        for o in r.objectives
    )
    objectives = (
        "<h2>Objectives</h2>\n<table id='objectives'>\n"
        "<tr><th>Objective</th><th>Target</th><th>Measured</th><th>Verdict</th><th>Detail</th>"
        f"<th>Evidence</th></tr>\n{rows}</table>"
    )
    if not r.slis:
        return objectives
    sli_rows = [
        [
            _e(s.slo),
            _e(pct(s.objective, 3)) + (f" within {s.threshold_ms:g} ms" if s.threshold_ms else ""),
            _e(s.status.replace("_", " ")),
            _e(with_unit(s.rto_seconds, "s", ".1f")),
            _e(s.evidence),
            _e(with_unit(s.rto_prometheus_seconds, "s", ".1f")) + (f"<br>{_e(s.prometheus_evidence)}"),
            _e(pct(s.budget_spent, 3)) + (f"<br>{_e(s.budget_evidence)}" if s.budget_evidence else ""),
        ]
        for s in r.slis
    ]
    slis = _table(
        "slis",
        ["SLO", "Objective", "Status", "RTO", "Measured on", "Prometheus cross-check", "Budget spent"],
        sli_rows,
    )
    return f"{objectives}\n<h3>Each SLI, and what its verdict rests on</h3>\n{slis}"


def _alerts(r: RunResult, links: RunbookLinks) -> str:
    rows = []
    for a in r.alerts:
        if a.alertname in links.by_alert:
            rid, href = links.by_alert[a.alertname]
            runbook = f"<a href='{_e(href)}'>{_e(rid)}</a>"
        else:
            runbook = "<span class='fail'>no runbook!</span>"
        expected = "expected" if a.expected else "<span class='fail'>unexpected</span>"
        if a.late:
            expected += " (late: after the fault was removed)"
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
    before = "".join(
        f"<li>{_e(a.alertname)} ({_e(a.severity)}) since {_e(utc(a.start_ts))} UTC</li>\n"
        for a in r.alerts_before_injection
    )
    if before:
        fired += f"\n<p>Already firing when the fault went in:</p>\n<ul id='alerts-before'>\n{before}</ul>"
    detect = "".join(
        f" Time to detect ({_e(d.severity)}): {_e(fmt(d.ttd_seconds))} s ({_e(d.alertname)})."
        for d in r.detection
    )
    intro = f"Each alert that fired, with the runbook on-call would have followed.{detect}"
    return f"<h2>Alerts</h2>\n<p>{intro}</p>\n{fired}"


def _stages(r: RunResult) -> str:
    if not r.stages:
        return ""
    rows = [
        [_e(s.stage), _e(fmt(s.ground_truth_s)), _e(fmt(s.prometheus_s)), _e(s.evidence)] for s in r.stages
    ]
    table = _table(
        "stages", ["Stage", "Ground truth (s after injection)", "Prometheus (s)", "Evidence"], rows
    )
    return f"<h3>GPU failure handling, stage by stage</h3>\n{table}"


def _findings(r: RunResult) -> str:
    if not r.findings:
        return ""
    items = "".join(
        f"<li><b>{_e(f.kind.replace('_', ' '))}</b>: {_e(f.message)}"
        + (f" ({_e(utc(f.ts))} UTC)" if f.ts else "")
        + "</li>\n"
        for f in r.findings
    )
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
    data = ""
    if r.rpo is not None:
        lost = r.rpo.lost_writes if r.rpo.lost_writes is not None else "n/a"
        span = f" over {fmt(r.rpo.failed_span_s)} s" if r.rpo.failed_span_s else ""
        data = (
            f"<h3>Data</h3>\n<p id='rpo'>RPO {_e(fmt(r.rpo.rpo_seconds, 2))} s; acknowledged writes lost: "
            f"{_e(lost)}; writes that failed: {r.rpo.failed_writes}{_e(span)}.</p>"
        )
    return f"<h2>Impact</h2>\n{stated}\n{table}\n<h3>Error budget per SLO</h3>\n{budget_table}\n{data}"


def _timeline(rows: list[tuple[str, str]]) -> str:
    cells = [[_e(t), _e(what.replace("**", ""))] for t, what in rows]
    return f"<h2>Timeline (UTC)</h2>\n{_table('timeline', ['Time', 'Event'], cells)}"


def _chaos(r: RunResult) -> str:
    parts = ["<h2>What the experiment did</h2>"]
    if r.meta.experiment_title or r.meta.journal_status:
        deviated = " (deviated from its steady state)" if r.meta.deviated else ""
        parts.append(
            f"<p>{_e(r.meta.experiment_title)}: Chaos Toolkit status "
            f"<b>{_e(r.meta.journal_status or 'unknown (no journal.json)')}</b>{_e(deviated)}.</p>"
        )
    if r.hypothesis:
        rows = [
            [
                _e(h.when),
                _e(utc(h.ts)) if h.ts else "",
                "<span class='pass'>met</span>"
                if h.met
                else "<span class='fail'>not met</span>"
                if h.met is False
                else "unknown",
                "<br>".join(
                    _e(
                        f"{p.name}: {p.status}"
                        + ("" if p.tolerance_met is None else f", tolerance met: {p.tolerance_met}")
                    )
                    + (f" - {_e(p.output)}" if p.output else "")
                    for p in h.probes
                ),
            ]
            for h in r.hypothesis
        ]
        parts.append("<h3>Steady-state hypothesis</h3>")
        parts.append(_table("hypothesis", ["When", "Checked (UTC)", "Result", "Probes"], rows))
    else:
        parts.append("<p id='hypothesis'>The experiment has no steady-state hypothesis.</p>")
    if r.activities:
        rows = [
            [
                _e(a.phase),
                _e(a.name),
                _e(a.type),
                f"<span class='{'pass' if a.status == 'succeeded' else 'fail'}'>{_e(a.status)}</span>",
                _e(utc(a.start_ts)) if a.start_ts else "",
                _e(fmt(a.duration_s, 3)),
                f"<code>{_e(a.error or a.output)}</code>",
            ]
            for a in r.activities
        ]
        parts.append("<h3>Activities and rollbacks</h3>")
        parts.append(
            _table(
                "activities",
                ["Phase", "Activity", "Type", "Status", "Started (UTC)", "Duration s", "Output / error"],
                rows,
            )
        )
    if r.guardrails:
        rows = [
            [
                _e(g.name),
                f"<code>{_e(g.query)}</code> &gt; {_e(g.above)} for {_e(g.for_seconds)} s",
                f"<span class='fail'>tripped at {_e(utc(g.ts))} UTC (value {_e(fmt(g.value, 3))})</span>"
                if g.tripped and g.ts
                else "<span class='pass'>held</span>",
            ]
            for g in r.guardrails
        ]
        parts.append("<h3>Guardrails</h3>")
        parts.append(_table("guardrails", ["Guardrail", "Stop condition", "Status"], rows))
    return "\n".join(parts)


def _client_errors(r: RunResult) -> str:
    if not r.client_errors:
        return ""
    rows = [
        [_e(e.request), _e(e.message), str(e.count), _e(utc(e.first_ts)) if e.first_ts else ""]
        for e in r.client_errors
    ]
    table = _table("client-errors", ["Request", "Error", "Count", "First (UTC)"], rows)
    return f"<h2>Errors the load generator saw</h2>\n{table}"


def _meta(r: RunResult) -> str:
    duration = (
        f"{r.ended_ts - r.started_ts:.0f} s" if r.started_ts is not None and r.ended_ts is not None else "n/a"
    )

    def when(ts: float | None) -> str:
        return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "n/a"

    rows = [
        ["Started", _e(when(r.started_ts))],
        ["Ended", _e(when(r.ended_ts))],
        ["Duration", _e(duration)],
        ["Host", _e(r.meta.host or "n/a")],
        *([[_e(name), _e(v)] for name, v in sorted(r.meta.versions.items())]),
    ]
    return f"<h2>Run</h2>\n{_table('run-meta', ['', ''], rows)}"


def _trend(r: RunResult, runs: list[RunSummary], with_js: bool) -> tuple[str, str]:
    """(section, figure HTML) for the previous runs of this scenario plus this one."""
    if not runs:
        return "", ""
    from reliability.report.postmortem import trend_of

    table = trend_of(r, runs)
    fig = go.Figure()
    x = [dt(run.started_ts) if run.started_ts else run.name for run in table.runs]
    for trend in table.objectives:
        if trend.unit != "s" or not any(v is not None for v in trend.values):
            continue
        fig.add_trace(go.Scatter(x=x, y=trend.values, mode="lines+markers", name=f"{trend.name} (s)"))
    rows = [
        [_e(t.name)]
        + [_e(with_unit(v, t.unit, ".3g")) for v in t.values]
        + [_e(f"{t.change:+.3g}" if t.change is not None else "n/a")]
        for t in table.objectives
    ]
    headers = ["Objective", *[_e(run.name) for run in table.runs], "Change"]
    section = (
        f"<h2>Previous runs of {_e(r.scenario)}</h2>\n<p>Found beside this run: {len(runs)}.</p>\n"
        + _table("trend", headers, rows)
    )
    if not fig.data:
        return section, ""
    fig.update_layout(height=300, title_text="Measured per run (seconds)", margin={"t": 40})
    return section, fig.to_html(include_plotlyjs=with_js, full_html=False, div_id="trend-chart")


def render_html(
    r: RunResult,
    data: RunData,
    links: RunbookLinks | None = None,
    previous: list[RunSummary] | None = None,
) -> str:
    """The report page; `links` are the runbooks as `find_runbook_links` found them (none: no links),
    `previous` the earlier runs of the same scenario found beside this one."""
    from reliability.report.postmortem import timeline_rows

    links = links or RunbookLinks()
    sc = data.scenario
    charts = build_figure(r, data)
    chart_html = (
        charts.figure.to_html(include_plotlyjs=True, full_html=False, div_id="charts")
        if charts.panels
        else "<p>No data to chart.</p>"
    )
    left_out = "".join(f"<li>{_e(name)}: {_e(why)}</li>\n" for name, why in charts.missing.items())
    if left_out:
        chart_html += f"\n<p>Not charted:</p>\n<ul id='charts-missing'>\n{left_out}</ul>"
    trend_section, trend_chart = _trend(r, previous or [], with_js=not charts.panels)
    status = headline(r)
    title = f"Game day {_e(r.scenario)}: {status}"
    error = f"<p class='fail'>Harness error: {_e(r.error)}</p>\n" if r.error else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em}} td,th{{padding:4px 10px;border:1px solid #ccc}}
td{{vertical-align:top}}
table{{border-collapse:collapse;margin-bottom:1em}} .pass{{color:green}} .fail{{color:#c00;font-weight:bold}}
.evidence{{color:#444;font-size:90%}} code{{font-size:85%;white-space:pre-wrap}}</style>
</head><body>
<h1>{title}</h1>
{error}<p id="summary">{_e((sc.description or sc.name).strip())} {_e(summary_sentence(r))}</p>
{_objectives(r)}
{_alerts(r, links)}
{_stages(r)}
{_findings(r)}
{_impact(r)}
{_timeline(timeline_rows(r, data.timeline, data.events))}
{_chaos(r)}
{_client_errors(r)}
{_meta(r)}
{trend_section}
<h2>Charts</h2>
{chart_html}
{trend_chart}
</body></html>
"""
