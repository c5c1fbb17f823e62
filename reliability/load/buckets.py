"""Latency histograms and per-second request buckets (pure, no Locust).

Bucketing (`bucket_ms`): a value in milliseconds is rounded UP to three significant digits
(0.0100, 0.0101, ..., 0.999, 1.00, 1.01, ..., 9.99, 10.0, ..., 999, 1000, 1010, ...): the bucket value is
the smallest number on that grid at or above the value, so the relative error is below 1% (at most
one unit in the third digit, e.g. 100.2 -> 101). 0 stays 0; values in (0, 0.01] become 0.01.
Every histogram uses the same grid, so histograms of any seconds and worker processes merge exactly,
and round thresholds (100, 250, 500 ms) are bucket values.

A histogram is a mapping bucket value -> count (`{"12.3": 4}` in JSON; string or float keys are
accepted everywhere). The primitives:
- `merge(h1, h2)`: the sum of counts per bucket value.
- `percentile(h, q)`: nearest-rank on the merged counts: the smallest bucket value v such that at
  least ceil(q * N) of the N samples are at or below v (q in [0, 1]; q = 0 gives the smallest).
  Because bucketing is monotone, this equals `bucket_ms` of the nearest-rank percentile of the raw
  samples: within the 1% bucket precision of the true value, and never below it.
- `count_at_or_below(h, threshold_ms)`: samples whose bucket value is <= threshold. Exact (the number
  of raw samples <= threshold) when the threshold is a bucket value, e.g. a round SLO threshold,
  because rounding up keeps every sample above a grid value above it. For any other threshold it
  is the count at or below the largest bucket value <= threshold, i.e. it can only undercount, by
  the samples between that bucket value and the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Hist = dict[float, int]
HistLike = Mapping[Any, int]

SIGNIFICANT = 3
SMALLEST_MS = 0.01
# A product like 0.29 * 1000 lands a hair above 290; values that close to a grid value are on it.
_ON_GRID = 1e-9
# Errors are keyed by "<request name>: <message>"; both are cut so a line stays small.
MAX_ERROR_KEY = 160
MAX_ERROR_KEYS = 20
OTHER_ERRORS = "(other errors)"


def bucket_ms(value: float) -> float:
    """The bucket value of a latency in ms: rounded up to 3 significant digits (module docstring)."""
    v = float(value)
    if 1.0 <= v < 1000.0:  # the usual latencies, without log10 (the per-request hot path)
        scale = 100 if v < 10.0 else 10 if v < 100.0 else 1
        scaled = v * scale
        n = round(scaled)
        if abs(scaled - n) > _ON_GRID * scaled:
            n = math.ceil(scaled)
        return n / scale
    if not v > 0.0:
        if math.isnan(v):
            raise ValueError("latency is NaN")
        return 0.0  # zero, or a negative difference from a clock step: no time
    if v <= SMALLEST_MS:
        return SMALLEST_MS
    if math.isinf(v):
        raise ValueError("latency is infinite")
    decimals = SIGNIFICANT - 1 - math.floor(math.log10(v))
    if decimals >= 0:
        scale = 10**decimals
        scaled = v * scale
        n = round(scaled)
        if abs(scaled - n) > _ON_GRID * scaled:
            n = math.ceil(scaled)
        return n / scale
    scale = 10**-decimals
    scaled = v / scale
    n = round(scaled)
    if abs(scaled - n) > _ON_GRID * scaled:
        n = math.ceil(scaled)
    return float(n * scale)


def hist_of(values: Iterable[float]) -> Hist:
    """The histogram of raw latencies (ms)."""
    out: Hist = {}
    for v in values:
        b = bucket_ms(v)
        out[b] = out.get(b, 0) + 1
    return out


def normalize(h: HistLike | None) -> Hist:
    """Float keys (JSON gives strings), zero counts dropped."""
    if not h:
        return {}
    out: Hist = {}
    for k, c in h.items():
        if c:
            key = float(k)
            out[key] = out.get(key, 0) + int(c)
    return out


def merge(h1: HistLike | None, h2: HistLike | None) -> Hist:
    """Sum of two histograms (pure; neither input is changed)."""
    out = normalize(h1)
    for k, c in normalize(h2).items():
        out[k] = out.get(k, 0) + c
    return out


def merge_all(hists: Iterable[HistLike | None]) -> Hist:
    out: Hist = {}
    for h in hists:
        for k, c in normalize(h).items():
            out[k] = out.get(k, 0) + c
    return out


def total(h: HistLike | None) -> int:
    return sum(int(c) for c in (h or {}).values())


def percentile(h: HistLike | None, q: float) -> float | None:
    """Nearest-rank percentile (module docstring); None for an empty histogram."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} outside [0, 1]")
    hist = normalize(h)
    n = sum(hist.values())
    if n == 0:
        return None
    # The tolerance keeps 0.07 * 100 = 7.000000000000001 at rank 7.
    rank = max(1, math.ceil(q * n - 1e-9))
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= rank:
            return value
    return max(hist)  # unreachable: seen reaches n >= rank


def count_at_or_below(h: HistLike | None, threshold_ms: float) -> int:
    """Samples whose bucket value is <= threshold (exact for a bucket-value threshold; module docstring)."""
    return sum(c for v, c in normalize(h).items() if v <= threshold_ms)


def _add(hist: Hist, value_ms: float) -> None:
    b = bucket_ms(value_ms)
    hist[b] = hist.get(b, 0) + 1


def error_key(name: str, message: str) -> str:
    key = f"{name}: {message}"
    return key if len(key) <= MAX_ERROR_KEY else key[: MAX_ERROR_KEY - 3] + "..."


def _add_error(errors: dict[str, int], key: str, n: int = 1) -> None:
    if key not in errors and len(errors) >= MAX_ERROR_KEYS:
        key = OTHER_ERRORS
    errors[key] = errors.get(key, 0) + n


def _later(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass
class Bucket:
    """One wall second of completed requests (in one process, or merged from several)."""

    requests: int = 0
    failures: int = 0
    codes: dict[str, int] = field(default_factory=dict)
    first_failure_ts: float | None = None
    last_failure_ts: float | None = None
    e2e_ms: Hist = field(default_factory=dict)
    ttft_ms: Hist = field(default_factory=dict)
    itl_ms: Hist = field(default_factory=dict)
    tpot_ms: Hist = field(default_factory=dict)
    # Requests that failed before their first token, by how long they had waited (censored TTFTs).
    ttft_censored_ms: Hist = field(default_factory=dict)
    prompt_tokens: int = 0
    output_tokens: int = 0
    judged: int = 0
    wrong: int = 0
    last_wrong_ts: float | None = None
    good: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        e2e_ms: float,
        code: str,
        at: float,
        error: str | None = None,
        good: bool = False,
        ttft_ms: float | None = None,
        itl_ms: Iterable[float] = (),
        tpot_ms: float | None = None,
        prompt_tokens: int = 0,
        output_tokens: int = 0,
        judged: bool = False,
        wrong: bool = False,
    ) -> None:
        """One completed request: `error` is its error key when it failed (None when it succeeded)."""
        self.requests += 1
        self.codes[code] = self.codes.get(code, 0) + 1
        _add(self.e2e_ms, e2e_ms)
        if error is not None:
            self.failures += 1
            if self.first_failure_ts is None or at < self.first_failure_ts:
                self.first_failure_ts = at
            if self.last_failure_ts is None or at > self.last_failure_ts:
                self.last_failure_ts = at
            _add_error(self.errors, error)
        elif good:
            self.good += 1
        if ttft_ms is not None:
            _add(self.ttft_ms, ttft_ms)
        for gap in itl_ms:
            _add(self.itl_ms, gap)
        if tpot_ms is not None:
            _add(self.tpot_ms, tpot_ms)
        self.prompt_tokens += prompt_tokens
        self.output_tokens += output_tokens
        if judged:
            self.judged += 1
            if wrong:
                self.wrong += 1
                self.last_wrong_ts = _later(self.last_wrong_ts, at)

    def add_ttft(self, ms: float) -> None:
        _add(self.ttft_ms, ms)

    def add_itl(self, ms: float) -> None:
        _add(self.itl_ms, ms)

    def add_waited(self, ms: float) -> None:
        _add(self.ttft_censored_ms, ms)

    def add_success(self, e2e_ms: float, code: str, good: bool) -> None:
        """`add` for a request that succeeded and measured nothing but its latency (the hot path)."""
        self.requests += 1
        codes = self.codes
        codes[code] = codes.get(code, 0) + 1
        b = bucket_ms(e2e_ms)
        hist = self.e2e_ms
        hist[b] = hist.get(b, 0) + 1
        if good:
            self.good += 1

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add a bucket in its wire form (`to_wire`, e.g. from another worker)."""
        self.requests += int(other.get("requests", 0))
        self.failures += int(other.get("failures", 0))
        for k, c in (other.get("codes") or {}).items():
            self.codes[str(k)] = self.codes.get(str(k), 0) + int(c)
        self.first_failure_ts = _earlier(self.first_failure_ts, other.get("first_failure_ts"))
        self.last_failure_ts = _later(self.last_failure_ts, other.get("last_failure_ts"))
        for name in ("e2e_ms", "ttft_ms", "itl_ms", "tpot_ms", "ttft_censored_ms"):
            setattr(self, name, merge(getattr(self, name), other.get(name)))
        for name in ("prompt_tokens", "output_tokens", "judged", "wrong", "good"):
            setattr(self, name, getattr(self, name) + int(other.get(name, 0)))
        self.last_wrong_ts = _later(self.last_wrong_ts, other.get("last_wrong_ts"))
        for k, c in (other.get("errors") or {}).items():
            _add_error(self.errors, str(k), int(c))

    def to_wire(self) -> dict[str, Any]:
        """JSON-safe form (histogram keys become strings); `merge` takes it back."""
        return {
            "requests": self.requests,
            "failures": self.failures,
            "codes": dict(self.codes),
            "first_failure_ts": self.first_failure_ts,
            "last_failure_ts": self.last_failure_ts,
            "e2e_ms": _wire_hist(self.e2e_ms),
            "ttft_ms": _wire_hist(self.ttft_ms),
            "itl_ms": _wire_hist(self.itl_ms),
            "tpot_ms": _wire_hist(self.tpot_ms),
            "ttft_censored_ms": _wire_hist(self.ttft_censored_ms),
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "judged": self.judged,
            "wrong": self.wrong,
            "last_wrong_ts": self.last_wrong_ts,
            "good": self.good,
            "errors": dict(self.errors),
        }


def _wire_hist(h: Hist) -> dict[str, int]:
    return {repr(k): c for k, c in sorted(h.items())}


def stats_line(second: int, bucket: Bucket, users: int | None = None) -> dict[str, Any]:
    """One `load_stats.jsonl` v2 record (docs/twin.md section 3)."""
    wire = bucket.to_wire()
    return {
        "v": 2,
        "ts": float(second),
        "users": users,
        "requests": wire["requests"],
        "failures": wire["failures"],
        "codes": dict(sorted(wire["codes"].items())),
        "first_failure_ts": wire["first_failure_ts"],
        "last_failure_ts": wire["last_failure_ts"],
        "e2e_ms": wire["e2e_ms"],
        "ttft_ms": wire["ttft_ms"],
        "itl_ms": wire["itl_ms"],
        "tpot_ms": wire["tpot_ms"],
        "ttft_censored_ms": wire["ttft_censored_ms"],
        "prompt_tokens": wire["prompt_tokens"],
        "output_tokens": wire["output_tokens"],
        "judged": wire["judged"],
        "wrong": wire["wrong"],
        "last_wrong_ts": wire["last_wrong_ts"],
        "good": wire["good"],
        "errors": dict(sorted(wire["errors"].items())),
        "p50_ms": percentile(bucket.e2e_ms, 0.50),
        "p95_ms": percentile(bucket.e2e_ms, 0.95),
        "p99_ms": percentile(bucket.e2e_ms, 0.99),
    }
