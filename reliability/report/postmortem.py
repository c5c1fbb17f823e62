"""`postmortem.md` after the Google SRE post-mortem template; the judgement sections are derived
from the objective verdicts and the measured impact, so the document never claims more than was
measured and never stays silent about what users saw."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, StrictUndefined

from reliability.report.links import RunbookLinks
from reliability.report.model import ObjectiveVerdict, RunResult, SliResult
from reliability.report.summary import (
    fmt,
    headline,
    impact_lines,
    pct,
    summary_sentence,
    utc,
    with_unit,
)
from reliability.scenario import Scenario

if TYPE_CHECKING:
    from reliability.runs.compare import Comparison
    from reliability.runs.discover import RunSummary

_TEMPLATE = """\
# Post-mortem: {{ sc.name }} game day

**Status:** {{ status }}{% if r.error %} ({{ r.error }}){% endif %}{% if r.interrupted %} \
(interrupted: {{ r.interrupted }}){% endif %}
**Date:** {{ date }}

## Summary
{{ (sc.description or sc.name).strip() }}

{{ summary }}

## Impact
{% for line in impact %}- {{ line }}
{% else %}- Users saw no failed request, wrong answer or slowdown during the fault.
{% endfor %}
{% if r.impact %}
| Phase | Seconds | Requests | Failed | Error ratio | p50 ms | p95 ms | p99 ms | TTFT p95 ms | ITL p95 ms | Wrong answers |
|---|---|---|---|---|---|---|---|---|---|---|
{% for name, p in r.impact.items() -%}
| {{ name }} | {{ p.seconds }} | {{ p.requests }} | {{ p.failures }} | {{ fmt(p.error_ratio, 4) }} | {{ fmt(p.p50_ms) }} \
| {{ fmt(p.p95_ms) }} | {{ fmt(p.p99_ms) }} | {{ fmt(p.ttft_p95_ms) }} | {{ fmt(p.itl_p95_ms) }} | {{ p.wrong }}/{{ p.judged }} |
{% endfor %}
Percentiles are computed from each phase's merged latency histograms.
{% endif %}
{% if r.slis %}
### Error budget, per SLO
| SLO | Objective | Budget spent | Events (bad / total) | Source |
|---|---|---|---|---|
{% for s in r.slis -%}
| {{ s.slo }} | {{ pct(s.objective, 3) }} | {{ pct(s.budget_spent, 3) }} | {{ events(s) }} | {{ s.budget_evidence or "n/a" }} |
{% endfor %}{% endif %}
{% if r.rpo is not none %}
### Data
RPO {{ fmt(r.rpo.rpo_seconds, 2) }} s; acknowledged writes lost: {{ r.rpo.lost_writes if r.rpo.lost_writes is not none else "n/a" }}; \
writes that failed: {{ r.rpo.failed_writes }}{% if r.rpo.failed_span_s %} over {{ fmt(r.rpo.failed_span_s) }} s{% endif %}.
{% endif %}
## Timeline (UTC)
| Time | Event |
|---|---|
{% for t, what in timeline -%}
| {{ t }} | {{ what }} |
{% endfor %}
## Detection
{% for d in r.detection -%}
- {{ d.severity }}: {{ d.alertname }} after {{ fmt(d.ttd_seconds) }} s{% if d.late %} (only after the fault had been removed){% endif %}
{% else -%}
- Nothing expected fired.
{% endfor %}
{% if r.alerts %}
Alerts that fired after the injection (each with the runbook on-call would have followed):

| Alert | Severity | Expected | Fired (UTC) | Resolved (UTC) | Runbook |
|---|---|---|---|---|---|
{% for a in r.alerts -%}
| {{ a.alertname }}{{ label_hint(a.labels) }} | {{ a.severity }} | {{ "yes" if a.expected else "**no**" }} | {{ utc(a.start_ts) }} \
| {{ utc(a.end_ts) if a.end_ts else "still firing" }} | {{ runbook(a.alertname) }} |
{% endfor %}{% else %}No alert fired after the injection.
{% endif %}
Expected: {{ expected or "(none set)" }}.{% if r.expected_alerts_silent %} **Expected but never fired: \
{{ r.expected_alerts_silent | join(", ") }}.**{% endif %}
{% if stages %}
### GPU failure handling, stage by stage
| Stage | Ground truth (s after injection) | Prometheus (s) | Evidence |
|---|---|---|---|
{% for st in stages -%}
| {{ st.stage }} | {{ fmt(st.ground_truth_s) }} | {{ fmt(st.prometheus_s) }} | {{ st.evidence }} |
{% endfor %}{% endif %}
{% if r.findings %}
### Findings
{% for f in r.findings %}- **{{ f.kind | replace("_", " ") }}**: {{ f.message }}{% if f.ts %} ({{ utc(f.ts) }} UTC){% endif %}
{% endfor %}{% endif %}
## Root cause
{{ root_cause }}

## Resolution
{{ resolution }}

## Objectives
| Objective | Target | Measured | Verdict | Evidence |
|---|---|---|---|---|
{% for o in r.objectives -%}
| {{ o.name }} | {{ with_unit(o.target, o.unit) }} | {{ with_unit(o.measured, o.unit) }} | {{ o.verdict }}\
{% if o.detail %} ({{ o.detail }}){% endif %} | {{ o.evidence or "" }} |
{% endfor %}
{% if r.slis %}
### Each SLI, and what its verdict rests on
| SLO | Status | RTO | Measured on | Prometheus cross-check | Budget spent |
|---|---|---|---|---|---|
{% for s in r.slis -%}
| {{ s.slo }} | {{ s.status | replace("_", " ") }} | {{ with_unit(s.rto_seconds, "s", ".1f") }} | {{ s.evidence }} \
| {{ with_unit(s.rto_prometheus_seconds, "s", ".1f") }} ({{ s.prometheus_evidence }}) | {{ pct(s.budget_spent, 3) }}{% if s.budget_evidence %} ({{ s.budget_evidence }}){% endif %} |
{% endfor %}{% endif %}
## What the experiment did
{% if r.meta.experiment_title or r.meta.journal_status -%}
{{ r.meta.experiment_title }}: Chaos Toolkit status **{{ r.meta.journal_status or "unknown (no journal.json)" }}**\
{% if r.meta.deviated %} (deviated from its steady state){% endif %}.
{% endif %}
{% if r.hypothesis -%}
| Steady-state hypothesis | Checked (UTC) | Result | Probes |
|---|---|---|---|
{% for h in r.hypothesis -%}
| {{ h.when }} | {{ utc(h.ts) if h.ts else "" }} | {{ "met" if h.met else ("**not met**" if h.met is false else "unknown") }} \
| {% for p in h.probes %}{{ p.name }}: {{ p.status }}{% if p.output %} - {{ p.output | cell }}{% endif %}{% if not loop.last %}; {% endif %}{% endfor %} |
{% endfor %}{% else -%}
The experiment has no steady-state hypothesis.
{% endif %}
{% if r.activities %}
| Phase | Activity | Type | Status | Started (UTC) | Duration s | Output / error |
|---|---|---|---|---|---|---|
{% for a in r.activities -%}
| {{ a.phase }} | {{ a.name }} | {{ a.type }} | {{ a.status if a.status == "succeeded" else "**" ~ a.status ~ "**" }} \
| {{ utc(a.start_ts) if a.start_ts else "" }} | {{ fmt(a.duration_s, 3) }} | {{ (a.error or a.output) | cell }} |
{% endfor %}{% endif %}
{% if r.guardrails %}
| Guardrail | Stop condition | Status |
|---|---|---|
{% for g in r.guardrails -%}
| {{ g.name }} | `{{ g.query | cell }}` > {{ g.above }} for {{ g.for_seconds }} s \
| {% if g.tripped and g.ts %}**tripped at {{ utc(g.ts) }} UTC (value {{ fmt(g.value, 3) }})**{% else %}held{% endif %} |
{% endfor %}{% endif %}
{% if r.client_errors %}
### Errors the load generator saw
| Request | Error | Count | First (UTC) |
|---|---|---|---|
{% for e in r.client_errors -%}
| {{ e.request }} | {{ e.message | cell }} | {{ e.count }} | {{ utc(e.first_ts) if e.first_ts else "" }} |
{% endfor %}{% endif %}
{% if previous %}
## Previous runs of {{ sc.name }}
| Objective | {% for run in trend.runs %}{{ run.name }} | {% endfor %}Change |
|---|{% for run in trend.runs %}---|{% endfor %}---|
{% for t in trend.objectives -%}
| {{ t.name }} | {% for v in t.values %}{{ with_unit(v, t.unit) }} | {% endfor %}{{ "%+.3g" | format(t.change) if t.change is not none else "n/a" }} |
{% endfor %}{% endif %}
## Lessons learned
### What went well
{% for line in well %}- {{ line }}
{% else %}- Nothing met its objective.
{% endfor %}
### What went wrong
{% for line in badly %}- {{ line }}
{% else %}- No objective was violated.
{% endfor %}
### Where we got lucky
{% for line in lucky %}- {{ line }}
{% else %}- Nothing came within 20% of its limit.
{% endfor %}
## Action items
{% for item in actions %}- {{ item }}
{% else %}- None: every objective held.
{% endfor %}
## Supporting data
`result.json`, `report.html`, `junit.xml`, `run.json`, `timeline.jsonl`, `events.jsonl`,
`load_stats.jsonl`, `canary_writes.jsonl`, `series/*.csv`, `journal.json`{% if has_runbooks %}, `runbooks/`{% endif %} in this directory.
Run on {{ r.meta.host or "an unknown host" }}{% if r.started_ts %}, {{ when(r.started_ts) }} to {{ when(r.ended_ts) }}{% endif %}\
{% if r.meta.versions %}; {% for name, v in r.meta.versions | dictsort %}{{ name }} {{ v }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}.
"""

# A pass within this share of its limit is "lucky" rather than comfortably "well".
LUCKY_MARGIN = 0.8


def lessons(r: RunResult) -> tuple[list[str], list[str], list[str]]:
    """(went well, went badly, got lucky) from the verdicts, the impact and the findings."""
    well, badly, lucky = [], [], []
    for o in r.objectives:
        line = _line(o)
        if o.verdict == "fail":
            badly.append(line)
        elif o.measured is not None and o.target > 0 and o.measured > LUCKY_MARGIN * o.target:
            lucky.append(f"{line} - passed with less than {100 - LUCKY_MARGIN * 100:.0f}% headroom")
        else:
            well.append(line)
    if r.inject_ts is not None:
        badly += [f"Users: {line}" for line in impact_lines(r)]
        badly += [f.message for f in r.findings if f.kind in ("unexpected_page", "late_alert")]
    return well, badly, lucky


def _line(o: ObjectiveVerdict) -> str:
    line = f"{o.name}: {with_unit(o.measured, o.unit)} against a limit of {with_unit(o.target, o.unit)}"
    return line + (f" ({o.detail})" if o.detail else "")


def action_items(r: RunResult, runbook_links: dict[str, str]) -> list[str]:
    items = []
    links = ", ".join(f"[{rid}]({url})" for rid, url in runbook_links.items())
    for o in r.objectives:
        if o.verdict == "fail":
            items.append(
                f"Bring {o.name} within {with_unit(o.target, o.unit)}"
                + (f"; runbooks: {links}" if links else "")
            )
    if r.error:
        items.append(f"Fix what kept the game day from being judged: {r.error}")
    if r.inject_ts is not None and not r.error:
        for alert in r.expected_alerts_silent:
            items.append(
                f"Find out why {alert} never fired during the fault (a `for:` or threshold too slow "
                "for this failure, or a detection gap)"
            )
        for f in r.findings:
            if f.kind == "unexpected_page":
                items.append(f"Stop the false page: {f.message}")
    if links and not items:
        items.append(f"Walk the next on-call through the runbooks this game day exercised: {links}")
    return items


_TIMELINE_EVENTS = {"experiment_start", "method_start", "rollback_start", "rollback_end", "experiment_end"}


def timeline_rows(
    r: RunResult, timeline: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    rows: list[tuple[float, str]] = []
    for rec in timeline:
        event = rec.get("event")
        if event in _TIMELINE_EVENTS:
            rows.append((float(rec["ts"]), f"chaos: {event}"))
        elif event == "activity_start" and rec.get("type") == "action":
            rows.append((float(rec["ts"]), f"chaos action: {rec.get('name', '')} ({rec.get('phase', '')})"))
        elif event == "gameday_phase":
            rows.append((float(rec["ts"]), f"game day phase: {rec.get('name', '')}"))
    for ev in events:
        if r.started_ts is not None and "ts" in ev and float(ev["ts"]) < r.started_ts:
            continue  # a lab the run attached to: its start-up, long before this game day, is noise
        if ev.get("event") not in {"lab_up", "lab_down"} and "ts" in ev:
            detail = ", ".join(
                f"{k}={ev[k]}"
                for k in ("node", "region", "server", "reason", "mode")
                if ev.get(k) is not None
            )
            rows.append((float(ev["ts"]), f"target: {ev['event']}" + (f" ({detail})" if detail else "")))
    for a in r.alerts:
        rows.append(
            (a.start_ts, f"alert fired: {a.alertname} ({a.severity}){'' if a.expected else ' - unexpected'}")
        )
        if a.end_ts is not None:
            rows.append((a.end_ts, f"alert resolved: {a.alertname} ({a.severity})"))
    for ts, what in (
        (r.inject_ts, "fault injected"),
        (r.detect_ts, "detected"),
        (r.recovered_ts, "recovered"),
    ):
        if ts is not None:
            rows.append((ts, f"**{what}**"))
    return [(utc(ts), what) for ts, what in sorted(rows, key=lambda x: x[0])]


def _format_args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items())


def _ts(record: dict[str, Any]) -> float | None:
    ts = record.get("ts")
    return float(ts) if isinstance(ts, int | float) else None


def _undoes(cleared: dict[str, Any], injected_args: dict[str, Any]) -> bool:
    """Whether a `fault_cleared` record undid a fault injected with these arguments: `heal` undoes
    every fault; the targeted undos (`restore_model`, `heal_partition`) name the fault's target."""
    if cleared.get("undo") == "heal":
        return True
    args = cleared.get("args")
    return isinstance(args, dict) and bool(args) and all(injected_args.get(k) == v for k, v in args.items())


def injected_faults(timeline: list[dict[str, Any]]) -> list[str]:
    """What the experiment injected, from the chaos timeline's `fault_injected` records, each with
    the undo that removed it."""
    cleared = [rec for rec in timeline if rec.get("event") == "fault_cleared" and _ts(rec) is not None]
    lines = []
    for rec in timeline:
        ts = _ts(rec)
        if rec.get("event") != "fault_injected" or ts is None:
            continue
        args = rec.get("args") if isinstance(rec.get("args"), dict) else {}
        line = f"`{rec.get('fault', '?')}` ({_format_args(args)}) injected at {utc(ts)} UTC"
        undo = next((c for c in cleared if (_ts(c) or 0.0) >= ts and _undoes(c, args)), None)
        if undo is None:
            line += (
                ", with no undo of it in the chaos timeline (`fault-ledger.jsonl` says whether "
                "`reliability recover` cleared it)"
            )
        else:
            returned = undo.get("returned")
            done = _ts(returned) if isinstance(returned, dict) else None
            phase = undo.get("phase") or "run"
            line += (
                f", undone at {utc(done if done is not None else _ts(undo) or ts)} UTC by the "
                f"experiment's {phase} (`{undo.get('undo', '?')}`)"
            )
        lines.append(line)
    return lines


def root_cause(sc: Scenario, timeline: list[dict[str, Any]]) -> str:
    faults = injected_faults(timeline)
    source = f"the experiment `{sc.experiment.file}`"
    if not faults:
        return f"The fault injected on purpose by {source} (this was a game day)."
    if len(faults) == 1:
        return f"Injected on purpose by {source} (this was a game day): {faults[0]}."
    items = "".join(f"\n- {line}" for line in faults)
    return f"Injected on purpose by {source} (this was a game day):{items}"


def cross_check(s: SliResult) -> str:
    """Two independent sources for one SLI's recovery, or nothing."""
    if s.source != "client" or s.rto_seconds is None or s.rto_prometheus_seconds is None:
        return ""
    return (
        f" Cross-check for {s.slo}: the load generator saw it back within objective {s.rto_seconds:.1f} s "
        f"after injection; Prometheus ({s.prometheus_evidence}) {s.rto_prometheus_seconds:.1f} s."
    )


def resolution_text(r: RunResult) -> str:
    if r.inject_ts is None:
        return "No fault was injected."
    text = "The experiment's rollback removed the fault" + (
        f" at {utc(r.fault_end_ts)} UTC." if r.fault_end_ts else "."
    )
    for s in r.slis:
        if s.status != "no_impact":
            from reliability.report.summary import sli_recovery_text

            text += f" {s.slo} {sli_recovery_text(s)}."
    return text + "".join(cross_check(s) for s in r.slis)


def render_postmortem(
    r: RunResult,
    sc: Scenario,
    timeline: list[dict[str, Any]],
    events: list[dict[str, Any]],
    links: RunbookLinks | None = None,
    previous: list[RunSummary] | None = None,
) -> str:
    """The post-mortem; `links` are the runbooks as `find_runbook_links` found them (none: no links),
    `previous` the earlier runs of the same scenario (the same trend report.html shows)."""
    links = links or RunbookLinks()
    trend = trend_of(r, previous) if previous else None
    well, badly, lucky = lessons(r)
    expected = ", ".join(
        a if isinstance(a, str) else "one of " + " / ".join(a.any_of) for a in sc.objectives.expected_alerts
    )

    def runbook(alert: str) -> str:
        if alert in links.by_alert:
            rid, href = links.by_alert[alert]
            return f"[{rid}]({href})"
        return "(no runbook!)"

    def label_hint(labels: dict[str, str]) -> str:
        shown = [labels[k] for k in ("node", "Hostname", "region", "server") if labels.get(k)]
        return f" ({', '.join(dict.fromkeys(shown))})" if shown else ""

    def events_text(s: SliResult) -> str:
        if s.bad_events is None or s.total_events is None:
            return "n/a"
        return f"{s.bad_events:.0f} / {s.total_events:.0f}"

    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    # A "|" inside a table cell would end the cell.
    env.filters["cell"] = lambda value: str(value).replace("|", "\\|")
    return env.from_string(_TEMPLATE).render(
        sc=sc,
        r=r,
        status=headline(r),
        date=datetime.fromtimestamp(r.inject_ts or r.started_ts or 0, tz=UTC).date().isoformat(),
        summary=summary_sentence(r),
        impact=impact_lines(r) if r.inject_ts is not None else [],
        resolution=resolution_text(r),
        root_cause=root_cause(sc, timeline),
        timeline=timeline_rows(r, timeline, events),
        stages=r.stages,
        expected=expected,
        well=well,
        badly=badly,
        lucky=lucky,
        actions=action_items(r, links.exercised),
        runbook=runbook,
        label_hint=label_hint,
        events=events_text,
        fmt=fmt,
        with_unit=with_unit,
        pct=pct,
        utc=utc,
        when=lambda ts: datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "n/a",
        previous=previous or [],
        trend=trend,
        has_runbooks=bool(links.copies),
    )


def trend_of(r: RunResult, previous: list[RunSummary]) -> Comparison:
    """The previous runs and this one, objective by objective (report.html shows the same)."""
    from reliability.runs.compare import compare
    from reliability.runs.discover import summary_of

    return compare([*previous, summary_of(r, name="this run")])
