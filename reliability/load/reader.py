"""Reading what the load generator and canary wrote (no Locust import: safe in any process).

`read_jsonl` is the package's one JSON-lines reader (a torn last line - a crash mid-write - is
skipped). `read_load_stats` reads `load_stats.jsonl` v2 (docs/twin.md section 3) and v1 (lines
without `v` and without histograms) alike.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from reliability.load.buckets import normalize

LOAD_COLUMNS = ["ts", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms"]
HIST_COLUMNS = ["e2e_ms", "ttft_ms", "itl_ms", "tpot_ms", "ttft_censored_ms"]
COUNT_COLUMNS = ["prompt_tokens", "output_tokens", "judged", "wrong", "good"]
TS_COLUMNS = ["first_failure_ts", "last_failure_ts", "last_wrong_ts"]
DICT_COLUMNS = ["codes", "errors"]


def read_jsonl(path: Path | str, tail_bytes: int | None = None) -> list[dict[str, Any]]:
    """The JSON-object records of a JSON-lines file; lines that do not parse (a torn line from a
    crash mid-write) are skipped, a missing or unreadable file is empty. `tail_bytes`: read only
    the file's last bytes (a live view's cheap poll), dropping the partial first line."""
    try:
        with open(path, "rb") as fh:
            cut = False
            if tail_bytes is not None:
                size = fh.seek(0, os.SEEK_END)
                cut = size > tail_bytes
                fh.seek(max(0, size - tail_bytes))
            raw = fh.read()
    except OSError:
        return []
    lines = raw.decode("utf-8", errors="replace").splitlines()
    out: list[dict[str, Any]] = []
    for line in lines[1:] if cut else lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _fold_late(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge `late` lines (samples that arrived after their second was written) into that second."""
    if not any(r.get("late") for r in records):
        return records
    from reliability.load.buckets import Bucket, stats_line

    late: dict[float, Bucket] = {}
    for r in records:
        if r.get("late"):
            late.setdefault(float(r["ts"]), Bucket()).merge(r)
    out = []
    for r in records:
        if r.get("late"):
            continue
        extra = late.pop(float(r.get("ts", -1)), None)
        if extra is not None:
            bucket = Bucket()
            bucket.merge(r)
            bucket.merge(extra.to_wire())
            r = {**r, **stats_line(int(r["ts"]), bucket, r.get("users"))}
        out.append(r)
    return out


def read_load_stats(path: Path | str) -> pd.DataFrame:
    """`load_stats.jsonl` -> one row per second, sorted by `ts`.

    Columns: LOAD_COLUMNS (`rps` = requests of that one-second line), `users`, `codes` and `errors`
    (dicts), the counts (COUNT_COLUMNS, 0 when a v1 line lacks them), the timestamps (TS_COLUMNS,
    NaN when none), and the histograms (HIST_COLUMNS) as dicts {bucket value (float): count}, empty
    for v1 lines; merge them with `reliability.load.buckets.merge_all`.
    """
    records = _fold_late(read_jsonl(path))
    frame = pd.DataFrame(records)
    n = len(frame)
    for col in ("ts", "requests", "failures", "p50_ms", "p95_ms", "p99_ms", "users", *TS_COLUMNS):
        frame[col] = (
            pd.to_numeric(frame[col], errors="coerce") if col in frame else pd.Series([float("nan")] * n)
        )
    for col in ("requests", "failures", *COUNT_COLUMNS):
        if col in frame:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").fillna(0).astype(int)
        else:
            frame[col] = pd.Series([0] * n, dtype=int)
    if n and frame["ts"].isna().any():
        bad = int(frame["ts"].isna().to_numpy().nonzero()[0][0]) + 1
        raise ValueError(f"record {bad}: `ts` is not a number of seconds")
    frame["rps"] = frame["requests"].astype(float)
    for col in DICT_COLUMNS:
        values = frame[col] if col in frame else pd.Series([None] * n)
        frame[col] = [dict(v) if isinstance(v, dict) else {} for v in values]
    for col in HIST_COLUMNS:
        values = frame[col] if col in frame else pd.Series([None] * n)
        frame[col] = [normalize(v) if isinstance(v, dict) else {} for v in values]
    if n == 0:
        return frame
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)
