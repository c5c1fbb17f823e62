"""Reading what the load generator and canary wrote (no Locust import: safe in any process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

LOAD_COLUMNS = ["ts", "requests", "failures", "rps", "p50_ms", "p95_ms", "p99_ms"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn line (crash mid-write) is skipped, a missing file is empty."""
    if not path.exists():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def read_load_stats(path: Path) -> pd.DataFrame:
    """`load_stats.jsonl` -> frame with at least LOAD_COLUMNS (plus `code_<status>` counts if present)."""
    records = read_jsonl(Path(path))
    frame = pd.DataFrame(records)
    for col in LOAD_COLUMNS:
        if col not in frame:
            frame[col] = pd.Series(dtype=float)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)
