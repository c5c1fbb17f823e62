"""The live game-day console: what the run looks like right now.

`LiveStats` gathers each tick's figures - the load generator's last second (requests/s, errors,
TTFT and ITL p95 from its per-second histograms, the last minute for sparklines), and from
Prometheus the alerts (`ALERTS`), requests and errors per region and ready GPU nodes per region
(the signals profile's queries) and the burn rate per SLO (`slo:sli_error:ratio_rate<shortest
window>` / error budget). `LiveView` shows them with rich on a terminal (the phases as progress
bars with elapsed and remaining time, the fault's state from the chaos timeline, alerts as they
fire and resolve, the first detection with its TTD, regions, burn rates, sparklines, and on Ctrl-C
that it is rolling back and when that is done), as plain lines for CI logs, or not at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from reliability.chaos.jsonl import read_records
from reliability.gameday.livefeed import (
    AlertTracker,
    ClientFigures,
    FaultState,
    LiveAlert,
    LiveDetection,
    PhasePlan,
    RegionFigures,
    client_figures,
    fault_state,
    region_figures,
    sparkline,
)

QUERY_TIMEOUT_S = 2.0  # a slow Prometheus must not stall the run's loop
QUERY_EVERY_S = 1.0  # Prometheus is asked at most this often, however fast the view ticks


@dataclass(frozen=True)
class BurnRate:
    slo: str
    window: str
    value: float


@dataclass(frozen=True)
class Snapshot:
    phase: str
    elapsed: float
    rps: float | None
    error_ratio: float | None
    burn_rate: float | None  # the highest burn rate of any SLO (or the `burn_query`'s value)
    ttft_p95_ms: float | None = None
    itl_p95_ms: float | None = None
    regions: tuple[RegionFigures, ...] = ()
    burn: tuple[BurnRate, ...] = ()
    alerts: tuple[LiveAlert, ...] = ()
    detection: LiveDetection | None = None
    fault: FaultState | None = None
    history_rps: tuple[float, ...] = ()
    history_errors: tuple[float, ...] = ()
    prometheus_error: str | None = None
    wall_ts: float = field(default_factory=time.time)


def read_load_tail(path: Path, max_bytes: int = 64_000) -> list[dict[str, Any]]:
    """The last per-second records of a JSON-lines stats file (a torn last line is skipped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            chunk = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in chunk.splitlines()[1 if size > max_bytes else 0 :]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def error_ratio(rec: dict[str, Any]) -> float | None:
    requests_ = float(rec.get("requests") or 0)
    return float(rec.get("failures") or 0) / requests_ if requests_ > 0 else None


class Prometheus:
    """Instant queries with a timeout (`prometheus_api_client` has none by default)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        resp = self.session.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=QUERY_TIMEOUT_S)
        resp.raise_for_status()
        out = []
        for series in resp.json().get("data", {}).get("result", []):
            try:
                value = float(series["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if value == value:  # NaN: no data
                out.append((dict(series.get("metric", {})), value))
        return out


class LiveStats:
    """Each tick's figures. `slos` give the burn rate per SLO, `expected_alerts` which alerts were
    expected, `timeline` the fault's state; `profile` the signals profile (default vLLM + DCGM +
    kube-state-metrics + HAProxy)."""

    def __init__(
        self,
        load_stats: Path,
        prometheus_url: str | None,
        burn_query: str | None = None,
        *,
        timeline: Path | None = None,
        slos: Sequence[Any] = (),
        expected_alerts: Sequence[str] = (),
        profile: Any = None,
    ) -> None:
        self.load_stats = load_stats
        self.burn_query = burn_query
        self.timeline = timeline
        self.prom = Prometheus(prometheus_url) if prometheus_url else None
        self.tracker = AlertTracker(expected=frozenset(expected_alerts))
        self._slos = [(s.name, float(s.objective_ratio), _base_window_name(s)) for s in slos]
        self._profile = profile
        self._cache: tuple[float, dict[str, Any]] | None = None

    def _queries(self) -> dict[str, str]:
        from reliability.signals import load_profile

        profile = self._profile or load_profile()
        self._profile = profile
        series = profile.series
        out = {
            name: series[name].query
            for name in ("alerts", "requests_by_region", "ready_nodes_by_region")
            if name in series
        }
        if self._slos:
            out["burn"] = '{__name__=~"slo:sli_error:ratio_rate.*"}'
        if self.burn_query:
            out["burn_query"] = self.burn_query
        return out

    def _prometheus(self, inject_ts: float | None) -> dict[str, Any]:
        """Prometheus' figures, asked at most every QUERY_EVERY_S; the last answer in between."""
        now = time.time()
        if self._cache is not None and now - self._cache[0] < QUERY_EVERY_S:
            return self._cache[1]
        got: dict[str, Any] = {"error": None}
        assert self.prom is not None
        for name, promql in self._queries().items():
            try:
                got[name] = self.prom.query(promql)
            except (requests.RequestException, ValueError) as exc:
                got["error"] = f"Prometheus: {type(exc).__name__}"
                got[name] = None
        if got.get("alerts") is not None:
            self.tracker.update([labels for labels, _ in got["alerts"]], now, inject_ts)
        self._cache = (now, got)
        return got

    def fault(self) -> FaultState | None:
        return fault_state(read_records(self.timeline)) if self.timeline is not None else None

    def snapshot(self, phase: str, elapsed: float, with_burn: bool = True) -> Snapshot:
        """`with_burn=False`: no Prometheus query (phase marks, the end when the target is gone)."""
        client: ClientFigures = client_figures(read_load_tail(self.load_stats, 16_384))
        fault = self.fault()
        prom: dict[str, Any] = self._cache[1] if self._cache is not None else {}  # the last answer
        if with_burn and self.prom is not None:
            prom = self._prometheus(fault.since_ts if fault and fault.state != "none" else None)
        burn = tuple(self._burn(prom.get("burn") or []))
        top = max((b.value for b in burn), default=None)
        if prom.get("burn_query"):
            top = prom["burn_query"][0][1]
        return Snapshot(
            phase=phase,
            elapsed=elapsed,
            rps=client.rps,
            error_ratio=client.error_ratio,
            burn_rate=top,
            ttft_p95_ms=client.ttft_p95_ms,
            itl_p95_ms=client.itl_p95_ms,
            regions=tuple(
                region_figures(prom.get("requests_by_region") or [], prom.get("ready_nodes_by_region") or [])
            ),
            burn=burn,
            alerts=tuple(replace(a) for a in self.tracker.shown()),  # copies: the tracker moves on
            detection=self.tracker.detection,
            fault=fault,
            history_rps=client.history_rps,
            history_errors=client.history_errors,
            prometheus_error=prom.get("error"),
        )

    def _burn(self, samples: list[tuple[dict[str, str], float]]) -> list[BurnRate]:
        out = []
        for slo, objective, window in self._slos:
            name = f"slo:sli_error:ratio_rate{window}"
            value = next(
                (
                    v
                    for labels, v in samples
                    if labels.get("sloth_slo") == slo and labels.get("__name__") == name
                ),
                None,
            )
            if value is not None and 0 < objective < 1:
                out.append(BurnRate(slo, window, value / (1.0 - objective)))
        return out


def _base_window_name(slo: Any) -> str:
    from reliability.slo.durations import format_duration
    from reliability.slo.recording import base_window

    return format_duration(base_window(slo))


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S") if ts else "?"


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:02.0f} s"


# The orchestrator's phases, in order, and which planned phase each belongs to.
PHASE_ORDER = ("setup", "baseline", "chaos", "recovery", "observed", "rollback", "end")
PLAN_ROWS = (("baseline", "baseline"), ("chaos", "fault"), ("recovery", "recovery watch"))


@dataclass
class ViewState:
    plan: PhasePlan | None
    snap: Snapshot | None = None
    phase_started: dict[str, float] = field(default_factory=dict)  # phase -> elapsed when it began
    note: str = ""


def _phase_rows(state: ViewState, fault: FaultState | None) -> Table:
    snap = state.snap
    assert snap is not None
    table = Table.grid(padding=(0, 1))
    for _ in range(4):
        table.add_column()
    plan = state.plan
    if plan is None:
        return table
    current = PHASE_ORDER.index(snap.phase) if snap.phase in PHASE_ORDER else 0
    planned = {"baseline": plan.baseline, "chaos": plan.fault_hold, "recovery": plan.recovery_max}
    for phase, label in PLAN_ROWS:
        total = planned[phase]
        began = state.phase_started.get(phase)
        idx = PHASE_ORDER.index(phase)
        if began is None:
            done, status = 0.0, Text(f"{_duration(total)} planned", style="dim")
        elif current > idx:
            later = [v for p, v in state.phase_started.items() if PHASE_ORDER.index(p) > idx]
            took = (min(later) if later else snap.elapsed) - began
            done, status = total, Text(f"done, took {_duration(took)}", style="green")
        else:
            spent = snap.elapsed - began
            if phase == "chaos" and fault is not None and fault.state == "in place" and fault.since_ts:
                spent = snap.wall_ts - fault.since_ts  # the hold counts from when the fault landed
            elif phase == "chaos" and fault is not None and fault.state in ("none", "injecting"):
                spent = 0.0
            done = min(spent, total)
            left = total - spent
            if phase == "recovery":
                status = Text(f"{_duration(spent)} of up to {_duration(total)} (ends once every SLI holds)")
            elif left >= 0:
                status = Text(
                    f"{_duration(spent)} of {_duration(total)}, {_duration(left)} left", style="bold"
                )
            else:
                status = Text(f"{_duration(spent)} of {_duration(total)}, rollback under way", style="bold")
        table.add_row(
            Text(f"{label:<15}"),
            ProgressBar(total=max(total, 0.001), completed=done, width=30),
            status,
            Text(""),
        )
    return table


FAULT_STYLES = {
    "in place": "bold red",
    "injecting": "yellow",
    "rolling back": "yellow",
    "rolled back": "green",
    "rollback failed": "bold white on red",
    "injection failed": "bold white on red",
}


def fault_line(fault: FaultState | None, now: float) -> Text:
    text = Text("Fault: ")
    if fault is None or fault.state == "none":
        return text.append("not injected yet", style="dim")
    what = f" {fault.fault}" if fault.fault else ""
    if fault.state == "in place":
        body = f"in place since {_clock(fault.since_ts)} ({_duration(now - (fault.since_ts or now))}){what}"
    elif fault.state == "injecting":
        body = f"injecting since {_clock(fault.since_ts)}{what}"
    elif fault.state == "rolling back":
        body = f"rolling back since {_clock(fault.since_ts)}{what}"
    else:
        body = f"{fault.state} at {_clock(fault.since_ts)}{what}"
    if fault.detail:
        body += f" - {fault.detail}"
    text.append(body, style=FAULT_STYLES.get(fault.state, ""))
    if fault.guardrail:
        text.append(f"  guardrail {fault.guardrail}", style="bold red")
    return text


def _alerts(snap: Snapshot) -> Table:
    table = Table(title="Alerts", title_justify="left", box=None, show_header=False, padding=(0, 1))
    for col in ("state", "alert", "severity", "expected", "since"):
        table.add_column(col, no_wrap=True)
    if not snap.alerts:
        table.add_row(Text("none firing", style="dim"), "", "", "", "")
    for a in snap.alerts:
        state = Text(
            a.state.upper() if a.state != "resolved" else "resolved",
            style="bold red" if a.state == "firing" else "dim" if a.state == "resolved" else "yellow",
        )
        expected = Text("expected", style="green") if a.expected else Text("UNEXPECTED", style="bold red")
        if a.state == "resolved":
            since = f"{_clock(a.since_ts)} - {_clock(a.resolved_ts)}"
        else:
            since = f"since {_clock(a.since_ts)} ({_duration(snap.wall_ts - a.since_ts)})"
        table.add_row(state, a.alertname + a.hint, a.severity, expected, since)
    return table


def detection_line(snap: Snapshot) -> Text:
    d = snap.detection
    if d is None:
        return Text(
            "Detection: no expected alert has fired yet", style="dim" if snap.fault is None else "yellow"
        )
    return Text(
        f"Detected: {d.alertname} ({d.severity}) at {_clock(d.ts)}, TTD ~{d.ttd_seconds:.1f} s",
        style="bold green",
    )


def _figures(snap: Snapshot) -> RenderableType:
    parts: list[RenderableType] = []
    if snap.regions:
        table = Table(box=None, padding=(0, 1), show_edge=False)
        for col in ("region", "req/s", "errors/s", "ready GPU nodes"):
            table.add_column(col, justify="left" if col == "region" else "right", no_wrap=True)
        for r in snap.regions:
            table.add_row(
                r.region, _fmt(r.rps, ".1f"), _fmt(r.errors_per_s, ".1f"), _fmt(r.ready_nodes, ".0f")
            )
        parts.append(table)
    client = (
        f"Client: {_fmt(snap.rps, '.1f')} req/s, errors {_fmt(snap.error_ratio, '.2%')}, "
        f"TTFT p95 {_fmt(snap.ttft_p95_ms, '.0f')} ms, ITL p95 {_fmt(snap.itl_p95_ms, '.0f')} ms"
    )
    parts.append(Text(client))
    if snap.burn:
        burn = Text("Burn rate: ")
        for b in snap.burn:
            burn.append(f"{b.slo} {b.value:.1f} ({b.window})  ", style="bold red" if b.value >= 1 else "")
        parts.append(burn)
    if snap.history_rps:
        parts.append(Text(f"Last minute  req/s  {sparkline(snap.history_rps)}"))
        parts.append(Text(f"             errors {sparkline(snap.history_errors)}", style="red"))
    if snap.prometheus_error:
        parts.append(Text(snap.prometheus_error, style="yellow"))
    return Group(*parts)


def interrupt_banner(received: Sequence[int], fault: FaultState | None, phase: str) -> Text | None:
    if not received:
        return None
    import signal

    name = signal.Signals(received[0]).name
    if fault is not None and fault.state == "rollback failed":
        return Text(
            f"Interrupted ({name}): ROLLBACK FAILED - run `reliability recover`", style="bold white on red"
        )
    if fault is None or fault.state in ("none", "rolled back", "injection failed") or phase == "end":
        done = f" at {_clock(fault.since_ts)}" if fault is not None and fault.state == "rolled back" else ""
        return Text(f"Interrupted ({name}): rollback done{done}; writing the reports", style="bold green")
    return Text(
        f"Interrupted ({name}): rolling back the fault - please wait (a second Ctrl-C is ignored)",
        style="bold yellow",
    )


class _Screen:
    """Rendered on every refresh of rich's Live (twice a second, also while the main thread is busy
    rolling back), so the fault's state and the interrupt banner stay current."""

    def __init__(self, view: LiveView) -> None:
        self.view = view

    def __rich__(self) -> RenderableType:
        return self.view.render()


ViewMode = Literal["live", "lines", "off"]
LINE_EVERY_S = 10.0  # a CI log gets a line per phase and one this often within a long phase
SNAPSHOT_EVERY_S = 1.0  # how often the lines mode looks for alerts and fault changes to log


def progress_line(scenario: str, snap: Snapshot, note: str = "") -> str:
    line = f"[{snap.elapsed:6.1f}s] {scenario}: {snap.phase}"
    if (snap.rps, snap.error_ratio) != (None, None):
        line += f" - {_fmt(snap.rps, '.1f')} req/s, errors {_fmt(snap.error_ratio, '.2%')}"
    if snap.burn_rate is not None:  # phase marks skip the Prometheus query
        line += f", burn rate {snap.burn_rate:.1f}"
    return line + (f" ({note})" if note else "")


def event_lines(scenario: str, before: Snapshot | None, snap: Snapshot) -> list[str]:
    """What changed since the last snapshot, one log line each: the fault's state, alerts firing
    and resolving, the first detection."""
    prefix = f"[{snap.elapsed:6.1f}s] {scenario}:"
    out = []
    changed = (
        before is None or before.fault is None or before.fault.state != (snap.fault and snap.fault.state)
    )
    if snap.fault is not None and snap.fault.state != "none" and changed:
        out.append(f"{prefix} fault {fault_line(snap.fault, snap.wall_ts).plain.removeprefix('Fault: ')}")
    old = {(a.alertname, a.hint, a.since_ts): a.state for a in (before.alerts if before else ())}
    for a in snap.alerts:
        was = old.get((a.alertname, a.hint, a.since_ts))
        if a.state == "firing" and was != "firing":
            expected = "expected" if a.expected else "UNEXPECTED"
            out.append(f"{prefix} alert firing: {a.alertname}{a.hint} ({a.severity}, {expected})")
        elif a.state == "resolved" and was == "firing":
            out.append(f"{prefix} alert resolved: {a.alertname}{a.hint}")
    if snap.detection is not None and (before is None or before.detection is None):
        d = snap.detection
        out.append(f"{prefix} detected by {d.alertname} ({d.severity}), TTD ~{d.ttd_seconds:.1f} s")
    return out


class LiveView:
    """How a run shows its progress: a rich Live screen refreshed on every tick (`live`, for a
    terminal), plain lines (`lines`, for CI logs: a line per phase and every LINE_EVERY_S seconds,
    and one for each change of the fault's state and each alert firing or resolving), or nothing
    (`off`). `plan` gives the phases' planned durations; `timeline` the chaos timeline, read on
    every refresh for the fault's state; `interrupts` (set by the orchestrator) the signals
    received, for the Ctrl-C banner."""

    def __init__(
        self,
        scenario: str,
        mode: ViewMode,
        console: Console | None = None,
        plan: PhasePlan | None = None,
        timeline: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.mode = mode
        # Log lines never wrap: a CI log viewer or grep needs one event per line.
        self.console = console or Console(stderr=mode == "lines", soft_wrap=mode == "lines")
        self.timeline = timeline
        self.interrupts: Any = None
        self.state = ViewState(plan)
        self._live: Live | None = None
        self._last_line: tuple[str, float] | None = None
        self._last_snapshot_at: float | None = None
        self._banner_logged = False

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def due(self, phase: str, elapsed: float) -> bool:
        """Whether a snapshot should be taken now (each costs a few Prometheus queries)."""
        if self.mode == "live":
            return True
        if self.mode == "lines":
            last = self._last_snapshot_at
            return (
                last is None or phase != (self._last_line or ("", 0))[0] or elapsed - last >= SNAPSHOT_EVERY_S
            )
        return False

    def __enter__(self) -> LiveView:
        if self.mode == "live":
            self._live = Live(_Screen(self), console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.__exit__(None, None, None)
            self._live = None

    def _received(self) -> list[int]:
        return list(getattr(self.interrupts, "received", None) or [])

    def _fault(self) -> FaultState | None:
        if self.timeline is not None and self.timeline.exists():
            return fault_state(read_records(self.timeline))
        return self.state.snap.fault if self.state.snap else None

    def update(self, snap: Snapshot, note: str = "") -> None:
        before = self.state.snap
        self.state.phase_started.setdefault(snap.phase, snap.elapsed)
        self.state.snap, self.state.note = snap, note
        if self._live is not None:
            self._live.refresh()
        elif self.mode == "lines":
            self._log(before, snap, note)

    def _log(self, before: Snapshot | None, snap: Snapshot, note: str) -> None:
        self._last_snapshot_at = snap.elapsed
        lines = event_lines(self.scenario, before, snap)
        last = self._last_line
        if last is None or last[0] != snap.phase or snap.elapsed - last[1] >= LINE_EVERY_S:
            self._last_line = (snap.phase, snap.elapsed)
            lines.insert(0, progress_line(self.scenario, snap, note))
        banner = interrupt_banner(self._received(), snap.fault, snap.phase)
        if banner is not None and (not self._banner_logged or snap.phase == "end"):
            self._banner_logged = True
            lines.append(f"[{snap.elapsed:6.1f}s] {self.scenario}: {banner.plain}")
        for line in lines:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    def render(self) -> RenderableType:
        snap = self.state.snap
        now = time.time()
        header = Text(f"game day: {self.scenario}", style="bold")
        if snap is None:
            return Group(header, Text("starting...", style="dim"))
        fault = self._fault() or snap.fault
        elapsed = snap.elapsed + (now - snap.wall_ts)
        header.append(f"   phase: {snap.phase}   elapsed {_duration(elapsed)}", style="")
        parts: list[RenderableType] = [header]
        banner = interrupt_banner(self._received(), fault, snap.phase)
        if banner is not None:
            parts.append(banner)
        parts.append(_phase_rows(self.state, fault))
        parts.append(fault_line(fault, now))
        parts.append(_alerts(snap))
        parts.append(detection_line(snap))
        parts.append(_figures(snap))
        if self.state.note:
            parts.append(Text(self.state.note, style="dim"))
        return Group(*parts)
