"""Game-day analysis: pure functions over pandas frames and records, no I/O.

- `sli.per_second(load, SliSpec)`: a client-side SLI second by second (good / bad / unknown).
- `recovery.*`: RTO (`rto_from_seconds`, `rto_from_series` for the Prometheus cross-check),
  `capacity_rto` over a series, one definition of "back within objective and held".
- `capacity.*`: ready GPU nodes replayed from ground-truth `node_state` events.
- `detection.*`: alert episodes, TTD per severity, silent expected and unexpected alerts.
- `impact.*`: per phase totals and percentiles from merged histograms.
- `budget.*`, `rpo.*`, `objectives.*` (verdicts: pass or fail, never "no data").
"""

from reliability.analysis.budget import budget_spent, budget_spent_over_time, budget_used, burn_rate
from reliability.analysis.capacity import CapacityLoss, capacity_recovery, ready_count
from reliability.analysis.detection import AlertReport, Episode, ExpectedAlerts, analyse_alerts, episodes, ttd
from reliability.analysis.impact import PhaseImpact, impact
from reliability.analysis.objectives import (
    Measured,
    ObjectiveResult,
    ObjectiveTargets,
    SliOutcome,
    all_passed,
    verdicts,
)
from reliability.analysis.recovery import (
    Recovery,
    baseline_share,
    capacity_rto,
    recovery,
    rto_from_seconds,
    rto_from_series,
)
from reliability.analysis.rpo import FailedWrites, Rpo, failed_writes, rpo
from reliability.analysis.sli import CLIENT_SLIS, SliSpec, per_second

__all__ = [
    "CLIENT_SLIS",
    "AlertReport",
    "CapacityLoss",
    "Episode",
    "ExpectedAlerts",
    "FailedWrites",
    "Measured",
    "ObjectiveResult",
    "ObjectiveTargets",
    "PhaseImpact",
    "Recovery",
    "Rpo",
    "SliOutcome",
    "SliSpec",
    "all_passed",
    "analyse_alerts",
    "baseline_share",
    "budget_spent",
    "budget_spent_over_time",
    "budget_used",
    "burn_rate",
    "capacity_recovery",
    "capacity_rto",
    "episodes",
    "failed_writes",
    "impact",
    "per_second",
    "ready_count",
    "recovery",
    "rpo",
    "rto_from_seconds",
    "rto_from_series",
    "ttd",
    "verdicts",
]
