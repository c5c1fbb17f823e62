"""What the run looks like right now: per-second figures for the live view and the recovery check.

`LiveStats` reads the tail of the load generator's `load_stats.jsonl` (requests/s, error ratio)
and asks Prometheus for the burn rate; `LiveView` renders them with rich on a terminal, as plain
lines for CI logs, or not at all.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.live import Live
from rich.table import Table

QUALITY_QUERY = (
    'sum(rate(inference_canary_predictions_total{service="inference-api",outcome="correct"}[5s]))'
    ' / sum(rate(inference_canary_predictions_total{service="inference-api"}[5s]))'
)


@dataclass(frozen=True)
class Snapshot:
    phase: str
    elapsed: float
    rps: float | None
    error_ratio: float | None
    burn_rate: float | None


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
    requests = float(rec.get("requests") or 0)
    return float(rec.get("failures") or 0) / requests if requests > 0 else None


def recovered_at(samples: list[tuple[float, float | None]], objective: float, hold: float) -> float | None:
    """First time t such that from t on every per-second success ratio is >= objective for at
    least `hold` seconds, up to the last sample. Seconds without traffic (None) do not count as
    good: a service nobody can reach is not recovered."""
    start: float | None = None
    for t, ok in samples:
        if ok is not None and ok >= objective:
            if start is None:
                start = t
        else:
            start = None
    if start is None or samples[-1][0] - start < hold:
        return None
    return start


class LiveStats:
    def __init__(self, load_stats: Path, prometheus_url: str | None, burn_query: str | None) -> None:
        self.load_stats = load_stats
        self.burn_query = burn_query
        self._prom: Any = None
        if prometheus_url and burn_query:
            from reliability.chaos.prom import connect

            self._prom = connect(prometheus_url)

    def burn_rate(self) -> float | None:
        if self._prom is None or self.burn_query is None:
            return None
        from reliability.chaos.prom import query_value

        try:
            return query_value(self._prom, self.burn_query)
        except Exception:
            return None

    def snapshot(self, phase: str, elapsed: float, with_burn: bool = True) -> Snapshot:
        tail = read_load_tail(self.load_stats, 4096)
        last = tail[-1] if tail else {}
        rps = last.get("rps")
        return Snapshot(
            phase=phase,
            elapsed=elapsed,
            rps=float(rps) if rps is not None else None,
            error_ratio=error_ratio(last) if last else None,
            burn_rate=self.burn_rate() if with_burn else None,
        )

    def quality_samples(self, lookback: float = 120.0) -> list[tuple[float, float | None]]:
        """Per-second share of correct canary answers, from Prometheus (the load generator cannot
        see wrong answers served with HTTP 200)."""
        if self._prom is None:
            return []
        from datetime import UTC, datetime

        end = time.time()
        try:
            result = self._prom.custom_query_range(
                query=QUALITY_QUERY,
                start_time=datetime.fromtimestamp(end - lookback, tz=UTC),
                end_time=datetime.fromtimestamp(end, tz=UTC),
                step="1s",
            )
        except Exception:
            return []
        if not result:
            return []
        return [(float(t), float(v)) for t, v in result[0].get("values", [])]

    def success_samples(self) -> list[tuple[float, float | None]]:
        out = []
        for rec in read_load_tail(self.load_stats):
            er = error_ratio(rec)
            out.append((float(rec.get("ts", 0.0)), None if er is None else 1.0 - er))
        return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(scenario: str, snap: Snapshot, note: str = "") -> Table:
    table = Table(title=f"game day: {scenario}", show_header=True, expand=False)
    for col in ("phase", "elapsed", "requests/s", "error ratio", "burn rate"):
        table.add_column(col, justify="right" if col != "phase" else "left")
    table.add_row(
        snap.phase,
        f"{snap.elapsed:6.1f}s",
        _fmt(snap.rps, ".1f"),
        _fmt(snap.error_ratio, ".2%"),
        _fmt(snap.burn_rate, ".1f"),
    )
    if note:
        table.caption = note
    return table


ViewMode = Literal["live", "lines", "off"]
LINE_EVERY_S = 10.0  # a CI log gets a line per phase and one this often within a long phase


def progress_line(scenario: str, snap: Snapshot, note: str = "") -> str:
    line = f"[{snap.elapsed:6.1f}s] {scenario}: {snap.phase}"
    if (snap.rps, snap.error_ratio) != (None, None):
        line += f" - {_fmt(snap.rps, '.1f')} req/s, errors {_fmt(snap.error_ratio, '.2%')}"
    if snap.burn_rate is not None:  # phase marks skip the Prometheus query
        line += f", burn rate {snap.burn_rate:.1f}"
    return line + (f" ({note})" if note else "")


class LiveView:
    """How a run shows its progress: a rich Live table refreshed on every tick (`live`, for a
    terminal), a plain line per phase and every LINE_EVERY_S seconds (`lines`, for CI logs), or
    nothing (`off`)."""

    def __init__(self, scenario: str, mode: ViewMode, console: Console | None = None) -> None:
        self.scenario = scenario
        self.mode = mode
        self.console = console or Console(stderr=mode == "lines")
        self._live: Live | None = None
        self._last_line: tuple[str, float] | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def due(self, phase: str, elapsed: float) -> bool:
        """Whether a snapshot should be taken now (each costs a Prometheus query)."""
        if self.mode == "live":
            return True
        if self.mode == "lines":
            last = self._last_line
            return last is None or last[0] != phase or elapsed - last[1] >= LINE_EVERY_S
        return False

    def __enter__(self) -> LiveView:
        if self.mode == "live":
            self._live = Live(console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def update(self, snap: Snapshot, note: str = "") -> None:
        if self._live is not None:
            self._live.update(render(self.scenario, snap, note))
        elif self.mode == "lines":
            self._last_line = (snap.phase, snap.elapsed)
            self.console.print(progress_line(self.scenario, snap, note), highlight=False, markup=False)
