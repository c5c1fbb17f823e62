"""junit.xml for CI: valid against the common JUnit schema rules (tests/report/junit-common.xsd),
time and timestamp set, failure text in the element (GitLab) and the message (GitHub), and written
also when the run could not be judged (exit 2), saying why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from reliability.errors import InputError
from reliability.gameday.integrations import write_error_result
from reliability.report import build_reports
from tests.report.synthetic import T0, Partition, Truth, write_partition_run, write_run

SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).with_name("junit-common.xsd"))))


def validate(path: Path) -> etree._Element:
    doc = etree.parse(str(path))
    assert SCHEMA.validate(doc), SCHEMA.error_log.filter_from_errors()
    return doc.getroot()


@pytest.mark.parametrize("outage", [8, 25])
def test_judged_runs_are_valid_junit_with_time_and_timestamp(tmp_path: Path, outage: int) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=outage, detect_delay_s=5, rto_max=10))
    result = build_reports(tmp_path)
    root = validate(tmp_path / "junit.xml")
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("time") == "100.000" and suite.get("timestamp") == "2025-11-22T23:59:55"
    failures = suite.findall("testcase/failure")
    assert (
        suite.get("failures")
        == str(len(failures))
        == str(sum(o.verdict == "fail" for o in result.objectives))
    )
    for failure in failures:
        assert failure.text == failure.get("message") and "target <=" in failure.text
    # Every objective's measurement is in the suite's output, passes included.
    out = suite.findtext("system-out") or ""
    assert all(o.name in out for o in result.objectives)


def test_a_run_with_metadata_lists_versions_as_properties(tmp_path: Path) -> None:
    write_partition_run(tmp_path, Partition())
    build_reports(tmp_path)
    suite = validate(tmp_path / "junit.xml").find("testsuite")
    assert suite is not None and suite.get("hostname") == "gameday-host"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["status"] == "passed" and props["version.prometheus"] == "2.42.0"


def test_an_unjudged_run_is_an_error_testcase_saying_why(tmp_path: Path) -> None:
    write_run(tmp_path, Truth(inject_s=20, outage_s=0, detect_delay_s=5, rto_max=10))
    failed = {"ts": T0 + 20.01, "event": "activity_end", "phase": "method", "type": "action",
              "name": "kill-node", "status": "failed",
              "error": "HarnessError: no GPU node named us-east-9"}  # fmt: skip
    with (tmp_path / "timeline.jsonl").open("a") as f:
        f.write("\n" + json.dumps(failed) + "\n")
    build_reports(tmp_path)
    suite = validate(tmp_path / "junit.xml").find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    error = suite.find("testcase[@name='run']/error")
    assert error is not None and "us-east-9" in (error.text or "") and error.text == error.get("message")
    assert "us-east-9" in (suite.findtext("system-err") or "")


def test_the_harness_error_path_writes_valid_junit(tmp_path: Path) -> None:
    """What the orchestrator writes when even the reports could not be built (exit 2)."""
    write_error_result(tmp_path, "gpu-node-loss", "building reports failed: disk full", "SIGTERM in chaos")
    suite = validate(tmp_path / "junit.xml").find("testsuite")
    assert suite is not None
    assert suite.findtext("testcase/error") == "building reports failed: disk full"


def test_gate_writes_junit_when_its_input_is_bad(tmp_path: Path) -> None:
    from reliability.cli import app

    junit = tmp_path / "gate.xml"
    result = CliRunner().invoke(app, ["gate", str(tmp_path / "missing.yaml"), "--junit", str(junit)])
    assert isinstance(result.exception, InputError)  # `reliability` prints it and exits 2
    suite = validate(junit).find("testsuite")
    assert suite is not None and suite.get("errors") == "1"
    assert "missing.yaml" in (suite.findtext("testcase/error") or "")
    result = CliRunner().invoke(app, ["gate", str(tmp_path / "x.yaml"), "--junit", str(junit), "--baseline",
                                      str(tmp_path / "no-runs")])  # fmt: skip
    assert isinstance(result.exception, InputError)
    assert "--baseline" in (validate(junit).findtext("testsuite/testcase/error") or "")


def test_the_schema_rejects_what_the_common_parsers_reject(tmp_path: Path) -> None:
    """The check can fail: output inside a testcase, a zoned timestamp, no hostname."""
    write_run(tmp_path, Truth(inject_s=20, outage_s=25, detect_delay_s=5, rto_max=10))
    build_reports(tmp_path)
    good = (tmp_path / "junit.xml").read_text()
    bad = [
        good.replace("</testcase>", "<system-out>x</system-out></testcase>", 1),
        good.replace('timestamp="2025-11-22T23:59:55"', 'timestamp="2025-11-22T23:59:55Z"'),
        good.replace(' hostname="', ' host="'),
    ]
    assert good.count("</testcase>") >= 1 and all(b != good for b in bad)
    for text in bad:
        assert not SCHEMA.validate(etree.fromstring(text.split("\n", 1)[1].encode()))
