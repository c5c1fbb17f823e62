"""What the live console shows, computed from what the run has written so far (pure functions and
small state holders; the console itself is `reliability.gameday.live`).

- `fault_state(timeline records)`: injecting, in place since, rolling back, rolled back, rollback
  failed - from the records `reliability.chaos.controls`/`actions` and the orchestrator write.
- `AlertTracker`: alerts as they fire and resolve, from successive instant queries of `ALERTS`,
  with the first detection (an expected alert firing after the injection) and its TTD.
- `client_figures(load tail)`: the last complete second (requests/s, error ratio, TTFT/ITL p95 from
  the load generator's per-second histograms) and the last minute for the sparklines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reliability.analysis import histogram
from reliability.analysis.detection import severity_of

SPARK = "▁▂▃▄▅▆▇█"
HISTORY_S = 60


@dataclass(frozen=True)
class PhasePlan:
    """The phases a game day goes through and how long each is planned to take (seconds)."""

    baseline: float
    fault_hold: float
    recovery_max: float

    @classmethod
    def of(cls, scenario: Any) -> PhasePlan:
        p = scenario.phases
        return cls(float(p.baseline), float(p.fault_hold), float(p.recovery_max))


@dataclass(frozen=True)
class FaultState:
    state: (
        str  # none | injecting | in place | injection failed | rolling back | rolled back | rollback failed
    )
    since_ts: float | None = None
    fault: str = ""
    detail: str = ""
    guardrail: str = ""  # "name tripped (value > above)" when a guardrail stopped the experiment

    @property
    def settled(self) -> bool:
        return self.state in ("rolled back", "rollback failed", "injection failed")


def _fault_text(rec: dict[str, Any]) -> str:
    args = rec.get("args") if isinstance(rec.get("args"), dict) else {}
    return f"{rec.get('fault', '?')}({', '.join(f'{k}={v}' for k, v in args.items())})"


def _returned(rec: dict[str, Any]) -> float:
    returned = rec.get("returned")
    if isinstance(returned, dict) and isinstance(returned.get("ts"), int | float):
        return float(returned["ts"])
    return float(rec.get("ts", 0.0))


def fault_state(records: Iterable[dict[str, Any]]) -> FaultState:
    """The fault's state after these timeline records (in order of writing)."""
    state, since, fault, detail, guardrail = "none", None, "", "", ""
    rollback_error = ""
    for rec in records:
        event, phase = rec.get("event"), rec.get("phase")
        ts = float(rec.get("ts", 0.0))
        if event == "activity_start" and phase == "method" and rec.get("type") == "action":
            if state == "none":
                state, since, fault = "injecting", ts, str(rec.get("name", ""))
        elif event == "fault_injected":
            state, since, fault = "in place", _returned(rec), _fault_text(rec)
        elif event == "activity_end" and phase == "method" and rec.get("status") == "failed":
            if state != "in place":
                state, since, detail = "injection failed", ts, str(rec.get("error", ""))
        elif event == "guardrail_tripped":
            value = rec.get("value")
            guardrail = f"{rec.get('name')} tripped ({value} > {rec.get('above')})"
        elif event == "rollback_start" or (event == "gameday_phase" and rec.get("name") == "rollback"):
            if state in ("injecting", "in place"):
                state, since = "rolling back", ts
        elif event == "activity_end" and phase == "rollback" and rec.get("status") == "failed":
            rollback_error = str(rec.get("error") or rec.get("name") or "an undo failed")
        elif event == "fault_cleared":
            if state in ("injecting", "in place", "rolling back"):
                state, since = "rolling back", _returned(rec)
        elif event == "rollback_end" and state == "rolling back":
            state, since = ("rollback failed", ts) if rollback_error else ("rolled back", ts)
            detail = rollback_error
        elif event == "harness_recover":
            if rec.get("ok"):
                if state != "rolled back":
                    state, since, detail = "rolled back", ts, f"by the harness ({rec.get('fault', '')})"
            else:
                state, since, detail = (
                    "rollback failed",
                    ts,
                    f"the harness could not undo {rec.get('fault', '')}",
                )
    return FaultState(state, since, fault, detail, guardrail)


@dataclass
class LiveAlert:
    alertname: str
    severity: str
    labels: dict[str, str]
    expected: bool
    state: str  # pending | firing | resolved
    since_ts: float  # firing since (pending since, while pending)
    resolved_ts: float | None = None

    @property
    def hint(self) -> str:
        shown = [
            self.labels[k]
            for k in ("node", "Hostname", "region", "server", "sloth_slo")
            if self.labels.get(k)
        ]
        return f" ({', '.join(dict.fromkeys(shown))})" if shown else ""


@dataclass(frozen=True)
class LiveDetection:
    alertname: str
    severity: str
    ts: float
    ttd_seconds: float


_NOT_LABELS = {"__name__", "alertstate"}


@dataclass
class AlertTracker:
    """Alert episodes as successive `ALERTS` instant queries show them. Times are when this process
    first saw the state (query resolution), not Prometheus' own: the report has the exact ones."""

    expected: frozenset[str] = frozenset()
    alerts: dict[tuple[tuple[str, str], ...], LiveAlert] = field(default_factory=dict)
    detection: LiveDetection | None = None

    def update(self, samples: Sequence[dict[str, str]], now: float, inject_ts: float | None) -> None:
        seen: set[tuple[tuple[str, str], ...]] = set()
        for labels in samples:
            key = tuple(sorted((k, str(v)) for k, v in labels.items() if k not in _NOT_LABELS))
            seen.add(key)
            state = str(labels.get("alertstate", "firing"))
            known = self.alerts.get(key)
            if known is None or known.state == "resolved":
                name = str(labels.get("alertname", "?"))
                plain = dict(key)
                plain.pop("alertname", None)
                self.alerts[key] = known = LiveAlert(
                    name, severity_of(dict(labels)), plain, name in self.expected, state, now
                )
            elif known.state == "pending" and state == "firing":
                known.state, known.since_ts = "firing", now
            if (
                known.state == "firing"
                and known.expected
                and self.detection is None
                and inject_ts is not None
                and known.since_ts >= inject_ts
            ):
                self.detection = LiveDetection(
                    known.alertname, known.severity, known.since_ts, known.since_ts - inject_ts
                )
        for key, alert in self.alerts.items():
            if key not in seen and alert.state != "resolved":
                if alert.state == "pending":
                    alert.state = "resolved"  # never fired: drop it from view below
                    alert.resolved_ts = None
                else:
                    alert.state, alert.resolved_ts = "resolved", now

    def shown(self, limit: int = 8) -> list[LiveAlert]:
        """Firing first (oldest first), then pending, then the latest resolved."""
        order = {"firing": 0, "pending": 1, "resolved": 2}
        alerts = [a for a in self.alerts.values() if not (a.state == "resolved" and a.resolved_ts is None)]
        alerts.sort(
            key=lambda a: (order[a.state], a.since_ts if a.state != "resolved" else -(a.resolved_ts or 0))
        )
        return alerts[:limit]


@dataclass(frozen=True)
class ClientFigures:
    rps: float | None = None
    error_ratio: float | None = None
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    history_rps: tuple[float, ...] = ()
    history_errors: tuple[float, ...] = ()


def client_figures(tail: list[dict[str, Any]]) -> ClientFigures:
    if not tail:
        return ClientFigures()
    last = tail[-1]
    requests = float(last.get("requests") or 0)
    ratio = float(last.get("failures") or 0) / requests if requests > 0 else None
    rps = last.get("rps", requests)
    recent = tail[-HISTORY_S:]
    return ClientFigures(
        rps=float(rps) if rps is not None else None,
        error_ratio=ratio,
        ttft_p95_ms=histogram.percentile(histogram.as_hist(last.get("ttft_ms")), 0.95),
        itl_p95_ms=histogram.percentile(histogram.as_hist(last.get("itl_ms")), 0.95),
        history_rps=tuple(float(r.get("requests") or 0) for r in recent),
        history_errors=tuple(float(r.get("failures") or 0) for r in recent),
    )


def sparkline(values: Sequence[float], width: int = HISTORY_S) -> str:
    """One character per value (the last `width`), scaled from 0 to the largest value."""
    values = list(values)[-width:]
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] for v in values)


@dataclass(frozen=True)
class RegionFigures:
    region: str
    rps: float | None = None
    errors_per_s: float | None = None
    ready_nodes: float | None = None


def region_figures(
    traffic: Sequence[tuple[dict[str, str], float]], ready: Sequence[tuple[dict[str, str], float]]
) -> list[RegionFigures]:
    """Per region: responses/s and 5xx/s (by gateway server and status class), ready GPU nodes."""
    rps: dict[str, float] = {}
    errors: dict[str, float] = {}
    for labels, value in traffic:
        region = labels.get("server") or labels.get("region") or "?"
        rps[region] = rps.get(region, 0.0) + value
        if str(labels.get("code", "")).startswith("5"):
            errors[region] = errors.get(region, 0.0) + value
    nodes: dict[str, float] = {}
    for labels, value in ready:
        region = (
            labels.get("label_topology_kubernetes_io_region")
            or labels.get("region")
            or next(iter(labels.values()), "all")
        )
        nodes[region] = nodes.get(region, 0.0) + value
    return [
        RegionFigures(r, rps.get(r), errors.get(r, 0.0) if r in rps else None, nodes.get(r))
        for r in sorted(set(rps) | set(nodes))
    ]
