"""report.html as a browser shows it (headless Chromium): no console errors, every chart drew its
data, every link opens. The partition run is the one the issue names: a reader must tell from the
page alone when the fault began, when each alert fired, when traffic failed over and back, and which
pages were false."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from reliability.report import build_reports
from reliability.runbooks.links import BASE_URL_ENV
from tests.report.browser import ChromiumPage
from tests.report.synthetic import T0, Partition, write_partition_run

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium missing: run scripts/bootstrap.sh"),
]
RENDER_WAIT_S = 20.0


def rendered_charts(page: ChromiumPage) -> list[dict]:
    """The charts once plotly has drawn every subplot it has data for (bounded wait)."""
    deadline = time.monotonic() + RENDER_WAIT_S
    charts = page.charts()
    while time.monotonic() < deadline and not (charts and all(all(c["drawn"].values()) for c in charts)):
        time.sleep(0.2)
        charts = page.charts()
    return charts


def file_of(url: str) -> Path:
    parsed = urlparse(url)
    assert parsed.scheme == "file", url
    return Path(unquote(parsed.path))


def test_partition_report_renders_without_errors_with_data_in_every_chart_and_working_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    runs = tmp_path / "runs"
    write_partition_run(runs / "region-partition-1", Partition(store=True, failover_s=21))
    info = json.loads((runs / "region-partition-1" / "run.json").read_text())
    info["started_ts"] -= 7 * 86400  # last week's run
    (runs / "region-partition-1" / "run.json").write_text(json.dumps(info))
    run = runs / "region-partition-2"
    write_partition_run(run, Partition(store=True, failback_s=50))
    build_reports(runs / "region-partition-1", runbook_dir=REPO / "runbooks")
    build_reports(run, runbook_dir=REPO / "runbooks")
    with ChromiumPage() as page:
        page.open((run / "report.html").as_uri())
        charts = rendered_charts(page)
        assert page.console_errors() == []
        by_id = {c["id"]: c for c in charts}
        assert set(by_id) == {"charts", "trend-chart"}  # the previous run beside it gives a trend
        main = by_id["charts"]
        titles = list(main["titles"].values())
        for expected in (
            *("Alerts", "Traffic per region", "Ready GPU nodes", "Burn rate", "Time to first token"),
            *("Inter-token latency", "Store: replication lag"),
        ):
            assert any(t.startswith(expected) for t in titles), (expected, titles)
        for subplot, title in main["titles"].items():
            assert main["points"][subplot] > 0, f"chart {title!r} has no data"
            assert main["drawn"][subplot] > 0, f"chart {title!r} drew nothing"
        assert page.evaluate("document.getElementById('charts-missing')") is None
        # inject / detect / recover and the fault window on every chart, on the one time axis.
        marks = page.evaluate("document.getElementById('charts').layout.shapes.map(s => [s.type, s.xref])")
        xaxes = {sp.split("y")[0] for sp in main["subplots"]}
        assert (
            {x for kind, x in marks if kind == "line"} == xaxes == {x for kind, x in marks if kind == "rect"}
        )
        assert len(marks) == 4 * len(xaxes)
        matches = page.evaluate(
            "Object.entries(document.getElementById('charts').layout)"
            ".filter(([k]) => k.startsWith('xaxis')).map(([k, v]) => [k, v.matches || null])"
        )
        last = f"x{len(xaxes)}"
        assert sorted(m for _, m in matches if m) == [last] * (len(xaxes) - 1)  # one shared time axis

        # The story, from the page alone.
        text = page.evaluate("document.body.innerText")
        assert "fault injected" in text and "alert fired: RegionUnavailable (page)" in text
        assert "target: region_failover (region=eu-west)" in text
        assert "target: region_failback (region=eu-west)" in text
        lanes = page.evaluate(
            "document.getElementById('charts')._fullData.filter(t => t.type === 'bar')"
            ".map(t => [t.y[0], t.name])"
        )
        assert ["GPUNodeDown (eu-west-1)", "alert: page unexpected"] in lanes  # the false page
        assert ["RegionUnavailable (eu-west)", "alert: page expected"] in lanes
        unexpected = page.evaluate(
            "Array.from(document.querySelectorAll('#alerts tr'))"
            ".filter(r => r.innerText.includes('unexpected'))"
            ".map(r => r.cells[0].innerText)"
        )
        assert unexpected == ["GPUNodeDown"]
        # Traffic failed over (eu-west to 0, us-east doubled) and back, on the shared time axis.
        traffic = page.evaluate(
            "Object.fromEntries(document.getElementById('charts')._fullData"
            ".filter(t => t.name && t.name.startsWith('region ') && !t.name.endsWith('5xx'))"
            ".map(t => [t.name, t.y.length]))"
        )
        assert traffic == {"region eu-west": 90, "region us-east": 90}

        links = page.links()
        runbook_links = [u for u in links if "/runbooks/" in u]
        assert len(runbook_links) >= 3
        for url in links:
            if urlparse(url).scheme == "file":
                target = file_of(url)
                assert target.is_file(), f"broken link {url}"
                assert target.is_relative_to(run), f"{url} points outside the run directory"
        for url in runbook_links:  # and the browser opens each one
            page.open(url)
            body = page.evaluate("document.body ? document.body.innerText : ''")
            assert body.startswith("---") and "## Mitigation" in body, url


def test_the_browser_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The checks above can fail: a script error, a chart without data and a dead link are seen."""
    plotly_js = (tmp_path / "p.html").as_uri()
    from plotly.offline import get_plotlyjs

    (tmp_path / "p.html").write_text(
        "<html><body><script>" + get_plotlyjs() + "</script>"
        "<div id='c'></div><a href='runbooks/missing.md'>rb</a><script>"
        "Plotly.newPlot('c', [{x: [1, 2], y: [1, 2]}, {x: [], y: [], xaxis: 'x2', yaxis: 'y2'}],"
        " {grid: {rows: 2, columns: 1}});"
        "console.error('boom'); undefinedFunction();</script></body></html>"
    )
    with ChromiumPage() as page:
        page.open(plotly_js)
        time.sleep(0.5)
        chart = page.charts()[0]
        assert chart["points"] == {"xy": 2, "x2y2": 0}
        errors = page.console_errors()
        assert any("boom" in e for e in errors) and any("undefinedFunction" in e for e in errors)
        assert not file_of(next(u for u in page.links() if u.endswith(".md"))).exists()


def test_alert_bars_span_from_firing_to_resolved(tmp_path: Path) -> None:
    """The Gantt bar of each alert starts when it fired and is as long as it fired."""
    write_partition_run(tmp_path, Partition())
    result = build_reports(tmp_path)
    with ChromiumPage() as page:
        page.open((tmp_path / "report.html").as_uri())
        rendered_charts(page)
        bars = page.evaluate(
            "document.getElementById('charts')._fullData.filter(t => t.type === 'bar')"
            ".map(t => [t.y[0], new Date(t.base[0]).getTime() / 1000, t.x[0] / 1000])"
        )
    by_lane = {lane: (start, length) for lane, start, length in bars}
    unavailable = next(a for a in result.alerts if a.alertname == "RegionUnavailable")
    assert unavailable.end_ts is not None
    start, length = by_lane["RegionUnavailable (eu-west)"]
    assert start == pytest.approx(unavailable.start_ts, abs=0.01)
    assert start == pytest.approx(T0 + 25.0, abs=0.01)
    assert length == pytest.approx(unavailable.end_ts - unavailable.start_ts, abs=0.01)
