"""`junit.xml`: one testcase per objective, so CI shows game-day objectives like tests.

Each failure carries its explanation both in `message` (GitHub) and as element text (GitLab shows
the text, not the attribute); a run that could not be judged is an `<error>` testcase saying why.
The layout keeps to what the common JUnit schemas all accept (Jenkins' junit-10.xsd and the stricter
Windy Road JUnit.xsd; checked in tests/report against tests/report/junit-common.xsd): `package`,
`id`, `hostname`, `timestamp` (UTC, no zone) and `time` on the suite, `properties`, `system-out`
and `system-err` in the suite, at most one `failure`/`error` per testcase and nothing else in it.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

from reliability.report.model import RunResult
from reliability.report.summary import with_unit


def _objective_text(o: object) -> str:
    from reliability.report.model import ObjectiveVerdict

    assert isinstance(o, ObjectiveVerdict)
    text = f"{o.name}: measured {with_unit(o.measured, o.unit)}, target <= {with_unit(o.target, o.unit)}"
    if o.detail:
        text += f" ({o.detail})"
    if o.evidence:
        text += f" [evidence: {o.evidence}]"
    return text


def junit_xml(result: RunResult) -> str:
    root = ET.Element("testsuites")
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
        package="gameday",
        id="0",
        timestamp=datetime.fromtimestamp(result.started_ts or 0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=result.meta.host or socket.gethostname() or "localhost",
        tests=str(len(cases) + (1 if broken else 0)),
        failures=str(sum(o.verdict == "fail" for o in cases)),
        errors="1" if broken else "0",
        time=f"{duration:.3f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("status", result.status),
        *((f"version.{k}", v) for k, v in sorted(result.meta.versions.items())),
    ):
        ET.SubElement(properties, "property", name=name, value=str(value))
    classname = f"gameday.{result.scenario}"
    if broken:
        why = result.error or f"interrupted: {result.interrupted}"
        case = ET.SubElement(suite, "testcase", classname=classname, name="run", time=f"{duration:.3f}")
        err = ET.SubElement(case, "error", message=why, type=result.status)
        err.text = why
    lines = []
    for o in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=o.name, time="0")
        text = _objective_text(o)
        lines.append(f"{o.verdict.upper()} {text}")
        if o.verdict == "fail":
            failure = ET.SubElement(case, "failure", message=text, type="objective")
            failure.text = text
    ET.SubElement(suite, "system-out").text = "\n".join(lines)
    ET.SubElement(suite, "system-err").text = result.error or ""
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
