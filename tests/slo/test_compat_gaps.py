"""Issue 11, section 6: what Sloth and OpenSLO users bring, beyond the vendored compat cases
(test_compat.py compares those rule by rule with Sloth's own output)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from reliability.errors import InputError
from reliability.slo import compile_rules, load_slo_files
from reliability.slo.buckets import KNOWN_BUCKETS, bucket_warning, latency_warnings
from reliability.slo.durations import format_duration, parse_duration
from reliability.slo.models import go_string
from reliability.slo.writer import render
from tests.conftest import COMPAT, REPO
from tests.slo.conftest import run_cli

DAY = 86400


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (28 * DAY, "4w"),
        (7 * DAY, "1w"),
        (14 * DAY, "2w"),
        (30 * DAY, "30d"),
        (90 * DAY, "90d"),
        (365 * DAY, "1y"),
        (372 * DAY, "372d"),
        (3 * DAY, "3d"),
        (DAY + 3600, "1d1h"),
        (5400, "1h30m"),
        (300, "5m"),
        (90, "1m30s"),
        (1, "1s"),
    ],
)
def test_durations_render_like_prometheus(seconds: int, text: str) -> None:
    """prometheus/common model.Duration.String(): y and w only when exact, else d h m s."""
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["1h1d", "5", "1.5h", "0s", "-5m", "1500ms", "99999999999999999999d", "300y"]
)
def test_durations_prometheus_would_refuse_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (2, "2"), (0.2, "0.2"), (1.0, "1"), (1e6, "1e+06"), (None, "")],
)
def test_label_values_are_stringified_as_sloth_does(value: object, text: str) -> None:
    assert go_string(value) == text


def test_period_of_whole_weeks_names_rules_in_weeks() -> None:
    rules = compile_rules(load_slo_files([REPO / "tests" / "slo" / "data" / "inference-api.yaml"]))
    records = {r["record"]: r for g in rules["groups"] for r in g["rules"] if "record" in r}
    assert "slo:sli_error:ratio_rate4w" in records and "slo:sli_error:ratio_rate28d" not in records
    assert records["slo:sli_error:ratio_rate4w"]["labels"]["sloth_window"] == "4w"
    assert "[4w]" in records["slo:sli_error:ratio_rate4w"]["expr"]


def test_default_slo_period_of_sloth_specs(tmp_path: Path) -> None:
    spec = COMPAT / "sloth" / "getting-started" / "input.yaml"
    (svc,) = load_slo_files([spec], "28d")
    assert svc.slos[0].period_s == 28 * DAY
    out = tmp_path / "rules.yaml"
    result = run_cli("slo", "compile", str(spec), "-o", str(out), "--default-slo-period", "1w", "--no-check")
    assert result.returncode == 0, result.stderr
    assert "slo:sli_error:ratio_rate1w" in out.read_text()


SLOTH = """\
version: prometheus/v1
service: svc
{plugins}slos:
  - name: avail
    objective: 99.9
{slo_plugins}    sli:
      events:
        error_query: sum(rate(http_total{{code=~"5.."}}[{{{{ .window }}}}]))
        total_query: sum(rate(http_total[{{{{.window}}}}]))
    alerting:
      name: SvcErrors
"""


def sloth(plugins: str = "", slo_plugins: str = "") -> str:
    return SLOTH.format(plugins=plugins, slo_plugins=slo_plugins)


def test_default_plugin_chain_with_validators_compiles_like_no_chain(write_spec) -> None:
    chain = (
        "slo_plugins:\n  overridePrevious: true\n  chain:\n"
        "    - id: sloth.dev/contrib/validate_victoria_metrics/v1\n"
        "    - id: sloth.dev/core/sli_rules/v1\n"
        "    - id: sloth.dev/core/metadata_rules/v1\n"
        "    - id: sloth.dev/core/alert_rules/v1\n"
    )
    plain = compile_rules(load_slo_files([write_spec(sloth(), "a.yaml")]))
    chained = compile_rules(load_slo_files([write_spec(sloth(plugins=chain), "b.yaml")]))
    assert plain == chained


@pytest.mark.parametrize(
    ("plugins", "slo_plugins", "field"),
    [
        (
            "",
            "    plugins:\n      chain:\n        - id: sloth.dev/contrib/info_labels/v1\n",
            "plugins.chain[0]",
        ),
        (
            "slo_plugins:\n  overridePrevious: true\n  chain:\n    - id: sloth.dev/core/sli_rules/v1\n",
            "",
            "slo_plugins",
        ),
        (
            "",
            "    plugins:\n      chain:\n        - id: sloth.dev/core/sli_rules/v1\n"
            "          config: {disableOptimized: true}\n",
            "plugins.chain[0]",
        ),
    ],
    ids=["contrib-plugin", "override-without-alert-rules", "configured-rule-plugin"],
)
def test_plugins_that_change_the_output_are_refused_by_name(
    write_spec, plugins: str, slo_plugins: str, field: str
) -> None:
    with pytest.raises(InputError) as err:
        load_slo_files([write_spec(sloth(plugins, slo_plugins))])
    assert field in err.value.location
    assert err.value.message.startswith("SLO plugins are not supported")


def test_window_placeholder_with_spaces_is_rendered(write_spec) -> None:
    rules = compile_rules(load_slo_files([write_spec(sloth())]))
    text = yaml.safe_dump(rules)
    assert "{{" not in text.replace("{{$labels", "")
    assert 'http_total{code=~"5.."}[5m]' in text


K8S = COMPAT / "sloth" / "k8s-getting-started" / "input.yaml"


def test_kubernetes_form_becomes_a_prometheus_rule_where_the_cr_lives() -> None:
    (svc,) = load_slo_files([K8S])
    assert svc.slos[0].mode == "cli-gen-k8s" and svc.slos[0].spec == "sloth.slok.dev/v1"
    (doc,) = yaml.safe_load_all(render([svc], "prometheus-operator").split("\n", 1)[1])
    assert doc["kind"] == "PrometheusRule"
    assert doc["metadata"]["name"] == "sloth-slo-my-service"
    assert doc["metadata"]["namespace"] == "monitoring"


def test_prometheus_operator_namespace_and_release_label(tmp_path: Path) -> None:
    out = tmp_path / "rules.yaml"
    args = ["--format", "prometheus-operator", "--namespace", "observability"]
    args += ["--label", "release=kube-prometheus-stack", "--no-check"]
    spec = REPO / "tests" / "slo" / "data" / "inference-api.yaml"
    result = run_cli("slo", "compile", str(spec), "-o", str(out), *args)
    assert result.returncode == 0, result.stderr
    (doc,) = [d for d in yaml.safe_load_all(out.read_text()) if d]
    assert doc["metadata"]["namespace"] == "observability"
    assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert doc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "reliability"


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["--format", "prometheus-operator", "--label", "release"], "--label release"),
        (["--format", "prometheus-operator", "--label", "bad key=x"], "--label bad key=x"),
        (["--format", "prometheus-operator", "--namespace", "Not_A_Namespace"], "--namespace"),
        (["--namespace", "observability"], "--namespace/--label"),
    ],
)
def test_bad_kubernetes_options_are_exit_2(tmp_path: Path, args: list[str], where: str) -> None:
    out = tmp_path / "rules.yaml"
    spec = REPO / "tests" / "slo" / "data" / "inference-api.yaml"
    result = run_cli("slo", "compile", str(spec), "-o", str(out), *args)
    assert result.returncode == 2 and f"error: {where}" in result.stderr, result.stderr
    assert not out.exists()


OPENSLO_V1 = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: api-availability}
spec:
  service: api
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.995}]
  alertPolicies:
  indicator:
    spec:
      ratioMetric:
        bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(req{code="500"}[{{.window}}]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(req[{{.window}}]))'}}}
"""


def test_openslo_empty_alert_policies_and_openslo_mode(write_spec) -> None:
    (svc,) = load_slo_files([write_spec(OPENSLO_V1)])
    rules = compile_rules([svc])
    info = next(r for g in rules["groups"] for r in g["rules"] if r.get("record") == "sloth_slo_info")
    assert info["labels"]["sloth_mode"] == "cli-gen-openslo"
    assert info["labels"]["sloth_spec"] == "openslo/v1"


NATIVE_LATENCY = """\
version: reliability/v1
service: llm
slos:
  - name: ttft
    objective: 99
    client_sli: {client_sli}
    sli:
      latency:
        metric: vllm:time_to_first_token_seconds
        threshold_seconds: {threshold}
    alerting:
      name: LLMSlowFirstToken
"""


def test_client_sli_is_carried_and_changes_no_rule(write_spec) -> None:
    with_client = load_slo_files(
        [write_spec(NATIVE_LATENCY.format(client_sli="ttft", threshold=0.25), "a.yaml")]
    )
    without = load_slo_files([write_spec(NATIVE_LATENCY.format(client_sli="null", threshold=0.25), "b.yaml")])
    assert with_client[0].slos[0].client_sli == "ttft" and without[0].slos[0].client_sli is None
    assert compile_rules(with_client) == compile_rules(without)


@pytest.mark.parametrize(
    ("client_sli", "message"), [("availability", "needs sli.events"), ("latency-p99", "Input should be")]
)
def test_client_sli_must_fit_the_sli(write_spec, client_sli: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_slo_files([write_spec(NATIVE_LATENCY.format(client_sli=client_sli, threshold=0.25))])


def test_known_vllm_buckets_and_the_warning() -> None:
    assert KNOWN_BUCKETS["vllm:time_to_first_token_seconds"][:3] == (0.001, 0.005, 0.01)
    assert bucket_warning("m", Decimal("0.25"), (0.1, 0.25, 0.5)) is None
    text = bucket_warning("m", Decimal("0.3"), (0.1, 0.25, 0.5))
    assert text is not None and "0.3s is not a bucket edge of m (nearest: 0.25, 0.5)" in text


def test_validate_warns_on_a_threshold_off_the_bucket_edges_without_failing(write_spec) -> None:
    off = write_spec(NATIVE_LATENCY.format(client_sli="ttft", threshold=0.3), "off.yaml")
    assert latency_warnings([s for svc in load_slo_files([off]) for s in svc.slos])
    result = run_cli("slo", "validate", str(off))
    assert result.returncode == 0, result.stderr
    assert "warning: " in result.stderr and "threshold_seconds: 0.3s is not a bucket edge" in result.stderr
    on = write_spec(NATIVE_LATENCY.format(client_sli="ttft", threshold=0.25), "on.yaml")
    result = run_cli("slo", "validate", str(on))
    assert result.returncode == 0 and "warning" not in result.stderr


def test_buckets_hint_of_a_native_latency_sli(write_spec) -> None:
    text = (
        NATIVE_LATENCY.format(client_sli="latency", threshold=0.3)
        .replace("vllm:time_to_first_token_seconds", "http_duration_seconds")
        .replace("threshold_seconds: 0.3", "threshold_seconds: 0.3\n        buckets: [0.1, 0.3, 1]")
    )
    assert not latency_warnings([s for svc in load_slo_files([write_spec(text)]) for s in svc.slos])
