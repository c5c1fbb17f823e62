"""Latency histograms as the load generator writes them: `{"<bucket value in ms>": count}`.

Per-second histograms from any number of seconds and workers merge exactly (counts add), so a
phase's percentiles come from the merged histogram, never from averaging per-second percentiles.
Bucket values are what `reliability.load.buckets.bucket_ms` rounded each sample to (<= 1% error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Histogram = dict[float, int]


def as_hist(raw: Any) -> Histogram:
    """A histogram from its JSON form (string keys); anything else (NaN from pandas, None) is empty."""
    if not isinstance(raw, Mapping):
        return {}
    out: Histogram = {}
    for key, count in raw.items():
        try:
            value, n = float(key), int(count)
        except (TypeError, ValueError):
            continue
        if n > 0:
            out[value] = out.get(value, 0) + n
    return out


def merge(hists: Iterable[Any]) -> Histogram:
    total: Histogram = {}
    for raw in hists:
        for value, n in as_hist(raw).items():
            total[value] = total.get(value, 0) + n
    return total


def count(hist: Mapping[float, int]) -> int:
    return sum(hist.values())


def percentile(hist: Mapping[float, int], q: float) -> float | None:
    """Nearest rank: the smallest bucket value with at least `q` of the samples at or below it."""
    total = count(hist)
    if total == 0:
        return None
    need = q * total
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        if seen >= need - 1e-9:
            return value
    return max(hist)


def count_at_or_below(hist: Mapping[float, int], threshold: float) -> int:
    """Samples whose bucket value is at or below `threshold` (same unit as the keys)."""
    return sum(n for value, n in hist.items() if value <= threshold + 1e-9)
