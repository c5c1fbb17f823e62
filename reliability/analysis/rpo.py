"""Recovery point, measured from the canary writer's sequence-numbered, acknowledged writes."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Rpo:
    rpo_seconds: float
    lost_writes: int
    last_acked_ts: float | None
    last_survived_ts: float | None


def rpo(writes: pd.DataFrame, fault_ts: float, landed_ts: float | None = None) -> Rpo | None:
    """`writes`: one row per write (`seq, ts, acked, survived`), `ts` = when it was acknowledged.

    RPO = last write acknowledged before the fault minus the last acknowledged one that survived
    failover, in seconds; lost = acknowledged before the fault but not surviving. None without any
    acknowledged write before the fault (nothing to measure against).

    `fault_ts` is when the injection began; the fault lands during the injecting call, so writes
    acknowledged until it returned (`landed_ts`) may be lost too and count as before the fault.
    """
    if writes.empty:
        return None
    cutoff = max(fault_ts, landed_ts or fault_ts)
    acked = writes[writes["acked"].astype(bool) & (writes["ts"].astype(float) < cutoff)]
    if acked.empty:
        return None
    survived_mask = acked["survived"].astype(bool)
    lost = int((~survived_mask).sum())
    # Before the injection began, or lost: a write acknowledged while the fault was landing that
    # survived says nothing about the data the fault destroyed.
    before = acked[(acked["ts"].astype(float) < fault_ts) | ~survived_mask]
    if before.empty:
        return None
    last_acked = float(before["ts"].max())
    survived = before[before["survived"].astype(bool)]
    if survived.empty:
        first = float(before["ts"].min())
        return Rpo(last_acked - first, lost, last_acked, None)
    last_survived = float(survived["ts"].max())
    return Rpo(max(0.0, last_acked - last_survived), lost, last_acked, last_survived)


@dataclass(frozen=True)
class FailedWrites:
    count: int
    first_ts: float | None
    last_ts: float | None

    @property
    def span_seconds(self) -> float:
        return 0.0 if self.first_ts is None or self.last_ts is None else self.last_ts - self.first_ts


def failed_writes(writes: pd.DataFrame, since: float, until: float | None = None) -> FailedWrites:
    """Canary writes the store did not acknowledge in [since, until]: writes users would have
    seen fail while the store failed over."""
    if writes.empty:
        return FailedWrites(0, None, None)
    ts = writes["ts"].astype(float)
    mask = ~writes["acked"].astype(bool) & (ts >= since)
    if until is not None:
        mask &= ts <= until
    failed = ts[mask]
    if failed.empty:
        return FailedWrites(0, None, None)
    return FailedWrites(int(failed.size), float(failed.min()), float(failed.max()))
