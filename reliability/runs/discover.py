"""Finding run directories and what each one measured (`result.json`, `run.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reliability.errors import InputError
from reliability.report.model import RunResult
from reliability.rundir import read_run_info


class ObjectiveValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    measured: float | None
    target: float
    unit: str
    verdict: str
    detail: str = ""

    @property
    def value(self) -> float | None:
        """What the comparison uses: the measurement, and 0 for a pass with nothing to measure
        ("no visible impact": the SLI never left its objective, so there was nothing to recover)."""
        if self.measured is not None:
            return self.measured
        return 0.0 if self.verdict == "pass" else None


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The run directory's name.")
    path: str
    scenario: str
    status: str
    started_ts: float | None = None
    objectives: list[ObjectiveValue] = Field(default_factory=list)

    def objective(self, name: str) -> ObjectiveValue | None:
        return next((o for o in self.objectives if o.name == name), None)


def read_summary(run_dir: Path) -> RunSummary | None:
    """The summary of a judged or errored run; None for a directory without a readable result.json."""
    run_dir = Path(run_dir)
    try:
        result = RunResult.model_validate_json((run_dir / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError, UnicodeDecodeError):
        return None
    started = result.started_ts
    if started is None:
        info = read_run_info(run_dir / "run.json")
        started = info.started_ts if info else None
    return summary_of(result, name=run_dir.name, path=str(run_dir.resolve()), started_ts=started)


def summary_of(result: RunResult, name: str, path: str = "", started_ts: float | None = None) -> RunSummary:
    return RunSummary(
        name=name,
        path=path,
        scenario=result.scenario,
        status=result.status,
        started_ts=started_ts if started_ts is not None else result.started_ts,
        objectives=[
            ObjectiveValue(
                name=o.name,
                measured=o.measured,
                target=o.target,
                unit=o.unit,
                verdict=o.verdict,
                detail=o.detail,
            )
            for o in result.objectives
        ],
    )


def _order(s: RunSummary) -> tuple[float, str]:
    return (s.started_ts if s.started_ts is not None else float("inf"), s.name)


def find_runs(root: Path, scenario: str | None = None) -> list[RunSummary]:
    """Every run under `root` (itself, its children, and their children: `runs/<run>/` and
    `gate --out DIR` gives `DIR/<scenario>/`), oldest first."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "not a directory")
    found: dict[Path, RunSummary] = {}
    for candidate in [root, *root.glob("*/"), *root.glob("*/*/")]:
        if (candidate / "result.json").is_file():
            summary = read_summary(candidate)
            if summary is not None and (scenario is None or summary.scenario == scenario):
                found[candidate.resolve()] = summary
    return sorted(found.values(), key=_order)


def previous_runs(run_dir: Path, scenario: str, started_ts: float | None) -> list[RunSummary]:
    """Runs of the same scenario beside this one (sibling directories) that started before it."""
    run_dir = Path(run_dir).resolve()
    out = []
    for sibling in sorted(run_dir.parent.iterdir()) if run_dir.parent.is_dir() else []:
        if sibling.resolve() == run_dir or not (sibling / "result.json").is_file():
            continue
        summary = read_summary(sibling)
        if summary is None or summary.scenario != scenario:
            continue
        if started_ts is not None and (summary.started_ts is None or summary.started_ts >= started_ts):
            continue
        out.append(summary)
    return sorted(out, key=_order)


def load_runs(paths: list[Path]) -> list[RunSummary]:
    """The runs named on a command line, in the order given; each must have a result.json."""
    out = []
    for p in paths:
        if not (Path(p) / "result.json").is_file():
            raise InputError(str(p), "not a judged run directory (no result.json)")
        summary = read_summary(Path(p))
        if summary is None:
            raise InputError(str(Path(p) / "result.json"), "unreadable result.json")
        out.append(summary)
    return out


def summary_json(runs: list[RunSummary]) -> str:
    return json.dumps([r.model_dump(mode="json") for r in runs], indent=2) + "\n"
