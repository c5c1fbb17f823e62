"""The seams to the other areas' APIs (load generator, RPO canary, reports), in one place.

Imports are local: Locust runs in its own process behind `reliability.load`, and pandas/plotly
are only loaded when a run gets that far.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from reliability.files import write_atomic
from reliability.gameday.rundir import RunDir
from reliability.gameday.target import TargetInfo
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
        stack.enter_context(_canary(info, rd))
        yield


def _canary(info: TargetInfo, rd: RunDir) -> Any:
    from reliability.load import CanaryWriter

    return CanaryWriter(state_file=info.state_file, out_path=rd.canary_writes)


def build_reports(run_dir: Path) -> dict[str, Any]:
    from reliability.report import build_reports as build

    return build(Path(run_dir)).model_dump()


def write_error_result(run_dir: Path, scenario: str, error: str) -> None:
    """A run the harness could not finish: result.json says so, junit.xml carries an <error>.
    Reports built afterwards keep the error (`RunData.previous_error`)."""
    from reliability.report import RunResult
    from reliability.report.junit import junit_xml

    result = RunResult(scenario=scenario, passed=False, error=error)
    write_atomic(Path(run_dir) / "result.json", result.model_dump_json(indent=2) + "\n")
    write_atomic(Path(run_dir) / "junit.xml", junit_xml(result))
