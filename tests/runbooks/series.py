"""promtool input series shaped exactly as the real exporters expose them, built from per-second events.

A test describes what happened second by second (requests answered per status class, first-token
latencies observed, canary outcomes) and these helpers turn it into the cumulative counters and
histogram buckets a scrape of vLLM, HAProxy or the canary would have stored, with their label sets.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Histogram, generate_latest

# vLLM v1 (vllm/v1/metrics/loggers.py, as pinned in the shared serving reference).
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)  # fmt: skip
HAPROXY_CODE_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")

Observations = Mapping[float, int]  # value observed -> how many times, in one second
Series = dict[str, str]  # one promtool input series: {"series": selector, "values": "..."}


def prometheus_client_le(buckets: Sequence[float]) -> list[str]:
    """The `le` label values prometheus_client - vLLM's metrics library - writes for these buckets,
    "+Inf" included, read from its own exposition text (e.g. "0.5", "1.0", "2560.0")."""
    registry = CollectorRegistry()
    Histogram("h", "h", buckets=list(buckets), registry=registry)
    text = generate_latest(registry).decode()
    return re.findall(r'^h_bucket\{le="([^"]+)"\}', text, flags=re.MULTILINE)


def selector(name: str, labels: Mapping[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(round(x, 9))


def counter(name: str, labels: Mapping[str, str], per_second: Sequence[float]) -> Series:
    """A counter starting at 0 that grows by per_second[i] during second i."""
    total, values = 0.0, ["0"]
    for inc in per_second:
        total += inc
        values.append(_number(total))
    return {"series": selector(name, labels), "values": " ".join(values)}


def expand(*phases: tuple[int, object]) -> list:
    """[(seconds, what happens each of those seconds), ...] -> one entry per second."""
    return [what for seconds, what in phases for _ in range(seconds)]


def histogram(
    name: str, labels: Mapping[str, str], buckets: Sequence[float], per_second: Sequence[Observations]
) -> list[Series]:
    """A Prometheus histogram as prometheus_client exposes it: `_bucket` per `le` (cumulative,
    inclusive upper bounds), `_count` and `_sum`."""
    edges = [*buckets, math.inf]
    out = [
        counter(
            f"{name}_bucket",
            {**labels, "le": le},
            [sum(n for v, n in obs.items() if v <= edge) for obs in per_second],
        )
        for le, edge in zip(prometheus_client_le(buckets), edges, strict=True)
    ]
    out.append(counter(f"{name}_count", labels, [sum(obs.values()) for obs in per_second]))
    out.append(counter(f"{name}_sum", labels, [sum(v * n for v, n in obs.items()) for obs in per_second]))
    return out


def haproxy_frontend(
    labels: Mapping[str, str], proxy: str, per_second: Sequence[Mapping[str, int]], level: str = "frontend"
) -> list[Series]:
    """HAProxy's frontend (or backend) counters: requests, and responses per status class (all six,
    zeros too)."""
    scoped = {**labels, "proxy": proxy}
    out = [counter(f"haproxy_{level}_http_requests_total", scoped, [sum(s.values()) for s in per_second])]
    out += [
        counter(
            f"haproxy_{level}_http_responses_total",
            {**scoped, "code": code},
            [s.get(code, 0) for s in per_second],
        )
        for code in HAPROXY_CODE_CLASSES
    ]
    return out


def canary(labels: Mapping[str, str], per_second: Sequence[Mapping[str, int]]) -> list[Series]:
    """The known-answer canary's probes of one region by outcome (correct, wrong, error)."""
    return [
        counter(
            "llm_canary_requests_total",
            {**labels, "outcome": outcome},
            [s.get(outcome, 0) for s in per_second],
        )
        for outcome in ("correct", "wrong", "error")
    ]
