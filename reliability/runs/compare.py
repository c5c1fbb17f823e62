"""Objectives across runs of one scenario, and regressions against a baseline run.

An objective regresses when its measured value grew by more than `tolerance` (relative) and by more
than a floor for its unit (so 0.2 s -> 0.4 s of TTD is noise, not a regression), whether or not it
still meets its target: RTO from 12 s to 25 s against 30 s is worth a red build before it crosses.
Every objective the harness judges is an upper limit (measured <= target), so larger is worse.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from reliability.errors import InputError
from reliability.runs.discover import RunSummary

DEFAULT_TOLERANCE = 0.25
# Smallest change that counts as a regression, per unit: a second of time, a percentage point of
# error budget, one more silent alert.
FLOORS = {"s": 1.0, "ratio": 0.01, "silent": 0.5}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunRef(_Strict):
    name: str
    path: str
    started_ts: float | None
    status: str


class ObjectiveTrend(_Strict):
    name: str
    unit: str
    target: float | None = Field(description="The latest run's target.")
    values: list[float | None] = Field(description="Measured per run, in the order of `runs`.")
    verdicts: list[str | None]
    change: float | None = Field(None, description="Latest minus the run before it.")
    change_ratio: float | None = Field(None, description="`change` relative to the run before it.")


class Comparison(_Strict):
    scenario: str
    runs: list[RunRef]
    objectives: list[ObjectiveTrend]


class Regression(_Strict):
    objective: str
    unit: str
    baseline: float
    current: float
    target: float
    change_ratio: float | None
    meets_target: bool
    baseline_run: str

    def sentence(self, tolerance: float) -> str:
        grew = f"+{self.change_ratio:.0%}" if self.change_ratio is not None else "from 0"
        limit = (
            f"still within its target {self.target:g} {self.unit}"
            if self.meets_target
            else f"over its target {self.target:g} {self.unit}"
        )
        return (
            f"{self.objective}: {self.baseline:.3g} {self.unit} -> {self.current:.3g} {self.unit} "
            f"({grew}, tolerance {tolerance:.0%}; baseline {self.baseline_run}), {limit}"
        )


def compare(runs: list[RunSummary]) -> Comparison:
    if not runs:
        raise InputError("runs", "no run to compare")
    scenarios = {r.scenario for r in runs}
    if len(scenarios) > 1:
        odd = next(r for r in runs if r.scenario != runs[0].scenario)
        raise InputError(
            odd.path,
            f"scenario {odd.scenario!r} differs from {runs[0].scenario!r}: compare runs of one scenario",
        )
    names: list[str] = []
    for r in runs:
        names += [o.name for o in r.objectives if o.name not in names]
    trends = []
    for name in names:
        cells = [r.objective(name) for r in runs]
        values = [c.value if c else None for c in cells]
        latest = next((c for c in reversed(cells) if c is not None), None)
        change = ratio = None
        if len(values) >= 2 and values[-1] is not None and values[-2] is not None:
            change = values[-1] - values[-2]
            ratio = change / values[-2] if values[-2] else None
        trends.append(
            ObjectiveTrend(
                name=name,
                unit=latest.unit if latest else "",
                target=latest.target if latest else None,
                values=values,
                verdicts=[c.verdict if c else None for c in cells],
                change=change,
                change_ratio=ratio,
            )
        )
    refs = [RunRef(name=r.name, path=r.path, started_ts=r.started_ts, status=r.status) for r in runs]
    return Comparison(scenario=runs[0].scenario, runs=refs, objectives=trends)


def regressions(
    baseline: RunSummary, current: RunSummary, tolerance: float = DEFAULT_TOLERANCE
) -> list[Regression]:
    """Objectives of `current` measured worse than in `baseline` beyond the tolerance."""
    if tolerance < 0:
        raise InputError("--tolerance", "must be >= 0")
    out = []
    for now in current.objectives:
        before = baseline.objective(now.name)
        if before is None or before.value is None or now.value is None:
            continue
        growth = now.value - before.value
        if growth <= FLOORS.get(now.unit, 0.0) or now.value <= before.value * (1.0 + tolerance):
            continue
        out.append(
            Regression(
                objective=now.name,
                unit=now.unit,
                baseline=before.value,
                current=now.value,
                target=now.target,
                change_ratio=growth / before.value if before.value else None,
                meets_target=now.verdict == "pass",
                baseline_run=baseline.name,
            )
        )
    return out


def baseline_for(candidates: list[RunSummary], current: RunSummary) -> RunSummary | None:
    """The latest judged run of the same scenario that started before `current` (not itself)."""
    judged = [
        r
        for r in candidates
        if r.scenario == current.scenario
        and r.status in ("passed", "failed")
        and r.path != current.path
        and (current.started_ts is None or r.started_ts is None or r.started_ts < current.started_ts)
    ]
    return judged[-1] if judged else None
