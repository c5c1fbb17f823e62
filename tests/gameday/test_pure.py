"""Pure pieces of the orchestration: live recovery check, verdicts, JUnit, gate exit codes."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from reliability.analysis import all_passed, verdicts
from reliability.gameday.gate import combine_junit, gate_exit_code
from reliability.gameday.live import recovered_at
from reliability.gameday.orchestrator import GameDayOutcome
from reliability.report import ObjectiveVerdict, RunResult
from reliability.report.junit import junit_xml


def series(values: list[float | None]) -> list[tuple[float, float | None]]:
    return [(100.0 + i, v) for i, v in enumerate(values)]


def test_recovered_needs_the_whole_hold_within_objective() -> None:
    s = series([1.0, 0.2, 0.5, 0.999, 1.0, 1.0, 1.0])
    assert recovered_at(s, objective=0.99, hold=3) == 103.0
    assert recovered_at(s, objective=0.99, hold=4) is None


def test_a_relapse_restarts_recovery_and_silence_is_not_recovery() -> None:
    assert recovered_at(series([1.0, 1.0, 0.5, 1.0, 1.0]), 0.99, 1) == 103.0
    assert recovered_at(series([1.0, None, None, None]), 0.99, 1) is None
    assert recovered_at([], 0.99, 1) is None


def test_verdicts_per_objective() -> None:
    res = {
        r.name: r
        for r in verdicts(
            rto_max=30,
            ttd_max=10,
            rpo_max=1,
            max_budget_spent=0.1,
            expected_alerts=("A",),
            ttd_seconds=12,
            rto_seconds=25,
            recovery="recovered",
            rpo_seconds=0.0,
            budget_spent=0.05,
        )
    }
    assert res["ttd"].verdict == "fail" and res["rto"].verdict == "pass"
    assert res["rpo"].verdict == "pass" and res["budget_spent"].verdict == "pass"
    assert not all_passed(list(res.values()))


def test_never_detected_and_never_recovered_fail_while_no_impact_is_not_rto_zero() -> None:
    res = {
        r.name: r for r in verdicts(rto_max=30, ttd_max=10, expected_alerts=("A",), recovery="unrecovered")
    }
    assert res["ttd"].verdict == "fail" and res["rto"].verdict == "fail"
    quiet = verdicts(rto_max=30, recovery="no_impact")
    assert quiet[0].verdict == "no_data" and quiet[0].measured is None
    assert all_passed(quiet)


def test_junit_marks_failures_and_harness_errors(tmp_path: Path) -> None:
    slow = verdicts(rto_max=30, rto_seconds=45, recovery="recovered")
    a = tmp_path / "a.xml"
    objectives = [ObjectiveVerdict(**vars(r)) for r in slow]
    a.write_text(junit_xml(RunResult(scenario="slow", passed=False, objectives=objectives)))
    b = tmp_path / "b.xml"
    b.write_text(junit_xml(RunResult(scenario="broken", passed=False, error="lab would not start")))
    merged = ET.fromstring(combine_junit([a, b, tmp_path / "missing.xml"]).split("\n", 1)[1])
    suites = {s.get("name"): s for s in merged.iter("testsuite")}
    assert suites["slow"].get("failures") == "1"
    assert suites["broken"].get("errors") == "1"
    assert suites["broken"].find("testcase/error").get("message") == "lab would not start"


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
    assert (
        progress_line("x", Snapshot("end", 40.0, 20.0, 0.0, None))
        == "[  40.0s] x: end - 20.0 req/s, errors 0.00%"
    )
