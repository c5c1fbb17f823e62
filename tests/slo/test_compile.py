"""Generated rules: names, factors, exact numbers, zero-traffic guards, runbooks, formats."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.slo import compile_paths, compile_rules, load_slo_files
from reliability.slo.windows import default_windows
from reliability.slo.writer import render
from tests.conftest import REPO
from tests.slo.conftest import DATA, run_cli

GOLDEN = Path(__file__).resolve().parent / "golden"
# The compiler is pinned on a spec of generic request metrics (a test input) and on the shipped SLOs.
SLOS = [REPO / "tests" / "slo" / "data" / "inference-api.yaml"]
GOLDEN_CASES = {"inference-api": SLOS, "llm-serving": [REPO / "slos" / "llm-serving.yaml"]}


def rules_of(rule_file: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for g in rule_file["groups"] for r in g["rules"]]


def test_default_windows_reproduce_the_workbook_factors_for_30d() -> None:
    assert [w.factor for w in default_windows(30 * 86400)] == [Decimal(x) for x in ("14.4", "6", "3", "1")]
    assert [w.factor for w in default_windows(28 * 86400)][:3] == [
        Decimal(x) for x in ("13.44", "5.6", "2.8")
    ]


@pytest.mark.parametrize("case", sorted(GOLDEN_CASES))
def test_golden(case: str) -> None:
    text = render(load_slo_files(GOLDEN_CASES[case]))
    golden = GOLDEN / f"{case}.rules.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_exact_float_formatting_and_sloth_names() -> None:
    rules = rules_of(compile_rules(load_slo_files(SLOS)))
    text = yaml.safe_dump(rules)
    assert "0000000" not in text and "9999999" not in text.replace("0.933333333333", "")
    objectives = {
        r["labels"]["sloth_slo"]: r["expr"] for r in rules if r.get("record") == "slo:objective:ratio"
    }
    assert objectives["requests-availability"] == "vector(0.999)"
    names = {r.get("record") or r.get("alert") for r in rules}
    assert {
        "slo:sli_error:ratio_rate5m",
        "slo:sli_error:ratio_rate4w",
        "slo:period_error_budget_remaining:ratio",
        "sloth_slo_info",
        "InferenceAPIHighErrorRate",
        "InferenceAPIHighLatency",
        "InferenceModelQualityDegraded",
    } <= names
    page = next(r for r in rules if r.get("alert") == "InferenceAPIHighErrorRate")
    assert "> (13.44 * 0.001)" in page["expr"]
    assert {r["labels"]["sloth_severity"] for r in rules if "alert" in r} == {"page", "ticket"}


def test_zero_traffic_guard_and_weighted_period_sli() -> None:
    rules = rules_of(compile_rules(load_slo_files(SLOS)))
    ratio = next(r for r in rules if r.get("record") == "slo:sli_error:ratio_rate1h")
    assert "> 0)" in ratio["expr"]  # divide only by a positive total: no NaN sample
    period = next(r for r in rules if r.get("record") == "slo:sli_error:ratio_rate4w")
    assert "sum_over_time(slo:sli_error_events:rate5m" in period["expr"]
    assert "sum_over_time(slo:sli_total_events:rate5m" in period["expr"]
    assert "count_over_time" not in period["expr"]


def test_runbook_url_gate_and_base_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    alerts = [r for r in rules_of(compile_rules(load_slo_files(SLOS))) if "alert" in r]
    urls = {a["alert"]: a["annotations"]["runbook_url"] for a in alerts}
    assert urls["InferenceAPIHighErrorRate"] == "runbooks/inference-availability.md"
    assert all("> 0.5)" in a["expr"] for a in alerts)  # min_request_rate gate
    monkeypatch.setenv("RELIABILITY_RUNBOOK_BASE_URL", "https://wiki.example/rb/")
    alerts = [r for r in rules_of(compile_rules(load_slo_files(SLOS))) if "alert" in r]
    assert alerts[0]["annotations"]["runbook_url"].startswith("https://wiki.example/rb/inference-")


def test_custom_windows_derive_factors_from_budget_share() -> None:
    (svc,) = load_slo_files([DATA / "gameday.yaml"])
    avail = svc.slos[0]
    windows = [(w.long_s, w.short_s, w.factor) for w in avail.windows]
    assert windows == [(60, 10, Decimal("1.2")), (300, 30, Decimal("0.5"))]
    rules = rules_of(compile_rules([svc]))
    assert any(r.get("record") == "slo:sli_error:ratio_rate10s" for r in rules)
    assert any(
        r.get("record") == "slo:sli_error:ratio_rate1h" and r["labels"]["sloth_window"] == "1h" for r in rules
    )


def test_compile_writes_prometheus_operator_rule(tmp_path: Path) -> None:
    out = compile_paths(SLOS, tmp_path / "op.yaml", fmt="prometheus-operator")
    (doc,) = list(yaml.safe_load_all(out.read_text()))
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["name"] == "inference-api"
    assert len(doc["spec"]["groups"]) == 9


def test_cli_validate_compile_as_in_readme(tmp_path: Path) -> None:
    v = run_cli("slo", "validate", *map(str, SLOS))
    assert v.returncode == 0, v.stderr
    out = tmp_path / "out" / "slo-rules.yaml"
    c = run_cli("slo", "compile", *map(str, SLOS), "-o", str(out))
    assert c.returncode == 0, c.stderr
    assert yaml.safe_load(out.read_text()) == compile_rules(load_slo_files(SLOS))


def test_schema_command_lists_all_formats() -> None:
    r = run_cli("schema", "slo")
    assert r.returncode == 0, r.stderr
    assert all(v in r.stdout for v in ("prometheus/v1", "reliability/v1", "openslo/v1alpha", "openslo/v1"))
