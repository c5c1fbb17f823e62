"""One game day, start to finish: target up -> load -> baseline -> chaos experiment (inject, hold,
roll back) -> recovery observation -> series pulled -> reports -> exit code.

Safety first: whatever happens (exception, Ctrl-C, SIGTERM), the `finally` path interrupts the
chaos child (it plays its rollbacks: strategy `always`), then undoes every fault still active in
the ledger, then stops load and the lab. A SIGKILL skips all of that: the chaos child notices it
was orphaned and rolls back by itself, the lab's supervisor heals and tears itself down, and
`reliability recover RUN_DIR` finishes the job from the ledger and says in result.json that the
run was killed.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from reliability.chaos.jsonl import append_record, read_records, stamp
from reliability.chaos.ledger import ledger_for_state
from reliability.chaos.runner import ExperimentProcess, ExperimentRunSpec, validate_experiment
from reliability.errors import HarnessError, InputError
from reliability.gameday import integrations
from reliability.gameday.interrupts import RunInterrupted, interrupts
from reliability.gameday.judge import LiveJudge
from reliability.gameday.live import LiveStats, LiveView, Snapshot, ViewMode
from reliability.gameday.livefeed import PhasePlan
from reliability.gameday.series import pull_series
from reliability.gameday.target import LabTarget, TargetInfo
from reliability.report.model import RunResult
from reliability.rundir import RunDir, RunInfo, read_run_info, write_run_info
from reliability.scenario import Scenario, load_scenario, resolve
from reliability.slo.model import SLO

TICK = 0.5  # seconds between checks of the run's state; bounds every wait loop together with a deadline
CHAOS_MARGIN = 120.0  # experiment overhead (steady-state probes, rollbacks) beyond the fault hold
ROLLBACK_GRACE = 60.0  # how long an interrupted experiment may take to roll back before SIGKILL


@dataclass
class GameDayOutcome:
    run_dir: Path
    exit_code: int
    result: RunResult | None = None
    postmortem: Path | None = None
    error: str | None = None
    interrupted_by: str | None = None
    faults_undone_by_harness: list[str] = field(default_factory=list)


@dataclass
class _Run:
    scenario: Scenario
    scenario_path: Path
    slos: list[SLO]
    rd: RunDir
    view: LiveView
    info: RunInfo
    t0: float = field(default_factory=time.monotonic)
    phase: str = "setup"
    stats: LiveStats | None = None

    def mark(self, phase: str, **fields: Any) -> None:
        self.phase = phase
        append_record(self.rd.timeline, {**stamp(), "event": "gameday_phase", "name": phase, **fields})
        # run.json keeps the phase of the game day proper: the clean-up after an interruption is
        # not where the run was interrupted.
        if phase not in ("end", "rollback"):
            self.info.phase = phase
            write_run_info(self.rd.run_info, self.info)
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


def prepare(scenario_path: Path) -> tuple[Scenario, list[SLO]]:
    """Everything that can be checked before anything starts (InputError -> exit 2)."""
    from reliability.gameday.validate import check_scenario, scenario_slos
    from reliability.lab.config import load_lab_config
    from reliability.lab.lab import default_rule_files
    from reliability.runbooks.cli import runbook_dir

    scenario = load_scenario(scenario_path)
    validate_experiment(resolve(scenario_path, scenario.experiment.file), scenario.experiment.configuration)
    slos = scenario_slos(scenario, scenario_path)
    if scenario.target.config:
        load_lab_config(resolve(scenario_path, scenario.target.config))
    check_scenario(scenario, scenario_path, slos, default_rule_files(), runbook_dir(None))
    return scenario, slos


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in (
        "reliability-harness",
        "chaostoolkit-lib",
        "chaostoolkit",
        "locust",
        "prometheus-api-client",
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


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
    scenario, slos = prepare(scenario_path)
    if workers is not None:
        scenario = scenario.model_copy(update={"load": scenario.load.model_copy(update={"workers": workers})})
    rd = RunDir.create(scenario.name, out, scenario_path)
    info = RunInfo(
        scenario=scenario.name,
        started_ts=time.time(),
        host=socket.gethostname(),
        pid=os.getpid(),
        versions=_versions(),
    )
    write_run_info(rd.run_info, info)
    live = LiveView(scenario.name, view, console, plan=PhasePlan.of(scenario), timeline=rd.timeline)
    run = _Run(scenario, scenario_path, slos, rd, live, info)
    outcome = GameDayOutcome(run_dir=rd.root, exit_code=2)
    with interrupts() as intr, run.view:
        run.view.interrupts = intr  # the live view says "rolling back" once a signal arrived
        try:
            _execute(run, outcome)
        except RunInterrupted as exc:
            outcome.interrupted_by = str(exc)
        except (HarnessError, InputError) as exc:
            outcome.error = str(exc)
        except Exception as exc:  # a bug of ours still leaves result.json and junit.xml saying why
            outcome.error = f"harness failure: {type(exc).__name__}: {exc}"
        finally:
            if intr.received and outcome.interrupted_by is None:
                outcome.interrupted_by = "signal"
            run.mark("end", interrupted_by=outcome.interrupted_by, error=outcome.error)
    _finish(run, outcome, interrupted_in=run.info.phase)
    if outcome.interrupted_by:
        outcome.exit_code = intr.exit_code or 130
    return outcome


def _execute(run: _Run, outcome: GameDayOutcome) -> None:
    sc, rd = run.scenario, run.rd
    run.mark("setup", load_workers=sc.load.workers)
    # The reports charge each budget against these SLOs (objective, period); keep them with the run.
    rd.slos.mkdir(exist_ok=True)
    for rel in sc.slos:
        shutil.copyfile(resolve(run.scenario_path, rel), rd.slos / Path(rel).name)
    with LabTarget(sc, run.scenario_path, rd.lab_dir) as target:
        info = target.info
        assert info is not None
        _record_target_versions(run, info)
        run.stats = LiveStats(
            rd.load_stats,
            info.prometheus_url,
            None,
            timeline=rd.timeline,
            slos=run.slos,
            expected_alerts=sc.objectives.alert_names(),
        )
        judge = LiveJudge(rd.load_stats, integrations.client_specs(run.slos), sc.phases.recovered_hold)
        total = sc.phases.baseline + sc.phases.fault_hold + sc.phases.recovery_max + CHAOS_MARGIN
        chaos: ExperimentProcess | None = None
        try:
            with integrations.start_load(sc, run.scenario_path, info, rd, total, run.slos):
                run.mark("baseline")
                run.wait(sc.phases.baseline)
                run.mark("chaos")
                inject_ts = time.time()
                chaos = _start_chaos(run, info)
                if not run.wait(sc.phases.fault_hold + CHAOS_MARGIN, until=lambda: chaos.poll() is not None):
                    raise HarnessError(f"chaos experiment still running after {CHAOS_MARGIN}s past its hold")
                journal = chaos.journal()
                run.mark("recovery", chaos_exit=chaos.poll(), journal_status=(journal or {}).get("status"))
                fault_end = time.time()
                run.wait(sc.phases.recovery_max, until=lambda: judge.settled(inject_ts, fault_end))
                if judge.saw_impact(inject_ts):
                    # Prometheus' SLI is a rate over the SLO's shortest window and sees recovery that
                    # much later: keep the load on so its cross-check of the RTO has its hold too.
                    run.wait(integrations.prometheus_lag_s(run.slos) + sc.phases.recovered_hold)
                run.mark("observed")
        finally:
            _make_safe(run, chaos, info, outcome)
            _collect(run, info)


def _record_target_versions(run: _Run, info: TargetInfo) -> None:
    """Prometheus' version (its build info) and the model the target serves, into run.json."""
    import json

    import requests

    try:
        resp = requests.get(f"{info.prometheus_url.rstrip('/')}/api/v1/status/buildinfo", timeout=2)
        run.info.versions["prometheus"] = str(resp.json()["data"]["version"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        pass
    try:
        state = json.loads(Path(info.state_file).read_text(encoding="utf-8"))
        model = " ".join(str(state[k]) for k in ("served_model_name", "model_version") if state.get(k))
    except (OSError, ValueError, AttributeError):
        model = ""
    if model:
        run.info.versions["model"] = model
    write_run_info(run.rd.run_info, run.info)


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
    ledger = ledger_for_state(info.state_file)
    if not ledger.exists():  # interrupted before any fault was recorded: nothing to undo
        return
    from reliability.chaos.recover import recover

    for r in recover(ledger):
        outcome.faults_undone_by_harness.append(f"{r.fault}: {r.undo} ({'ok' if r.ok else r.error})")
        append_record(run.rd.timeline, {**stamp(), "event": "harness_recover", "fault": r.fault, "ok": r.ok})


def _collect(run: _Run, info: TargetInfo) -> None:
    """Copy the ground truth and pull Prometheus' view before the lab goes away (best effort)."""
    if info.events_path.exists():
        shutil.copyfile(info.events_path, run.rd.events)
    ledger = ledger_for_state(info.state_file)
    if ledger.exists():
        shutil.copyfile(ledger, run.rd.ledger)
    try:
        first = min((r["ts"] for r in read_records(run.rd.timeline)), default=time.time() - 3600)
        failed = pull_series(info.prometheus_url, run.rd.series, first - 5, time.time())
        if failed:
            append_record(run.rd.timeline, {**stamp(), "event": "series_query_failed", "series": failed})
    except Exception as exc:  # the run's own data must survive a Prometheus hiccup
        append_record(run.rd.timeline, {**stamp(), "event": "series_pull_failed", "error": str(exc)})


def _finish(run: _Run, outcome: GameDayOutcome, interrupted_in: str) -> None:
    """run.json says how the run ended, then reports from whatever the run left; the exit code
    from the verdicts."""
    info = read_run_info(run.rd.run_info) or run.info
    info.ended_ts = time.time()
    info.error = outcome.error
    if outcome.interrupted_by:
        info.interrupted = f"{outcome.interrupted_by} in {interrupted_in}"
    write_run_info(run.rd.run_info, info)
    try:
        result = integrations.build_reports(run.rd.root)
    except Exception as exc:  # a failed report is a harness failure, exit 2
        outcome.error = outcome.error or f"building reports failed: {exc}"
        integrations.write_error_result(run.rd.root, run.scenario.name, outcome.error, info.interrupted)
        outcome.exit_code = 2
        return
    outcome.result = result
    outcome.postmortem = run.rd.postmortem if run.rd.postmortem.exists() else None
    if result.status == "error":  # a harness failure, or e.g. a fault that was never injected
        outcome.error = outcome.error or result.error
        outcome.exit_code = 2
    else:
        outcome.exit_code = 0 if result.passed else 1
