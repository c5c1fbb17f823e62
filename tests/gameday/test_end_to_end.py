"""Game days against a real LLM twin through the `reliability` CLI, as a user or CI runs them: the
gate's exit code and JUnit for healthy scenarios and for scenarios built to fail, guardrails, and a
fault that could not be injected. (The measurements against ground truth: test_verdict_truth.py;
interrupted runs: test_interrupt_matrix.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
import requests
import yaml

from reliability.lab import Lab, faults
from reliability.lab.events import read_events
from tests.gameday.conftest import GAMEDAY_SLOS, write_scenario

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "reliability.cli"]
SHORT = {"baseline": "6s", "fault_hold": "8s", "recovery_max": "30s", "recovered_hold": "3s"}


def run_cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def events_between(run_dir: Path, name: str, start: float) -> list[dict[str, Any]]:
    return [e for e in read_events(run_dir / "events.jsonl") if e["event"] == name and e["ts"] >= start]


def availability_only(directory: Path) -> Path:
    doc = yaml.safe_load(GAMEDAY_SLOS.read_text())
    doc["slos"] = [slo for slo in doc["slos"] if slo["name"] == "availability"]
    path = directory / "availability.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def assert_lab_clean(lab: Lab) -> None:
    status = faults.lab_status(lab.state_file)
    assert status["phase"] == "ready"
    assert not status["faults"], status["faults"]
    assert not status["partitioned"], status["partitioned"]
    body = {
        "model": status["served_model_name"],
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 8,
    }
    for _ in range(10):  # both regions answer again
        r = requests.post(f"{lab.endpoint}/v1/chat/completions", json=body, timeout=10)
        assert r.status_code == 200, r.text


def test_the_gate_passes_healthy_scenarios_and_fails_those_built_to_fail(lab: Lab, tmp_path: Path) -> None:
    """One gate over two scenarios: the platform's rollback within a realistic RTO passes (load
    from Locust's distributed mode); the same rollback expecting an alert that cannot fire fails, and
    fails its impossible 0.1 s RTO too whenever the rollout's errors reached a client."""
    rollout = {"target": "us-east", "version": "v2-broken", "failure": "errors"}
    # The gate's mechanics on the availability SLO alone: three Locust processes beside the lab on
    # two cores stall token streams now and then, which the latency SLIs rightly count.
    slos = availability_only(tmp_path)
    healthy = write_scenario(
        tmp_path, lab, "model-failure.yaml", rollout, SHORT, {"rto_max": "10s"}, name="healthy", slos=slos
    )
    broken = write_scenario(
        tmp_path, lab, "model-failure.yaml", rollout, SHORT,
        {"rto_max": "0.1s", "expected_alerts": ["StoreReplicationLagHigh"]}, name="broken", slos=slos,
    )  # fmt: skip
    junit = tmp_path / "gate.xml"
    started = time.time()
    proc = run_cli("gate", str(healthy), str(broken), "--junit", str(junit),
                   "--out", str(tmp_path / "runs"), "--workers", "2")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = {d.name: json.loads((d / "result.json").read_text()) for d in (tmp_path / "runs").iterdir()}
    assert results["healthy"]["status"] == "passed", results["healthy"]
    assert results["broken"]["status"] == "failed"
    # The canary may be rolled back before a client request meets it (gateway retries hide the
    # rest): then there was no visible impact, which passes even a 0.1 s RTO, saying so.
    broken_avail = next(s for s in results["broken"]["slis"] if s["slo"] == "availability")
    rto_verdict = {o["name"]: o["verdict"] for o in results["broken"]["objectives"]}["rto:availability"]
    assert rto_verdict == ("pass" if broken_avail["status"] == "no_impact" else "fail"), broken_avail
    assert results["broken"]["expected_alerts_silent"] == ["StoreReplicationLagHigh"]
    # The RTO is the platform's: the canary analysis rolled the version back long before the hold.
    rollback = events_between(tmp_path / "runs" / "healthy", "model_rollback", started)
    assert rollback, "the platform did not roll the bad version back"
    avail = next(s for s in results["healthy"]["slis"] if s["slo"] == "availability")
    assert avail["status"] in ("recovered", "no_impact"), avail
    if avail["status"] == "recovered":
        assert abs(avail["recovered_ts"] - rollback[0]["ts"]) <= 1.0, (avail, rollback[0])
    # Locust's distributed mode: a log per worker beside the master's.
    assert len(list((tmp_path / "runs" / "healthy").glob("locust-worker*.log"))) == 2
    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    assert suites["healthy"].get("failures") == "0"
    # A visible impact fails 0.1 s; a latency SLI the rollout's cut streams nudged may fail too.
    rto_failure = suites["broken"].find("testcase[@name='rto:availability']/failure")
    assert (rto_failure is not None) == (rto_verdict == "fail")
    assert suites["broken"].find("testcase[@name='expected_alerts']/failure") is not None
    # CI's log shows each run's progress as lines.
    assert "] healthy: baseline" in proc.stderr and "] broken: end" in proc.stderr
    assert_lab_clean(lab)


def test_guardrail_aborts_and_rolls_back_within_its_window(lab: Lab, tmp_path: Path) -> None:
    window = 3.0
    scenario = write_scenario(
        tmp_path,
        lab,
        "silent-model-degradation.yaml",
        {"target": "all"},
        {"baseline": "6s", "fault_hold": "60s", "recovery_max": "20s", "recovered_hold": "2s"},
        {"rto_max": "90s"},
        guardrails=[
            {
                "name": "canary-wrong-over-20pct",
                "query": 'sum(rate(llm_canary_requests_total{outcome="wrong"}[4s]))'
                " / sum(rate(llm_canary_requests_total[4s]))",
                "above": 0.2,
                "for": f"{window}s",
            }
        ],
        name="guardrail",
    )
    started = time.time()
    proc = run_cli("gameday", "run", str(scenario), "--out", str(tmp_path / "run"), "--no-live")
    run_dir = tmp_path / "run"
    timeline = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    tripped = [r for r in timeline if r["event"] == "guardrail_tripped"]
    assert tripped, proc.stdout + proc.stderr
    fault_set = events_between(run_dir, "fault_set", started)[0]
    cleared = events_between(run_dir, "fault_cleared", fault_set["ts"])[0]
    # Far sooner than the 60 s hold: the stop condition's window, the rate window and scrape lag.
    assert cleared["ts"] - fault_set["ts"] < window + 12, cleared["ts"] - fault_set["ts"]
    assert cleared["ts"] - tripped[0]["ts"] < 5
    assert_lab_clean(lab)


def test_a_fault_that_could_not_be_injected_is_an_error_not_a_pass(lab: Lab, tmp_path: Path) -> None:
    """A typo in the experiment's configuration must not read as "no visible impact"."""
    scenario = write_scenario(
        tmp_path, lab, "gpu-node-loss.yaml", {"node": "us-east-9"},
        {"baseline": "3s", "fault_hold": "2s", "recovery_max": "10s", "recovered_hold": "1s"},
        {"rto_max": "30s"}, name="typo",
    )  # fmt: skip
    proc = run_cli("gate", str(scenario), "--out", str(tmp_path / "runs"), "--junit", str(tmp_path / "j.xml"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "runs" / "typo" / "result.json").read_text())
    assert result["status"] == "error" and result["passed"] is False
    assert "'gpu-falls-off-the-bus' failed" in result["error"] and "us-east-9" in result["error"], result[
        "error"
    ]
    assert "us-east-9" in proc.stdout + proc.stderr
    # The CI page says why (GitLab shows the element's text).
    error = ET.parse(tmp_path / "j.xml").getroot().find(".//testcase/error")
    assert error is not None and "us-east-9" in (error.text or "")
    assert_lab_clean(lab)
