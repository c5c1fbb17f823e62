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


def rpo(writes: pd.DataFrame, fault_ts: float) -> Rpo | None:
    """`writes`: one row per write (`seq, ts, acked, survived`), `ts` = when it was acknowledged.

    RPO = last write acknowledged before the fault minus the last acknowledged one that survived
    failover, in seconds; lost = acknowledged before the fault but not surviving. None without any
    acknowledged write before the fault (nothing to measure against).
    """
    if writes.empty:
        return None
    acked = writes[writes["acked"].astype(bool) & (writes["ts"].astype(float) < fault_ts)]
    if acked.empty:
        return None
    last_acked = float(acked["ts"].max())
    survived = acked[acked["survived"].astype(bool)]
    lost = int((~acked["survived"].astype(bool)).sum())
    if survived.empty:
        first = float(acked["ts"].min())
        return Rpo(last_acked - first, lost, last_acked, None)
    last_survived = float(survived["ts"].max())
    return Rpo(max(0.0, last_acked - last_survived), lost, last_acked, last_survived)
