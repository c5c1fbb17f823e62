"""Client-side SLIs, second by second, from the load generator's per-second stats.

Every SLO a game day judges has a client-side counterpart (`client_sli`), measured by the load
generator per request: availability (failures), latency / TTFT / ITL / TPOT (histograms against the
SLO's threshold), quality (answers judged against known outputs), goodput (requests that met every
latency target). A second is `good` when its good share meets the SLO's objective, `bad` when it does
not, and `unknown` when it holds no event of that SLI (e.g. no judged answer completed in it).
A second without any request is bad for availability: serving nothing is not being available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from reliability.analysis import histogram
from reliability.analysis._frames import with_ts

ClientSli = Literal["availability", "latency", "ttft", "itl", "tpot", "quality", "goodput"]
CLIENT_SLIS: tuple[str, ...] = ("availability", "latency", "ttft", "itl", "tpot", "quality", "goodput")
LATENCY_COLUMNS = {"latency": "e2e_ms", "ttft": "ttft_ms", "itl": "itl_ms", "tpot": "tpot_ms"}
GOOD, BAD, UNKNOWN = 1, 0, -1


@dataclass(frozen=True)
class SliSpec:
    """One SLO as the client judges it: objective as a ratio, threshold for latency kinds."""

    slo: str
    kind: ClientSli
    objective: float
    threshold_ms: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in CLIENT_SLIS:
            raise ValueError(f"unknown client SLI {self.kind!r}")
        if self.kind in LATENCY_COLUMNS and self.threshold_ms is None:
            raise ValueError(f"{self.slo}: a {self.kind} SLI needs a threshold")


def per_second(load: pd.DataFrame, spec: SliSpec) -> pd.DataFrame:
    """Columns `ts, total, bad, status, last_bad_ts` (status GOOD/BAD/UNKNOWN per second)."""
    if load.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype=float) for c in ("ts", "total", "bad", "status", "last_bad_ts")}
        )
    frame = with_ts(load)
    total, bad, last_bad = _events(frame, spec)
    with np.errstate(divide="ignore", invalid="ignore"):
        good_share = np.where(total > 0, (total - bad) / np.maximum(total, 1), np.nan)
    status = np.where(
        total > 0,
        np.where(good_share >= spec.objective - 1e-12, GOOD, BAD),
        BAD if spec.kind == "availability" else UNKNOWN,
    )
    return pd.DataFrame(
        {
            "ts": frame["ts"].astype(float).to_numpy(),
            "total": total,
            "bad": bad,
            "status": status.astype(int),
            "last_bad_ts": last_bad,
        }
    )


def bad_and_total(load: pd.DataFrame, spec: SliSpec) -> tuple[float, float]:
    """Bad and total events of the SLI over the whole frame (for the error budget)."""
    if load.empty:
        return 0.0, 0.0
    total, bad, _ = _events(with_ts(load), spec)
    return float(bad.sum()), float(total.sum())


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.zeros(len(frame), dtype=float)
    return frame[name].astype(float).fillna(0.0).to_numpy()


def _times(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").astype(float).to_numpy()


def _events(frame: pd.DataFrame, spec: SliSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(total, bad, time of the second's last bad event or NaN) per row."""
    nan = np.full(len(frame), np.nan)
    if spec.kind == "availability":
        return _column(frame, "requests"), _column(frame, "failures"), _times(frame, "last_failure_ts")
    if spec.kind == "quality":
        return _column(frame, "judged"), _column(frame, "wrong"), _times(frame, "last_wrong_ts")
    if spec.kind == "goodput":
        requests = _column(frame, "requests")
        return requests, requests - np.minimum(_column(frame, "good"), requests), nan
    column = LATENCY_COLUMNS[spec.kind]
    assert spec.threshold_ms is not None
    empty = pd.Series([{}] * len(frame))
    hists = frame.get(column, empty)
    # A request that failed after waiting longer than the TTFT threshold without a token missed the
    # TTFT target too (its TTFT, had it come, would be longer still): a hung node is seen here.
    censored = frame["ttft_censored_ms"] if spec.kind == "ttft" and "ttft_censored_ms" in frame else empty
    totals, bads = [], []
    for raw, waited in zip(hists, censored, strict=True):
        h = histogram.as_hist(raw)
        n = histogram.count(h)
        w = histogram.as_hist(waited)
        too_long = histogram.count(w) - histogram.count_at_or_below(w, spec.threshold_ms)
        totals.append(n + too_long)
        bads.append(n - histogram.count_at_or_below(h, spec.threshold_ms) + too_long)
    return np.asarray(totals, dtype=float), np.asarray(bads, dtype=float), nan
