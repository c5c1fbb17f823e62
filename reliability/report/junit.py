"""`junit.xml`: one testcase per objective, so CI shows game-day objectives like tests."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from reliability.report.model import RunResult


def junit_xml(result: RunResult) -> str:
    root = ET.Element("testsuites", name="reliability-gameday")
    cases = result.objectives
    suite = ET.SubElement(
        root,
        "testsuite",
        name=result.scenario,
        tests=str(len(cases) + (1 if result.error else 0)),
        failures=str(sum(o.verdict == "fail" for o in cases)),
        errors="1" if result.error else "0",
        skipped=str(sum(o.verdict == "no_data" for o in cases)),
    )
    classname = f"gameday.{result.scenario}"
    if result.error:
        case = ET.SubElement(suite, "testcase", classname=classname, name="run")
        ET.SubElement(case, "error", message=result.error)
    for o in cases:
        case = ET.SubElement(suite, "testcase", classname=classname, name=o.name)
        measured = "n/a" if o.measured is None else f"{o.measured:.3f}"
        text = f"{o.name}: measured {measured} {o.unit}, target <= {o.target:g} {o.unit}"
        if o.detail:
            text += f" ({o.detail})"
        if o.verdict == "fail":
            ET.SubElement(case, "failure", message=text)
        elif o.verdict == "no_data":
            ET.SubElement(case, "skipped", message=text)
        ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
