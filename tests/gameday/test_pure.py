"""Pure pieces of the orchestration: the live recovery judge, JUnit, gate exit codes, progress
lines, and the checks a scenario gets before anything starts."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
import yaml

from reliability.analysis.sli import SliSpec
from reliability.errors import InputError
from reliability.gameday.gate import combine_junit, gate_exit_code
from reliability.gameday.judge import LiveJudge
from reliability.gameday.orchestrator import GameDayOutcome, prepare
from reliability.report import ObjectiveVerdict, RunResult
from reliability.report.junit import junit_xml

T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[2]


def write_stats(path: Path, failing: list[int], seconds: int) -> None:
    lines = [
        {"v": 2, "ts": T0 + i, "requests": 10, "failures": 5 if i in failing else 0} for i in range(seconds)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))


def test_the_live_judge_waits_for_the_hold_after_the_fault_is_removed(tmp_path: Path) -> None:
    stats = tmp_path / "load_stats.jsonl"
    judge = LiveJudge(stats, [SliSpec("a", "availability", 0.99)], hold_s=3)
    write_stats(stats, failing=[5, 6, 7], seconds=10)
    assert not judge.settled(T0 + 5, T0 + 8)  # back at 8, held only until 10
    write_stats(stats, failing=[5, 6, 7], seconds=12)
    assert judge.settled(T0 + 5, T0 + 8)
    assert judge.saw_impact(T0 + 5)
    write_stats(stats, failing=[], seconds=12)
    assert judge.settled(T0 + 5, T0 + 8) and not judge.saw_impact(T0 + 5)


def test_junit_marks_failures_and_harness_errors_with_text(tmp_path: Path) -> None:
    failed = ObjectiveVerdict(name="rto:a", target=30, measured=45, unit="s", verdict="fail", detail="")
    a = tmp_path / "a.xml"
    a.write_text(junit_xml(RunResult(scenario="slow", status="failed", objectives=[failed],
                                     started_ts=T0, ended_ts=T0 + 61.5)))  # fmt: skip
    b = tmp_path / "b.xml"
    b.write_text(junit_xml(RunResult(scenario="broken", status="error", error="lab would not start")))
    merged = ET.fromstring(combine_junit([a, b, tmp_path / "missing.xml"]).split("\n", 1)[1])
    suites = {s.get("name"): s for s in merged.iter("testsuite")}
    assert suites["slow"].get("failures") == "1" and suites["slow"].get("time") == "61.500"
    failure = suites["slow"].find("testcase/failure")
    assert failure is not None and failure.text == "rto:a: measured 45 s, target <= 30 s"
    assert suites["broken"].get("errors") == "1"
    error = suites["broken"].find("testcase/error")
    assert error is not None and error.get("message") == error.text == "lab would not start"


def test_gate_exit_code() -> None:
    def o(code: int) -> GameDayOutcome:
        return GameDayOutcome(run_dir=Path("."), exit_code=code)

    assert gate_exit_code([o(0), o(0)]) == 0
    assert gate_exit_code([o(0), o(1)]) == 1
    assert gate_exit_code([o(1), o(2)]) == 2
    assert gate_exit_code([o(0), o(130)]) == 2


def test_progress_lines_for_ci_logs_show_only_what_was_measured() -> None:
    from reliability.gameday.live import Snapshot, progress_line

    assert progress_line("x", Snapshot("setup", 0.04, None, None, None)) == "[   0.0s] x: setup"
    assert (
        progress_line("x", Snapshot("chaos", 12.3, 50.0, 0.5, 32.25))
        == "[  12.3s] x: chaos - 50.0 req/s, errors 50.00%, burn rate 32.2"
    )


def shipped(name: str, tmp_path: Path, **objectives: object) -> Path:
    """A shipped scenario with its relative paths made absolute, objectives changed."""
    doc = yaml.safe_load((REPO / "scenarios" / f"{name}.yaml").read_text())
    base = REPO / "scenarios"
    doc["slos"] = [str((base / s).resolve()) for s in doc["slos"]]
    doc["experiment"]["file"] = str((base / doc["experiment"]["file"]).resolve())
    if doc.get("target", {}).get("config"):
        doc["target"]["config"] = str((base / doc["target"]["config"]).resolve())
    doc["objectives"].update(objectives)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("objectives", "field", "words"),
    [
        ({"expected_alerts": ["GPUNodeDwn"]}, "objectives.expected_alerts[0]", "no alert named 'GPUNodeDwn'"),
        ({"runbooks": ["no-such-runbook"]}, "objectives.runbooks[0]", "no runbook 'no-such-runbook'"),
        ({"max_budget_spent": {"nope": 0.5}}, "objectives.max_budget_spent.nope", "no SLO named 'nope'"),
    ],
)
def test_typos_are_found_before_anything_starts(
    tmp_path: Path, objectives: dict, field: str, words: str
) -> None:
    path = shipped("gpu-node-loss", tmp_path, **objectives)
    with pytest.raises(InputError) as err:
        prepare(path)
    assert field in err.value.location and words in err.value.message


def test_bad_guardrail_promql_and_a_short_baseline_are_refused(tmp_path: Path) -> None:
    path = shipped("gpu-node-loss", tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["guardrails"] = [{"name": "g", "query": "sum(rate(x[5s])", "above": 1}]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as err:
        prepare(path)
    assert "guardrails[0].query" in err.value.location and "PromQL" in err.value.message
    doc["guardrails"] = []
    doc["phases"]["baseline"] = "5s"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as err:
        prepare(path)
    assert "phases.baseline" in err.value.location and "page window" in err.value.message


@pytest.mark.parametrize(
    ("phases", "words"),
    [({"baseline": ".inf"}, "phases.baseline"), ({"fault_hold": "nan"}, "phases.fault_hold")],
)
def test_phases_are_finite_and_bounded(tmp_path: Path, phases: dict, words: str) -> None:
    path = shipped("gpu-node-loss", tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["phases"].update(phases)
    path.write_text(yaml.safe_dump(doc).replace("'.inf'", ".inf").replace("'nan'", ".nan"))
    with pytest.raises(InputError) as err:
        prepare(path)
    assert words in str(err.value)


def test_guardrail_names_are_unique(tmp_path: Path) -> None:
    path = shipped("gpu-node-loss", tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["guardrails"] = [{"name": "g", "query": "up", "above": 1}, {"name": "g", "query": "up", "above": 2}]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError) as err:
        prepare(path)
    assert "unique" in str(err.value)
