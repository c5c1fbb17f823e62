"""Game-day runs over time: find the run directories of a scenario, compare what each objective
measured across them, and tell when an objective regressed beyond a tolerance while it still meets
its target (`reliability runs list|compare`, `reliability gate --baseline`).

Pure functions over `result.json` files (`reliability.report.model.RunResult`); nothing re-analysed.
"""

from reliability.runs.compare import Comparison, ObjectiveTrend, Regression, compare, regressions
from reliability.runs.discover import RunSummary, find_runs, previous_runs, read_summary

__all__ = [
    "Comparison",
    "ObjectiveTrend",
    "Regression",
    "RunSummary",
    "compare",
    "find_runs",
    "previous_runs",
    "read_summary",
    "regressions",
]
