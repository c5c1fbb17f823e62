"""Objectives against measurements: the verdicts, `result.json` and `junit.xml` (pure + writers)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree as ET

from reliability.files import write_atomic, write_json_atomic
from reliability.scenario import Objectives

Verdict = Literal["pass", "fail", "no_data"]


@dataclass(frozen=True)
class ObjectiveResult:
    name: str
    target: float
    measured: float | None
    unit: str
    verdict: Verdict
    detail: str = ""


@dataclass(frozen=True)
class Measurements:
    """What the analysis measured; None = not measured / never happened."""

    ttd_seconds: float | None = None
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    budget_spent: float | None = None
    recovered: bool = True
    detected: bool = True
    impact_visible: bool = True


def judge(objectives: Objectives, m: Measurements) -> list[ObjectiveResult]:
    """One verdict per objective the scenario sets.

    A missing measurement is a failure where the event is required (an alert that never fired,
    a service that never recovered) and `no_data` only where nothing happened to measure
    (no visible impact: nothing to recover from; no writes lost: RPO 0 is measured, not assumed).
    """
    out: list[ObjectiveResult] = []
    if objectives.ttd_max is not None:
        alerts = ", ".join(objectives.expected_alerts)
        if m.ttd_seconds is None:
            out.append(ObjectiveResult("ttd", objectives.ttd_max, None, "s", "fail", f"{alerts} never fired"))
        else:
            out.append(_upper("ttd", objectives.ttd_max, m.ttd_seconds, "s", f"first of {alerts}"))
    if objectives.rto_max is not None:
        if m.rto_seconds is None and not m.impact_visible:
            out.append(ObjectiveResult("rto", objectives.rto_max, None, "s", "no_data", "no visible impact"))
        elif m.rto_seconds is None or not m.recovered:
            out.append(
                ObjectiveResult("rto", objectives.rto_max, m.rto_seconds, "s", "fail", "did not recover")
            )
        else:
            out.append(_upper("rto", objectives.rto_max, m.rto_seconds, "s"))
    if objectives.rpo_max is not None:
        if m.rpo_seconds is None:
            out.append(ObjectiveResult("rpo", objectives.rpo_max, None, "s", "no_data", "no canary data"))
        else:
            out.append(_upper("rpo", objectives.rpo_max, m.rpo_seconds, "s"))
    if objectives.max_budget_spent is not None:
        if m.budget_spent is None:
            out.append(ObjectiveResult("budget_spent", objectives.max_budget_spent, None, "ratio", "no_data"))
        else:
            out.append(_upper("budget_spent", objectives.max_budget_spent, m.budget_spent, "ratio"))
    return out


def _upper(name: str, target: float, measured: float, unit: str, detail: str = "") -> ObjectiveResult:
    return ObjectiveResult(name, target, measured, unit, "pass" if measured <= target else "fail", detail)


def passed(results: list[ObjectiveResult]) -> bool:
    return all(r.verdict != "fail" for r in results)


def result_document(
    scenario: str,
    results: list[ObjectiveResult],
    m: Measurements,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "passed": passed(results),
        "objectives": [asdict(r) for r in results],
        "ttd_seconds": m.ttd_seconds,
        "rto_seconds": m.rto_seconds,
        "rpo_seconds": m.rpo_seconds,
        "budget_spent": m.budget_spent,
        **(extra or {}),
    }


def junit_xml(suites: list[tuple[str, list[ObjectiveResult], str | None]]) -> str:
    """One <testsuite> per scenario, one <testcase> per objective; an error string marks a
    scenario the harness could not run (reported as <error>, not as a failed objective)."""
    root = ET.Element("testsuites", name="reliability-gameday")
    for scenario, results, error in suites:
        failures = sum(r.verdict == "fail" for r in results)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=scenario,
            tests=str(max(len(results), 1 if error else 0)),
            failures=str(failures),
            errors="1" if error else "0",
            skipped=str(sum(r.verdict == "no_data" for r in results)),
        )
        if error:
            case = ET.SubElement(suite, "testcase", classname=f"gameday.{scenario}", name="run")
            ET.SubElement(case, "error", message=error)
        for r in results:
            case = ET.SubElement(suite, "testcase", classname=f"gameday.{scenario}", name=r.name)
            measured = "n/a" if r.measured is None else f"{r.measured:.3f}"
            text = f"{r.name}: measured {measured} {r.unit}, target <= {r.target} {r.unit}"
            if r.detail:
                text += f" ({r.detail})"
            if r.verdict == "fail":
                ET.SubElement(case, "failure", message=text)
            elif r.verdict == "no_data":
                ET.SubElement(case, "skipped", message=text)
            ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_results(
    run_dir: Path, scenario: str, results: list[ObjectiveResult], m: Measurements, extra: dict[str, Any]
) -> dict[str, Any]:
    doc = result_document(scenario, results, m, extra)
    write_json_atomic(run_dir / "result.json", doc)
    write_atomic(run_dir / "junit.xml", junit_xml([(scenario, results, extra.get("error"))]))
    return doc
