"""Serving capacity (ready GPU nodes) from the target's ground-truth events.

Whoever changes a node's readiness writes a `node_state` event (`node`, `region`, `ready`) to
`events.jsonl`: the lab's node when its engine is up and warm, the controller when it declares a
node lost or cordons it, the Kubernetes watch on a real cluster. Replaying them gives the ready
count at any moment, exact to the event's timestamp; Prometheus' view is the cross-check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reliability.analysis.recovery import Recovery

NODE_STATE = "node_state"


def ready_count(events: Iterable[dict[str, Any]], region: str | None = None) -> pd.DataFrame:
    """Step function of ready nodes (`ts`, `value`), one row per change, from `node_state` events."""
    ready: dict[str, bool] = {}
    rows: list[tuple[float, int]] = []
    for ev in sorted((e for e in events if e.get("event") == NODE_STATE), key=lambda e: float(e["ts"])):
        if region is not None and ev.get("region") != region:
            continue
        node = str(ev.get("node"))
        ready[node] = bool(ev.get("ready"))
        count = sum(ready.values())
        if not rows or rows[-1][1] != count:
            rows.append((float(ev["ts"]), count))
    return pd.DataFrame(rows, columns=["ts", "value"]).astype({"ts": float, "value": float})


@dataclass(frozen=True)
class CapacityLoss:
    baseline: int
    lowest: int
    recovery: Recovery


def capacity_recovery(
    steps: pd.DataFrame, inject_ts: float, hold_s: float, observed_until: float
) -> CapacityLoss | None:
    """From a ready-count step function: the level just before injection, the lowest level after
    it, and when it was back at the baseline and held for `hold_s` (within `observed_until`).
    None when no level is known before the injection."""
    before = steps[steps["ts"] <= inject_ts]
    if before.empty:
        return None
    baseline = int(before["value"].iloc[-1])
    after = steps[steps["ts"] > inject_ts]
    levels = [(inject_ts, baseline), *zip(after["ts"].astype(float), after["value"].astype(int), strict=True)]
    lowest = min(level for _, level in levels)
    drop = next((ts for ts, level in levels if level < baseline), None)
    if drop is None:
        return CapacityLoss(baseline, lowest, Recovery("no_impact", None, detail="no capacity lost"))
    for i, (ts, level) in enumerate(levels):
        if ts < drop or level < baseline:
            continue
        next_drop = next((t for t, lv in levels[i + 1 :] if lv < baseline), observed_until)
        if next_drop - ts >= hold_s:
            return CapacityLoss(baseline, lowest, Recovery("recovered", ts - inject_ts, drop, ts))
    return CapacityLoss(
        baseline, lowest, Recovery("unrecovered", None, drop, detail="capacity not restored and held")
    )
