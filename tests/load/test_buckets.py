"""Histogram primitives of the load stats: bucketing, merging, percentiles, threshold counts."""

from __future__ import annotations

import json
import math
import random

import pytest

from reliability.load.buckets import (
    MAX_ERROR_KEY,
    MAX_ERROR_KEYS,
    OTHER_ERRORS,
    Bucket,
    bucket_ms,
    count_at_or_below,
    error_key,
    hist_of,
    merge,
    merge_all,
    percentile,
    stats_line,
)


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered) - 1e-9)) - 1]


@pytest.mark.parametrize(
    ("value", "bucket"),
    [
        (0.0, 0.0),
        (-3.0, 0.0),
        (0.004, 0.01),
        (0.01, 0.01),
        (0.0123, 0.0123),
        (0.01231, 0.0124),
        (0.29, 0.29),
        (1.0, 1.0),
        (1.001, 1.01),
        (9.995, 10.0),
        (99.95, 100.0),
        (100.0, 100.0),
        (100.2, 101.0),
        (250.0, 250.0),
        (499.3, 500.0),
        (500.0, 500.0),
        (999.5, 1000.0),
        (1234.0, 1240.0),
        (60_000.0, 60_000.0),
        (123_456.0, 124_000.0),
    ],
)
def test_bucket_rounds_up_to_three_significant_digits(value: float, bucket: float) -> None:
    assert bucket_ms(value) == bucket


def test_bucket_refuses_nan_and_infinity() -> None:
    with pytest.raises(ValueError):
        bucket_ms(float("nan"))
    with pytest.raises(ValueError):
        bucket_ms(float("inf"))


def test_bucket_error_is_below_one_percent_monotone_and_idempotent() -> None:
    rng = random.Random(7)
    values = sorted(10 ** rng.uniform(-1.9, 6) for _ in range(20_000))
    buckets = [bucket_ms(v) for v in values]
    for v, b in zip(values, buckets, strict=True):
        assert v <= b < v * 1.01
        assert bucket_ms(b) == b
    assert buckets == sorted(buckets)


def test_round_thresholds_are_bucket_values() -> None:
    for threshold in (1, 2.5, 5, 10, 25, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2500, 10_000):
        assert bucket_ms(threshold) == threshold


def test_merge_is_pure_and_accepts_json_keys() -> None:
    a = {"1.5": 2, "10.0": 1}
    b = {1.5: 3, 20.0: 4}
    assert merge(a, b) == {1.5: 5, 10.0: 1, 20.0: 4}
    assert a == {"1.5": 2, "10.0": 1} and b == {1.5: 3, 20.0: 4}
    assert merge(None, {}) == {}
    assert merge_all([a, b, None]) == merge(a, b)


def test_percentile_is_nearest_rank() -> None:
    hist = {float(v): 1 for v in range(1, 101)}  # 1..100 ms, one each
    assert percentile(hist, 0.5) == 50
    assert percentile(hist, 0.99) == 99
    assert percentile(hist, 0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floating point
    assert percentile(hist, 0.0) == 1
    assert percentile(hist, 1.0) == 100
    assert percentile({}, 0.5) is None
    with pytest.raises(ValueError):
        percentile(hist, 1.5)


def test_count_at_or_below_is_exact_on_bucket_values() -> None:
    rng = random.Random(3)
    raw = [rng.uniform(400, 600) for _ in range(5000)] + [500.0, 500.4, 499.99]
    hist = hist_of(raw)
    for threshold in (450.0, 500.0, 501.0, 550.0):
        assert count_at_or_below(hist, threshold) == sum(v <= threshold for v in raw)
    # Off the grid it counts at or below the largest bucket value under the threshold: never over.
    assert count_at_or_below(hist, 500.5) == sum(v <= 500.0 for v in raw)
    assert count_at_or_below(hist, 500.5) <= sum(v <= 500.5 for v in raw)


@pytest.mark.parametrize("seed", range(25))
def test_merged_per_second_histograms_give_the_percentiles_of_the_raw_samples(seed: int) -> None:
    """Property: split samples into seconds and workers at random, histogram each part, merge in any
    order: every percentile equals bucket_ms of the raw nearest-rank percentile (within 1% of it)."""
    rng = random.Random(seed)
    n = rng.randint(1, 3000)
    shape = rng.choice(["lognormal", "uniform", "bimodal", "ties"])
    if shape == "lognormal":
        raw = [rng.lognormvariate(math.log(80), 1.2) for _ in range(n)]
    elif shape == "uniform":
        raw = [rng.uniform(0, 5000) for _ in range(n)]
    elif shape == "bimodal":
        raw = [rng.gauss(20, 2) if rng.random() < 0.9 else rng.gauss(1000, 50) for _ in range(n)]
    else:
        raw = [rng.choice([5.0, 50.0, 500.0]) for _ in range(n)]
    parts: dict[int, list[float]] = {}
    for v in raw:
        parts.setdefault(rng.randrange(12), []).append(v)
    hists = [json.loads(json.dumps({repr(k): c for k, c in hist_of(p).items()})) for p in parts.values()]
    rng.shuffle(hists)
    merged = merge_all(hists)
    assert sum(merged.values()) == n
    for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact = _nearest_rank(raw, q)
        got = percentile(merged, q)
        assert got == bucket_ms(exact)
        assert got is not None and max(exact, 0.0) <= got <= max(exact, 0.01) * 1.01


def test_buckets_merge_like_one_process() -> None:
    samples = [
        dict(e2e_ms=3.0, code="200", at=10.1, good=True, ttft_ms=1.0, itl_ms=[0.5, 0.7], tpot_ms=0.6,
             prompt_tokens=12, output_tokens=3, judged=True),
        dict(e2e_ms=120.0, code="503", at=10.2, error="/v1/chat/completions: HTTP 503: busy"),
        dict(e2e_ms=1540.0, code="200", at=10.5, judged=True, wrong=True, output_tokens=7),
        dict(e2e_ms=7.2, code="0", at=10.9, error="/v1/chat/completions: refused"),
    ]  # fmt: skip
    one = Bucket()
    for s in samples:
        one.add(**s)  # type: ignore[arg-type]
    a, b = Bucket(), Bucket()
    for i, s in enumerate(samples):
        (a if i % 2 else b).add(**s)  # type: ignore[arg-type]
    merged = Bucket()
    merged.merge(json.loads(json.dumps(a.to_wire())))
    merged.merge(json.loads(json.dumps(b.to_wire())))
    assert stats_line(10, merged, 4) == stats_line(10, one, 4)
    line = stats_line(10, one, 4)
    assert (line["requests"], line["failures"], line["codes"]) == (4, 2, {"0": 1, "200": 2, "503": 1})
    assert (line["first_failure_ts"], line["last_failure_ts"], line["last_wrong_ts"]) == (10.2, 10.9, 10.5)
    assert (line["judged"], line["wrong"], line["good"]) == (2, 1, 1)
    assert line["itl_ms"] == {"0.5": 1, "0.7": 1}
    assert line["errors"] == {"/v1/chat/completions: HTTP 503: busy": 1, "/v1/chat/completions: refused": 1}


def test_stats_line_has_exactly_the_v2_fields() -> None:
    line = stats_line(7, Bucket())
    assert list(line) == [
        "v", "ts", "users", "requests", "failures", "codes", "first_failure_ts", "last_failure_ts",
        "e2e_ms", "ttft_ms", "itl_ms", "tpot_ms", "ttft_censored_ms", "prompt_tokens", "output_tokens",
        "judged", "wrong",
        "last_wrong_ts", "good", "errors", "p50_ms", "p95_ms", "p99_ms",
    ]  # fmt: skip
    assert (line["v"], line["ts"], line["requests"], line["p99_ms"]) == (2, 7.0, 0, None)


def test_error_keys_are_cut_and_bounded_without_losing_counts() -> None:
    bucket = Bucket()
    for i in range(MAX_ERROR_KEYS + 10):
        bucket.add(1.0, "500", 1.0, error=error_key("/x", f"failure number {i} " + "y" * 500))
    assert len(bucket.errors) == MAX_ERROR_KEYS + 1
    assert all(len(k) <= MAX_ERROR_KEY for k in bucket.errors)
    assert bucket.errors[OTHER_ERRORS] == 10
    assert sum(bucket.errors.values()) == bucket.failures


def test_the_fast_path_for_plain_successes_adds_like_add() -> None:
    fast, full = Bucket(), Bucket()
    for ms in (0.5, 3.2, 3.2, 250.0):
        fast.add_success(ms, "200", good=True)
        full.add(ms, "200", 1.0, good=True)
    fast.add_success(9.0, "201", good=False)
    full.add(9.0, "201", 1.0, good=False)
    assert fast.to_wire() == full.to_wire()
