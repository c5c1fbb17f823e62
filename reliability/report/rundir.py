"""Reading a game-day run directory (layout: docs/architecture.md) into frames and records."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from reliability.errors import InputError
from reliability.files import load_yaml, parse_model
from reliability.load.reader import read_jsonl, read_load_stats
from reliability.scenario import Scenario

T = TypeVar("T")


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


# What reading a damaged run file can raise besides InputError: pandas on mixed types, int() of
# garbage or of a number too large for int64, a directory where a file should be, nesting too
# deep for json.
_READ_ERRORS = (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError, OverflowError)


def _reading(path: Path, what: str, read: Callable[[], T]) -> T:
    """`read()`, with any failure turned into one line naming the file."""
    try:
        return read()
    except InputError:
        raise
    except RecursionError as exc:
        raise InputError(str(path), f"unreadable {what}: nested too deeply") from exc
    except _READ_ERRORS as exc:
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise InputError(str(path), f"unreadable {what}: {detail}") from exc


def read_canary(path: Path) -> pd.DataFrame | None:
    """`canary_writes.jsonl` -> one row per write (`seq, ts, acked, survived`); None without a
    survivors record, since without the read-back nothing can be said about loss."""
    return _reading(Path(path), "canary records", lambda: _read_canary(Path(path)))


def _read_canary(path: Path) -> pd.DataFrame | None:
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
        except (pd.errors.EmptyDataError, pd.errors.ParserError, *_READ_ERRORS) as exc:
            detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise InputError(str(csv), f"unreadable CSV: {detail}") from exc
    previous_error = None
    result_path = root / "result.json"
    if result_path.is_file():
        try:
            previous = json.loads(result_path.read_text(encoding="utf-8"))
            error = previous.get("error") if isinstance(previous, dict) else None
            previous_error = error if isinstance(error, str) else None
        except _READ_ERRORS:
            previous_error = None  # a damaged old result.json is rebuilt, not needed
    return RunData(
        root=root,
        scenario=scenario,
        timeline=_reading(root / "timeline.jsonl", "JSON lines", lambda: read_jsonl(root / "timeline.jsonl")),
        events=_reading(root / "events.jsonl", "JSON lines", lambda: read_jsonl(root / "events.jsonl")),
        load=_reading(
            root / "load_stats.jsonl", "load statistics", lambda: read_load_stats(root / "load_stats.jsonl")
        ),
        canary=read_canary(root / "canary_writes.jsonl"),
        series=series,
        previous_error=previous_error,
    )
