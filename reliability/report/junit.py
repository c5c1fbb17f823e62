"""`junit.xml`: one testcase per objective, so CI shows game-day objectives like tests.

Each failure carries its explanation both in `message` (GitHub) and as element text (GitLab shows
the text, not the attribute); a run that could not be judged is an `<error>` testcase saying why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from reliability.report.model import RunResult
from reliability.report.summary import with_unit


def junit_xml(result: RunResult) -> str:
    root = ET.Element("testsuites", name="reliability-gameday")
    cases = result.objectives
    broken = result.error or result.status == "interrupted"
    duration = (
        max(0.0, result.ended_ts - result.started_ts)
        if result.started_ts is not None and result.ended_ts is not None
        else 0.0
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=result.scenario,
        tests=str(len(cases) + (1 if broken else 0)),
        failures=str(sum(o.verdict == "fail" for o in cases)),
        errors="1" if broken else "0",
        skipped="0",
        time=f"{duration:.3f}",
        timestamp=datetime.fromtimestamp(result.started_ts or 0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    classname = f"gameday.{result.scenario}"
    if broken:
        why = result.error or f"interrupted: {result.interrupted}"
        case = ET.SubElement(suite, "testcase", classname=classname, name="run", time="0")
        err = ET.SubElement(case, "error", message=why, type=result.status)
        err.text = why
    for o in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=o.name, time="0")
        text = f"{o.name}: measured {with_unit(o.measured, o.unit)}, target <= {with_unit(o.target, o.unit)}"
        if o.detail:
            text += f" ({o.detail})"
        if o.evidence:
            text += f" [evidence: {o.evidence}]"
        if o.verdict == "fail":
            failure = ET.SubElement(case, "failure", message=text, type="objective")
            failure.text = text
        ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
