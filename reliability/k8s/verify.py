"""Is a partition really in effect? Asked of Prometheus, not of the API server.

A NetworkPolicy is only a wish: some CNIs do not cut connections that already exist when it
appears, others enforce nothing at all, another policy may allow more. So a partition counts as
injected only once Prometheus shows the region's traffic stopped - the signals profile's
`requests_by_region` series (responses per second, one series per region and status class, the
region in a `region` label or, for HAProxy's per-server series, `server`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from reliability.errors import HarnessError, InputError
from reliability.k8s.target import TargetState

SERIES = "requests_by_region"
QUERY_TIMEOUT_S = 10.0
POLL_S = 1.0
REGION_LABELS = ("region", "server")


def region_of(labels: dict[str, str]) -> str | None:
    return next((labels[k] for k in REGION_LABELS if labels.get(k)), None)


def region_rate(samples: list[tuple[dict[str, str], float]], region: str) -> float | None:
    """Requests/s of one region from `requests_by_region` samples; None when no series names it."""
    mine = [v for labels, v in samples if region_of(labels) == region and not math.isnan(v)]
    return sum(mine) if mine else None


@dataclass(frozen=True)
class Traffic:
    query: str
    url: str
    headers: dict[str, str]

    @classmethod
    def of(cls, state: TargetState) -> Traffic:
        from reliability.signals import load_profile

        profile = load_profile(state.target.signals)
        spec = profile.series.get(SERIES)
        if spec is None:
            raise InputError(
                "target.signals",
                f"profile {profile.name} has no {SERIES} series: a partition cannot be verified",
            )
        return cls(spec.query, state.prometheus_url.rstrip("/"), state.target.prometheus.headers())

    def samples(self) -> list[tuple[dict[str, str], float]]:
        try:
            resp = requests.get(
                f"{self.url}/api/v1/query",
                params={"query": self.query},
                headers=self.headers,
                timeout=QUERY_TIMEOUT_S,
            )
            resp.raise_for_status()
            result = resp.json()["data"]["result"]
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise HarnessError(f"Prometheus at {self.url} did not answer {SERIES}: {exc}") from exc
        return [(dict(r.get("metric") or {}), float(r["value"][1])) for r in result]

    def rate(self, region: str) -> float | None:
        return region_rate(self.samples(), region)


def wait_stopped(
    rate: Callable[[], float | None],
    below: float,
    timeout_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, float | None, float]:
    """Poll `rate` until it is at or under `below` (bounded by `timeout_s`): (stopped, last value,
    seconds waited). A region whose series vanished counts as not verified: no data is no evidence."""
    start = clock()
    last: float | None = None
    while True:
        last = rate()
        waited = clock() - start
        if last is not None and last <= below:
            return True, last, waited
        if waited >= timeout_s:
            return False, last, waited
        sleep(min(POLL_S, max(0.0, timeout_s - waited)))
