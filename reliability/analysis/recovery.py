"""Recovery, measured: injection -> the SLI back within its objective and held there.

One definition serves the live view, the report and the Prometheus cross-check: `recovery()` over
per-second statuses (GOOD / BAD / UNKNOWN, see `reliability.analysis.sli`). A sample covers
[ts, next ts). Recovery is the start of the first stretch after the first bad sample that begins
with a good sample, contains no bad sample and lasts `hold_s`, and is not followed by a relapse
while the fault can still be the cause; when the bad second just before it knows its last bad
event, recovery is placed at that moment instead of the next second's boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from reliability.analysis._frames import with_ts
from reliability.analysis.sli import BAD, GOOD, UNKNOWN

Status = Literal["recovered", "no_impact", "unrecovered", "unmeasured", "baseline_violated"]


@dataclass(frozen=True)
class Recovery:
    status: Status
    rto_seconds: float | None
    impact_start_ts: float | None = None
    recovered_ts: float | None = None
    detail: str = ""


def recovery(
    ts: np.ndarray,
    status: np.ndarray,
    inject_ts: float,
    hold_s: float,
    last_bad: np.ndarray | None = None,
    step: float = 1.0,
    impact_by: float | None = None,
    counts: tuple[np.ndarray, np.ndarray, float] | None = None,
) -> Recovery:
    """Over samples at/after injection. `unmeasured` when no sample says anything (all unknown).

    With `counts` (total and bad events per sample, and the objective), "held" means what an SLO
    means: over the `hold_s` that follow, the SLI meets its objective - so a lone noisy second in
    the hold (two slow token gaps too many) does not restart the clock, while any second that served
    nothing does. Without counts (a Prometheus ratio series), every sample of the hold must be good.

    `impact_by`: an SLI that first leaves its objective only after this moment (the fault removed
    and the hold past) was not hurt by the fault - a blip of its own - and is `no_impact`, said so.
    A stretch that held is still no recovery when the SLI relapses before `impact_by` (or the end of
    the data without it): a queue that drains for a few seconds while the fault is still in place
    has not recovered. A relapse is judged like a hold: a bad second that starts `hold_s` missing
    the objective (with counts), or any bad sample (without).
    """
    ts = np.asarray(ts, dtype=float)
    status = np.asarray(status, dtype=int)
    keep = ts + step > inject_ts  # the sample the injection falls in belongs to the fault
    ts, status = ts[keep], status[keep]
    if last_bad is not None:
        last_bad = np.asarray(last_bad, dtype=float)[keep]
    if ts.size == 0 or not np.any(status != UNKNOWN):
        return Recovery("unmeasured", None, detail="no sample of this SLI after the injection")
    bad_idx = np.flatnonzero(status == BAD)
    if bad_idx.size == 0:
        return Recovery("no_impact", None, detail="never left its objective")
    impact_start = max(float(ts[bad_idx[0]]), inject_ts)
    if impact_by is not None and impact_start >= impact_by:
        return Recovery(
            "no_impact",
            None,
            detail=f"never left its objective during the fault (a blip {impact_start - inject_ts:.0f} s "
            "after injection, once the fault was gone, is not the fault's)",
        )
    end_of_data = float(ts[-1]) + step
    if counts is not None:
        total, bad = (np.asarray(a, dtype=float)[keep] for a in counts[:2])
        objective = counts[2]
    for i in np.flatnonzero(status == GOOD):
        if i <= bad_idx[0]:
            continue
        prev_bad = bad_idx[bad_idx < i]
        if counts is None:
            # Only the first good sample after a bad one can start a recovery; none bad may follow.
            if np.any(status[prev_bad[-1] + 1 : i] == GOOD):
                continue
            later_bad = bad_idx[bad_idx > i]
            run_end = float(ts[later_bad[0]]) if later_bad.size else end_of_data
            if run_end - float(ts[i]) < hold_s:
                continue
        else:
            if float(ts[i]) + hold_s > end_of_data + 1e-9:
                break  # not observed long enough to say it held
            if _misses(ts, status, total, bad, objective, i, hold_s):
                continue
        relapse_before = end_of_data if impact_by is None else impact_by
        later = [k for k in bad_idx[bad_idx > i] if float(ts[k]) < relapse_before]
        if counts is None and later:
            continue
        if counts is not None and any(_misses(ts, status, total, bad, objective, k, hold_s) for k in later):
            continue
        recovered = float(ts[i])
        j = prev_bad[-1]
        if last_bad is not None and j == i - 1 and np.isfinite(last_bad[j]):
            recovered = min(recovered, max(float(last_bad[j]), float(ts[j])))
        recovered = max(recovered, inject_ts)
        return Recovery("recovered", recovered - inject_ts, impact_start, recovered)
    return Recovery("unrecovered", None, impact_start, detail="not back within objective and held")


def _misses(
    ts: np.ndarray,
    status: np.ndarray,
    total: np.ndarray,
    bad: np.ndarray,
    objective: float,
    i: int,
    hold_s: float,
) -> bool:
    """Whether the `hold_s` from sample `i` miss the objective over their events (or serve nothing)."""
    window = (ts >= ts[i]) & (ts < ts[i] + hold_s)
    events = float(total[window].sum())
    if np.any(window & (status == BAD) & (total <= 0)) or events <= 0:
        return True
    return (events - float(bad[window].sum())) / events < objective - 1e-12


def rto_from_seconds(
    frame: pd.DataFrame,
    inject_ts: float,
    hold_s: float,
    impact_by: float | None = None,
    objective: float | None = None,
) -> Recovery:
    """`recovery()` over a per-second SLI frame (`reliability.analysis.sli.per_second`); with the
    SLO's `objective`, the hold is judged on the events it holds (see `recovery`)."""
    if frame.empty:
        return Recovery("unmeasured", None, detail="no client data")
    return recovery(
        frame["ts"].to_numpy(dtype=float),
        frame["status"].to_numpy(dtype=int),
        inject_ts,
        hold_s,
        frame["last_bad_ts"].to_numpy(dtype=float) if "last_bad_ts" in frame else None,
        impact_by=impact_by,
        counts=None
        if objective is None
        else (frame["total"].to_numpy(dtype=float), frame["bad"].to_numpy(dtype=float), objective),
    )


def rto_from_series(
    series: pd.DataFrame,
    inject_ts: float,
    max_error_ratio: float,
    hold_s: float,
    impact_by: float | None = None,
) -> Recovery:
    """The same over a Prometheus error-ratio series (`ts`/`timestamp`, `value`): a sample within
    `max_error_ratio` is good, above it bad, NaN (no traffic in the window) unknown."""
    frame = with_ts(series)
    if frame.empty:
        return Recovery("unmeasured", None, detail="no Prometheus samples")
    values = frame["value"].astype(float).to_numpy()
    status = np.where(np.isnan(values), UNKNOWN, np.where(values <= max_error_ratio + 1e-12, GOOD, BAD))
    ts = frame["ts"].astype(float).to_numpy()
    step = float(np.min(np.diff(np.unique(ts)))) if np.unique(ts).size > 1 else 1.0
    return recovery(ts, status, inject_ts, hold_s, step=step, impact_by=impact_by)


def capacity_rto(series: pd.DataFrame, inject_ts: float, hold_s: float) -> Recovery:
    """Injection -> serving capacity (`value`, e.g. ready GPU nodes) back at its level just before
    the injection, held for `hold_s`. `no_impact` when it never dropped."""
    frame = with_ts(series)
    before = frame[frame["ts"] < inject_ts]["value"].astype(float)
    if before.empty:
        return Recovery("unmeasured", None, detail="no capacity sample before the injection")
    baseline = float(before.iloc[-1])
    after = frame[frame["ts"] >= inject_ts]
    if after.empty:
        return Recovery("unmeasured", None, detail="no capacity sample after the injection")
    ts = after["ts"].astype(float).to_numpy()
    status = np.where(after["value"].astype(float).to_numpy() >= baseline - 1e-9, GOOD, BAD)
    step = float(np.min(np.diff(ts))) if ts.size > 1 else 1.0
    return recovery(ts, status, inject_ts, hold_s, step=step)


def baseline_share(frame: pd.DataFrame, start_ts: float, inject_ts: float) -> tuple[float | None, int]:
    """(good share, events) of a per-second SLI frame over [start_ts, inject_ts)."""
    part = frame[(frame["ts"] >= start_ts) & (frame["ts"] + 1.0 <= inject_ts)]
    total = float(part["total"].sum()) if not part.empty else 0.0
    if total <= 0:
        return None, 0
    return (total - float(part["bad"].sum())) / total, int(total)
