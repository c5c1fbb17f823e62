"""Reading a game-day run directory (layout: docs/architecture.md) into frames and records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reliability.errors import InputError
from reliability.files import load_yaml, parse_model
from reliability.load.reader import read_jsonl, read_load_stats
from reliability.scenario import Scenario


@dataclass
class RunData:
    root: Path
    scenario: Scenario
    timeline: list[dict[str, Any]]
    events: list[dict[str, Any]]
    load: pd.DataFrame
    canary: pd.DataFrame | None
    series: dict[str, pd.DataFrame] = field(default_factory=dict)
    previous_error: str | None = None


def read_canary(path: Path) -> pd.DataFrame | None:
    """`canary_writes.jsonl` -> one row per write (`seq, ts, acked, survived`); None without a
    survivors record, since without the read-back nothing can be said about loss."""
    records = read_jsonl(Path(path))
    writes = [r for r in records if r.get("kind") == "write"]
    survivors = [r for r in records if r.get("kind") == "survivors"]
    if not writes or not survivors:
        return None
    kept = {int(s) for s in survivors[-1].get("seqs", [])}
    frame = pd.DataFrame(writes)
    frame["acked"] = frame.get("acked", False).astype(bool)
    frame["survived"] = frame["seq"].astype(int).isin(kept)
    return frame[["seq", "ts", "acked", "survived"]]


def read_run(root: Path) -> RunData:
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "run directory not found")
    scenario_path = root / "scenario.yaml"
    if not scenario_path.is_file():
        raise InputError(str(scenario_path), "missing: not a game-day run directory")
    # The copy's relative paths pointed next to the original file, so only the model is checked here.
    scenario = parse_model(Scenario, load_yaml(scenario_path), scenario_path)
    series: dict[str, pd.DataFrame] = {}
    for csv in sorted((root / "series").glob("*.csv")):
        try:
            series[csv.stem] = pd.read_csv(csv)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(str(csv), f"unreadable CSV: {exc}") from exc
    previous_error = None
    result_path = root / "result.json"
    if result_path.is_file():
        try:
            previous_error = json.loads(result_path.read_text(encoding="utf-8")).get("error")
        except (ValueError, AttributeError):
            previous_error = None
    return RunData(
        root=root,
        scenario=scenario,
        timeline=read_jsonl(root / "timeline.jsonl"),
        events=read_jsonl(root / "events.jsonl"),
        load=read_load_stats(root / "load_stats.jsonl"),
        canary=read_canary(root / "canary_writes.jsonl"),
        series=series,
        previous_error=previous_error,
    )
