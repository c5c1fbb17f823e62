"""Reports built from a synthetic run directory; expected figures come from the generator's parameters."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import yaml

from reliability.errors import InputError
from reliability.report import RunResult, build_reports
from reliability.runbooks.links import BASE_URL_ENV

T0 = 1_763_856_000.0
REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks"


@dataclass(frozen=True)
class Truth:
    inject_s: float  # after T0
    outage_s: int  # bad seconds from the first full second after injection
    detect_delay_s: float
    rto_max: float
    lost_writes: int = 0
    write_interval_s: float = 0.2


def write_run(root: Path, truth: Truth, seconds: int = 90, rps: int = 20) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "series").mkdir(exist_ok=True)
    scenario = {
        "name": "gpu-node-loss",
        "description": "One GPU node dies.",
        "slos": ["slos/inference-api.yaml"],
        "experiment": {"file": "../experiments/gpu-node-loss.yaml"},
        "phases": {"baseline": "10s", "fault_hold": "20s", "recovery_max": "60s", "recovered_hold": "5s"},
        "objectives": {
            "rto_max": truth.rto_max,
            "ttd_max": 30,
            "rpo_max": 5,
            "expected_alerts": ["GPUNodeDown"],
            "max_budget_spent": 0.5,
            "runbooks": ["gpu-node-down"],
        },
    }
    (root / "scenario.yaml").write_text(yaml.safe_dump(scenario))
    inject = T0 + truth.inject_s
    end = inject + 20
    timeline = [
        {"ts": inject - 1, "event": "method_start", "phase": "method"},
        {"ts": inject, "event": "activity_start", "phase": "method", "type": "action", "name": "kill-node"},
        {"ts": end, "event": "rollback_start", "phase": "rollback"},
    ]
    (root / "timeline.jsonl").write_text("".join(json.dumps(r) + "\n" for r in timeline) + '{"torn')
    first_bad = math.ceil(truth.inject_s)
    rows = []
    for i in range(seconds):
        bad = first_bad <= i < first_bad + truth.outage_s
        fails = rps // 2 if bad else 0
        rows.append(
            {
                "ts": T0 + i,
                "requests": rps,
                "failures": fails,
                "rps": rps,
                "p50_ms": 9,
                "p95_ms": 30,
                "p99_ms": 50,
            }
        )
    (root / "load_stats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    alerts = pd.DataFrame(
        [
            {
                "timestamp": inject + truth.detect_delay_s - 3,
                "alertname": "GPUNodeDown",
                "alertstate": "pending",
            },
            {"timestamp": inject + truth.detect_delay_s, "alertname": "GPUNodeDown", "alertstate": "firing"},
        ]
    )
    alerts.to_csv(root / "series" / "alerts.csv", index=False)
    regions = [
        {"timestamp": T0 + i, "region": region, "code": code, "value": value}
        for i in range(seconds)
        for region in ("us-east", "eu-west")
        for code, value in (
            ("200", rps / 2 - (rps / 4 if first_bad <= i < first_bad + truth.outage_s else 0)),
            ("503", rps / 4 if first_bad <= i < first_bad + truth.outage_s else 0.0),
        )
    ]
    pd.DataFrame(regions).to_csv(root / "series" / "requests_by_region.csv", index=False)
    n = 200
    writes = [
        {"kind": "write", "seq": s, "ts": inject - (n - s) * truth.write_interval_s, "acked": True}
        for s in range(n)
    ]
    survivors = {"kind": "survivors", "ts": end + 5, "seqs": list(range(n - truth.lost_writes))}
    (root / "canary_writes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*writes, survivors]))


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


@pytest.mark.parametrize(
    "truth",
    [
        Truth(inject_s=20.3, outage_s=8, detect_delay_s=6.5, rto_max=30, lost_writes=0),
        Truth(inject_s=31.0, outage_s=14, detect_delay_s=12.0, rto_max=30, lost_writes=7),
    ],
)
def test_measurements_match_the_generated_ground_truth(tmp_path: Path, truth: Truth) -> None:
    write_run(tmp_path, truth)
    result = build_reports(tmp_path, runbook_dir=None)
    expected_rto = math.ceil(truth.inject_s) + truth.outage_s - truth.inject_s
    assert result.recovery == "recovered"
    assert result.rto_seconds == pytest.approx(expected_rto)
    assert result.rto_prometheus_seconds == pytest.approx(expected_rto)
    assert result.ttd_seconds == pytest.approx(truth.detect_delay_s)
    assert result.lost_writes == truth.lost_writes
    assert result.rpo_seconds == pytest.approx(truth.lost_writes * truth.write_interval_s)
    assert result.passed
    assert result.impact["during"].failures == 10 * min(truth.outage_s, 20)
    on_disk = RunResult.model_validate_json((tmp_path / "result.json").read_text())
    assert on_disk == result
    assert {o.name: o.verdict for o in on_disk.objectives} == {
        "ttd": "pass",
        "rto": "pass",
        "rpo": "pass",
        "budget_spent": "pass",
    }


def test_missed_rto_fails_everywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    write_run(tmp_path, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    result = build_reports(tmp_path)
    assert not result.passed
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["rto"]
    assert len(list(suite.iter("testcase"))) == len(result.objectives)
    md = (tmp_path / "postmortem.md").read_text()
    went_wrong = md.split("### What went wrong")[1].split("###")[0]
    assert "rto: 25" in went_wrong
    link = md_links(md.split("## Action items")[1])["gpu-node-down"]
    assert opens(tmp_path, link).name == "gpu-node-down.md" and opens(tmp_path, link).is_file()
    assert "**Status:** FAILED" in md


def test_no_impact_is_reported_as_such(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    result = build_reports(tmp_path)
    assert result.recovery == "no_impact"
    assert result.rto_seconds is None
    rto = next(o for o in result.objectives if o.name == "rto")
    assert (rto.verdict, rto.detail) == ("no_data", "no visible impact")
    assert "showed no visible impact" in (tmp_path / "postmortem.md").read_text()


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
    assert not result.passed
    assert result.error is not None
    assert "'kill-node' failed" in result.error and "us-east-9" in result.error
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("errors") == "1"


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
    timeline = md.split("## Timeline")[1].split("##")[0]
    order = [timeline.index(s) for s in ("**fault injected**", "**detected**", "**recovered**")]
    assert order == sorted(order)
    assert "GPUNodeDown" in md.split("## Detection")[1]
    assert "never fired" not in md
    assert "Cross-check: Prometheus' SLI was back within objective 8.0 s" in md.split("## Resolution")[1]


def test_an_expected_alert_that_never_fired_is_an_action_item(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    doc = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    doc["objectives"]["expected_alerts"] = ["GPUNodeDown", "GPUXidErrors"]
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc))
    result = build_reports(tmp_path)
    assert result.passed  # detected by the first of them, in time
    md = (tmp_path / "postmortem.md").read_text()
    assert "Expected but never fired: GPUXidErrors." in md.split("## Detection")[1]
    assert "Find out why GPUXidErrors never fired" in md.split("## Action items")[1]


def test_html_is_self_contained_with_marks(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    build_reports(tmp_path)
    page = (tmp_path / "report.html").read_text()
    assert "<script src=" not in page  # plotly inlined, opens offline
    assert "Plotly.newPlot" in page
    for text in (
        "Error ratio",
        "Traffic per region",
        "Error budget spent",
        "region us-east",
        '"inject"',
        '"recover"',
    ):
        assert text in page
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


def test_runbook_links_open_the_runbook_file_from_the_run_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    run_dir = tmp_path / "runs" / "gpu-node-loss-20261123T101500Z"
    write_run(run_dir, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    build_reports(run_dir, runbook_dir=RUNBOOKS)
    runbook = (RUNBOOKS / "gpu-node-down.md").resolve()
    md = (run_dir / "postmortem.md").read_text()
    detection = section(md, "Detection")
    assert "- GPUNodeDown: [gpu-node-down](" in detection
    assert opens(run_dir, md_links(detection)["gpu-node-down"]) == runbook
    assert opens(run_dir, md_links(section(md, "Action items"))["gpu-node-down"]) == runbook
    page = html_before_charts((run_dir / "report.html").read_text())
    hrefs = re.findall(r"<a href='([^']+)'>gpu-node-down</a>", page)
    assert len(hrefs) == 1 and opens(run_dir, hrefs[0]) == runbook


def test_runbook_links_use_a_configured_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "https://wiki.example/rb")
    write_run(tmp_path, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    build_reports(tmp_path, runbook_dir=RUNBOOKS)
    md = (tmp_path / "postmortem.md").read_text()
    assert md_links(section(md, "Detection")) == {"gpu-node-down": "https://wiki.example/rb/gpu-node-down.md"}
    assert md_links(section(md, "Action items")) == {
        "gpu-node-down": "https://wiki.example/rb/gpu-node-down.md"
    }
    page = html_before_charts((tmp_path / "report.html").read_text())
    assert "<a href='https://wiki.example/rb/gpu-node-down.md'>gpu-node-down</a>" in page


def test_html_has_summary_objectives_alerts_and_impact_above_the_charts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    doc = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    doc["description"] = "One GPU node dies <script>alert(1)</script> & more."
    doc["objectives"]["expected_alerts"] = ["GPUNodeDown", "GPUXidErrors"]
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc))
    build_reports(tmp_path, runbook_dir=RUNBOOKS)
    full = (tmp_path / "report.html").read_text()
    page = html_before_charts(full)
    assert "Plotly.newPlot" in full.split(page, 1)[1]  # the charts come after all of it
    summary = page.split('<p id="summary">')[1].split("</p>")[0]
    assert "One GPU node dies &lt;script&gt;alert(1)&lt;/script&gt; &amp; more." in summary
    assert "was detected after 6.0 s; service recovered 8.0 s after injection." in summary
    assert "<script>alert" not in full
    assert "<td>rto</td><td>30 s</td><td>8.000 s</td><td class='pass'>pass</td>" in page
    alerts = page.split("<h2>Alerts</h2>")[1].split("<h2>")[0]
    assert re.search(r"<li>GPUNodeDown \(expected\): runbook <a href='[^']+'>gpu-node-down</a></li>", alerts)
    assert "Expected but never fired:" in alerts
    assert "<li>GPUXidErrors</li>" in alerts.split("Expected but never fired:")[1]
    impact = page.split("<h2>Impact</h2>")[1]
    rows = re.findall(r"<tr><td>(before|during|after)</td><td>(\d+)</td><td>(\d+)</td>", impact)
    assert [(name, int(failed)) for name, _, failed in rows] == [("before", 0), ("during", 80), ("after", 0)]
    assert page.index('id="summary"') < page.index("id='objectives'") < page.index("id='alerts'")
    assert page.index("id='alerts'") < page.index("id='impact'")


def test_budget_chart_ends_at_the_budget_spent_of_result_json(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    (tmp_path / "slos").mkdir()
    shutil.copy(REPO / "scenarios" / "slos" / "inference-gameday.yaml", tmp_path / "slos")
    doc = yaml.safe_load((tmp_path / "scenario.yaml").read_text())
    doc["slos"] = ["slos/inference-gameday.yaml"]
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc))
    build_reports(tmp_path)
    result = json.loads((tmp_path / "result.json").read_text())
    # The run's SLO (99% over 1 h), not the scenario's per-second objective over 30 days.
    assert (result["budget_objective"], result["slo_period_s"]) == (0.99, 3600.0)
    page = (tmp_path / "report.html").read_text()
    spent = plotly_traces(page)["budget spent"]
    assert spent[-1] == pytest.approx(result["budget_spent"], rel=1e-9)
    assert spent[-1] == pytest.approx(80 / (20 * 3600 * 0.01))
    assert "Error budget spent (99% over 1 h)" in page


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


def test_root_cause_without_an_injection_record_names_the_experiment(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=8, detect_delay_s=6, rto_max=30))
    build_reports(tmp_path)
    cause = section((tmp_path / "postmortem.md").read_text(), "Root cause")
    assert cause.strip() == (
        "The fault injected on purpose by the experiment `../experiments/gpu-node-loss.yaml` "
        "(this was a game day)."
    )


def test_an_unmeasured_objective_reads_n_a_without_a_unit(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    build_reports(tmp_path)
    md = (tmp_path / "postmortem.md").read_text()
    assert "| rto | 10 s | n/a | no_data (no visible impact) |" in section(md, "Objectives")
    assert "n/a s" not in md
    page = (tmp_path / "report.html").read_text()
    assert "<td>rto</td><td>10 s</td><td>n/a</td><td class='no_data'>no_data</td>" in page
    assert "n/a s" not in html_before_charts(page)
