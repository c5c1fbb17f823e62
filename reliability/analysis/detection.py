"""Alerts as on-call saw them: firing episodes, time to detect per severity, and the pages that
should not have come (unexpected) or came too late (after the fault was gone).

Input is an ALERTS-style frame (Prometheus' `ALERTS` series pulled as a range query: `ts` or
`timestamp`, `alertname`, `alertstate`, the alert's labels). Severity is read from the alert's
labels: `sloth_severity` (page|ticket) or `severity` (critical -> page, warning/info -> ticket).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from reliability.analysis._frames import with_ts

# Two samples of one alert further apart than this belong to two firing episodes. Prometheus
# writes a stale marker when an alert resolves, so a firing alert has a sample at every step.
MIN_EPISODE_GAP_S = 2.0
_NOT_LABELS = {"ts", "timestamp", "value", "alertstate", "__name__"}
PAGE_SEVERITIES = {"page", "critical"}
TICKET_SEVERITIES = {"ticket", "warning", "info"}


def severity_of(labels: dict[str, str]) -> str:
    raw = str(labels.get("sloth_severity") or labels.get("severity") or "").lower()
    if raw in PAGE_SEVERITIES:
        return "page"
    if raw in TICKET_SEVERITIES:
        return "ticket"
    return raw or "none"


@dataclass(frozen=True)
class Episode:
    alertname: str
    severity: str
    labels: dict[str, str]
    start_ts: float
    end_ts: float  # last firing sample + one step (when it resolved, as far as the samples tell)
    still_firing: bool  # firing at the last sample pulled


def episodes(alerts: pd.DataFrame, until: float | None = None) -> list[Episode]:
    """Every firing episode of every alert label set, ordered by start. `until` is the end of the
    range the samples were pulled over (default: the last sample): an episode whose last sample is
    within a step of it was still firing."""
    if alerts.empty or "alertname" not in alerts.columns or "alertstate" not in alerts.columns:
        return []
    frame = with_ts(alerts)
    step = _step(frame)
    last_sample = float(frame["ts"].max()) if until is None else until
    firing = frame[frame["alertstate"] == "firing"]
    if firing.empty:
        return []
    gap = max(MIN_EPISODE_GAP_S, 2.5 * step)
    label_cols = sorted(c for c in firing.columns if c not in _NOT_LABELS)
    out: list[Episode] = []
    for _, series in firing.groupby(label_cols, dropna=False, sort=False):
        labels = {c: str(series.iloc[0][c]) for c in label_cols if pd.notna(series.iloc[0][c])}
        ts = series["ts"].astype(float).sort_values().to_numpy()
        start = ts[0]
        for prev, cur in itertools.pairwise(ts):
            if cur - prev > gap:
                out.append(_episode(labels, start, prev, step, False))
                start = cur
        out.append(_episode(labels, start, ts[-1], step, ts[-1] >= last_sample - 1.5 * step))
    return sorted(out, key=lambda e: (e.start_ts, e.alertname))


def _episode(labels: dict[str, str], start: float, last: float, step: float, open_: bool) -> Episode:
    return Episode(labels.get("alertname", "?"), severity_of(labels), labels, start, last + step, open_)


def _step(frame: pd.DataFrame) -> float:
    diffs = frame["ts"].astype(float).drop_duplicates().sort_values().diff().dropna()
    diffs = diffs[diffs > 0]
    return float(diffs.min()) if not diffs.empty else 1.0


@dataclass(frozen=True)
class ExpectedAlerts:
    """`all_of`: each must fire. `any_of` groups: at least one alert of each group must fire."""

    all_of: tuple[str, ...] = ()
    any_of: tuple[tuple[str, ...], ...] = ()

    @property
    def names(self) -> set[str]:
        return set(self.all_of) | {a for group in self.any_of for a in group}


@dataclass(frozen=True)
class Detection:
    severity: str
    alertname: str
    ts: float
    ttd_seconds: float
    late: bool  # fired only after the fault had been removed


@dataclass
class AlertReport:
    episodes: list[Episode] = field(default_factory=list)  # those that began at/after injection
    before_injection: list[Episode] = field(default_factory=list)  # already firing at injection
    detection: dict[str, Detection] = field(default_factory=dict)  # severity -> first expected
    fired: dict[str, float] = field(default_factory=dict)  # expected alert -> first firing ts
    silent: list[str] = field(default_factory=list)  # expected alerts that never fired
    unmet_any_of: list[tuple[str, ...]] = field(default_factory=list)
    unexpected: list[Episode] = field(default_factory=list)


def analyse_alerts(
    alerts: pd.DataFrame,
    inject_ts: float,
    fault_end_ts: float | None,
    expected: ExpectedAlerts,
    severities: Sequence[str] = ("page", "ticket"),
    until: float | None = None,
) -> AlertReport:
    """What fired because of the fault (episodes beginning at or after injection).

    An alert already firing when the fault went in (another incident, a previous run on the same
    target) does not detect this fault however long it keeps firing; one that resolved and fires
    again does.
    """
    report = AlertReport()
    names = expected.names
    for ep in episodes(alerts, until):
        if ep.start_ts < inject_ts:
            if ep.end_ts > inject_ts or ep.still_firing:
                report.before_injection.append(ep)
            continue
        report.episodes.append(ep)
        if ep.alertname in names:
            report.fired.setdefault(ep.alertname, ep.start_ts)
            sev = ep.severity
            if sev in severities and sev not in report.detection:
                late = fault_end_ts is not None and ep.start_ts >= fault_end_ts
                report.detection[sev] = Detection(
                    sev, ep.alertname, ep.start_ts, ep.start_ts - inject_ts, late
                )
        else:
            report.unexpected.append(ep)
    report.silent = [a for a in expected.all_of if a not in report.fired]
    report.unmet_any_of = [g for g in expected.any_of if not any(a in report.fired for a in g)]
    return report


def ttd(alerts: pd.DataFrame, inject_ts: float, expected: Iterable[str]) -> float | None:
    """Seconds from injection to the first firing episode of an expected alert (any severity)."""
    names = tuple(expected)
    starts = [e.start_ts for e in episodes(alerts) if e.alertname in names and e.start_ts >= inject_ts]
    return min(starts) - inject_ts if starts else None
