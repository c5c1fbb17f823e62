"""Histogram bucket bounds the harness knows, and the check that a latency SLI's threshold is one.

A latency SLI counts requests at or below the bucket whose `le` equals its threshold; when no bucket
has that bound the rules select a series that does not exist (or the user meant another edge), so
`slo validate` warns. The native format has no bucket list of its own: a latency SLI may give one
(`buckets:`), and vLLM's histograms are known here (vllm/v1/metrics/loggers.py, the reference in
docs/twin.md and ../shared/reference/serving.md).
"""

from __future__ import annotations

from decimal import Decimal

from reliability.slo.model import SLO

TTFT_BUCKETS = (
    .001, .005, .01, .02, .04, .06, .08, .1, .25, .5, .75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
)  # fmt: skip
ITL_BUCKETS = (
    .01, .025, .05, .075, .1, .15, .2, .3, .4, .5, .75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
)  # fmt: skip
E2E_BUCKETS = (
    .3, .5, .8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
)  # fmt: skip

# histogram base name -> bucket upper bounds (seconds), without +Inf
KNOWN_BUCKETS: dict[str, tuple[float, ...]] = {
    "vllm:time_to_first_token_seconds": TTFT_BUCKETS,
    "vllm:inter_token_latency_seconds": ITL_BUCKETS,
    "vllm:request_time_per_output_token_seconds": ITL_BUCKETS,
    "vllm:e2e_request_latency_seconds": E2E_BUCKETS,
}


def buckets_for(metric: str) -> tuple[float, ...] | None:
    return KNOWN_BUCKETS.get(metric)


def _dec(x: float | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(repr(float(x)))


def bucket_warning(metric: str, threshold: Decimal, buckets: tuple[float | Decimal, ...]) -> str | None:
    """None when `threshold` is a bucket edge, else what the user should know (nearest edges)."""
    edges = sorted({_dec(b) for b in buckets})
    if threshold in edges:
        return None
    below = [e for e in edges if e < threshold]
    above = [e for e in edges if e > threshold]
    near = ", ".join(f"{e.normalize():f}" for e in (below[-1:] + above[:1]))
    return (
        f"{threshold.normalize():f}s is not a bucket edge of {metric} (nearest: {near}); the SLI selects "
        f"a `le` bucket that does not exist"
    )


def latency_warnings(slos: list[SLO]) -> list[str]:
    """One line per latency SLI whose threshold is not on a known bucket edge: 'FILE: FIELD: text'."""
    out = []
    for slo in slos:
        lat = slo.latency
        if lat is None or lat.threshold_seconds is None:
            continue
        buckets = lat.buckets or buckets_for(lat.metric)
        if not buckets:
            continue
        text = bucket_warning(lat.metric, lat.threshold_seconds, buckets)
        if text:
            out.append(f"{slo.source}: slos.{slo.name}.sli.latency.threshold_seconds: {text}")
    return out
