"""Reports built from a synthetic run directory; expected figures come from the generator's parameters."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import pandas as pd
import pytest
import yaml

from reliability.errors import InputError
from reliability.report import RunResult, build_reports

T0 = 1_763_856_000.0


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


def test_missed_rto_fails_everywhere(tmp_path: Path) -> None:
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
    assert "[gpu-node-down](runbooks/gpu-node-down.md)" in md.split("## Action items")[1]
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
