"""Reading a game-day run directory (layout: `reliability.rundir.RunDir`) into frames,
records and the SLOs the run was judged against."""

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
from reliability.rundir import RunDir, RunInfo, read_run_info
from reliability.scenario import Scenario
from reliability.slo.model import SLO

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
    slos: list[SLO] = field(default_factory=list)
    info: RunInfo | None = None
    series_end: float | None = None  # when Prometheus was last sampled (series/range.json)


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
    frame["acked"] = frame["acked"].astype(bool) if "acked" in frame else False
    frame["survived"] = frame["seq"].astype(int).isin(kept)
    return frame[["seq", "ts", "acked", "survived"]]


def read_slos(rd: RunDir, scenario: Scenario) -> list[SLO]:
    """The SLOs of the copies kept with the run (`slos/<name>`), in the scenario's order."""
    from reliability.slo import load_slo_files

    copies = [rd.slos / Path(rel).name for rel in scenario.slos]
    found = [p for p in copies if p.is_file()]
    return [slo for svc in load_slo_files(found) for slo in svc.slos] if found else []


def read_run(root: Path) -> RunData:
    rd = RunDir(Path(root))
    if not rd.root.is_dir():
        raise InputError(str(rd.root), "run directory not found")
    if not rd.scenario.is_file():
        raise InputError(str(rd.scenario), "missing: not a game-day run directory")
    # The copy's relative paths pointed next to the original file, so only the model is checked here.
    scenario = parse_model(Scenario, load_yaml(rd.scenario), rd.scenario)
    series: dict[str, pd.DataFrame] = {}
    for csv in sorted(rd.series.glob("*.csv")):
        try:
            series[csv.stem] = pd.read_csv(csv)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, *_READ_ERRORS) as exc:
            detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise InputError(str(csv), f"unreadable CSV: {detail}") from exc
    return RunData(
        root=rd.root,
        scenario=scenario,
        timeline=_reading(rd.timeline, "JSON lines", lambda: read_jsonl(rd.timeline)),
        events=_reading(rd.events, "JSON lines", lambda: read_jsonl(rd.events)),
        load=_reading(rd.load_stats, "load statistics", lambda: read_load_stats(rd.load_stats)),
        canary=read_canary(rd.canary_writes),
        series=series,
        slos=read_slos(rd, scenario),
        info=read_run_info(rd.run_info),
        series_end=_series_end(rd.series / "range.json"),
    )


def _series_end(path: Path) -> float | None:
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["end"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
