"""The seams to the other areas' APIs (load generator, RPO canary, reports), in one place.

Imports are local: Locust runs in its own process behind `reliability.load`, and pandas/plotly
are only loaded when a run gets that far.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from reliability.files import write_atomic, write_json_atomic
from reliability.gameday.rundir import RunDir
from reliability.gameday.target import TargetInfo
from reliability.gameday.verdicts import junit_xml
from reliability.scenario import Scenario, resolve


@contextmanager
def start_load(
    sc: Scenario, scenario_path: Path, info: TargetInfo, rd: RunDir, duration_s: float
) -> Iterator[None]:
    """Locust (own process) plus the RPO canary writer, both stopped on exit whatever happens."""
    from reliability.load import LoadRun

    locustfile = str(resolve(scenario_path, sc.load.locustfile)) if sc.load.locustfile else None
    with ExitStack() as stack:
        load = LoadRun(
            target_url=info.endpoint,
            users=sc.load.users,
            spawn_rate=sc.load.spawn_rate,
            shape=sc.load.shape,
            duration_s=duration_s,
            out_dir=rd.root,
            locustfile=locustfile,
            workers=sc.load.workers,
        )
        stack.enter_context(load)
        canary = _canary(info, rd)
        if canary is not None:
            stack.enter_context(canary)
        yield


def _canary(info: TargetInfo, rd: RunDir) -> Any:
    try:
        from reliability.load import CanaryWriter  # type: ignore[attr-defined]
    except ImportError:
        return None
    return CanaryWriter(state_file=info.state_file, out_path=rd.canary_writes)


def build_reports(run_dir: Path) -> dict[str, Any]:
    from reliability.report import build_reports as build

    result = build(Path(run_dir))
    if hasattr(result, "model_dump"):
        return dict(result.model_dump())
    return dict(result)


def write_error_result(run_dir: Path, scenario: str, error: str) -> None:
    """A run the harness could not finish: result.json says so, junit.xml carries an <error>."""
    write_json_atomic(Path(run_dir) / "result.json", {"scenario": scenario, "passed": False, "error": error})
    write_atomic(Path(run_dir) / "junit.xml", junit_xml([(scenario, [], error)]))


def mark_error(run_dir: Path, error: str) -> None:
    path = Path(run_dir) / "result.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    doc["passed"] = False
    doc["error"] = error
    write_json_atomic(path, doc)
