"""`slo budget` against a real Prometheus on loopback.

Two sources of data: 30 days of known series backfilled into Prometheus' TSDB with
`promtool tsdb create-blocks-from openmetrics` (every count below is the ground truth those series
were written with), and a live exporter scraped once a second for the alerts.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, start_http_server
from rich.console import Console

from reliability.errors import InputError
from reliability.prometheus import LocalPrometheus
from reliability.prometheus.server import ScrapeTarget
from reliability.slo import compile_paths
from reliability.slo.budget import auth_headers
from reliability.slo.budget_model import BudgetReport, budget_json_schema
from reliability.slo.budget_table import render_table
from reliability.tools import free_port
from tests.slo.conftest import DATA, run_cli

SPEC = DATA / "gameday.yaml"

# ---- 30 days of known series ------------------------------------------------------------------

T = 1_699_920_000  # 2023-11-14T00:00:00Z, the evaluation time (--at)
AT = "2023-11-14T00:00:00Z"
DAY = 86400
STEP = 60  # one sample a minute, aligned on T
HISTORY = 30 * DAY
LONG_NAME = "chat-completions-availability-across-every-region-and-models"

# Requests: 10/s throughout. Errors: 2/s for 2 hours five days ago, 0.2/s for the last 3 hours.
RPS = 10.0
INCIDENTS = ((T - 5 * DAY, 7200, 2.0), (T - 3 * 3600, 3 * 3600, 0.2))


def errors_until(t: int) -> float:
    return sum(rate * min(max(t - start, 0), length) for start, length, rate in INCIDENTS)


def errors_in(window_s: int) -> float:
    return errors_until(T) - errors_until(T - window_s)


BUDGET_SPEC = f"""\
version: reliability/v1
service: llm-api
period: 28d
slos:
  - name: {LONG_NAME}
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(app_requests_total{{code="500"}}[{{{{.window}}}}]))
        total_query: sum(rate(app_requests_total[{{{{.window}}}}]))
    alerting: {{name: AppErrors}}
    error_budget_policy:
      - {{name: page, window: 1h, burn_rate_threshold: 14.4, action: Page on-call.}}
      - {{name: ticket, window: 1d, burn_rate_threshold: 3, action: Open a ticket.}}
      - {{name: prioritise-reliability, window: 7d, burn_rate_threshold: 1, action: Reliability sprint.}}
  - name: latency
    objective: 99
    sli:
      latency: {{metric: app_latency_seconds, threshold_seconds: 0.25}}
  - name: probes
    objective: 99
    sli:
      raw:
        error_ratio_query: 1 - avg_over_time(probe_success[{{{{.window}}}}])
  - name: fresh
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(fresh_requests_total{{code="500"}}[{{{{.window}}}}]))
        total_query: sum(rate(fresh_requests_total[{{{{.window}}}}]))
    error_budget_policy:
      - {{name: page, window: 1h, burn_rate_threshold: 14.4, action: Page on-call.}}
  - name: recent
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(recent_requests_total{{code="500"}}[{{{{.window}}}}]))
        total_query: sum(rate(recent_requests_total[{{{{.window}}}}]))
    error_budget_policy:
      - {{name: prioritise-reliability, window: 7d, burn_rate_threshold: 1, action: Reliability sprint.}}
  - name: idle
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(idle_requests_total{{code="500"}}[{{{{.window}}}}]))
        total_query: sum(rate(idle_requests_total[{{{{.window}}}}]))
"""


def openmetrics() -> str:
    """The series, one sample a minute from T-30d to T (each series' lines together, as promtool
    wants them)."""
    times = range(T - HISTORY, T + 1, STEP)
    lines: list[str] = []

    def series(name: str, value: Callable[[int], float], ts: range = times) -> None:
        lines.extend(f"{name} {value(t):.6f} {t}" for t in ts)

    start = T - HISTORY
    series('app_requests_total{code="200"}', lambda t: RPS * (t - start) - errors_until(t))
    series('app_requests_total{code="500"}', errors_until)
    # Latency: 5 requests/s, 0.5% of them slower than 250 ms.
    series('app_latency_seconds_bucket{le="0.25"}', lambda t: 4.975 * (t - start))
    series("app_latency_seconds_count", lambda t: 5.0 * (t - start))
    # Probes: every one succeeds but the last 30.
    series("probe_success", lambda t: 0.0 if t > T - 1800 else 1.0)
    # A service first scraped five minutes ago: its counter starts at 0 and grows 10/s.
    series('fresh_requests_total{code="200"}', lambda t: RPS * (t - (T - 300)), range(T - 300, T + 1, STEP))
    # A service first scraped 10 days and 7 minutes ago, off the minute grid of the coverage probe's
    # first pass: 9 requests/s, 1/s failing.
    began = T - 10 * DAY - 420
    recent = range(began, T + 1, STEP)
    series('recent_requests_total{code="200"}', lambda t: 9.0 * (t - began), recent)
    series('recent_requests_total{code="500"}', lambda t: 1.0 * (t - began), recent)
    # A service that exists all month and serves nothing.
    series('idle_requests_total{code="200"}', lambda t: 5.0)
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A Prometheus whose TSDB holds the series above; yields (url, spec file)."""
    root = tmp_path_factory.mktemp("budget")
    source = root / "series.om"
    source.write_text(openmetrics(), encoding="utf-8")
    prom = LocalPrometheus(root / "prom", retention="90d")
    prom.data_dir.mkdir(parents=True)
    backfill = ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=800h"]
    subprocess.run(
        [*backfill, str(source), str(prom.data_dir)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    spec = root / "llm-api.yaml"
    spec.write_text(BUDGET_SPEC, encoding="utf-8")
    with prom:
        yield prom.url, spec


@pytest.fixture(scope="module")
def report(history: tuple[str, Path]) -> dict[str, Any]:
    url, spec = history
    out = run_cli("slo", "budget", str(spec), "--prometheus", url, "--json", "--at", AT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["slo"]: s for s in report["slos"]}


def approx(x: float) -> Any:
    # Prometheus 2.x reads a window's edge samples exactly; 3.x leaves the left edge out and
    # extrapolates over one 60 s step, i.e. up to 60 s / 1 day of the longer windows asserted here.
    return pytest.approx(x, rel=1e-3)


def test_events_budget_and_minutes_match_the_written_series(report: dict[str, Any]) -> None:
    s = by_name(report)[LONG_NAME]
    period = 28 * DAY
    bad, total = errors_in(period), RPS * period
    assert (bad, total) == (16560, 24_192_000)  # the ground truth, by hand: 2*7200 + 0.2*10800
    assert s["valid"] is True and s["reasons"] == []
    assert s["window"] == {
        "duration": "4w",
        "seconds": period,
        "start": "2023-10-17T00:00:00Z",
        "end": "2023-11-14T00:00:00Z",
    }
    assert s["events"] == {"good": approx(total - bad), "bad": approx(bad), "total": approx(total)}
    assert s["sli"] == approx(1 - bad / total)
    assert s["budget_target"] == pytest.approx(0.001)
    assert s["budget_minutes"] == pytest.approx(40.32)  # 28 d x 1440 min x 0.001
    assert s["burn_rate"] == approx(bad / total / 0.001)  # 0.6845
    assert s["budget_remaining"] == approx(1 - bad / total / 0.001)
    assert s["budget_remaining_minutes"] == approx(40.32 * (1 - bad / total / 0.001))  # 12.72 min
    assert s["error_minutes"] == approx(period / 60 * bad / total)
    assert s["data_since"] is not None and s["data_since"] <= "2023-10-17T01:00:00Z"


def test_every_policy_step_with_its_threshold_and_trigger(report: dict[str, Any]) -> None:
    steps = {p["name"]: p for p in by_name(report)[LONG_NAME]["policy"]}
    assert list(steps) == ["page", "ticket", "prioritise-reliability"]
    expected = {  # name: (window, burn rate, threshold, triggers)
        "page": ("1h", errors_in(3600) / (RPS * 3600) / 0.001, 14.4, True),  # 20
        "ticket": ("1d", errors_in(DAY) / (RPS * DAY) / 0.001, 3, False),  # 2.5
        "prioritise-reliability": ("1w", errors_in(7 * DAY) / (RPS * 7 * DAY) / 0.001, 1, True),  # 2.74
    }
    for name, (window, burn, threshold, triggers) in expected.items():
        step = steps[name]
        assert (step["window"], step["burn_rate_threshold"], step["triggers"]) == (
            window,
            threshold,
            triggers,
        )
        assert step["burn_rate"] == approx(burn), name
        assert step["valid"] is True and step["reason"] is None
    assert steps["prioritise-reliability"]["window_seconds"] == 7 * DAY  # the 7d step is reported


def test_alert_windows_burn_rates(report: dict[str, Any]) -> None:
    windows = {(a["long_window"], a["short_window"]): a for a in by_name(report)[LONG_NAME]["alert_windows"]}

    def burn(w: int) -> float:
        return errors_in(w) / (RPS * w) / 0.001

    expected = {  # the 28-day period's factors: share x 28 d / long window
        ("1h", "5m"): (13.44, burn(3600), burn(300), True),  # 20 / 20
        ("6h", "30m"): (5.6, burn(6 * 3600), burn(1800), True),  # 10 / 20
        ("1d", "2h"): (2.8, burn(DAY), burn(7200), False),  # 2.5 / 20
        ("3d", "6h"): (0.933333333333, burn(3 * DAY), burn(6 * 3600), False),  # 0.83 / 10
    }
    assert set(windows) == set(expected)
    for key, (factor, long_b, short_b, triggers) in expected.items():
        a = windows[key]
        assert a["burn_rate_threshold"] == pytest.approx(factor)
        assert (a["long_burn_rate"], a["short_burn_rate"]) == (approx(long_b), approx(short_b)), key
        assert a["triggers"] is triggers and a["valid"] is True


def test_latency_sli_events(report: dict[str, Any]) -> None:
    s = by_name(report)["latency"]
    total, bad = 5.0 * 28 * DAY, 0.025 * 28 * DAY  # 12,096,000 requests, 60,480 slower than 250 ms
    assert s["sli_type"] == "latency" and s["valid"] is True
    assert s["events"] == {"good": approx(total - bad), "bad": approx(bad), "total": approx(total)}
    assert s["sli"] == approx(0.995)
    assert s["budget_minutes"] == pytest.approx(403.2)
    assert s["budget_remaining"] == approx(0.5)
    assert s["budget_remaining_minutes"] == approx(201.6)
    assert s["policy"] == []


def test_raw_sli_has_no_event_counts(report: dict[str, Any]) -> None:
    s = by_name(report)["probes"]
    assert s["sli_type"] == "raw" and s["events"] is None and s["valid"] is True
    assert any("event counts are unknown" in n for n in s["notes"])
    samples = 28 * DAY // STEP  # 30 failed probes among one a minute
    assert s["error_ratio"] == approx(30 / samples)
    five_minutes = {a["short_window"]: a["short_burn_rate"] for a in s["alert_windows"]}["5m"]
    assert five_minutes == pytest.approx(1 / 0.01)  # every probe of the last 5 minutes failed


def test_five_minutes_of_history_is_not_valid_for_a_28_day_window(report: dict[str, Any]) -> None:
    s = by_name(report)["fresh"]
    assert s["valid"] is False
    assert len(s["reasons"]) == 1
    assert re.fullmatch(r"data covers only the last \d+m of the 4w window \(since .*\)", s["reasons"][0])
    # Its first sample is at T-5m; rate() needs a second one, a minute later.
    assert "2023-11-13T23:55:00Z" <= s["data_since"] <= "2023-11-13T23:56:05Z"
    # The numbers are still there, flagged: 5 minutes of 10 requests/s, none failed.
    assert s["events"] == {"good": approx(3000), "bad": 0, "total": approx(3000)}
    assert s["sli"] == 1
    (page,) = s["policy"]
    assert page["valid"] is False and page["reason"].startswith("data covers only the last")
    assert page["triggers"] is False


def test_ten_days_of_history_cover_the_7d_step_but_not_the_28d_window(report: dict[str, Any]) -> None:
    s = by_name(report)["recent"]
    # The first sample is at T-10d7m; rate() has two samples a minute later.
    assert s["data_since"] == "2023-11-03T23:54:00Z"
    assert s["reasons"] == ["data covers only the last 10d6m of the 4w window (since 2023-11-03T23:54:00Z)"]
    assert s["events"]["total"] == approx(10.0 * (10 * DAY + 420))
    assert s["sli"] == approx(0.9)
    (step,) = s["policy"]
    assert step["valid"] is True and step["triggers"] is True and step["burn_rate"] == approx(100)


def test_no_traffic_is_not_valid(report: dict[str, Any]) -> None:
    s = by_name(report)["idle"]
    assert s["valid"] is False
    assert s["reasons"] == ["no traffic: 0 events in the window"]
    assert s["events"] == {"good": 0, "bad": 0, "total": 0}
    assert s["sli"] is None and s["budget_remaining"] is None
    assert s["budget_minutes"] == pytest.approx(40.32)  # what the budget would be is still known
    assert all(a["valid"] is False and "no traffic" in a["reason"] for a in s["alert_windows"])


def test_json_shape_is_pinned(report: dict[str, Any]) -> None:
    assert BudgetReport.model_validate(report).model_dump(mode="json") == report
    assert list(report) == ["format", "evaluated_at", "timestamp", "prometheus", "measured", "note", "slos"]
    assert (report["format"], report["measured"]) == ("reliability/slo-budget/v1", "server-side")
    assert (report["evaluated_at"], report["timestamp"]) == (AT, T)
    assert "result.json" in report["note"]
    assert list(report["slos"][0]) == [
        "service", "slo", "id", "file", "sli_type", "objective_percent", "budget_target", "window",
        "valid", "reasons", "notes", "data_since", "events", "sli", "error_ratio", "burn_rate",
        "budget_minutes", "error_minutes", "budget_remaining", "budget_remaining_minutes", "policy",
        "alert_windows", "firing_alerts",
    ]  # fmt: skip
    assert list(report["slos"][0]["policy"][0]) == [
        "name", "window", "window_seconds", "burn_rate_threshold", "action", "error_ratio", "burn_rate",
        "triggers", "valid", "reason",
    ]  # fmt: skip
    assert list(report["slos"][0]["alert_windows"][0]) == [
        "severity", "long_window", "short_window", "burn_rate_threshold", "long_burn_rate",
        "short_burn_rate", "triggers", "valid", "reason",
    ]  # fmt: skip
    schema = run_cli("schema", "slo-budget")
    assert schema.returncode == 0, schema.stderr
    published = json.loads(schema.stdout)
    assert published == json.loads(json.dumps(budget_json_schema()))
    assert published["title"] == "slo budget --json"
    assert set(published["properties"]) == set(report)
    assert set(published["$defs"]["SLOBudget"]["properties"]) == set(report["slos"][0])


def _column(text: str, index: int) -> list[str]:
    """The cells of one column of a rich table, line by line (box characters stripped)."""
    return [line.split("│")[index].strip() for line in text.splitlines() if line.count("│") >= 6]


def test_table_wraps_a_long_slo_name_at_80_columns(report: dict[str, Any]) -> None:
    console = Console(width=80, record=True, color_system=None)
    render_table(BudgetReport.model_validate(report), console)
    text = console.export_text()
    assert "…" not in text and "..." not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    assert f"llm-api/{LONG_NAME}" in "".join(_column(text, 1))  # folded over lines, whole
    assert "server-side" in text.lower() and "result.json" in text.replace("\n", " ")
    assert "data covers only the last" in " ".join(_column(text, 5))  # the reason, wrapped
    wide = Console(width=400, record=True, color_system=None)
    render_table(BudgetReport.model_validate(report), wide)
    wide_text = wide.export_text()
    assert f"llm-api/{LONG_NAME}" in wide_text
    assert "page 1h: 20.00 vs 14.4 TRIGGERS" in wide_text
    assert "ticket 1d: 2.50 vs 3 ok" in wide_text
    assert "NO: no traffic: 0 events in the window" in wide_text
    assert "page 1h: 0.00 vs 14.4 ok [partial data]" in wide_text  # the fresh SLO's step


def test_table_from_the_command(history: tuple[str, Path]) -> None:
    url, spec = history
    out = run_cli(
        "slo", "budget", str(spec), "--prometheus", url, "--at", str(T), env={**os.environ, "COLUMNS": "80"}
    )
    assert out.returncode == 0, out.stderr
    assert "SLO error budgets at 2023-11-14T00:00:00Z" in out.stdout
    assert "…" not in out.stdout


def test_bad_at_is_one_line_and_exit_2(history: tuple[str, Path]) -> None:
    url, spec = history
    out = run_cli("slo", "budget", str(spec), "--prometheus", url, "--at", "yesterday-ish")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --at: 'yesterday-ish' is neither Unix seconds nor an ISO 8601 time"
    ]


# ---- a live exporter: alerts firing, and minutes of history for a 1-hour window -----------


@pytest.fixture
def failing_service() -> Iterator[str]:
    """An exporter on 127.0.0.1 whose lab_requests_total is half 500s (~40 requests/s)."""
    registry = CollectorRegistry()
    requests_total = Counter("lab_requests", "requests", ["code"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def traffic() -> None:
        deadline = time.monotonic() + 60  # bounded even if teardown never runs
        while not stop.is_set() and time.monotonic() < deadline:
            requests_total.labels(code="200").inc(2)
            requests_total.labels(code="500").inc(2)
            stop.wait(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        worker.join(timeout=5)
        server.shutdown()
        thread.join(timeout=5)


def wait_for_firing(url: str, name: str, timeout_s: float = 20) -> int:
    """A whole second at which Prometheus has `name` firing (the report is asked about that time:
    "now" truncated to the second could fall just before the alert's first evaluation)."""
    deadline = time.monotonic() + timeout_s
    query = f'ALERTS{{alertname="{name}", alertstate="firing"}}'
    while time.monotonic() < deadline:
        r = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5)
        result = r.json()["data"]["result"]
        if result:
            return math.ceil(float(result[0]["value"][0]))
        time.sleep(0.5)
    raise AssertionError(f"{name} never fired")


def test_live_burn_policy_and_firing_alert(tmp_path: Path, failing_service: str) -> None:
    rules = compile_paths([SPEC], tmp_path / "rules.yaml")
    targets = [ScrapeTarget("lab", failing_service)]
    with LocalPrometheus(tmp_path / "prom", targets=targets, rule_files=[rules]) as prom:
        at = wait_for_firing(prom.url, "LabHighErrorRate")
        result = run_cli("slo", "budget", str(SPEC), "--prometheus", prom.url, "--json", "--at", str(at))
    assert result.returncode == 0, result.stderr
    report = by_name(json.loads(result.stdout))
    avail = report["availability"]
    assert avail["objective_percent"] == 99
    assert 0.3 < avail["sli"] < 0.7  # half the requests fail
    assert avail["budget_remaining"] < 0  # 50% errors against a 1% budget
    # Seconds of history for a one-hour window: the numbers are there, flagged.
    assert avail["valid"] is False and avail["reasons"][0].startswith("data covers only the last")
    short = {a["short_window"]: a for a in avail["alert_windows"]}["10s"]
    assert 30 < short["short_burn_rate"] < 70
    stop, watch = avail["policy"]
    assert stop["name"] == "stop" and stop["triggers"] is True
    assert 30 < stop["burn_rate"] < 70
    # A 5-minute window over the seconds this test has run: flagged, whatever the exact age.
    assert watch["name"] == "watch" and watch["valid"] is False
    assert watch["reason"].startswith("data covers only the last")
    assert "LabHighErrorRate (page)" in avail["firing_alerts"]
    latency = report["latency"]  # no histogram scraped: no sample, not NaN
    assert latency["sli"] is None and latency["events"] is None and latency["valid"] is False
    assert latency["reasons"][0].startswith("no data")


# ---- auth ---------------------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Prometheus' query API answering "no data", recording the headers it gets."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        kind = "matrix" if self.path.startswith("/api/v1/query_range") else "vector"
        body = json.dumps({"status": "success", "data": {"resultType": kind, "result": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_auth_headers_are_sent_with_every_query() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            **os.environ,
            "RELIABILITY_PROMETHEUS_BEARER_TOKEN": "t0ken",
            "RELIABILITY_PROMETHEUS_HEADERS": '{"X-Scope-OrgID": "tenant-7"}',
        }
        url = f"http://127.0.0.1:{server.server_port}"
        out = run_cli("slo", "budget", str(SPEC), "--prometheus", url, "--json", env=env)
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert out.returncode == 0, out.stderr
    assert _Recorder.seen
    assert all(h.get("Authorization") == "Bearer t0ken" for h in _Recorder.seen)
    assert all(h.get("X-Scope-OrgID") == "tenant-7" for h in _Recorder.seen)
    assert all(not s["valid"] for s in json.loads(out.stdout)["slos"])


def test_auth_headers_from_environment() -> None:
    env = {"RELIABILITY_PROMETHEUS_BEARER_TOKEN": "abc", "RELIABILITY_PROMETHEUS_HEADERS": '{"X-Org": "7"}'}
    assert auth_headers(env) == {"X-Org": "7", "Authorization": "Bearer abc"}
    with pytest.raises(InputError, match="RELIABILITY_PROMETHEUS_HEADERS"):
        auth_headers({"RELIABILITY_PROMETHEUS_HEADERS": "{nope"})
