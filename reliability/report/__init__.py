"""Game-day reports, rebuilt from the files of a run directory.

Public API:
- `build_reports(run_dir, runbook_dir=None, runbook_base_url=None) -> RunResult`: analyses the run
  directory (docs/architecture.md layout) and writes `result.json`, `junit.xml`, `postmortem.md`,
  `report.html` (self-contained, plotly inlined). Bad/missing inputs -> `InputError`. Runbooks are
  linked at the configured base URL ($RELIABILITY_RUNBOOK_BASE_URL), else copied into the run
  directory's `runbooks/` and linked there (`reliability.report.links`).
- `RunResult` (pydantic, extra="forbid"; `reliability.report.model`): the `result.json` format -
  verdicts per objective with their evidence, every SLI, alert episodes, detection per severity,
  findings, capacity, RPO, GPU failure stages, impact per phase, and what chaos tools report (run
  metadata, hypothesis before/after, activities and rollbacks, guardrails, client errors).
  `result_json_schema()`.
- `read_run(run_dir) -> RunData`, `analyse(RunData) -> RunResult` (no writing).

Injection time = the first `activity_start` action in the chaos timeline's `method` phase (else the
lab's first fault event); end of the fault = `rollback_start`.
"""

from reliability.report.analyze import analyse
from reliability.report.build import build_reports
from reliability.report.model import ObjectiveVerdict, PhaseSummary, RunResult, result_json_schema
from reliability.report.rundir import RunData, read_run

__all__ = [
    "ObjectiveVerdict",
    "PhaseSummary",
    "RunData",
    "RunResult",
    "analyse",
    "build_reports",
    "read_run",
    "result_json_schema",
]
