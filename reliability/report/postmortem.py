"""`postmortem.md` after the Google SRE post-mortem template; the judgement sections are derived
from the objective verdicts, so the document never claims more than was measured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from reliability.report.model import ObjectiveVerdict, RunResult
from reliability.scenario import Scenario

_TEMPLATE = """\
# Post-mortem: {{ sc.name }} game day

**Status:** {{ "PASSED" if r.passed else "FAILED" }}{% if r.error %} (harness error: {{ r.error }}){% endif %}
**Date:** {{ date }}

## Summary
{{ sc.description or sc.name }}
The injected fault {{ "was detected after %.1f s" % r.ttd_seconds if r.ttd_seconds is not none \
else "was not detected by any expected alert" }}; service {{ recovery_text }}.\
{% if r.capacity_rto_seconds is not none %} Serving capacity (ready GPU nodes) was back \
{{ "%.1f" % r.capacity_rto_seconds }} s after injection.{% endif %}

## Impact
| Phase | Requests | Failed | Error ratio | p50 ms | p95 ms | p99 ms |
|---|---|---|---|---|---|---|
{% for name, p in r.impact.items() -%}
| {{ name }} | {{ p.requests }} | {{ p.failures }} | {{ fmt(p.error_ratio, 4) }} | {{ fmt(p.p50_ms) }} \
| {{ fmt(p.p95_ms) }} | {{ fmt(p.p99_ms) }} |
{% endfor %}
Error budget spent by the game day: {{ pct(r.budget_spent) }} of the SLO period's budget.
{% if r.lost_writes is not none %}Acknowledged writes lost: {{ r.lost_writes }} \
(RPO {{ fmt(r.rpo_seconds) }} s).
{% endif %}
## Timeline (UTC)
| Time | Event |
|---|---|
{% for t, what in timeline -%}
| {{ t }} | {{ what }} |
{% endfor %}
## Detection
{% if r.alerts_fired %}Alerts that fired (each with the runbook on-call would have followed):
{% for alert in r.alerts_fired %}- {{ alert }}{% if alert in alert_links %}: \
[{{ alert_links[alert][0] }}]({{ alert_links[alert][1] }}){% else %} (no runbook!){% endif %}
{% endfor %}{% else %}No alert fired.
{% endif %}
Expected: {{ sc.objectives.expected_alerts | join(", ") or "(none set)" }}; \
time to detect {{ fmt(r.ttd_seconds) }} s.{% if silent %} Expected but never fired: \
{{ silent | join(", ") }}.{% endif %}

## Root cause
The fault injected on purpose by the experiment `{{ sc.experiment.file }}` (this was a game day).

## Resolution
{{ resolution }}

## Objectives
| Objective | Target | Measured | Verdict |
|---|---|---|---|
{% for o in r.objectives -%}
| {{ o.name }} | {{ sig(o.target) }} {{ o.unit }} | {{ sig(o.measured) }} {{ o.unit }} | {{ o.verdict }}\
{% if o.detail %} ({{ o.detail }}){% endif %} |
{% endfor %}
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
`result.json`, `report.html`, `junit.xml`, `timeline.jsonl`, `events.jsonl`, `load_stats.jsonl`,
`canary_writes.jsonl`, `series/*.csv`, `journal.json` in this directory.
"""

# A pass within this share of its limit is "lucky" rather than comfortably "well".
LUCKY_MARGIN = 0.8


def lessons(objectives: list[ObjectiveVerdict]) -> tuple[list[str], list[str], list[str]]:
    """(went well, went badly, got lucky) from the verdicts."""
    well, badly, lucky = [], [], []
    for o in objectives:
        measured = "n/a" if o.measured is None else f"{o.measured:.3g} {o.unit}"
        line = f"{o.name}: {measured} against a limit of {o.target:g} {o.unit}"
        if o.detail:
            line += f" ({o.detail})"
        if o.verdict == "fail":
            badly.append(line)
        elif o.verdict == "no_data":
            lucky.append(f"{line} - nothing to measure, so untested")
        elif o.measured is not None and o.target > 0 and o.measured > LUCKY_MARGIN * o.target:
            lucky.append(f"{line} - passed with less than {100 - LUCKY_MARGIN * 100:.0f}% headroom")
        else:
            well.append(line)
    return well, badly, lucky


def action_items(r: RunResult, sc: Scenario, runbook_links: dict[str, str]) -> list[str]:
    items = []
    links = ", ".join(f"[{rid}]({url})" for rid, url in runbook_links.items())
    for o in r.objectives:
        if o.verdict == "fail":
            items.append(
                f"Bring {o.name} within {o.target:g} {o.unit}" + (f"; runbooks: {links}" if links else "")
            )
    if r.error:
        items.append(f"Fix the harness failure: {r.error}")
    if links and not items:
        items.append(f"Walk the next on-call through the runbooks this game day exercised: {links}")
    if r.inject_ts is not None and not r.error:
        for alert in silent_alerts(r, sc):
            items.append(
                f"Find out why {alert} never fired during the fault (a `for:` or threshold too slow "
                "for this failure, or a detection gap)"
            )
    return items


def silent_alerts(r: RunResult, sc: Scenario) -> list[str]:
    """Alerts the scenario expected that never fired."""
    return [a for a in sc.objectives.expected_alerts if a not in r.alerts_fired]


def alert_runbook_links(alerts: list[str], runbook_dir: Path | None) -> dict[str, tuple[str, str]]:
    """Alert that fired -> (runbook id, link)."""
    if runbook_dir is None or not runbook_dir.is_dir() or not alerts:
        return {}
    from reliability.runbooks import runbooks_for_alerts

    try:
        return {
            a: (rb.id, f"runbooks/{rb.id}.md") for a, rb in runbooks_for_alerts(alerts, runbook_dir).items()
        }
    except Exception:  # a broken runbook must not cost the run its post-mortem
        return {}


def runbook_links(sc: Scenario, alerts: list[str], runbook_dir: Path | None) -> dict[str, str]:
    """Runbook id -> link: the runbooks of alerts that fired (runbook engineer's index), then the
    scenario's own list."""
    links: dict[str, str] = {}
    if runbook_dir is not None and runbook_dir.is_dir() and alerts:
        try:
            from reliability.runbooks import runbooks_for_alerts

            for rb in runbooks_for_alerts(alerts, runbook_dir).values():
                links[rb.id] = f"runbooks/{rb.id}.md"
        except Exception:
            pass
    for rid in sc.objectives.runbooks:
        links.setdefault(rid, f"runbooks/{rid}.md")
    return links


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def timeline_rows(
    r: RunResult, timeline: list[dict[str, Any]], events: list[dict[str, Any]]
) -> list[tuple[str, str]]:
    rows: list[tuple[float, str]] = []
    for rec in timeline:
        if rec.get("event") in {
            "experiment_start",
            "method_start",
            "rollback_start",
            "rollback_end",
            "experiment_end",
        }:
            rows.append((float(rec["ts"]), f"chaos: {rec['event']}"))
        elif rec.get("event") == "activity_start" and rec.get("type") == "action":
            rows.append((float(rec["ts"]), f"chaos action: {rec.get('name', '')} ({rec.get('phase', '')})"))
        elif rec.get("event") == "gameday_phase":
            rows.append((float(rec["ts"]), f"game day phase: {rec.get('name', '')}"))
    for ev in events:
        if ev.get("event") not in {"lab_up", "lab_down"} and "ts" in ev:
            rows.append((float(ev["ts"]), f"lab: {ev['event']}"))
    for ts, what in (
        (r.inject_ts, "fault injected"),
        (r.detect_ts, "detected"),
        (r.recovered_ts, "recovered"),
    ):
        if ts is not None:
            rows.append((ts, f"**{what}**"))
    return [(_utc(ts), what) for ts, what in sorted(rows)]


def render_postmortem(
    r: RunResult,
    sc: Scenario,
    timeline: list[dict[str, Any]],
    events: list[dict[str, Any]],
    runbook_dir: Path | None = None,
) -> str:
    well, badly, lucky = lessons(r.objectives)
    recovery_text = {
        "recovered": f"recovered {r.rto_seconds:.1f} s after injection" if r.rto_seconds is not None else "",
        "no_impact": "showed no visible impact",
        "unrecovered": "did not recover within the observation window",
        "unknown": "recovery could not be measured",
    }[r.recovery]
    resolution = (
        "The experiment's rollback removed the fault"
        + (f" at {_utc(r.fault_end_ts)} UTC" if r.fault_end_ts else "")
        + f"; the service {recovery_text}."
        + _cross_check(r)
    )
    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE).render(
        sc=sc,
        r=r,
        date=datetime.fromtimestamp(r.inject_ts, tz=UTC).date().isoformat() if r.inject_ts else "n/a",
        recovery_text=recovery_text,
        resolution=resolution,
        timeline=timeline_rows(r, timeline, events),
        well=well,
        badly=badly,
        lucky=lucky,
        actions=action_items(r, sc, runbook_links(sc, r.alerts_fired, runbook_dir)),
        alert_links=alert_runbook_links(r.alerts_fired, runbook_dir),
        silent=silent_alerts(r, sc),
        fmt=_fmt,
        sig=lambda v: "n/a" if v is None else f"{v:.3g}",
        pct=lambda v: "n/a" if v is None else f"{v * 100:.4f}%",
    )


def _cross_check(r: RunResult) -> str:
    """The RTO as Prometheus saw it, beside the load generator's (its SLI is a rate over a few
    seconds, so it trails by about that window)."""
    if r.rto_seconds is None or r.rto_prometheus_seconds is None:
        return ""
    return (
        f" Cross-check: Prometheus' SLI was back within objective {r.rto_prometheus_seconds:.1f} s after "
        f"injection (load generator: {r.rto_seconds:.1f} s)."
    )


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
