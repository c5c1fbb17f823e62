"""`slo test`: generated promtool unit tests pass on good rules and catch broken ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from reliability.slo import load_slo_files
from reliability.slo.unittests import expected_severities, run_slo_tests, scenarios
from reliability.tools import require_tool
from tests.slo.conftest import DATA, run_cli

SPEC = DATA / "gameday.yaml"


def test_scenarios_expect_page_for_fast_burn_and_ticket_only_for_slow_burn() -> None:
    (svc,) = load_slo_files([SPEC])
    for slo in svc.slos:
        outcome = {name: expected_severities(slo, segs) for name, segs in scenarios(slo)}
        assert outcome["healthy"] == set()
        assert outcome["zero traffic"] == set()
        assert "page" in next(v for k, v in outcome.items() if "(page)" in k)
        assert outcome["slow burn (ticket)"] == {"ticket"}


def test_cli_test_keeps_files_and_passes(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    r = run_cli("slo", "test", str(SPEC), "--keep", str(keep))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: 8 test case(s) for 2 SLO(s) passed" in r.stdout
    doc = yaml.safe_load((keep / "lab-api-latency.test.yaml").read_text())
    names = [t["name"] for t in doc["tests"]]
    assert names == [
        "lab-api-latency: healthy",
        "lab-api-latency: slow-request burn (page)",
        "lab-api-latency: slow burn (ticket)",
        "lab-api-latency: zero traffic",
    ]
    zero = doc["tests"][-1]
    assert all(t["exp_samples"] == [] for t in zero["promql_expr_test"])  # no sample means no NaN


def test_generated_tests_catch_a_broken_alert_threshold(tmp_path: Path) -> None:
    assert run_slo_tests([SPEC], keep=tmp_path).ok
    rules = tmp_path / "lab-api-availability.rules.yaml"
    text = rules.read_text()
    assert "(1.2 * 0.01)" in text
    rules.write_text(text.replace("(1.2 * 0.01)", "(90 * 0.01)"))  # page could never fire
    proc = subprocess.run(
        [require_tool("promtool"), "test", "rules", "lab-api-availability.test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "fast burn (page)" in proc.stdout + proc.stderr
