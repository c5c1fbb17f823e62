"""alerts/platform.rules.yaml: valid for promtool, behaves as its unit tests say, loads into Prometheus."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import requests
import yaml

from reliability.prometheus import LocalPrometheus
from reliability.runbooks.rulefile import load_rule_file
from reliability.tools import require_tool

HERE = Path(__file__).resolve().parent
PLATFORM_ALERTS = {
    "GPUXidErrors",
    "GPUNodeDown",
    "GPUNodeCordoned",
    "VLLMKVCacheExhausted",
    "VLLMRequestsPreempted",
    "RegionUnavailable",
    "RegionFailoverActive",
    "StoreReplicationLagHigh",
    "PrometheusTargetDown",
}
# The exporters whose names the rules are written on (a metric of no exporter here is a typo).
EXPORTER_PREFIXES = ("DCGM_FI_DEV_", "kube_node_", "vllm:", "haproxy_", "store_", "up")
PROMQL_WORDS = {"and", "or", "unless", "max", "sum", "rate"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=HERE
    )


def unit_tests() -> list[dict]:
    return yaml.safe_load((HERE / "platform_alerts_test.yaml").read_text(encoding="utf-8"))["tests"]


def test_promtool_accepts_the_rules(repo: Path) -> None:
    out = promtool("check", "rules", str(repo / "alerts" / "platform.rules.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_each_alert_fires_on_failure_and_not_on_health() -> None:
    out = promtool("test", "rules", "platform_alerts_test.yaml")
    assert out.returncode == 0, out.stdout + out.stderr
    # Every alert is seen firing; promtool compares the full list of firing alerts at each check,
    # so the healthy series next to the failing ones are checked quiet at the same time.
    checks = [c for t in unit_tests() for c in t["alert_rule_test"]]
    assert {c["alertname"] for c in checks if c["exp_alerts"]} == PLATFORM_ALERTS


def test_input_series_carry_the_exporters_full_label_sets() -> None:
    """The series the unit tests feed are shaped like the real exporters' (labels named in docs/twin.md)."""
    required = {
        "DCGM_FI_DEV_XID_ERRORS": {"gpu", "UUID", "pci_bus_id", "device", "modelName", "err_code", "err_msg"},
        "kube_node_status_condition": {"node", "condition", "status"},
        "vllm:kv_cache_usage_perc": {"model_name", "engine"},
        "vllm:num_preemptions_total": {"model_name", "engine"},
        "haproxy_server_status": {"proxy", "server", "state"},
        "haproxy_backend_active_servers": {"proxy"},
    }
    seen: dict[str, list[set[str]]] = {}
    for test in unit_tests():
        for s in test["input_series"]:
            name, labels = re.fullmatch(r"([^{]+)\{(.*)\}", s["series"]).groups()  # type: ignore[union-attr]
            seen.setdefault(name, []).append(set(re.findall(r'(\w+)="', labels)))
    for name, labels in required.items():
        assert seen.get(name), name
        for got in seen[name]:
            assert labels <= got, (name, labels - got)
    # every Xid series names its host the way one dcgm-exporter version or the other does
    assert all({"Hostname", "hostname"} & got for got in seen["DCGM_FI_DEV_XID_ERRORS"])


def test_exactly_the_contract_alerts_with_annotations(repo: Path) -> None:
    rules = [r for g in load_rule_file(repo / "alerts" / "platform.rules.yaml").groups for r in g.rules]
    assert {r.alert for r in rules} == PLATFORM_ALERTS
    for r in rules:
        assert r.labels.get("severity") in {"critical", "warning"}, r.alert
        assert {"summary", "description", "runbook_url"} <= set(r.annotations), r.alert
        assert (repo / r.annotations["runbook_url"]).is_file(), r.annotations["runbook_url"]
        assert metric_names(r.expr) and all(m.startswith(EXPORTER_PREFIXES) for m in metric_names(r.expr)), (
            r.alert,
            metric_names(r.expr),
        )


def metric_names(expr: str) -> set[str]:
    """Metric names of a PromQL expression: identifiers outside label matchers and grouping lists."""
    bare = re.sub(r"\{[^}]*\}|\b(?:by|on|ignoring|without)\s*\([^)]*\)|\[[^\]]*\]", " ", expr)
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare)) - PROMQL_WORDS


def test_metric_names_of_an_expression() -> None:
    expr = (
        'max by (node) (kube_node_spec_unschedulable{a="b"}) == 1 and on (node) rate(vllm:x_total[30s]) > 0'
    )
    assert metric_names(expr) == {"kube_node_spec_unschedulable", "vllm:x_total"}


def test_rules_load_and_evaluate_in_a_real_prometheus(tmp_path: Path, repo: Path) -> None:
    with LocalPrometheus(tmp_path / "prom", rule_files=[repo / "alerts" / "platform.rules.yaml"]) as prom:
        groups = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert {r["name"] for r in rules} == PLATFORM_ALERTS
    assert all(r.get("health") in {"ok", "unknown"} for r in rules), rules
