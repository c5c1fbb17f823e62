"""What chaos tools' own reports show, read from the run directory: run metadata, the steady-state
hypothesis before and after, each activity and rollback with status, duration and output, the
guardrails and whether they tripped, and the load generator's errors by request name.

Sources: `run.json` (host, versions), Chaos Toolkit's `journal.json` (activities, hypothesis,
its own status), the chaos timeline (`hypothesis`, `guardrail_tripped` records, when the journal is
missing because the experiment was killed) and `load_stats.jsonl` v2 `errors`.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from reliability.report.model import (
    ActivityRecord,
    ClientError,
    GuardrailStatus,
    HypothesisCheck,
    ProbeResult,
    RunMeta,
    RunResult,
)
from reliability.report.rundir import RunData

OUTPUT_CHARS = 300  # an activity's output as the report shows it; the journal keeps all of it


def read_journal(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _epoch(value: Any) -> float | None:
    """chaoslib writes ISO times without a zone, in UTC."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        from datetime import UTC

        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= OUTPUT_CHARS else text[: OUTPUT_CHARS - 1] + "…"


def _error(run: dict[str, Any]) -> str:
    exc = run.get("exception")
    if not exc:
        return ""
    lines = [str(x) for x in exc] if isinstance(exc, list) else [str(exc)]
    text = "".join(lines).strip()
    return text.splitlines()[-1] if text else ""


def _activity(run: dict[str, Any], phase: str) -> ActivityRecord:
    act = run.get("activity") if isinstance(run.get("activity"), dict) else {}
    duration = run.get("duration")
    return ActivityRecord(
        phase=phase,  # type: ignore[arg-type]
        name=str(act.get("name", "?")),
        type=str(act.get("type", "")),
        status=str(run.get("status", "")),
        start_ts=_epoch(run.get("start")),
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        output=_short(run.get("output")),
        error=_error(run),
    )


def activities_from_journal(journal: dict[str, Any]) -> list[ActivityRecord]:
    out = [_activity(r, "method") for r in journal.get("run") or [] if isinstance(r, dict)]
    out += [_activity(r, "rollback") for r in journal.get("rollbacks") or [] if isinstance(r, dict)]
    return out


def activities_from_timeline(timeline: list[dict[str, Any]]) -> list[ActivityRecord]:
    """The same from our control's timeline records (a killed experiment writes no journal)."""
    out: list[ActivityRecord] = []
    started: dict[tuple[str, str], float] = {}
    for rec in timeline:
        event, name, phase = rec.get("event"), str(rec.get("name", "")), str(rec.get("phase", ""))
        if event == "activity_start":
            started[(phase, name)] = float(rec.get("ts", 0.0))
        elif event == "activity_end" and phase in ("method", "rollback", "hypothesis", "experiment"):
            begin = started.pop((phase, name), None)
            out.append(
                ActivityRecord(
                    phase=phase,  # type: ignore[arg-type]
                    name=name,
                    type=str(rec.get("type", "")),
                    status=str(rec.get("status", "")),
                    start_ts=begin,
                    duration_s=float(rec["ts"]) - begin if begin is not None else None,
                    output=_short(rec.get("output")),
                    error=str(rec.get("error", "")),
                )
            )
    return out


def hypothesis_checks(
    journal: dict[str, Any] | None, timeline: list[dict[str, Any]]
) -> list[HypothesisCheck]:
    """Before and after, from the journal's steady states (with each probe), else from the timeline."""
    out: list[HypothesisCheck] = []
    states = (journal or {}).get("steady_states")
    if isinstance(states, dict):
        for when in ("before", "after"):
            state = states.get(when)
            if not isinstance(state, dict):
                continue
            probes = [
                ProbeResult(
                    name=str((p.get("activity") or {}).get("name", "?")),
                    status=str(p.get("status", "")),
                    tolerance_met=p.get("tolerance_met"),
                    output=_short(p.get("output")),
                )
                for p in state.get("probes") or []
                if isinstance(p, dict)
            ]
            starts = [t for t in (_epoch(p.get("start")) for p in state.get("probes") or []) if t]
            out.append(
                HypothesisCheck(
                    when=when,  # type: ignore[arg-type]
                    met=state.get("steady_state_met"),
                    ts=min(starts) if starts else None,
                    probes=probes,
                )
            )
    if out:
        return out
    # The timeline's `hypothesis` records: the first is before the method, a later one after.
    records = [r for r in timeline if r.get("event") == "hypothesis"]
    method = next((float(r["ts"]) for r in timeline if r.get("event") == "method_start"), None)
    for r in records:
        ts = float(r.get("ts", 0.0))
        when = "before" if method is None or ts <= method else "after"
        out.append(HypothesisCheck(when=when, met=r.get("met"), ts=ts))
    return out


def guardrail_status(data: RunData) -> list[GuardrailStatus]:
    tripped = {str(r.get("name")): r for r in data.timeline if r.get("event") == "guardrail_tripped"}
    out = []
    for g in data.scenario.guardrails:
        hit = tripped.get(g.name)
        value = hit.get("value") if hit else None
        out.append(
            GuardrailStatus(
                name=g.name,
                query=g.query,
                above=g.above,
                for_seconds=float(g.for_seconds),
                tripped=hit is not None,
                ts=float(hit["ts"]) if hit else None,
                value=float(value) if isinstance(value, int | float) else None,
            )
        )
    return out


def client_errors(load: pd.DataFrame) -> list[ClientError]:
    """load_stats v2 `errors` ({"<request name>: <message>": n} per second), summed over the run."""
    if load.empty or "errors" not in load:
        return []
    counts: dict[str, int] = {}
    first: dict[str, float] = {}
    for ts, errors in zip(load["ts"], load["errors"], strict=True):
        if not isinstance(errors, dict):
            continue
        for key, n in errors.items():
            counts[key] = counts.get(key, 0) + int(n)
            first.setdefault(key, float(ts))
    out = []
    for key, n in counts.items():
        request, _, message = key.partition(": ")
        out.append(ClientError(request=request, message=message or key, count=n, first_ts=first.get(key)))
    return sorted(out, key=lambda e: (-e.count, e.request, e.message))


def run_meta(data: RunData, journal: dict[str, Any] | None) -> RunMeta:
    info = data.info
    versions = dict(info.versions) if info else {}
    if journal and journal.get("chaoslib-version"):
        versions.setdefault("chaostoolkit-lib", str(journal["chaoslib-version"]))
    experiment = (journal or {}).get("experiment") or {}
    title = next((str(r.get("title")) for r in data.timeline if r.get("event") == "experiment_start"), "")
    return RunMeta(
        host=info.host if info else "",
        versions=versions,
        experiment_title=str(experiment.get("title") or title or ""),
        journal_status=str(journal["status"]) if journal and journal.get("status") else None,
        deviated=journal.get("deviated") if journal else None,
    )


def tell(result: RunResult, data: RunData) -> RunResult:
    """The result with the chaos-tool view of the run filled in (a copy)."""
    journal = read_journal(data.root / "journal.json")
    activities = activities_from_journal(journal) if journal else activities_from_timeline(data.timeline)
    return result.model_copy(
        update={
            "meta": run_meta(data, journal),
            "hypothesis": hypothesis_checks(journal, data.timeline),
            "activities": activities,
            "guardrails": guardrail_status(data),
            "client_errors": client_errors(data.load),
        }
    )
