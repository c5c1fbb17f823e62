"""One game day, start to finish: target up -> load -> baseline -> chaos experiment (inject, hold,
roll back) -> recovery observation -> series pulled -> reports -> exit code.

Safety first: whatever happens (exception, Ctrl-C, SIGTERM), the `finally` path interrupts the
chaos child (it plays its rollbacks: strategy `always`), then undoes every fault still active in
the ledger, then stops load and the lab. A SIGKILL skips all of that; `reliability recover`
finishes the job from the ledger.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from reliability.chaos.jsonl import append_record, stamp
from reliability.chaos.ledger import ledger_for_state
from reliability.chaos.probes import error_ratio_query
from reliability.chaos.runner import ExperimentProcess, ExperimentRunSpec, validate_experiment
from reliability.errors import HarnessError
from reliability.gameday import integrations
from reliability.gameday.interrupts import RunInterrupted, interrupts
from reliability.gameday.live import LiveStats, LiveView, Snapshot, ViewMode, recovered_at
from reliability.gameday.rundir import RunDir
from reliability.gameday.series import RATE_WINDOW_S, SERIES, pull_series
from reliability.gameday.target import LabTarget, TargetInfo
from reliability.scenario import Scenario, load_scenario, resolve

TICK = 0.5  # seconds between checks of the run's state; bounds every wait loop together with a deadline
CHAOS_MARGIN = 120.0  # experiment overhead (steady-state probes, rollbacks) beyond the fault hold
ROLLBACK_GRACE = 60.0  # how long an interrupted experiment may take to roll back before SIGKILL


@dataclass
class GameDayOutcome:
    run_dir: Path
    exit_code: int
    result: dict[str, Any] | None = None
    postmortem: Path | None = None
    error: str | None = None
    interrupted_by: str | None = None
    faults_undone_by_harness: list[str] = field(default_factory=list)


@dataclass
class _Run:
    scenario: Scenario
    scenario_path: Path
    rd: RunDir
    view: LiveView
    t0: float = field(default_factory=time.monotonic)
    phase: str = "setup"
    stats: LiveStats | None = None

    def mark(self, phase: str, **fields: Any) -> None:
        self.phase = phase
        append_record(self.rd.timeline, {**stamp(), "event": "gameday_phase", "name": phase, **fields})
        elapsed = time.monotonic() - self.t0
        if self.view.due(phase, elapsed):
            # No Prometheus query here: at "end" the target may already be gone.
            snap = (
                self.stats.snapshot(phase, elapsed, with_burn=False)
                if self.stats is not None
                else Snapshot(phase, elapsed, None, None, None)
            )
            self.view.update(snap)

    def tick(self, note: str = "") -> None:
        elapsed = time.monotonic() - self.t0
        if self.stats is not None and self.view.due(self.phase, elapsed):
            self.view.update(self.stats.snapshot(self.phase, elapsed), note)
        time.sleep(TICK)

    def wait(self, seconds: float, until: Callable[[], bool] | None = None, note: str = "") -> bool:
        """Sleep up to `seconds` in ticks; True if `until` became true first."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and until():
                return True
            self.tick(note)
        return bool(until and until())


def prepare(scenario_path: Path) -> Scenario:
    """Everything that can be checked before anything starts (InputError -> exit 2)."""
    from reliability.lab.config import load_lab_config
    from reliability.slo import load_slo_files

    scenario = load_scenario(scenario_path)
    validate_experiment(resolve(scenario_path, scenario.experiment.file), scenario.experiment.configuration)
    load_slo_files([resolve(scenario_path, s) for s in scenario.slos])
    if scenario.target.config:
        load_lab_config(resolve(scenario_path, scenario.target.config))
    return scenario


def run_gameday(
    scenario_path: Path,
    out: Path | None = None,
    view: ViewMode = "off",
    console: Console | None = None,
    workers: int | None = None,
) -> GameDayOutcome:
    """One game day. `view`: progress as a live table (`live`), log lines (`lines`) or none.
    `workers` overrides the scenario's Locust worker count (0: local runner)."""
    scenario_path = Path(scenario_path)
    scenario = prepare(scenario_path)
    if workers is not None:
        scenario = scenario.model_copy(update={"load": scenario.load.model_copy(update={"workers": workers})})
    rd = RunDir.create(scenario.name, out, scenario_path)
    run = _Run(scenario, scenario_path, rd, LiveView(scenario.name, view, console))
    outcome = GameDayOutcome(run_dir=rd.root, exit_code=2)
    with interrupts() as intr, run.view:
        try:
            _execute(run, outcome)
        except RunInterrupted as exc:
            outcome.interrupted_by = str(exc)
            outcome.error = f"interrupted by {exc}"
        except HarnessError as exc:
            outcome.error = str(exc)
        finally:
            run.mark("end", interrupted_by=outcome.interrupted_by, error=outcome.error)
        if intr.received:
            outcome.interrupted_by = outcome.interrupted_by or "signal"
    _finish(run, outcome)
    if outcome.interrupted_by:
        outcome.exit_code = intr.exit_code or 130
    return outcome


def _execute(run: _Run, outcome: GameDayOutcome) -> None:
    sc, rd = run.scenario, run.rd
    run.mark("setup", load_workers=sc.load.workers)
    # The reports charge the budget against these SLOs (objective, period); keep them with the run.
    for rel in sc.slos:
        (rd.root / "slos").mkdir(exist_ok=True)
        shutil.copyfile(resolve(run.scenario_path, rel), rd.root / "slos" / Path(rel).name)
    with LabTarget(sc, run.scenario_path, rd.lab_dir) as target:
        info = target.info
        assert info is not None
        run.stats = LiveStats(rd.load_stats, info.prometheus_url, _burn_query(sc))
        total = sc.phases.baseline + sc.phases.fault_hold + sc.phases.recovery_max + CHAOS_MARGIN
        chaos: ExperimentProcess | None = None
        try:
            with integrations.start_load(sc, run.scenario_path, info, rd, total):
                run.mark("baseline")
                run.wait(sc.phases.baseline)
                run.mark("chaos")
                chaos_since = time.time()
                chaos = _start_chaos(run, info)
                if not run.wait(sc.phases.fault_hold + CHAOS_MARGIN, until=lambda: chaos.poll() is not None):
                    raise HarnessError(f"chaos experiment still running after {CHAOS_MARGIN}s past its hold")
                journal = chaos.journal()
                run.mark("recovery", chaos_exit=chaos.poll(), journal_status=(journal or {}).get("status"))
                objective, hold = sc.slo_objective, sc.phases.recovered_hold
                # Recovered means held within objective *after* the fault was removed, so the
                # "after" picture always has `recovered_hold` seconds of traffic in it.
                since = time.time()
                run.wait(
                    sc.phases.recovery_max,
                    until=lambda: recovered_at(_samples(run, since), objective, hold) is not None,
                )
                if sc.sli == "availability" and _saw_impact(_samples(run, chaos_since), objective):
                    # Prometheus' SLI is a rate over RATE_WINDOW_S and sees the recovery that much
                    # later: keep the load on so its cross-check of the RTO has its hold too.
                    run.wait(RATE_WINDOW_S + 1)
                run.mark("observed")
        finally:
            _make_safe(run, chaos, info, outcome)
            _collect(run, info)


def _burn_query(sc: Scenario) -> str:
    return f"({error_ratio_query('10s')}) / {1.0 - sc.slo_objective:g}"


def _saw_impact(samples: list[tuple[float, float | None]], objective: float) -> bool:
    return any(v is not None and v < objective for _, v in samples)


def _samples(run: _Run, since: float = 0.0) -> list[tuple[float, float | None]]:
    """Per-second SLI samples of whole seconds from `since` on."""
    if run.stats is None:
        return []
    samples = run.stats.quality_samples() if run.scenario.sli == "quality" else run.stats.success_samples()
    return [(t, v) for t, v in samples if t >= since]


def _start_chaos(run: _Run, info: TargetInfo) -> ExperimentProcess:
    sc, rd = run.scenario, run.rd
    config = {
        "lab_state": str(info.state_file),
        "prometheus_url": info.prometheus_url,
        "fault_hold": sc.phases.fault_hold,
        **sc.experiment.configuration,
    }
    spec = ExperimentRunSpec(
        experiment=str(resolve(run.scenario_path, sc.experiment.file)),
        journal=str(rd.journal),
        timeline=str(rd.timeline),
        log=str(rd / "chaostoolkit.log"),
        configuration=config,
        guardrails=[g.model_dump() for g in sc.guardrails],
        prometheus_url=info.prometheus_url,
        env={
            "RELIABILITY_LAB_STATE": str(info.state_file),
            "RELIABILITY_PROMETHEUS_URL": info.prometheus_url,
        },
    )
    return ExperimentProcess(spec, rd / "experiment-run.json").start()


def _make_safe(run: _Run, chaos: ExperimentProcess | None, info: TargetInfo, outcome: GameDayOutcome) -> None:
    """Bring the target back to no faults, whatever state the run is in."""
    if chaos is not None and chaos.poll() is None:
        run.mark("rollback", reason="run ended while the experiment was still running")
        chaos.interrupt(grace=ROLLBACK_GRACE)
    from reliability.chaos.recover import recover

    for r in recover(ledger_for_state(info.state_file)):
        outcome.faults_undone_by_harness.append(f"{r.fault}: {r.undo} ({'ok' if r.ok else r.error})")
        append_record(run.rd.timeline, {**stamp(), "event": "harness_recover", "fault": r.fault, "ok": r.ok})


def _collect(run: _Run, info: TargetInfo) -> None:
    """Copy the ground truth and pull Prometheus' view before the lab goes away (best effort)."""
    if info.events_path.exists():
        shutil.copyfile(info.events_path, run.rd.events)
    ledger = ledger_for_state(info.state_file)
    if ledger.exists():
        shutil.copyfile(ledger, run.rd / "fault-ledger.jsonl")
    try:
        first = min((r["ts"] for r in _timeline(run.rd)), default=time.time() - 3600)
        written = pull_series(info.prometheus_url, run.rd.series, first - 5, time.time())
        if failed := sorted(set(SERIES) - set(written)):
            append_record(run.rd.timeline, {**stamp(), "event": "series_query_failed", "series": failed})
    except Exception as exc:  # the run's own data must survive a Prometheus hiccup
        append_record(run.rd.timeline, {**stamp(), "event": "series_pull_failed", "error": str(exc)})


def _timeline(rd: RunDir) -> list[dict[str, Any]]:
    from reliability.chaos.jsonl import read_records

    return read_records(rd.timeline)


def _finish(run: _Run, outcome: GameDayOutcome) -> None:
    """Reports from whatever the run left; the exit code from the verdicts."""
    if outcome.error:  # written first, so that the reports built next carry it
        integrations.write_error_result(run.rd.root, run.scenario.name, outcome.error)
    try:
        result = integrations.build_reports(run.rd.root)
    except Exception as exc:  # a failed report is a harness failure, exit 2
        outcome.error = outcome.error or f"building reports failed: {exc}"
        integrations.write_error_result(run.rd.root, run.scenario.name, outcome.error)
        outcome.exit_code = 2
        return
    outcome.result = result
    outcome.postmortem = run.rd.postmortem if run.rd.postmortem.exists() else None
    if result.get("error"):  # a harness failure, or e.g. a fault that was never injected
        outcome.error = outcome.error or str(result["error"])
        outcome.exit_code = 2
    else:
        outcome.exit_code = 0 if result.get("passed") else 1
