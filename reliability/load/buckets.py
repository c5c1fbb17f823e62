"""Per-second request buckets: counts, status codes and a latency histogram (pure, no Locust).

Latencies are rounded like Locust's own stats (2 significant digits above 100 ms), so a second's
histogram stays small and buckets from several worker processes merge exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def round_ms(ms: float) -> int:
    if ms < 100:
        return round(ms)
    if ms < 1000:
        return int(round(ms, -1))
    return int(round(ms, -2))


@dataclass
class Bucket:
    requests: int = 0
    failures: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    hist: Counter[int] = field(default_factory=Counter)
    # Wall-clock time of the second's last failure: recovery is placed within the second with it.
    last_failure_ts: float | None = None

    def add(self, ms: float, failed: bool, code: int | None, at: float | None = None) -> None:
        self.requests += 1
        self.failures += int(failed)
        if failed and at is not None:
            self.last_failure_ts = max(self.last_failure_ts or at, at)
        self.codes[str(code or 0)] += 1
        self.hist[round_ms(ms)] += 1

    def merge(self, other: dict[str, Any]) -> None:
        self.requests += int(other["requests"])
        self.failures += int(other["failures"])
        self.codes.update({str(k): int(v) for k, v in other["codes"].items()})
        self.hist.update({int(k): int(v) for k, v in other["hist"].items()})
        theirs = other.get("last_failure_ts")
        if theirs is not None:
            self.last_failure_ts = max(self.last_failure_ts or theirs, float(theirs))

    def to_wire(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "failures": self.failures,
            "codes": dict(self.codes),
            "hist": {str(k): v for k, v in self.hist.items()},
            "last_failure_ts": self.last_failure_ts,
        }


def percentile(hist: Counter[int], q: float) -> float | None:
    """The smallest latency with at least q of the requests at or below it."""
    total = sum(hist.values())
    if total == 0:
        return None
    need = q * total
    seen = 0
    for ms in sorted(hist):
        seen += hist[ms]
        if seen >= need:
            return float(ms)
    return float(max(hist))


def stats_line(second: int, bucket: Bucket, users: int | None = None) -> dict[str, Any]:
    """One `load_stats.jsonl` record (docs/architecture.md: ts, requests, failures, rps, p50/95/99)."""
    line: dict[str, Any] = {
        "ts": float(second),
        "requests": bucket.requests,
        "failures": bucket.failures,
        "rps": float(bucket.requests),
        "p50_ms": percentile(bucket.hist, 0.50),
        "p95_ms": percentile(bucket.hist, 0.95),
        "p99_ms": percentile(bucket.hist, 0.99),
        "codes": dict(sorted(bucket.codes.items())),
    }
    if bucket.last_failure_ts is not None:
        line["last_failure_ts"] = bucket.last_failure_ts
    if users is not None:
        line["users"] = users
    return line
