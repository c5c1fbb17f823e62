"""While the run is going: has every client-side SLI of the scenario recovered and held?

The same definitions the report uses (`reliability.analysis`), applied to what the load generator
has written so far, so the live view, the orchestrator's recovery wait and the final verdict can
never disagree about what "recovered" means.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reliability import analysis
from reliability.analysis.sli import SliSpec
from reliability.load.reader import read_load_stats


@dataclass(frozen=True)
class SliState:
    slo: str
    status: str  # recovered | no_impact | unrecovered | unmeasured
    rto_seconds: float | None


class LiveJudge:
    def __init__(self, load_stats: Path, specs: list[SliSpec], hold_s: float) -> None:
        self.load_stats = load_stats
        self.specs = specs
        self.hold_s = hold_s

    def states(self, inject_ts: float) -> list[SliState]:
        load = read_load_stats(self.load_stats)
        out = []
        for spec in self.specs:
            seconds = analysis.per_second(load, spec)
            rec = analysis.rto_from_seconds(seconds, inject_ts, self.hold_s, objective=spec.objective)
            out.append(SliState(spec.slo, rec.status, rec.rto_seconds))
        return out

    def settled(self, inject_ts: float, fault_end_ts: float) -> bool:
        """Every SLI is back within objective and held since the fault was removed (or never left
        it): the "after" picture then always has `hold_s` seconds of traffic in it."""
        for state in self.states(inject_ts):
            if state.status == "unrecovered":
                return False
            held_until = inject_ts + (state.rto_seconds or 0.0) + self.hold_s
            if state.status == "recovered" and held_until > self._last_second() + 1.0:
                return False
        return self._last_second() + 1.0 >= fault_end_ts + self.hold_s

    def saw_impact(self, inject_ts: float) -> bool:
        return any(s.status in ("recovered", "unrecovered") for s in self.states(inject_ts))

    def _last_second(self) -> float:
        load = read_load_stats(self.load_stats)
        return float(load["ts"].max()) if not load.empty else 0.0
