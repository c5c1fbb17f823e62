"""The node's metrics against tables taken from the real exporters' sources.

Names, types, label names and bucket edges below were copied from:
- vLLM 0.33.0 (PyPI wheel vllm-0.33.0, git 4ba787ec9): vllm/v1/metrics/loggers.py
  (PrometheusStatLogger.__init__) and vllm/v1/metrics/buckets.py (bucket families);
- prometheus-fastapi-instrumentator 8.1.0: prometheus_fastapi_instrumentator/metrics.py (default()),
  attached by vllm/entrypoints/serve/instrumentator/metrics.py with its excluded handlers;
- NVIDIA/dcgm-exporter 4.5.3-4.8.2: etc/default-counters.csv (names, types),
  internal/pkg/rendermetrics/render_metrics.go (label names and order) and
  internal/pkg/collector/gpu_collector.go (err_code/err_msg on DCGM_FI_DEV_XID_ERRORS).
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reliability.lab.llm.engine import Engine, EngineConfig, Sequence
from reliability.lab.llm.metrics import DcgmState, GpuIdentity, HttpMetrics, VllmMetrics, render_dcgm

VLLM_LABELS = ("model_name", "engine")
REQUEST_LATENCY = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                   240.0, 480.0, 960.0, 1920.0, 7680.0]  # fmt: skip
TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
        40.0, 80.0, 160.0, 640.0, 2560.0]  # fmt: skip
ITL = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0,
       80.0]  # fmt: skip
# build_1_2_5_buckets(max_model_len) for max_model_len 2048
TOKENS_2048 = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000]

# family name (as the parser reports it: counters without _total) -> (type, label names, buckets)
VLLM: dict[str, tuple[str, tuple[str, ...], list[float] | None]] = {
    "vllm:num_requests_running": ("gauge", VLLM_LABELS, None),
    "vllm:num_requests_waiting": ("gauge", VLLM_LABELS, None),
    "vllm:kv_cache_usage_perc": ("gauge", VLLM_LABELS, None),
    "vllm:num_preemptions": ("counter", VLLM_LABELS, None),
    "vllm:prompt_tokens": ("counter", VLLM_LABELS, None),
    "vllm:generation_tokens": ("counter", VLLM_LABELS, None),
    "vllm:request_success": ("counter", (*VLLM_LABELS, "finished_reason"), None),
    "vllm:request_prompt_tokens": ("histogram", VLLM_LABELS, TOKENS_2048),
    "vllm:request_generation_tokens": ("histogram", VLLM_LABELS, TOKENS_2048),
    "vllm:iteration_tokens_total": (
        "histogram",
        VLLM_LABELS,
        [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
    ),
    "vllm:request_max_num_generation_tokens": ("histogram", VLLM_LABELS, TOKENS_2048),
    "vllm:request_params_n": ("histogram", VLLM_LABELS, [1, 2, 5, 10, 20]),
    "vllm:request_params_max_tokens": ("histogram", VLLM_LABELS, TOKENS_2048),
    "vllm:time_to_first_token_seconds": ("histogram", VLLM_LABELS, TTFT),
    "vllm:inter_token_latency_seconds": ("histogram", VLLM_LABELS, ITL),
    "vllm:request_time_per_output_token_seconds": ("histogram", VLLM_LABELS, ITL),
    "vllm:e2e_request_latency_seconds": ("histogram", VLLM_LABELS, REQUEST_LATENCY),
    "vllm:request_queue_time_seconds": ("histogram", VLLM_LABELS, REQUEST_LATENCY),
    "vllm:request_inference_time_seconds": ("histogram", VLLM_LABELS, REQUEST_LATENCY),
    "vllm:request_prefill_time_seconds": ("histogram", VLLM_LABELS, REQUEST_LATENCY),
    "vllm:request_decode_time_seconds": ("histogram", VLLM_LABELS, REQUEST_LATENCY),
    "vllm:request_num_preemptions": ("histogram", VLLM_LABELS, [1, 2, 3, 4, 5, 10, 20]),
}
FINISH_REASONS = {"stop", "length", "abort", "error", "repetition"}  # vllm/v1/engine/__init__.py

HTTP: dict[str, tuple[str, tuple[str, ...], list[float] | None]] = {
    "http_requests": ("counter", ("method", "status", "handler"), None),
    "http_request_size_bytes": ("summary", ("handler",), None),
    "http_response_size_bytes": ("summary", ("handler",), None),
    "http_request_duration_highr_seconds": (
        "histogram",
        (),
        [0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60],
    ),
    "http_request_duration_seconds": ("histogram", ("method", "handler"), [0.1, 0.5, 1]),
}

DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")
DCGM: dict[str, tuple[str, tuple[str, ...]]] = {
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", DCGM_LABELS),
    "DCGM_FI_DEV_XID_ERRORS": ("gauge", (*DCGM_LABELS, "err_code", "err_msg")),
    "DCGM_FI_DEV_FB_FREE": ("gauge", DCGM_LABELS),
    "DCGM_FI_DEV_FB_USED": ("gauge", DCGM_LABELS),
    "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": ("counter", DCGM_LABELS),
    "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": ("counter", DCGM_LABELS),
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": ("gauge", DCGM_LABELS),
}


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def check_api_exposition(text: str) -> dict[str, Any]:
    """Every vLLM and HTTP family is present with the type, label names and buckets of the sources,
    and the node invents no vllm:* family of its own."""
    found = families(text)
    # prometheus_client (vLLM's client too) adds a `_created` gauge per counter and histogram.
    own = {name for name in found if name.startswith("vllm:") and not name.endswith("_created")}
    assert own == set(VLLM), f"unexpected or missing vLLM families: {own ^ set(VLLM)}"
    for name, (kind, labels, buckets) in {**VLLM, **HTTP}.items():
        fam = found[name]
        assert fam.type == kind, name
        for sample in fam.samples:
            keys = set(sample.labels) - {"le", "quantile"}
            assert keys == set(labels), (name, sample)
        if buckets is not None:
            edges = sorted(
                {float(s.labels["le"]) for s in fam.samples if s.name.endswith("_bucket")} - {float("inf")}
            )
            if edges or labels == ():  # labelled histograms show buckets once a series exists
                assert edges == [float(b) for b in buckets], name
    reasons = {s.labels["finished_reason"] for s in found["vllm:request_success"].samples}
    assert reasons == FINISH_REASONS
    # Counters are exposed with _total, as prometheus_client (which vLLM uses) writes them.
    assert re.search(r"^vllm:num_preemptions_total\{", text, re.M)
    assert re.search(r"^vllm:request_success_total\{", text, re.M)
    return found


def check_dcgm_exposition(text: str) -> dict[str, dict[str, str]]:
    """DCGM families as dcgm-exporter writes them: no _total on counters, labels in its order."""
    found = families(text)
    assert set(found) == set(DCGM)
    series: dict[str, dict[str, str]] = {}
    for name, (kind, labels) in DCGM.items():
        assert found[name].type == kind, name
        (sample,) = found[name].samples
        assert tuple(sample.labels) == labels, name
        line = next(line for line in text.splitlines() if line.startswith(name + "{"))
        assert list(re.findall(r'(\w+)="', line)) == list(labels), name  # order as the Go template
        assert re.fullmatch(r".*\} -?\d+", line), line  # integer fields print as %d
        series[name] = {**sample.labels, "value": str(int(sample.value))}
    return series


def test_vllm_and_http_metrics_match_the_sources() -> None:
    registry = CollectorRegistry()
    vllm = VllmMetrics(registry, "meta-llama/Llama-3.1-8B-Instruct", 2048)
    http = HttpMetrics(registry)
    engine = Engine(EngineConfig.lab())
    engine.add(Sequence("a", 30, 3, 0.0), 0.0)
    now = 0.0
    while (step := engine.schedule(now)) is not None:
        now += step.duration_s
        result = engine.complete(step, now, [1] * len(step.sampled))
        vllm.step(result)
        for f in result.finished:
            vllm.finished(f)
    vllm.scheduler_state(engine.num_running, engine.num_waiting, engine.kv_cache_usage)
    http.observe("/v1/chat/completions", "POST", 200, 0.2, 120, 0)
    http.observe("/v1/chat/completions", "POST", 503, 0.01, 120, 90)
    http.observe("/health", "GET", 200, 0.001, 0, 0)  # vLLM excludes these handlers
    http.observe("/v2/health/ready", "GET", 200, 0.001, 0, 0)
    text = generate_latest(registry).decode()
    found = check_api_exposition(text)
    success = {s.labels["finished_reason"]: s.value for s in found["vllm:request_success"].samples
               if s.name.endswith("_total")}  # fmt: skip
    assert success["length"] == 1 and success["stop"] == 0
    totals = {(s.labels["handler"], s.labels["status"]): s.value for s in found["http_requests"].samples
              if s.name == "http_requests_total"}  # fmt: skip
    assert totals == {("/v1/chat/completions", "2xx"): 1, ("/v1/chat/completions", "5xx"): 1}
    gen = next(s.value for s in found["vllm:generation_tokens"].samples if s.name.endswith("_total"))
    assert gen == 3


def test_dcgm_metrics_match_the_sources() -> None:
    gpu = GpuIdentity(0, "GPU-5d3a0e1c-0000-4000-8000-000000000001", "00000000:18:00.0",
                      "NVIDIA H100 80GB HBM3", "us-east-1", "570.172.08")  # fmt: skip
    state = DcgmState(fb_total_mib=81559, fb_used_mib=75034)
    series = check_dcgm_exposition(render_dcgm(gpu, state).decode())
    assert series["DCGM_FI_DEV_XID_ERRORS"]["err_code"] == "0"
    assert series["DCGM_FI_DEV_XID_ERRORS"]["err_msg"] == "No Error"
    assert series["DCGM_FI_DEV_FB_FREE"]["value"] == str(81559 - 75034)
    assert series["DCGM_FI_DEV_GPU_UTIL"]["device"] == "nvidia0"
    state.last_xid = 79
    series = check_dcgm_exposition(render_dcgm(gpu, state).decode())
    assert series["DCGM_FI_DEV_XID_ERRORS"]["value"] == "79"
    assert series["DCGM_FI_DEV_XID_ERRORS"]["err_msg"] == "GPU has fallen off the bus"
