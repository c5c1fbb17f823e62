"""`postmortem.md` after the Google SRE post-mortem template; the judgement sections are derived
from the objective verdicts, so the document never claims more than was measured."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, StrictUndefined

from reliability.report.links import RunbookLinks
from reliability.report.model import ObjectiveVerdict, RunResult
from reliability.report.summary import (
    fmt,
    pct,
    recovery_text,
    silent_alerts,
    summary_sentence,
    utc,
    with_unit,
)
from reliability.scenario import Scenario

_TEMPLATE = """\
# Post-mortem: {{ sc.name }} game day

**Status:** {{ "PASSED" if r.passed else "FAILED" }}{% if r.error %} (harness error: {{ r.error }}){% endif %}
**Date:** {{ date }}

## Summary
{{ sc.description or sc.name }}
{{ summary }}

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
{{ root_cause }}

## Resolution
{{ resolution }}

## Objectives
| Objective | Target | Measured | Verdict |
|---|---|---|---|
{% for o in r.objectives -%}
| {{ o.name }} | {{ with_unit(o.target, o.unit) }} | {{ with_unit(o.measured, o.unit) }} | {{ o.verdict }}\
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
        line = f"{o.name}: {with_unit(o.measured, o.unit)} against a limit of {o.target:g} {o.unit}"
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
    return [(utc(ts), what) for ts, what in sorted(rows)]


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
            # The undo's return: the fault is certainly gone by then (the record's `ts` is when the
            # call began), as the injection's `ts` is the earliest it can have landed.
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


def render_postmortem(
    r: RunResult,
    sc: Scenario,
    timeline: list[dict[str, Any]],
    events: list[dict[str, Any]],
    links: RunbookLinks | None = None,
) -> str:
    """The post-mortem; `links` are the runbooks as `find_runbook_links` found them (none: no links)."""
    links = links or RunbookLinks()
    well, badly, lucky = lessons(r.objectives)
    recovery = recovery_text(r)
    resolution = (
        "The experiment's rollback removed the fault"
        + (f" at {utc(r.fault_end_ts)} UTC" if r.fault_end_ts else "")
        + f"; the service {recovery}."
        + _cross_check(r)
    )
    env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    return env.from_string(_TEMPLATE).render(
        sc=sc,
        r=r,
        date=datetime.fromtimestamp(r.inject_ts, tz=UTC).date().isoformat() if r.inject_ts else "n/a",
        summary=summary_sentence(r),
        resolution=resolution,
        root_cause=root_cause(sc, timeline),
        timeline=timeline_rows(r, timeline, events),
        well=well,
        badly=badly,
        lucky=lucky,
        actions=action_items(r, sc, links.exercised),
        alert_links=links.by_alert,
        silent=silent_alerts(r, sc),
        fmt=fmt,
        with_unit=with_unit,
        pct=pct,
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
