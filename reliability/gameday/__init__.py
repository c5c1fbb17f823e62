"""Game-day orchestration.

Public API:
- `run_gameday(scenario_path, out=None, view="off"|"lines"|"live", console=None, workers=None)
  -> GameDayOutcome`
  (`.run_dir`, `.exit_code` 0 pass / 1 objective violated / 2 harness error / 128+N interrupted,
  `.result` (result.json as a dict), `.postmortem`, `.error`, `.interrupted_by`).
- `prepare(scenario_path) -> Scenario`: every check that needs nothing running (InputError).
- `gate(paths, junit=None, out_root=None, view="off", workers=None) -> (int, outcomes)`: several
  scenarios, one exit code.
- `rebuild_reports(run_dir) -> dict`: reports again from a run directory.
"""

from reliability.gameday.gate import gate, rebuild_reports
from reliability.gameday.orchestrator import GameDayOutcome, prepare, run_gameday

__all__ = ["GameDayOutcome", "gate", "prepare", "rebuild_reports", "run_gameday"]
