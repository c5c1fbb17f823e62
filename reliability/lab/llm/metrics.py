"""The node's metrics under the names, types, labels and buckets of the real exporters.

- vLLM: followed vllm 0.33.0 (PyPI wheel, git 4ba787ec9), `vllm/v1/metrics/loggers.py`
  (PrometheusStatLogger), `vllm/v1/metrics/buckets.py` (bucket families) and
  `vllm/v1/metrics/stats.py` (what each interval measures). Labels `model_name`, `engine` on every
  series; `request_success` is pre-created for every finish reason, as vLLM does. Only the series the
  twin can fill truthfully are exported (no prefix cache, LoRA, speculative decoding or KV-connector
  series). One difference stays: vLLM counts a client abort only when the engine core reports it; the
  twin counts every abort.
- HTTP: prometheus-fastapi-instrumentator 8.1.0 `metrics.default()` as vLLM 0.33 attaches it
  (`vllm/entrypoints/serve/instrumentator/metrics.py`): handlers matching `/metrics`, `/health`,
  `/load`, `/ping`, `/version`, `/server_info` (regex search, so `/v2/health/...` too) are not
  counted, status codes are grouped ("2xx"), unmatched paths are handler "none".
- DCGM: NVIDIA/dcgm-exporter 4.5.3-4.8.2 (`etc/default-counters.csv`,
  `internal/pkg/rendermetrics/render_metrics.go`, `internal/pkg/collector/gpu_collector.go`),
  rendered by its own template as the exporter does (prometheus_client would rename the counters to
  `..._total`): labels gpu, UUID, pci_bus_id, device, modelName, Hostname, then the string fields the
  counters file turns into labels (DCGM_FI_DRIVER_VERSION), and for DCGM_FI_DEV_XID_ERRORS the
  err_code and err_msg attributes. (dcgm-exporter's main branch renamed `Hostname` to `hostname`
  after that release, #655; released versions still say `Hostname`.)

Each port has its own prometheus_client registry; nothing is registered globally.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary

from reliability.lab.llm.engine import FinishedStats, StepResult

# vllm/v1/metrics/buckets.py (0.33.0)
REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
TIME_TO_FIRST_TOKEN_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
INTER_TOKEN_LATENCY_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)  # fmt: skip
ITERATION_TOKENS_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
REQUEST_PARAMS_N_BUCKETS = (1, 2, 5, 10, 20)
REQUEST_NUM_PREEMPTIONS_BUCKETS = (1, 2, 3, 4, 5, 10, 20)
FINISH_REASONS = ("stop", "length", "abort", "error", "repetition")  # vllm.v1.engine.FinishReason


def build_1_2_5_buckets(max_value: int) -> list[float]:
    """vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to max_value."""
    out: list[float] = []
    exponent = 0
    while True:
        for m in (1, 2, 5):
            value = m * 10**exponent
            if value > max_value:
                return out
            out.append(value)
        exponent += 1


class VllmMetrics:
    """vLLM's Prometheus series for one engine (label engine="0")."""

    def __init__(self, registry: CollectorRegistry, model_name: str, max_model_len: int) -> None:
        labels = ["model_name", "engine"]
        values = (model_name, "0")

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=registry).labels(*values)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=registry).labels(*values)

        def histogram(name: str, doc: str, buckets: tuple[float, ...] | list[float]) -> Histogram:
            return Histogram(name, doc, labels, registry=registry, buckets=buckets).labels(*values)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.kv_cache_usage = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*labels, "finished_reason"],
            registry=registry,
        )
        self.success = {r: success.labels(*values, r) for r in FINISH_REASONS}
        tokens_buckets = build_1_2_5_buckets(max_model_len)
        self.request_prompt_tokens = histogram(
            "vllm:request_prompt_tokens", "Number of prefill tokens processed.", tokens_buckets
        )
        self.request_generation_tokens = histogram(
            "vllm:request_generation_tokens", "Number of generation tokens processed.", tokens_buckets
        )
        self.iteration_tokens = histogram(
            "vllm:iteration_tokens_total",
            "Histogram of number of tokens per engine_step.",
            ITERATION_TOKENS_BUCKETS,
        )
        self.max_num_generation_tokens = histogram(
            "vllm:request_max_num_generation_tokens",
            "Histogram of maximum number of requested generation tokens.",
            tokens_buckets,
        )
        self.params_n = histogram(
            "vllm:request_params_n", "Histogram of the n request parameter.", REQUEST_PARAMS_N_BUCKETS
        )
        self.params_max_tokens = histogram(
            "vllm:request_params_max_tokens", "Histogram of the max_tokens request parameter.", tokens_buckets
        )
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            TIME_TO_FIRST_TOKEN_BUCKETS,
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            INTER_TOKEN_LATENCY_BUCKETS,
        )
        self.tpot = histogram(
            "vllm:request_time_per_output_token_seconds",
            "Histogram of time_per_output_token_seconds per request.",
            INTER_TOKEN_LATENCY_BUCKETS,
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.queue = histogram(
            "vllm:request_queue_time_seconds",
            "Histogram of time spent in WAITING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.inference = histogram(
            "vllm:request_inference_time_seconds",
            "Histogram of time spent in RUNNING phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.prefill = histogram(
            "vllm:request_prefill_time_seconds",
            "Histogram of time spent in PREFILL phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.decode = histogram(
            "vllm:request_decode_time_seconds",
            "Histogram of time spent in DECODE phase for request.",
            REQUEST_LATENCY_BUCKETS,
        )
        self.request_preemptions = histogram(
            "vllm:request_num_preemptions",
            "Histogram of the number of times a request was preempted.",
            REQUEST_NUM_PREEMPTIONS_BUCKETS,
        )

    def scheduler_state(self, running: int, waiting: int, kv_usage: float) -> None:
        self.running.set(running)
        self.waiting.set(waiting)
        self.kv_cache_usage.set(kv_usage)

    def step(self, result: StepResult) -> None:
        if result.preemptions:
            self.preemptions.inc(result.preemptions)
        if result.prompt_tokens:
            self.prompt_tokens.inc(result.prompt_tokens)
        if result.generation_tokens:
            self.generation_tokens.inc(result.generation_tokens)
            self.iteration_tokens.observe(result.prompt_tokens + result.generation_tokens)
        for v in result.ttfts:
            self.ttft.observe(v)
        observe_itl = self.itl.observe
        for v in result.itls:
            observe_itl(v)

    def finished(self, f: FinishedStats) -> None:
        """A request ended (vLLM records its intervals and sampling parameters then)."""
        self.success[f.finish_reason].inc()
        self.params_n.observe(1)
        self.params_max_tokens.observe(f.max_tokens)
        self.max_num_generation_tokens.observe(f.max_tokens)
        self.e2e.observe(f.e2e_s)
        self.queue.observe(f.queued_s)
        self.prefill.observe(f.prefill_s)
        self.inference.observe(f.inference_s)
        self.decode.observe(f.decode_s)
        self.request_preemptions.observe(f.num_preemptions)
        self.request_prompt_tokens.observe(f.prompt_tokens)
        self.request_generation_tokens.observe(f.generation_tokens)
        self.tpot.observe(f.mean_time_per_output_token_s)


# prometheus-fastapi-instrumentator 8.1.0, metrics.default()
HTTP_HIGHR_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 7.5, 10, 30, 60,
)  # fmt: skip
HTTP_LOWR_BUCKETS = (0.1, 0.5, 1)
VLLM_EXCLUDED_HANDLERS = ("/metrics", "/health", "/load", "/ping", "/version", "/server_info")


class HttpMetrics:
    """The instrumentator's default metrics with vLLM's excluded handlers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(
            "http_requests_total",
            "Total number of requests by method, status and handler.",
            ["method", "status", "handler"],
            registry=registry,
        )
        self.in_size = Summary(
            "http_request_size_bytes",
            "Content length of incoming requests by handler. Only value of header is respected. "
            "Otherwise ignored. No percentile calculated. ",
            ["handler"],
            registry=registry,
        )
        self.out_size = Summary(
            "http_response_size_bytes",
            "Content length of outgoing responses by handler. Only value of header is respected. "
            "Otherwise ignored. No percentile calculated. ",
            ["handler"],
            registry=registry,
        )
        self.highr = Histogram(
            "http_request_duration_highr_seconds",
            "Latency with many buckets but no API specific labels. "
            "Made for more accurate percentile calculations. ",
            buckets=HTTP_HIGHR_BUCKETS,
            registry=registry,
        )
        self.lowr = Histogram(
            "http_request_duration_seconds",
            "Latency with only few buckets by handler. "
            "Made to be only used if aggregation by handler is important. ",
            ["method", "handler"],
            buckets=HTTP_LOWR_BUCKETS,
            registry=registry,
        )
        self._excluded = [re.compile(p) for p in VLLM_EXCLUDED_HANDLERS]

    def excluded(self, handler: str) -> bool:
        return any(p.search(handler) for p in self._excluded)

    def observe(
        self, handler: str, method: str, status: int, duration_s: float, in_bytes: int, out_bytes: int
    ) -> None:
        if self.excluded(handler):
            return
        self.total.labels(method, f"{status // 100}xx", handler).inc()
        self.in_size.labels(handler).observe(in_bytes)
        self.out_size.labels(handler).observe(out_bytes)
        self.highr.observe(duration_s)
        self.lowr.labels(method, handler).observe(duration_s)


# --- DCGM exporter --------------------------------------------------------------------------------

# NVIDIA/dcgm-exporter internal/pkg/collector/xid_errors.go (the codes the twin injects)
XID_MESSAGES = {
    0: "No Error",
    48: "Double Bit ECC Error",
    63: "ECC page retirement or row remapping recording event",
    64: "ECC page retirement or row remapper recording failure",
    79: "GPU has fallen off the bus",
    94: "Contained ECC error",
    95: "Uncontained ECC error",
}
DCGM_CONTENT_TYPE = "text/plain; charset=utf-8"

# etc/default-counters.csv: (field, type, help), in the file's order
DCGM_FIELDS = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    (
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
        "counter",
        "Number of remapped rows for uncorrectable errors",
    ),
    ("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "counter", "Number of remapped rows for correctable errors"),
    ("DCGM_FI_DEV_ROW_REMAP_FAILURE", "gauge", "Whether remapping of rows has failed"),
)


@dataclass
class GpuIdentity:
    index: int
    uuid: str
    pci_bus_id: str
    model_name: str
    hostname: str
    driver_version: str


@dataclass
class DcgmState:
    """What DCGM reads from the (simulated) GPU."""

    fb_total_mib: int
    fb_used_mib: int = 0
    last_xid: int = 0
    uncorrectable_remapped_rows: int = 0
    correctable_remapped_rows: int = 0
    row_remap_failure: int = 0
    busy_s: float = 0.0  # engine time spent in steps since the last utilisation sample
    util_percent: int = 0
    _window_start: float = field(default_factory=time.monotonic)

    def sample_utilisation(self, now: float) -> None:
        """DCGM's GPU_UTIL is the busy share over its sample period: take it at each scrape."""
        span = now - self._window_start
        if span >= 0.5:
            self.util_percent = max(0, min(100, round(100 * self.busy_s / span)))
            self.busy_s, self._window_start = 0.0, now


def render_dcgm(gpu: GpuIdentity, state: DcgmState) -> bytes:
    """One GPU's series exactly as dcgm-exporter's template writes them."""
    base = (
        f'gpu="{gpu.index}",UUID="{gpu.uuid}",pci_bus_id="{gpu.pci_bus_id}",device="nvidia{gpu.index}",'
        f'modelName="{gpu.model_name}",Hostname="{gpu.hostname}",DCGM_FI_DRIVER_VERSION="{gpu.driver_version}"'
    )
    xid_msg = XID_MESSAGES.get(state.last_xid, "Unknown Error")
    values = {
        "DCGM_FI_DEV_GPU_UTIL": state.util_percent,
        "DCGM_FI_DEV_XID_ERRORS": state.last_xid,
        "DCGM_FI_DEV_FB_FREE": state.fb_total_mib - state.fb_used_mib,
        "DCGM_FI_DEV_FB_USED": state.fb_used_mib,
        "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS": state.uncorrectable_remapped_rows,
        "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS": state.correctable_remapped_rows,
        "DCGM_FI_DEV_ROW_REMAP_FAILURE": state.row_remap_failure,
    }
    lines = []
    for name, kind, help_text in DCGM_FIELDS:
        labels = base
        if name == "DCGM_FI_DEV_XID_ERRORS":
            labels += f',err_code="{state.last_xid}",err_msg="{xid_msg}"'
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name}{{{labels}}} {values[name]}"]
    return ("\n".join(lines) + "\n").encode()
