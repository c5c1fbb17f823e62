"""Game-day runs over time: find the run directories of a scenario, compare what each objective
measured across them, and tell when an objective regressed beyond a tolerance while it still meets
its target (`reliability runs list|compare`, `reliability gate --baseline`).

Pure functions over `result.json` files (`reliability.report.model.RunResult`); nothing re-analysed.
Modules: `discover` (find runs, `RunSummary`), `compare` (`compare`, `regressions`), `baseline`
(`gate --baseline`), `cli`. Nothing is imported here, so that `reliability --help` stays fast.
"""
