"""alerts/platform.rules.yaml: valid for promtool, behaves as its unit tests say, loads into Prometheus."""

from __future__ import annotations

import subprocess
from pathlib import Path

import requests

from reliability.prometheus import LocalPrometheus
from reliability.runbooks.rulefile import load_rule_file
from reliability.tools import require_tool

HERE = Path(__file__).resolve().parent
PLATFORM_ALERTS = {
    "GPUNodeDown",
    "GPUXidErrors",
    "RegionUnavailable",
    "RegionFailoverActive",
    "StoreReplicationLagHigh",
    "PrometheusTargetDown",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=HERE
    )


def test_promtool_accepts_the_rules(repo: Path) -> None:
    out = promtool("check", "rules", str(repo / "alerts" / "platform.rules.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_each_alert_fires_on_failure_and_not_on_health() -> None:
    out = promtool("test", "rules", "platform_alerts_test.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    tested = set()
    for line in (HERE / "platform_alerts_test.yaml").read_text().splitlines():
        if "alertname:" in line:
            tested.add(line.split("alertname:")[1].strip())
    assert tested == PLATFORM_ALERTS


def test_exactly_the_contract_alerts_with_annotations(repo: Path) -> None:
    rules = [r for g in load_rule_file(repo / "alerts" / "platform.rules.yaml").groups for r in g.rules]
    assert {r.alert for r in rules} == PLATFORM_ALERTS
    for r in rules:
        assert r.labels.get("severity") in {"critical", "warning"}, r.alert
        assert {"summary", "description", "runbook_url"} <= set(r.annotations), r.alert
        assert (repo / r.annotations["runbook_url"]).is_file(), r.annotations["runbook_url"]


def test_rules_load_and_evaluate_in_a_real_prometheus(tmp_path: Path, repo: Path) -> None:
    with LocalPrometheus(tmp_path / "prom", rule_files=[repo / "alerts" / "platform.rules.yaml"]) as prom:
        groups = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} == PLATFORM_ALERTS
    assert all(r.get("health") in {"ok", "unknown"} for r in rules), rules
