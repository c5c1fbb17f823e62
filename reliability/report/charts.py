"""The charts of report.html: one figure, every panel on the same time axis, so an alert's bar, a
region's traffic and the ready GPU nodes line up with the inject / detect / recover marks.

A panel appears only when its data exists; `build_figure` says which were left out and why, so the
page never shows an empty chart without a word.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reliability.analysis import budget_spent_over_time, histogram, per_second, ready_count
from reliability.report.model import AlertEpisode, RunResult
from reliability.report.rundir import RunData

SEVERITY_COLOURS = {"page": "#d62728", "ticket": "#ff7f0e"}
OTHER_COLOUR = "#7f7f7f"
EVENTS_LANE = "target events (ground truth)"
# Ground-truth events worth a mark on the timeline (node readiness has its own panel).
STORY_EVENTS = {
    "node_killed", "node_xid", "xid_reported", "node_condition", "node_cordoned", "node_lost_detected",
    "replacement_started", "replacement_ready", "replacement_failed", "partition_applied",
    "partition_removed", "region_failover", "region_failback", "store_promoted", "store_demoted",
    "fault_set", "fault_cleared", "gateway_server_down", "gateway_server_up", "gateway_backend_empty",
}  # fmt: skip
MARKS = (("inject", "red"), ("detect", "orange"), ("recover", "green"))
# Burn-rate windows shown at first (the others are one legend click away): the shortest ones.
VISIBLE_WINDOWS = 2


def dt(ts: pd.Series | float) -> Any:
    if isinstance(ts, pd.Series):
        return pd.to_datetime(ts.astype(float), unit="s", utc=True)
    return datetime.fromtimestamp(float(ts), tz=UTC)


@dataclass
class Panel:
    key: str
    title: str
    traces: list[Any] = field(default_factory=list)
    yaxis: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass
class Charts:
    figure: go.Figure
    panels: list[str]
    missing: dict[str, str]  # panel title -> why it is not shown


def _label_hint(labels: dict[str, str]) -> str:
    shown = [labels[k] for k in ("node", "Hostname", "region", "server", "sloth_slo") if labels.get(k)]
    return f" ({', '.join(dict.fromkeys(shown))})" if shown else ""


def alert_lane(a: AlertEpisode) -> str:
    return a.alertname + _label_hint(a.labels)


def alert_timeline(r: RunResult, data: RunData) -> Panel | str:
    """A Gantt of every alert episode (colour = severity, hatched = not expected) and a lane of
    the target's own events."""
    episodes = [*r.alerts_before_injection, *r.alerts]
    end_default = data.series_end or r.ended_ts or (max((a.start_ts for a in episodes), default=0) + 1)
    panel = Panel("alerts", "Alerts (firing -> resolved; hatched = not expected) and target events")
    shown: set[str] = set()
    for a in episodes:
        end = a.end_ts if a.end_ts is not None else end_default
        group = f"{a.severity} {'expected' if a.expected else 'unexpected'}"
        colour = SEVERITY_COLOURS.get(a.severity, OTHER_COLOUR)
        resolved = "still firing" if a.end_ts is None else f"resolved after {end - a.start_ts:.1f} s"
        fired = f"{dt(a.start_ts):%H:%M:%S} UTC"
        if a.ttd_seconds is not None:
            fired += f", {a.ttd_seconds:+.1f} s after injection"
        expected = "expected" if a.expected else "NOT expected"
        hover = f"{a.alertname} ({a.severity}, {expected})<br>fired {fired}<br>{resolved}"
        panel.traces.append(
            go.Bar(
                base=[dt(a.start_ts)],
                x=[max(end - a.start_ts, 0.25) * 1000.0],
                y=[alert_lane(a)],
                orientation="h",
                name=f"alert: {group}",
                legendgroup=group,
                showlegend=group not in shown,
                marker={
                    "color": colour,
                    "pattern": {"shape": "" if a.expected else "x", "fgcolor": "white"},
                    "line": {"color": colour, "width": 1},
                },
                hovertext=[hover],
                hoverinfo="text",
            )
        )
        shown.add(group)
    start = data.load["ts"].min() if not data.load.empty else r.started_ts
    events = [
        e
        for e in data.events
        if e.get("event") in STORY_EVENTS
        and "ts" in e
        and (start is None or float(e["ts"]) >= float(start) - 5)
    ]
    if events:
        text = [
            f"{e['event']} "
            + ", ".join(f"{k}={e[k]}" for k in ("node", "region", "server", "backend", "reason") if e.get(k))
            for e in events
        ]
        panel.traces.append(
            go.Scatter(
                x=[dt(float(e["ts"])) for e in events],
                y=[EVENTS_LANE] * len(events),
                mode="markers",
                marker={"symbol": "diamond", "size": 9, "color": "#1f77b4"},
                name="target events",
                hovertext=text,
                hoverinfo="text",
            )
        )
    if not panel.traces:
        return "no alert fired and the target wrote no events"
    lanes = len({alert_lane(a) for a in episodes}) + (1 if events else 0)
    panel.weight = max(0.6, 0.25 * lanes)
    panel.yaxis = {"type": "category", "autorange": "reversed"}
    return panel


def traffic_by_region(data: RunData) -> Panel | str:
    frame = data.series.get("requests_by_region")
    if frame is None or frame.empty or "server" not in frame:
        return "series/requests_by_region.csv missing or empty"
    panel = Panel("traffic", "Traffic per region (responses/s by gateway server, Prometheus)")
    frame = frame.assign(server=frame["server"].astype(str))
    total = frame.groupby(["timestamp", "server"])["value"].sum().reset_index()
    for server, part in total.groupby("server"):
        panel.traces.append(go.Scatter(x=dt(part["timestamp"]), y=part["value"], name=f"region {server}"))
    if "code" in frame:
        errors = frame[frame["code"].astype(str).str.startswith("5")]
        errors = errors.groupby(["timestamp", "server"])["value"].sum().reset_index()
        for server, part in errors.groupby("server"):
            if float(part["value"].max()) > 0:
                panel.traces.append(
                    go.Scatter(
                        x=dt(part["timestamp"]),
                        y=part["value"],
                        name=f"region {server} 5xx",
                        line={"dash": "dot"},
                    )
                )
    panel.yaxis = {"title": "responses/s", "rangemode": "tozero"}
    return panel


def error_ratio(data: RunData) -> Panel | str:
    load = data.load
    if load.empty:
        return "load_stats.jsonl missing or empty"
    x = dt(load["ts"])
    panel = Panel("errors", "Error ratio (load generator)")
    ratio = load["failures"] / load["requests"].where(load["requests"] > 0)
    panel.traces.append(go.Scatter(x=x, y=ratio, name="error ratio"))
    if "judged" in load and "wrong" in load and float(load["wrong"].fillna(0).sum()) > 0:
        wrong = load["wrong"] / load["judged"].where(load["judged"] > 0)
        panel.traces.append(go.Scatter(x=x, y=wrong, name="wrong answers (of judged)"))
    panel.yaxis = {"tickformat": ".0%", "rangemode": "tozero"}
    return panel


def _region_column(frame: pd.DataFrame) -> str | None:
    for col in ("label_topology_kubernetes_io_region", "region"):
        if col in frame:
            return col
    return next((c for c in frame.columns if c not in ("timestamp", "value", "__name__")), None)


def capacity(r: RunResult, data: RunData) -> Panel | str:
    panel = Panel("capacity", "Ready GPU nodes per region (Prometheus; dashed: ground truth)")
    frame = data.series.get("ready_nodes_by_region")
    if frame is not None and not frame.empty:
        col = _region_column(frame)
        groups = frame.groupby(frame[col].astype(str)) if col else [("all", frame)]
        for region, part in groups:
            panel.traces.append(
                go.Scatter(x=dt(part["timestamp"]), y=part["value"], name=f"ready {region}", line_shape="hv")
            )
    end = data.series_end or r.ended_ts
    regions = sorted(
        {str(e["region"]) for e in data.events if e.get("event") == "node_state" and e.get("region")}
    )
    for region in regions:
        steps = ready_count(data.events, region)
        if steps.empty:
            continue
        xs = list(steps["ts"].astype(float)) + ([end] if end else [])
        ys = list(steps["value"]) + ([steps["value"].iloc[-1]] if end else [])
        panel.traces.append(
            go.Scatter(
                x=[dt(t) for t in xs],
                y=ys,
                name=f"ready {region} (events)",
                line={"dash": "dash"},
                line_shape="hv",
            )
        )
    if not panel.traces:
        return "no series/ready_nodes_by_region.csv and no node_state events"
    panel.yaxis = {"title": "nodes", "rangemode": "tozero", "dtick": 1}
    return panel


def _window_seconds(window: str) -> float:
    from reliability.slo.durations import parse_duration

    try:
        return float(parse_duration(window))
    except Exception:
        return float("inf")


def burn_rates(data: RunData) -> Panel | str:
    frame = data.series.get("sli_error_ratio")
    if frame is None or frame.empty or "sloth_slo" not in frame:
        return "series/sli_error_ratio.csv missing or empty"
    objectives = {s.name: float(s.objective_ratio) for s in data.slos}
    frame = frame.copy()
    if "sloth_window" in frame:
        frame["window"] = frame["sloth_window"].astype(str)
    elif "__name__" in frame:
        frame["window"] = frame["__name__"].astype(str).str.replace(r"^.*ratio_rate", "", regex=True)
    else:
        return "series/sli_error_ratio.csv has neither sloth_window nor __name__"
    panel = Panel("burn", "Burn rate per SLO and window (error ratio / error budget; 1 = sustainable)")
    for slo, part in frame.groupby(frame["sloth_slo"].astype(str)):
        if slo not in objectives or not 0 < objectives[slo] < 1:
            continue
        windows = sorted(part["window"].unique(), key=_window_seconds)
        for i, window in enumerate(windows):
            series = part[part["window"] == window].sort_values("timestamp")
            panel.traces.append(
                go.Scatter(
                    x=dt(series["timestamp"]),
                    y=series["value"] / (1.0 - objectives[slo]),
                    name=f"burn {slo} {window}",
                    visible=True if i < VISIBLE_WINDOWS else "legendonly",
                )
            )
    if not panel.traces:
        return "no SLO of the scenario in series/sli_error_ratio.csv"
    panel.yaxis = {"title": "x budget", "rangemode": "tozero"}
    return panel


def _percentiles(load: pd.DataFrame, column: str, label: str) -> list[Any]:
    if column not in load:
        return []
    hists = [histogram.as_hist(h) for h in load[column]]
    if not any(hists):
        return []
    x = dt(load["ts"])
    return [
        go.Scatter(x=x, y=[histogram.percentile(h, q) for h in hists], name=f"{label} {name}")
        for q, name in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
    ]


def token_latency(data: RunData, column: str, series: str, label: str, title: str) -> Panel | str:
    panel = Panel(column, title)
    if not data.load.empty:
        panel.traces += _percentiles(data.load, column, f"client {label}")
    frame = data.series.get(series)
    if frame is not None and not frame.empty:
        panel.traces.append(
            go.Scatter(
                x=dt(frame["timestamp"]),
                y=frame["value"] * 1000.0,
                name=f"server {label} p95 (Prometheus)",
                line={"dash": "dash"},
            )
        )
    if not panel.traces:
        return f"no {column} histograms in load_stats.jsonl and no series/{series}.csv"
    panel.yaxis = {"title": "ms", "rangemode": "tozero"}
    return panel


def e2e_latency(data: RunData) -> Panel | str:
    load = data.load
    if load.empty:
        return "load_stats.jsonl missing or empty"
    panel = Panel("latency", "Latency (ms, per second, load generator: end to end)")
    panel.traces = _percentiles(load, "e2e_ms", "e2e")
    if not panel.traces:
        x = dt(load["ts"])
        panel.traces = [
            go.Scatter(x=x, y=load[c], name=f"e2e {c.removesuffix('_ms')}")
            for c in ("p50_ms", "p95_ms", "p99_ms")
            if c in load
        ]
    panel.yaxis = {"title": "ms", "rangemode": "tozero"}
    return panel


def budget(data: RunData) -> Panel | str:
    from reliability.report.analyze import client_spec

    load = data.load
    panel = Panel("budget", "Error budget spent, per SLO (client events)")
    if load.empty:
        return "load_stats.jsonl missing or empty"
    x = dt(load["ts"])
    for slo in data.slos:
        spec = client_spec(slo)
        if spec is None:
            continue
        spent = budget_spent_over_time(
            per_second(load, spec), float(slo.objective_ratio), float(slo.period_s)
        )
        if spent is not None:
            panel.traces.append(go.Scatter(x=x, y=spent, name=f"budget {slo.name}"))
    if not panel.traces:
        return "no client-side SLI to charge the budget with"
    panel.yaxis = {"tickformat": ".1%", "rangemode": "tozero"}
    return panel


def store(r: RunResult, data: RunData) -> Panel | str | None:
    """Replication lag and the acknowledged writes the failover lost (store scenarios only)."""
    lag = data.series.get("store_lag")
    has_lag = lag is not None and not lag.empty
    if not has_lag and r.rpo is None:
        return None  # not a store scenario: no panel and nothing to explain
    panel = Panel("store", "Store: replication lag (s) and acknowledged writes lost")
    if has_lag:
        assert lag is not None
        col = next((c for c in ("region", "instance") if c in lag), None)
        groups = lag.groupby(lag[col].astype(str)) if col else [("store", lag)]
        for name, part in groups:
            panel.traces.append(go.Scatter(x=dt(part["timestamp"]), y=part["value"], name=f"lag {name}"))
    canary = data.canary
    if canary is not None:
        lost = canary[canary["acked"] & ~canary["survived"]]
        if not lost.empty:
            panel.traces.append(
                go.Scatter(
                    x=dt(lost["ts"]),
                    y=[0.0] * len(lost),
                    mode="markers",
                    marker={"symbol": "x", "size": 9, "color": "#d62728"},
                    name=f"lost write ({len(lost)})",
                    hovertext=[f"seq {s}" for s in lost["seq"]],
                )
            )
    if not panel.traces:
        return "no series/store_lag.csv and no lost writes"
    panel.yaxis = {"title": "s", "rangemode": "tozero"}
    return panel


def _panels(r: RunResult, data: RunData) -> list[tuple[str, Callable[[], Panel | str | None]]]:
    return [
        ("Alerts", lambda: alert_timeline(r, data)),
        ("Traffic per region", lambda: traffic_by_region(data)),
        ("Error ratio", lambda: error_ratio(data)),
        ("Ready GPU nodes", lambda: capacity(r, data)),
        ("Burn rate", lambda: burn_rates(data)),
        ("TTFT", lambda: token_latency(data, "ttft_ms", "ttft_p95", "TTFT", "Time to first token (ms)")),
        ("ITL", lambda: token_latency(data, "itl_ms", "itl_p95", "ITL", "Inter-token latency (ms)")),
        ("Latency", lambda: e2e_latency(data)),
        ("Error budget", lambda: budget(data)),
        ("Store", lambda: store(r, data)),
    ]


def build_figure(r: RunResult, data: RunData) -> Charts:
    panels: list[Panel] = []
    missing: dict[str, str] = {}
    for name, make in _panels(r, data):
        got = make()
        if isinstance(got, Panel):
            panels.append(got)
        elif isinstance(got, str):
            missing[name] = got
    if not panels:
        return Charts(go.Figure(), [], missing)
    total = sum(p.weight for p in panels)
    fig = make_subplots(
        rows=len(panels),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=min(0.04, 0.3 / len(panels)),
        subplot_titles=[p.title for p in panels],
        row_heights=[p.weight / total for p in panels],
    )
    for row, panel in enumerate(panels, start=1):
        for trace in panel.traces:
            fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(row=row, col=1, **panel.yaxis)
    _marks(fig, r, len(panels))
    fig.update_xaxes(type="date")
    fig.update_layout(
        height=int(260 * total + 160),
        title_text=f"Game day: {r.scenario}",
        hovermode="x unified",
        barmode="overlay",
        legend={"groupclick": "toggleitem"},
    )
    return Charts(fig, [p.key for p in panels], missing)


def _marks(fig: go.Figure, r: RunResult, rows: int) -> None:
    """The fault window and the inject / detect / recover lines across every panel. Shapes are
    written per subplot in one go: plotly's add_vline/add_vrect scan every trace per call."""
    shapes: list[dict[str, Any]] = []
    for row in range(1, rows + 1):
        xref, yref = ("x", "y domain") if row == 1 else (f"x{row}", f"y{row} domain")
        if r.inject_ts is not None and r.fault_end_ts is not None:
            shapes.append(
                {"type": "rect", "xref": xref, "yref": yref, "x0": dt(r.inject_ts), "x1": dt(r.fault_end_ts),
                 "y0": 0, "y1": 1, "fillcolor": "red", "opacity": 0.08, "line": {"width": 0},
                 "layer": "below"}
            )  # fmt: skip
        for (_, colour), ts in zip(MARKS, (r.inject_ts, r.detect_ts, r.recovered_ts), strict=True):
            if ts is not None:
                shapes.append(
                    {"type": "line", "xref": xref, "yref": yref, "x0": dt(ts), "x1": dt(ts), "y0": 0, "y1": 1,
                     "line": {"color": colour, "dash": "dash", "width": 2}}
                )  # fmt: skip
    fig.update_layout(shapes=shapes)
    for i, ((label, colour), ts) in enumerate(
        zip(MARKS, (r.inject_ts, r.detect_ts, r.recovered_ts), strict=True)
    ):
        if ts is not None:
            fig.add_annotation(
                x=dt(ts), y=1.0, xref="x", yref="paper", text=label, showarrow=False, yanchor="bottom",
                font={"color": colour}, yshift=14 * i,  # staggered: the marks are often seconds apart
            )  # fmt: skip
