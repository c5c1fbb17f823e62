"""`reliability gate --baseline DIR`: each run of the gate against the latest earlier run of its
scenario found under DIR, and the regressions as JUnit test cases so CI shows them."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from reliability.errors import InputError
from reliability.runs.compare import Regression, baseline_for, regressions
from reliability.runs.discover import find_runs, read_summary


def regressions_against(
    run_dirs: list[Path], baseline_dir: Path, tolerance: float
) -> dict[str, tuple[str | None, list[Regression]]]:
    """Scenario -> (the baseline run's name or None when none was found, its regressions)."""
    if not Path(baseline_dir).is_dir():
        raise InputError(str(baseline_dir), "baseline directory not found")
    candidates = find_runs(baseline_dir)
    out: dict[str, tuple[str | None, list[Regression]]] = {}
    for run_dir in run_dirs:
        current = read_summary(run_dir)
        if current is None or current.status not in ("passed", "failed"):
            continue  # not judged: the gate fails on it anyway
        base = baseline_for(candidates, current)
        out[current.scenario] = (
            base.name if base else None,
            regressions(base, current, tolerance) if base else [],
        )
    return out


def junit_with_regressions(
    xml_text: str, found: dict[str, tuple[str | None, list[Regression]]], tolerance: float
) -> str:
    """The gate's JUnit file with one failing testcase per regression, in its scenario's suite."""
    root = ET.fromstring(xml_text.split("\n", 1)[1] if xml_text.startswith("<?xml") else xml_text)
    for suite in root.iter("testsuite"):
        _, regressed = found.get(suite.get("name", ""), (None, []))
        out = suite.find("system-out")
        for reg in regressed:
            case = ET.Element(
                "testcase",
                classname=f"gameday.{suite.get('name')}",
                name=f"regression:{reg.objective}",
                time="0",
            )
            failure = ET.SubElement(case, "failure", message=reg.sentence(tolerance), type="regression")
            failure.text = reg.sentence(tolerance)
            # Test cases come before the suite's system-out (schema order).
            index = list(suite).index(out) if out is not None else len(suite)
            suite.insert(index, case)
            suite.set("tests", str(int(suite.get("tests", "0")) + 1))
            suite.set("failures", str(int(suite.get("failures", "0")) + 1))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
