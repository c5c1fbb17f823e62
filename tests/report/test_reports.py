"""Reports built from a synthetic run directory; expected figures come from the generator's parameters."""

from __future__ import annotations

import base64
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml

from reliability.errors import InputError
from reliability.report import RunResult, build_reports
from reliability.runbooks.links import BASE_URL_ENV
from tests.report.synthetic import SLO_FILE, T0, Truth, write_run  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"


def md_links(text: str) -> dict[str, str]:
    """Markdown link text -> target."""
    return dict(re.findall(r"\[([^\]]+)\]\(([^)\s]+)\)", text))


def opens(run_dir: Path, link: str) -> Path:
    """The file a relative link in a report of `run_dir` opens, as a viewer resolves it."""
    assert "://" not in link and not link.startswith("/"), link
    return (run_dir / unquote(link)).resolve()


def section(md: str, heading: str) -> str:
    return md.split(f"## {heading}\n")[1].split("\n## ")[0]


def html_before_charts(page: str) -> str:
    """The part of report.html above the charts (the plotly bundle starts with the first script)."""
    return page.split("<script")[0]


def plotly_traces(page: str) -> dict[str, list[Any]]:
    """Trace name -> y values of the figure embedded in report.html."""
    text = page[page.rindex("Plotly.newPlot(") + len("Plotly.newPlot(") :]
    decoder = json.JSONDecoder()
    _, at = decoder.raw_decode(text.lstrip())
    rest = text.lstrip()[at:].lstrip().removeprefix(",").lstrip()
    traces, _ = decoder.raw_decode(rest)
    out = {}
    for trace in traces:
        y = trace.get("y")
        if isinstance(y, dict) and "bdata" in y:  # plotly's typed-array encoding
            y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=np.dtype(y["dtype"])).tolist()
        out[trace.get("name")] = y
    return out


def utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def verdicts(result: RunResult) -> dict[str, str]:
    return {o.name: o.verdict for o in result.objectives}


@pytest.mark.parametrize(
    "truth",
    [
        Truth(inject_s=20.3, outage_s=8, detect_delay_s=6.5, rto_max=30, lost_writes=0, slow_s=3),
        Truth(inject_s=31.0, outage_s=14, detect_delay_s=12.0, rto_max=30, lost_writes=7, slow_s=10),
    ],
)
def test_measurements_match_the_generated_ground_truth(tmp_path: Path, truth: Truth) -> None:
    write_run(tmp_path, truth)
    result = build_reports(tmp_path, runbook_dir=None)
    first_bad = math.ceil(truth.inject_s)
    last_failure = T0 + first_bad + truth.outage_s - 1 + 0.5
    avail = next(s for s in result.slis if s.slo == "requests-availability")
    ttft = next(s for s in result.slis if s.slo == "ttft")
    assert (avail.source, avail.client_sli, ttft.client_sli) == ("client", "availability", "ttft")
    assert avail.rto_seconds == pytest.approx(last_failure - (T0 + truth.inject_s))
    # Prometheus' view: back at the first good sample, within a second of the client's.
    assert avail.rto_prometheus_seconds == pytest.approx(first_bad + truth.outage_s - truth.inject_s)
    assert ttft.rto_seconds == pytest.approx(first_bad + truth.slow_s - truth.inject_s)
    assert result.rto_seconds == pytest.approx(max(avail.rto_seconds, ttft.rto_seconds))
    assert result.ttd_seconds == pytest.approx(truth.detect_delay_s)
    assert [d.severity for d in result.detection] == ["page"]
    assert result.rpo is not None and result.rpo.lost_writes == truth.lost_writes
    assert result.rpo_seconds == pytest.approx(truth.lost_writes * truth.write_interval_s)
    # Budget per SLO, each against its own objective over the 1 h period at the observed rate.
    allowed = 20 * 3600 * 0.01
    assert avail.budget_spent == pytest.approx(10 * truth.outage_s / allowed)
    samples = 20 * 90 - 10 * truth.outage_s  # one TTFT per successful request
    assert ttft.budget_spent == pytest.approx(10 * truth.slow_s / (samples / 90 * 3600 * 0.01))
    assert result.budget_spent == pytest.approx(max(avail.budget_spent, ttft.budget_spent))
    assert result.passed and result.status == "passed"
    assert result.impact["during"].failures == 10 * min(truth.outage_s, 20)
    on_disk = RunResult.model_validate_json((tmp_path / "result.json").read_text())
    assert on_disk == result
    assert verdicts(on_disk) == {
        "rto:requests-availability": "pass",
        "rto:ttft": "pass",
        "ttd": "pass",
        "expected_alerts": "pass",
        "rpo": "pass",
        "budget_spent:requests-availability": "pass",
        "budget_spent:ttft": "pass",
    }


def test_missed_rto_fails_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    write_run(tmp_path, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    result = build_reports(tmp_path)
    assert not result.passed and result.status == "failed"
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    failed = {
        c.get("name"): c.find("failure") for c in suite.iter("testcase") if c.find("failure") is not None
    }
    assert list(failed) == ["rto:requests-availability"]
    # GitLab shows the element text, GitHub the message: both say what failed.
    failure = failed["rto:requests-availability"]
    assert failure is not None and failure.text == failure.get("message") and "target <= 10 s" in failure.text
    assert suite.get("time") == "100.000" and suite.get("timestamp", "").startswith("2025-11-")
    md = (tmp_path / "postmortem.md").read_text()
    went_wrong = md.split("### What went wrong")[1].split("###")[0]
    assert "rto:requests-availability: 24.5 s" in went_wrong
    link = md_links(md.split("## Action items")[1])["gpu-node-down"]
    assert opens(tmp_path, link).name == "gpu-node-down.md" and opens(tmp_path, link).is_file()
    assert "**Status:** FAILED" in md


def test_no_impact_passes_and_says_so(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    result = build_reports(tmp_path)
    assert result.rto_seconds is None and result.passed
    rto = next(o for o in result.objectives if o.name == "rto:requests-availability")
    assert rto.verdict == "pass" and "no visible impact" in rto.detail
    md = (tmp_path / "postmortem.md").read_text()
    assert "No SLI left its objective: no visible impact." in section(md, "Summary")
    assert "Users saw no failed request" in section(md, "Impact")


def test_impact_is_stated_even_when_every_objective_held(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=20, detect_delay_s=5, rto_max=60))
    result = build_reports(tmp_path)
    assert result.passed
    md = (tmp_path / "postmortem.md").read_text()
    impact = section(md, "Impact")
    assert "50.0% of requests failed during the fault (200 of 400, in 20 of its 20 seconds)." in impact
    assert "Users: 50.0% of requests failed" in md.split("### What went wrong")[1].split("###")[0]


def test_a_baseline_already_outside_the_objective_is_said_so(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=5, rto_max=30))
    lines = [json.loads(x) for x in (tmp_path / "load_stats.jsonl").read_text().splitlines()]
    for rec in lines[:20]:
        rec["failures"] = 2  # 10% errors before the fault
    (tmp_path / "load_stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    result = build_reports(tmp_path)
    rto = next(o for o in result.objectives if o.name == "rto:requests-availability")
    assert rto.verdict == "fail" and "baseline already outside the objective (90.00% < 99.00%)" in rto.detail
    assert any(f.kind == "baseline_outside_objective" for f in result.findings)
    assert "did not recover" not in rto.detail


def test_unmeasured_rpo_fails_with_its_reason(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=5, rto_max=30))
    (tmp_path / "canary_writes.jsonl").unlink()
    result = build_reports(tmp_path)
    rpo = next(o for o in result.objectives if o.name == "rpo")
    assert rpo.verdict == "fail" and rpo.detail.startswith("not measured") and not result.passed


def test_a_failed_injection_is_an_error_not_no_impact(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    failed = {
        "ts": T0 + 20.01,
        "event": "activity_end",
        "phase": "method",
        "type": "action",
        "name": "kill-node",
        "status": "failed",
        "error": "HarnessError: no GPU node named us-east-9",
    }
    with (tmp_path / "timeline.jsonl").open("a") as f:
        f.write("\n" + json.dumps(failed) + "\n")
    result = build_reports(tmp_path)
    assert not result.passed and result.status == "error"
    assert result.error is not None
    assert "'kill-node' failed" in result.error and "us-east-9" in result.error
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find("testcase/error")
    assert error is not None and "us-east-9" in (error.text or "")


def test_an_interrupted_run_says_where_it_was_interrupted(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    (tmp_path / "timeline.jsonl").write_text("")
    (tmp_path / "run.json").write_text(
        json.dumps(
            {
                "scenario": "gpu-node-loss",
                "started_ts": T0,
                "ended_ts": T0 + 9,
                "interrupted": "SIGTERM in baseline",
            }
        )
    )
    result = build_reports(tmp_path)
    assert (result.status, result.interrupted, result.passed) == ("interrupted", "SIGTERM in baseline", False)
    md = (tmp_path / "postmortem.md").read_text()
    assert "**Status:** INTERRUPTED" in md and "SIGTERM in baseline" in md
    assert "Prometheus" not in section(md, "Summary")


def test_a_missing_alerts_series_is_an_error_not_an_alert_that_never_fired(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    (tmp_path / "series" / "alerts.csv").unlink()
    result = build_reports(tmp_path)
    assert not result.passed
    assert result.error is not None and "series/alerts.csv missing" in result.error


def test_postmortem_sections_and_timeline(tmp_path: Path) -> None:
    truth = Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30)
    write_run(tmp_path, truth)
    build_reports(tmp_path)
    md = (tmp_path / "postmortem.md").read_text()
    for heading in ("Summary", "Impact", "Timeline", "Detection", "Root cause", "Resolution", "Action items"):
        assert f"## {heading}" in md
    timeline = section(md, "Timeline (UTC)")
    order = [timeline.index(s) for s in ("**fault injected**", "**detected**", "alert resolved: GPUNodeDown")]
    assert order == sorted(order)
    assert "alert fired: GPUNodeDown (page)" in timeline
    assert "GPUNodeDown" in section(md, "Detection")
    assert "never fired" not in md
    resolution = section(md, "Resolution")
    assert "the load generator saw it back within objective 7.5 s" in resolution
    assert "Prometheus (slo:sli_error:ratio_rate5s" in resolution and "8.0 s" in resolution
    assert "RPO 0.00 s" in md  # the canary wrote: the run exercised the store


def test_silent_expected_alert_fails_and_unexpected_pages_are_findings(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    doc = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    doc["objectives"]["expected_alerts"] = ["GPUXidError", {"any_of": ["GPUNodeDown", "Nope"]}]
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc))
    result = build_reports(tmp_path)
    assert verdicts(result)["expected_alerts"] == "fail" and not result.passed
    assert result.expected_alerts_silent == ["GPUXidError"]
    md = (tmp_path / "postmortem.md").read_text()
    assert "Expected but never fired: GPUXidError." in section(md, "Detection")
    assert "Find out why GPUXidError never fired" in section(md, "Action items")
    # GPUNodeDown counts through its any_of group; nothing unexpected here.
    assert not [f for f in result.findings if f.kind == "unexpected_page"]
    doc["objectives"]["expected_alerts"] = ["GPUXidError"]
    doc["objectives"].pop("ttd_max")
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc))
    result = build_reports(tmp_path)
    assert [f.kind for f in result.findings if f.kind.startswith("unexpected")] == ["unexpected_page"]
    assert "| GPUNodeDown | page | **no** |" in (tmp_path / "postmortem.md").read_text()


def test_html_is_self_contained_with_marks(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    build_reports(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<script src=" not in page  # plotly inlined, opens offline
    assert "Plotly.newPlot" in page
    for text in (
        "Error ratio",
        "Traffic per region",
        "Error budget spent, per SLO",
        "region us-east",
        '"inject"',
        '"recover"',
        "budget requests-availability",
        "TTFT p95",
    ):
        assert text in page, text
    assert "<td class='pass'>pass</td>" in page


def test_missing_run_dir_and_bad_scenario_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="run directory not found"):
        build_reports(tmp_path / "nope")
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    (tmp_path / "scenario.yaml").write_text("name: x\nslos: []\nbogus: 1\n")
    with pytest.raises(InputError) as err:
        build_reports(tmp_path)
    assert "scenario.yaml" in str(err.value)
    assert not (tmp_path / "result.json").exists()  # nothing half-written


def test_cli_report_rebuilds(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from reliability.cli import app

    write_run(tmp_path, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    out = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert "FAILED" in out.output
    assert json.loads((tmp_path / "result.json").read_text())["passed"] is False


def test_runbook_links_open_a_copy_kept_with_the_run_and_survive_archiving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    run_dir = tmp_path / "runs" / "gpu-node-loss-20261123T101500Z"
    write_run(run_dir, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    build_reports(run_dir, runbook_dir=RUNBOOKS)
    # The run directory is archived and unpacked elsewhere, away from the source checkout.
    moved = tmp_path / "archive" / "unpacked"
    moved.parent.mkdir()
    run_dir.rename(moved)
    original = (RUNBOOKS / "gpu-node-down.md").read_text()
    md = (moved / "postmortem.md").read_text()
    detection = section(md, "Detection")
    assert "[gpu-node-down](" in detection
    for link in (
        md_links(detection)["gpu-node-down"],
        md_links(section(md, "Action items"))["gpu-node-down"],
    ):
        assert opens(moved, link).read_text() == original
        assert opens(moved, link).is_relative_to(moved.resolve())
    page = html_before_charts((moved / "report.html").read_text())
    hrefs = re.findall(r"<a href='([^']+)'>gpu-node-down</a>", page)
    assert len(hrefs) == 1 and opens(moved, hrefs[0]).read_text() == original
    # The scenario's own runbook list is exercised too, and copied.
    assert (moved / "runbooks").is_dir() and sorted(p.name for p in (moved / "runbooks").iterdir()) == [
        "gpu-node-down.md"
    ]


def test_runbook_links_use_a_configured_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "https://wiki.example/rb")
    write_run(tmp_path, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    build_reports(tmp_path, runbook_dir=RUNBOOKS)
    md = (tmp_path / "postmortem.md").read_text()
    assert md_links(section(md, "Detection")) == {"gpu-node-down": "https://wiki.example/rb/gpu-node-down.md"}
    page = html_before_charts((tmp_path / "report.html").read_text())
    assert "<a href='https://wiki.example/rb/gpu-node-down.md'>gpu-node-down</a>" in page


def test_html_has_summary_objectives_alerts_and_impact_above_the_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    doc = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    doc["description"] = "One GPU node dies <script>alert(1)</script> & more."
    doc["objectives"]["expected_alerts"] = ["GPUNodeDown", "GPUXidError"]
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc))
    build_reports(tmp_path, runbook_dir=RUNBOOKS)
    full = (tmp_path / "report.html").read_text()
    page = html_before_charts(full)
    assert "Plotly.newPlot" in full.split(page, 1)[1]  # the charts come after all of it
    summary = page.split('<p id="summary">')[1].split("</p>")[0]
    assert "One GPU node dies &lt;script&gt;alert(1)&lt;/script&gt; &amp; more." in summary
    assert "paged on-call after 6.0 s (GPUNodeDown)" in summary
    assert "requests-availability recovered 7.5 s after injection." in summary
    assert "<script>alert" not in full
    assert "<td>rto:requests-availability</td><td>30 s</td><td>7.500 s</td><td class='pass'>pass</td>" in page
    alerts = page.split("<h2>Alerts</h2>")[1].split("<h2>")[0]
    assert re.search(
        r"<td>GPUNodeDown</td><td>page</td><td>expected</td>.*<a href='[^']+'>gpu-node-down</a>", alerts
    )
    assert "<li>GPUXidError</li>" in alerts.split("Expected but never fired:")[1]
    impact = page.split("<h2>Impact</h2>")[1]
    rows = re.findall(r"<tr><td>(before|during|after)</td><td>(\d+)</td><td>(\d+)</td>", impact)
    assert [(name, int(failed)) for name, _, failed in rows] == [("before", 0), ("during", 80), ("after", 0)]
    assert page.index('id="summary"') < page.index("id='objectives'") < page.index("id='alerts'")
    assert page.index("id='alerts'") < page.index("id='impact'")


def test_budget_chart_ends_at_the_budget_spent_of_result_json(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    result = build_reports(tmp_path)
    avail = next(s for s in result.slis if s.slo == "requests-availability")
    assert (avail.objective, avail.period_s) == (0.99, 3600.0)
    spent = plotly_traces((tmp_path / "report.html").read_text())["budget requests-availability"]
    assert spent[-1] == pytest.approx(avail.budget_spent, rel=1e-9)
    assert spent[-1] == pytest.approx(80 / (20 * 3600 * 0.01))


def test_root_cause_names_the_fault_the_experiment_injected(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    inject, end = T0 + 20.004, T0 + 40.0
    args = {"target": "us-east", "mode": "bad_version", "rate": 1.0}
    records = [
        {"ts": inject, "event": "fault_injected", "phase": "method", "fault": "fail_model", "args": args,
         "ledger_id": "de87e089a3a5", "returned": {"ts": inject + 0.04}},
        {"ts": end + 0.001, "event": "fault_cleared", "phase": "rollback", "undo": "restore_model",
         "args": {"target": "us-east"}, "returned": {"ts": end + 0.008}},
        {"ts": end + 0.010, "event": "fault_cleared", "phase": "rollback", "undo": "heal", "args": {},
         "returned": {"ts": end + 0.012}},
    ]  # fmt: skip
    with (tmp_path / "timeline.jsonl").open("a") as f:
        f.write("\n" + "".join(json.dumps(r) + "\n" for r in records))
    build_reports(tmp_path)
    cause = section((tmp_path / "postmortem.md").read_text(), "Root cause")
    assert "`../experiments/gpu-node-loss.yaml`" in cause
    assert (
        f"`fail_model` (target=us-east, mode=bad_version, rate=1.0) injected at {utc(inject)} UTC, "
        f"undone at {utc(end + 0.008)} UTC by the experiment's rollback (`restore_model`)"
    ) in cause


def test_an_unmeasured_objective_reads_n_a_without_a_unit(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    (tmp_path / "canary_writes.jsonl").unlink()
    build_reports(tmp_path)
    md = (tmp_path / "postmortem.md").read_text()
    assert "| rpo | 5 s | n/a | fail (not measured:" in section(md, "Objectives")
    assert "n/a s" not in md
    assert "n/a s" not in (tmp_path / "junit.xml").read_text()
    assert "n/a s" not in html_before_charts((tmp_path / "report.html").read_text())


def test_the_timeline_starts_with_the_game_day_not_with_the_lab_it_attached_to() -> None:
    from reliability.report.postmortem import timeline_rows

    result = RunResult(scenario="s", started_ts=T0 + 100.0)
    events = [
        {"ts": T0 + 10.0, "event": "gateway_backend_empty"},  # the lab starting, long before the run
        {"ts": T0 + 150.0, "event": "node_xid", "node": "us-east-1"},
    ]
    rows = [what for _, what in timeline_rows(result, [], events)]
    assert rows == ["target: node_xid (node=us-east-1)"]
