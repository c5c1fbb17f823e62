"""The compiled game-day SLO rules (scenarios/slos/llm-gameday.yaml) page on series shaped exactly like
vLLM's histograms (its bucket edges, prometheus_client's `le` formatting), HAProxy's frontend counters
and the canary's outcomes - and stay quiet where the SLO says the service is fine.

`reliability slo test` already generates unit tests from each SLO's own queries; these feed the rules
what the real exporters expose, second by second, and run promtool on them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.slo import compile_paths
from reliability.tools import require_tool

from .series import (
    ITL_BUCKETS,
    TTFT_BUCKETS,
    Series,
    canary,
    expand,
    haproxy_frontend,
    histogram,
    prometheus_client_le,
)

REPO = Path(__file__).resolve().parents[2]
GAMEDAY = REPO / "scenarios" / "slos" / "llm-gameday.yaml"
PRODUCTION = REPO / "slos" / "llm-serving.yaml"
NODES = [("us-east", "us-east-1"), ("us-east", "us-east-2"), ("eu-west", "eu-west-1")]
ENGINES = [
    {"job": "vllm", "instance": f"127.0.0.1:810{i}", "region": region, "node": node}
    | {"model_name": "lab-llm", "engine": "0"}
    for i, (region, node) in enumerate(NODES, 1)
]
INGRESS = {"job": "haproxy-global", "instance": "127.0.0.1:8405"}
CANARY = {"job": "llm-canary", "instance": "127.0.0.1:9600"}

# Per engine and second: 10 requests with fast first tokens; a burst where all of them miss 500 ms,
# most by little (0.6 s: a threshold of 0.75 s would not page on it).
FAST_TTFT = {0.03: 6, 0.2: 4}
SLOW_TTFT = {0.6: 8, 3.0: 2}
# Per engine and second: 300 token gaps well under 100 ms; slow decode.
FAST_ITL = {0.02: 200, 0.04: 100}
SLOW_ITL = {0.2: 150, 0.3: 150}


@pytest.fixture(scope="module")
def gameday() -> dict[str, Any]:
    return yaml.safe_load(GAMEDAY.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_paths([GAMEDAY], tmp_path_factory.mktemp("slo") / "llm-gameday.rules.yaml")


def expected(spec: dict[str, Any], slo_name: str, *severities: str) -> list[dict[str, Any]]:
    """The alerts the compiler gives an SLO of the spec, one per severity, as promtool expects them."""
    (slo,) = [s for s in spec["slos"] if s["name"] == slo_name]
    service = spec["service"]
    return [
        {
            "exp_labels": {
                **spec.get("labels", {}),
                **slo["alerting"].get("labels", {}),
                "sloth_id": f"{service}-{slo_name}",
                "sloth_service": service,
                "sloth_slo": slo_name,
                "sloth_severity": severity,
            },
            "exp_annotations": {
                **slo["alerting"].get("annotations", {}),
                "runbook_url": f"runbooks/{slo['runbook']}.md",
                "title": f"({severity}) {service} {slo_name} SLO error budget burn rate is too fast.",
            },
        }
        for severity in severities
    ]


def run_promtool(
    rules: Path, tmp_path: Path, name: str, series: list[Series], checks: list[dict], interval: str = "1s"
) -> None:
    test_file = tmp_path / "test.yaml"
    test = {"name": name, "interval": interval, "input_series": series, "alert_rule_test": checks}
    doc = {"rule_files": [str(rules)], "evaluation_interval": interval, "tests": [test]}
    test_file.write_text(yaml.safe_dump(doc, sort_keys=False, width=10_000), encoding="utf-8")
    out = subprocess.run(
        [require_tool("promtool"), "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def ttft_series(burst: dict[float, int], on: str = "us-east-1") -> list[Series]:
    """60 s healthy, 20 s where one engine's first tokens are `burst`, 40 s healthy again."""
    out: list[Series] = []
    for labels in ENGINES:
        during = burst if labels["node"] == on else FAST_TTFT
        per_second = expand((60, FAST_TTFT), (20, during), (40, FAST_TTFT))
        out += histogram("vllm:time_to_first_token_seconds", labels, TTFT_BUCKETS, per_second)
    return out


def test_series_are_shaped_like_vllms() -> None:
    """The bucket edges and `le` strings the tests feed are vLLM's, written as prometheus_client does."""
    assert prometheus_client_le(TTFT_BUCKETS)[9] == "0.5"
    assert prometheus_client_le(ITL_BUCKETS)[4] == "0.1"
    assert prometheus_client_le(TTFT_BUCKETS)[-3:] == ["640.0", "2560.0", "+Inf"]
    names = {s["series"].split("{")[0] for s in ttft_series(SLOW_TTFT)}
    assert names == {f"vllm:time_to_first_token_seconds{suffix}" for suffix in ("_bucket", "_count", "_sum")}
    first = ttft_series(SLOW_TTFT)[0]["series"]
    assert 'model_name="lab-llm"' in first and 'engine="0"' in first and 'le="0.001"' in first


def test_a_burst_of_slow_first_tokens_pages(compiled: Path, gameday: dict, tmp_path: Path) -> None:
    """One engine of three serves every first token in 0.6-3 s for 20 s: a third of the fleet's
    requests miss 500 ms, over 10x the 1% budget rate on both page windows."""
    checks = [
        {"eval_time": "55s", "alertname": "LLMSlowTimeToFirstToken", "exp_alerts": []},
        {
            "eval_time": "75s",
            "alertname": "LLMSlowTimeToFirstToken",
            "exp_alerts": expected(gameday, "time-to-first-token", "page", "ticket"),
        },
        {"eval_time": "115s", "alertname": "LLMSlowTimeToFirstToken", "exp_alerts": []},
    ]
    run_promtool(compiled, tmp_path, "TTFT burst", ttft_series(SLOW_TTFT), checks)


def test_first_tokens_at_the_threshold_are_good(compiled: Path, tmp_path: Path) -> None:
    """First tokens of 0.45 s and exactly 0.5 s fall in bucket le="0.5" (inclusive): no burn. Had the
    rules selected another spelling of the bucket ("0.50"), every request would count as slow."""
    checks = [
        {"eval_time": f"{t}s", "alertname": "LLMSlowTimeToFirstToken", "exp_alerts": []}
        for t in (40, 75, 110)
    ]
    run_promtool(compiled, tmp_path, "TTFT at the threshold", ttft_series({0.5: 5, 0.45: 5}), checks)


def test_slow_decode_pages_the_token_stream_slo(compiled: Path, gameday: dict, tmp_path: Path) -> None:
    series: list[Series] = []
    for labels in ENGINES:
        during = SLOW_ITL if labels["node"] == "us-east-2" else FAST_ITL
        per_second = expand((60, FAST_ITL), (20, during), (40, FAST_ITL))
        series += histogram("vllm:inter_token_latency_seconds", labels, ITL_BUCKETS, per_second)
    checks = [
        {"eval_time": "55s", "alertname": "LLMSlowTokenStream", "exp_alerts": []},
        {
            "eval_time": "75s",
            "alertname": "LLMSlowTokenStream",
            "exp_alerts": expected(gameday, "inter-token-latency", "page", "ticket"),
        },
        {"eval_time": "115s", "alertname": "LLMSlowTokenStream", "exp_alerts": []},
    ]
    run_promtool(compiled, tmp_path, "slow decode", series, checks)


def ingress_series(fault: dict[str, int]) -> list[Series]:
    """30 model requests/s through the ingress (its `regions` backend); 20 s of `fault`. The `store`
    backend beside it answers half its writes with 5xx, which must not count (another `proxy`)."""
    per_second = expand((60, {"2xx": 30}), (20, fault), (40, {"2xx": 30}))
    noise = expand((120, {"2xx": 1, "5xx": 1}))
    return haproxy_frontend(INGRESS, "regions", per_second, "backend") + haproxy_frontend(
        INGRESS, "store", noise, "backend"
    )


def test_5xx_at_the_ingress_pages(compiled: Path, gameday: dict, tmp_path: Path) -> None:
    checks = [
        {"eval_time": "55s", "alertname": "LLMHighErrorRate", "exp_alerts": []},
        {
            "eval_time": "75s",
            "alertname": "LLMHighErrorRate",
            "exp_alerts": expected(gameday, "availability", "page", "ticket"),
        },
        {"eval_time": "115s", "alertname": "LLMHighErrorRate", "exp_alerts": []},
    ]
    run_promtool(compiled, tmp_path, "ingress 5xx", ingress_series({"2xx": 18, "5xx": 12}), checks)


def test_4xx_at_the_ingress_do_not_page(compiled: Path, tmp_path: Path) -> None:
    checks = [{"eval_time": f"{t}s", "alertname": "LLMHighErrorRate", "exp_alerts": []} for t in (55, 75, 95)]
    run_promtool(compiled, tmp_path, "ingress 4xx", ingress_series({"2xx": 18, "4xx": 12}), checks)


def test_errors_below_the_minimum_traffic_do_not_page(compiled: Path, tmp_path: Path) -> None:
    """One request every 4 s, every one a 503: 100% errors, but 0.25 req/s is under the SLO's 0.5."""
    per_second = expand(*[(1, {"5xx": 1}), (3, {})] * 30)
    checks = [
        {"eval_time": f"{t}s", "alertname": "LLMHighErrorRate", "exp_alerts": []} for t in (40, 80, 119)
    ]
    run_promtool(
        compiled, tmp_path, "low traffic", haproxy_frontend(INGRESS, "regions", per_second, "backend"), checks
    )


def canary_series(eu_west_fault: dict[str, int]) -> list[Series]:
    """5 probes/s per region, all answered correctly; eu-west's turn into `eu_west_fault` for 20 s."""
    us = expand((120, {"correct": 5}))
    eu = expand((60, {"correct": 5}), (20, eu_west_fault), (40, {"correct": 5}))
    return canary({**CANARY, "region": "us-east"}, us) + canary({**CANARY, "region": "eu-west"}, eu)


def test_wrong_answers_page_the_quality_slo(compiled: Path, gameday: dict, tmp_path: Path) -> None:
    checks = [
        {"eval_time": "55s", "alertname": "LLMModelQualityDegraded", "exp_alerts": []},
        {
            "eval_time": "75s",
            "alertname": "LLMModelQualityDegraded",
            "exp_alerts": expected(gameday, "model-quality", "page", "ticket"),
        },
        {"eval_time": "115s", "alertname": "LLMModelQualityDegraded", "exp_alerts": []},
    ]
    run_promtool(compiled, tmp_path, "wrong answers", canary_series({"wrong": 5}), checks)


def test_a_partitioned_regions_canary_errors_do_not_page_quality(compiled: Path, tmp_path: Path) -> None:
    """During a partition eu-west's probes fail (outcome "error"): availability's business. The
    quality SLO judges only answers that came back."""
    checks = [
        {"eval_time": f"{t}s", "alertname": "LLMModelQualityDegraded", "exp_alerts": []}
        for t in (55, 70, 79, 95)
    ]
    run_promtool(compiled, tmp_path, "partition", canary_series({"error": 5}), checks)


def test_production_slo_tickets_then_pages_on_sustained_5xx(tmp_path: Path) -> None:
    """slos/llm-serving.yaml (28 d, 99.9%) on HAProxy counters scraped every minute: 2 h healthy, then
    10% of the ingress's answers are 5xx. A slow burn opens a ticket within minutes (2 h and 1 d
    windows over 2.8x the budget rate); the page follows once the 1 h window is over 13.44x."""
    rules = compile_paths([PRODUCTION], tmp_path / "llm-serving.rules.yaml")
    spec = yaml.safe_load(PRODUCTION.read_text(encoding="utf-8"))
    per_minute = expand((120, {"2xx": 1800}), (30, {"2xx": 1620, "5xx": 180}))
    checks = [
        {"eval_time": "115m", "alertname": "LLMHighErrorRate", "exp_alerts": []},
        {
            "eval_time": "125m",
            "alertname": "LLMHighErrorRate",
            "exp_alerts": expected(spec, "availability", "ticket"),
        },
        {
            "eval_time": "140m",
            "alertname": "LLMHighErrorRate",
            "exp_alerts": expected(spec, "availability", "page", "ticket"),
        },
    ]
    series = haproxy_frontend(INGRESS, "regions", per_minute, "backend")
    run_promtool(rules, tmp_path, "production 5xx", series, checks, interval="1m")
