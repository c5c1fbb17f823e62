"""Loading the three formats, and clear errors for bad input (CLI exit 2, nothing written)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.slo import load_slo_files
from reliability.slo.model import EventsSLI
from tests.conftest import COMPAT, REPO
from tests.slo.conftest import run_cli

SLOTH = """\
version: prometheus/v1
service: svc
slos:
  - name: avail
    objective: {objective}
    sli:
      events:
        error_query: sum(rate(http_total{{code=~"5.."}}[{window}]))
        total_query: sum(rate(http_total[{window}]))
    alerting:
      name: SvcErrors
"""


def sloth(objective: str = "99.9", window: str = "{{.window}}") -> str:
    return SLOTH.format(objective=objective, window=window)


def test_repo_slos_are_the_documented_ones() -> None:
    (svc,) = load_slo_files(sorted((REPO / "slos").glob("*.yaml")))
    assert svc.service == "llm-api"
    by_name = {s.name: s for s in svc.slos}
    assert {n: (s.alerting.name, s.runbook, s.client_sli) for n, s in by_name.items()} == {
        "availability": ("LLMHighErrorRate", "llm-availability", "availability"),
        "time-to-first-token": ("LLMSlowTimeToFirstToken", "llm-latency", "ttft"),
        "inter-token-latency": ("LLMSlowTokenStream", "llm-latency", "itl"),
        "goodput": ("LLMLowGoodput", "llm-latency", "goodput"),
        "model-quality": ("LLMModelQualityDegraded", "model-quality", "quality"),
    }
    assert by_name["availability"].objective == Decimal("99.9")
    ttft = by_name["time-to-first-token"]
    assert ttft.latency is not None and ttft.latency.metric == "vllm:time_to_first_token_seconds"
    assert 'le="0.5"' in ttft.sli.error_query


def test_latency_sli_counts_requests_above_threshold_as_errors() -> None:
    (svc,) = load_slo_files([REPO / "tests" / "slo" / "data" / "inference-api.yaml"])
    lat = next(s for s in svc.slos if s.name == "requests-latency")
    assert isinstance(lat.sli, EventsSLI)
    assert (
        'inference_request_duration_seconds_bucket{service="inference-api",le="0.25"}' in lat.sli.error_query
    )
    assert "inference_request_duration_seconds_count" in lat.sli.total_query


def test_openslo_v1alpha_good_total_becomes_error_events() -> None:
    (svc,) = load_slo_files([COMPAT / "sloth" / "openslo-getting-started" / "input.yaml"])
    (slo,) = svc.slos
    assert (svc.service, slo.name, slo.objective, slo.period_s) == (
        "my-service",
        "sloth-slo-my-service-0",
        Decimal("99.9"),
        30 * 86400,
    )
    assert isinstance(slo.sli, EventsSLI) and 'code!~"(5..|429)"' in slo.sli.error_query


def test_openslo_v1_ratio_metric(write_spec) -> None:
    path = write_spec(
        """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-availability}
spec:
  service: api
  budgetingMethod: Occurrences
  timeWindow: [{duration: 28d, isRolling: true}]
  objectives: [{target: 0.995}]
  indicator:
    spec:
      ratioMetric:
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(req{code="500"}[{{.window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(req[{{.window}}]))'}}}
"""
    )
    (svc,) = load_slo_files([path])
    (slo,) = svc.slos
    assert (slo.name, slo.objective, slo.period_s) == ("api-availability", Decimal("99.5"), 28 * 86400)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            sloth().replace("objective: 99.9", "objective: 99.9\n    bogus: 1"),
            "slos[0](avail).bogus",
            "unknown field",
        ),
        (sloth("0"), "slos[0](avail).objective", "greater than 0"),
        (sloth("100.5"), "slos[0](avail).objective", "less than 100"),
        (sloth(window="5m"), "slos[0](avail).sli.events.error_query", "{{.window}}"),
        ("version: prometheus/v1\nservice: [a\n", "spec.yaml:3", "malformed YAML"),
        ("version: sloth/v9\nservice: x\n", "version", "unknown SLO spec version"),
        (sloth() + sloth().split("slos:\n")[1], "slos[1].name", "duplicate SLO name"),
    ],
)
def test_bad_input_is_one_located_line(write_spec, text: str, field: str, message: str) -> None:
    path = write_spec(text)
    with pytest.raises(InputError) as err:
        load_slo_files([path])
    assert str(path) in str(err.value) or "spec.yaml" in str(err.value)
    assert field in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_duplicate_slo_across_files(write_spec) -> None:
    a, b = write_spec(sloth(), "a.yaml"), write_spec(sloth(), "b.yaml")
    with pytest.raises(InputError, match="duplicate SLO 'avail'"):
        load_slo_files([a, b])


def test_alert_window_below_twice_min_window_is_rejected(write_spec) -> None:
    path = write_spec(
        (Path(__file__).parent / "data" / "gameday.yaml")
        .read_text()
        .replace("min_window: 1s", "min_window: 6s")
    )
    with pytest.raises(InputError, match=r"slos\[0\]\.alert_windows\[0\]\.short.*twice the minimum"):
        load_slo_files([path])


@pytest.mark.parametrize(
    "text",
    [
        sloth("0"),
        sloth().replace("sum(rate(http_total[{{.window}}]))", "sum(rate(http_total[{{.window}}])"),
        "version: prometheus/v1\nslos: [\n",
    ],
    ids=["objective-0", "promql-does-not-parse", "malformed-yaml"],
)
def test_cli_compile_bad_input_exits_2_and_writes_nothing(write_spec, tmp_path: Path, text: str) -> None:
    path = write_spec(text)
    out = tmp_path / "out" / "rules.yaml"
    result = run_cli("slo", "compile", str(path), "-o", str(out))
    assert result.returncode == 2, result.stderr
    assert "spec.yaml" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
