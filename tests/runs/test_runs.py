"""Runs over time: `reliability runs list|compare` and the regression check of `gate --baseline`,
on run directories whose reports were built from synthetic data with known RTOs."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from reliability.cli import app
from reliability.errors import InputError
from reliability.gameday.orchestrator import GameDayOutcome
from reliability.report import build_reports
from tests.report.synthetic import T0, Truth, write_run

DAY = 86400.0


def make_run(root: Path, name: str, outage_s: int, days_ago: float, rto_max: float = 30) -> Path:
    """A gpu-node-loss run whose RTO is outage_s - 0.5 s (the last failure is half a second into
    the last bad second), started `days_ago` days before the others."""
    run = root / name
    write_run(run, Truth(inject_s=20, outage_s=outage_s, detect_delay_s=5, rto_max=rto_max))
    info = json.loads((run / "run.json").read_text())
    info["started_ts"] = T0 - days_ago * DAY
    info["ended_ts"] = info["started_ts"] + 100
    (run / "run.json").write_text(json.dumps(info))
    build_reports(run)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    make_run(root, "gpu-node-loss-week1", outage_s=13, days_ago=14)
    make_run(root, "gpu-node-loss-week2", outage_s=12, days_ago=7)
    make_run(root, "gpu-node-loss-week3", outage_s=26, days_ago=0)
    return root


def cli(*args: str) -> tuple[int, str]:
    """Exit code and output as `reliability.cli.main` gives them (bad input: exit 2, one line)."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, InputError):
        return 2, f"error: {result.exception}"
    return result.exit_code, result.output


def test_runs_list_finds_every_run_oldest_first(runs: Path) -> None:
    code, out = cli("runs", "list", str(runs), "--json")
    assert code == 0
    listed = json.loads(out)
    assert [(r["name"], r["status"]) for r in listed] == [
        ("gpu-node-loss-week1", "passed"),
        ("gpu-node-loss-week2", "passed"),
        ("gpu-node-loss-week3", "passed"),
    ]
    rto = [next(o for o in r["objectives"] if o["name"] == "rto:requests-availability") for r in listed]
    assert [o["measured"] for o in rto] == [12.5, 11.5, 25.5]
    code, out = cli("runs", "list", str(runs))
    assert code == 0 and "gpu-node-loss-week3" in out and "rto:requests-availability 25.5 s (pass)" in out
    code, out = cli("runs", "list", str(runs / "nope"))
    assert (code, out) == (2, f"error: {runs / 'nope'}: not a directory")


def test_runs_compare_json_is_pinned(runs: Path) -> None:
    code, out = cli(
        "runs", "compare", str(runs / "gpu-node-loss-week2"), str(runs / "gpu-node-loss-week3"), "--json"
    )
    assert code == 0, out
    doc = json.loads(out)
    assert doc["scenario"] == "gpu-node-loss"
    assert doc["runs"] == [
        {"name": "gpu-node-loss-week2", "path": str((runs / "gpu-node-loss-week2").resolve()),
         "started_ts": T0 - 7 * DAY, "status": "passed"},
        {"name": "gpu-node-loss-week3", "path": str((runs / "gpu-node-loss-week3").resolve()),
         "started_ts": T0, "status": "passed"},
    ]  # fmt: skip
    by_name = {o["name"]: o for o in doc["objectives"]}
    assert list(by_name) == [
        "rto:requests-availability",
        "rto:ttft",
        "rpo",
        "ttd",
        "expected_alerts",
        "budget_spent:requests-availability",
        "budget_spent:ttft",
    ]
    assert by_name["rto:requests-availability"] == {
        "name": "rto:requests-availability",
        "unit": "s",
        "target": 30.0,
        "values": [11.5, 25.5],
        "verdicts": ["pass", "pass"],
        "change": 14.0,
        "change_ratio": pytest.approx(14.0 / 11.5),
    }
    # "no visible impact" compares as 0: the TTFT SLI never left its objective in either run.
    assert by_name["rto:ttft"]["values"] == [0.0, 0.0] and by_name["rto:ttft"]["change"] == 0.0
    assert by_name["ttd"]["values"] == [5.0, 5.0]
    code, out = cli("runs", "compare", str(runs / "gpu-node-loss-week2"), str(runs / "gpu-node-loss-week3"))
    assert code == 0 and "rto:requests-availability" in out and "+14 s (+122%)" in out


def test_runs_of_another_scenario_are_not_compared(runs: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    make_run(tmp_path, "other", outage_s=5, days_ago=1)
    result = json.loads((other / "result.json").read_text())
    result["scenario"] = "region-partition"
    (other / "result.json").write_text(json.dumps(result))
    code, out = cli("runs", "compare", str(runs / "gpu-node-loss-week3"), str(other))
    assert code == 2 and "scenario 'region-partition' differs from 'gpu-node-loss'" in out
    code, out = cli("runs", "compare", str(tmp_path / "missing"))
    assert code == 2 and "not a judged run directory" in out


def test_gate_baseline_fails_a_regression_that_still_meets_its_target(runs: Path, tmp_path: Path) -> None:
    from reliability.gameday_cli import _check_baseline
    from reliability.runs.baseline import regressions_against

    week3 = runs / "gpu-node-loss-week3"
    found = regressions_against([week3], runs, tolerance=0.25)
    base, regressed = found["gpu-node-loss"]
    assert base == "gpu-node-loss-week2"  # the latest earlier run, not the run itself
    assert [(r.objective, r.baseline, r.current, r.meets_target) for r in regressed] == [
        ("rto:requests-availability", 11.5, 25.5, True),
        # the budget doubled too: 120 -> 260 bad requests of 1800
        ("budget_spent:requests-availability", pytest.approx(120 / 720), pytest.approx(260 / 720), True),
    ]
    assert regressed[0].sentence(0.25) == (
        "rto:requests-availability: 11.5 s -> 25.5 s (+122%, tolerance 25%; baseline gpu-node-loss-week2), "
        "still within its target 30 s"
    )
    # A wider tolerance lets it pass; week 2 against week 1 improved: nothing regressed.
    assert regressions_against([week3], runs, tolerance=1.5)["gpu-node-loss"][1] == []
    assert regressions_against([runs / "gpu-node-loss-week2"], runs, 0.25)["gpu-node-loss"][1] == []

    # What `gate --baseline` does after its runs: exit 1 and a failing JUnit case per regression.
    junit = tmp_path / "gate.xml"
    junit.write_text((week3 / "junit.xml").read_text())
    outcome = GameDayOutcome(run_dir=week3, exit_code=0)
    assert _check_baseline([outcome], runs, 0.25, junit, 0) == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "2"
    failure = suite.find("testcase[@name='rto:requests-availability']/failure")
    assert failure is None  # the objective itself still passes
    regression = suite.find("testcase[@name='regression:rto:requests-availability']/failure")
    assert regression is not None and regression.text is not None and "11.5 s -> 25.5 s" in regression.text
    assert _check_baseline([outcome], runs, 1.5, None, 0) == 0
    assert _check_baseline([outcome], runs, 0.25, None, 2) == 2  # an error stays an error


def test_the_report_shows_the_trend_of_the_runs_beside_it(runs: Path) -> None:
    page = (runs / "gpu-node-loss-week3" / "report.html").read_text()
    assert "Previous runs of gpu-node-loss" in page and 'id="trend-chart"' in page
    trend = page.split("<table id='trend'>")[1].split("</table>")[0]
    assert "<th>gpu-node-loss-week1</th><th>gpu-node-loss-week2</th><th>this run</th>" in trend
    assert (
        "<td>rto:requests-availability</td><td>12.5 s</td><td>11.5 s</td><td>25.5 s</td><td>+14</td>" in trend
    )
