"""`reliability gameday run|plan`, `reliability gate`, `reliability report`: thin Typer commands over
`reliability.gameday`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

gameday_app = typer.Typer(no_args_is_help=True)

WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=0,
        max=64,
        help="Locust worker processes (distributed mode on loopback); overrides the scenario's load.workers.",
    ),
]


def _summary(outcome: object) -> None:
    from reliability.gameday import GameDayOutcome

    assert isinstance(outcome, GameDayOutcome)
    from reliability.report.summary import with_unit

    result = outcome.result
    for obj in result.objectives if result is not None else []:
        detail = f" - {obj.detail}" if obj.detail else ""
        typer.echo(
            f"  {obj.name}: {with_unit(obj.measured, obj.unit)} (target {with_unit(obj.target, obj.unit)}) "
            f"{obj.verdict}{detail}"
        )
    for finding in result.findings if result is not None else []:
        typer.echo(f"  finding: {finding.message}")
    if outcome.faults_undone_by_harness:
        typer.echo("  faults undone by the harness: " + "; ".join(outcome.faults_undone_by_harness))
    if outcome.error:
        typer.echo(f"error: {outcome.error}", err=True)
    verdict = {0: "PASSED", 1: "FAILED"}.get(
        outcome.exit_code, "INTERRUPTED" if outcome.interrupted_by else "NOT JUDGED"
    )
    typer.echo(f"{verdict}: run directory {outcome.run_dir}")
    if outcome.postmortem is not None:
        typer.echo(f"post-mortem: {outcome.postmortem}")


def _plan(scenario: Path) -> None:
    """Print what a run of a Kubernetes scenario would touch (its changes sent with dryRun=All);
    exit 0 when the plan holds, 2 when it is refused (a refusal before anything is sent: exit 2 too)."""
    from reliability.gameday import prepare
    from reliability.gameday.target import preflight
    from reliability.k8s.plan import plan_scenario, render_plan

    sc, _ = prepare(scenario)
    preflight(sc, scenario)
    plan = plan_scenario(sc, scenario)
    typer.echo(render_plan(plan))
    raise typer.Exit(0 if plan.ok else 2)


@gameday_app.command("plan")
def plan_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file with a Kubernetes target.")],
) -> None:
    """Show what a game day would touch on its cluster: context, server, nodes, namespaces, objects,
    the calls (sent with server-side dryRun=All), their undo and an access review per verb."""
    _plan(scenario)


@gameday_app.command("run")
def run_command(
    scenario: Annotated[Path, typer.Argument(help="Scenario file (scenarios/*.yaml).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Run directory (default runs/<name>-<UTC>).")
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live/--no-live", help="Live progress table on a terminal; else a line per phase."),
    ] = True,
    workers: WorkersOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Kubernetes target: only `gameday plan` (nothing changes, no load)."),
    ] = False,
) -> None:
    """Run one game day: load, fault, recovery, verdicts and a post-mortem."""
    from reliability.gameday import run_gameday

    if dry_run:
        _plan(scenario)

    view = "live" if live and sys.stdout.isatty() else "lines"
    outcome = run_gameday(scenario, out=out, view=view, workers=workers)
    _summary(outcome)
    raise typer.Exit(outcome.exit_code)


def gate_command(
    scenarios: Annotated[list[Path], typer.Argument(help="Scenario files.")],
    junit: Annotated[Path | None, typer.Option("--junit", help="Write one JUnit XML for all runs.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Parent directory of the run directories.")
    ] = None,
    workers: WorkersOption = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Earlier runs (e.g. runs/): fail when an objective regressed beyond --tolerance "
            "against the latest earlier run of its scenario, even if it still meets its target.",
        ),
    ] = None,
    tolerance: Annotated[
        float, typer.Option("--tolerance", min=0.0, help="Allowed growth of a measured value (0.25 = 25%).")
    ] = 0.25,
) -> None:
    """Run scenarios without the live view; exit 0 all objectives hold, 1 one violated (or regressed
    against --baseline), 2 error. The JUnit file is written in every case, errors included."""
    from reliability.errors import HarnessError, InputError
    from reliability.gameday import gate

    if baseline is not None and not baseline.is_dir():
        _junit_error(junit, f"--baseline {baseline}: directory not found")
        raise InputError(str(baseline), "baseline directory not found")
    try:
        code, outcomes = gate(scenarios, junit=junit, out_root=out, view="lines", workers=workers)
    except (InputError, HarnessError) as exc:
        _junit_error(junit, str(exc))  # the CI page says why nothing ran
        raise
    for o in outcomes:
        _summary(o)
    if baseline is not None:
        code = _check_baseline(outcomes, baseline, tolerance, junit, code)
    raise typer.Exit(code)


def _junit_error(junit: Path | None, why: str) -> None:
    if junit is None:
        return
    from reliability.files import write_atomic
    from reliability.report.junit import junit_xml
    from reliability.report.model import RunResult

    write_atomic(junit, junit_xml(RunResult(scenario="reliability-gate", status="error", error=why)))


def _check_baseline(
    outcomes: list[object], baseline: Path, tolerance: float, junit: Path | None, code: int
) -> int:
    from reliability.files import write_atomic
    from reliability.runs.baseline import junit_with_regressions, regressions_against

    found = regressions_against([o.run_dir for o in outcomes], baseline, tolerance)  # type: ignore[attr-defined]
    for scenario, (base, regressed) in found.items():
        if base is None:
            typer.echo(f"  {scenario}: no earlier run under {baseline} to compare with")
            continue
        for reg in regressed:
            typer.echo(f"  regression: {reg.sentence(tolerance)}")
        if not regressed:
            typer.echo(f"  {scenario}: no objective regressed beyond {tolerance:.0%} against {base}")
    if any(regressed for _, regressed in found.values()):
        if junit is not None and junit.is_file():
            write_atomic(junit, junit_with_regressions(junit.read_text(encoding="utf-8"), found, tolerance))
        return max(code, 1) if code in (0, 1) else code
    return code


def report_command(run_dir: Annotated[Path, typer.Argument(help="A game-day run directory.")]) -> None:
    """Rebuild postmortem.md, report.html, result.json and junit.xml from a run directory."""
    from reliability.gameday import rebuild_reports
    from reliability.report.summary import headline

    result = rebuild_reports(run_dir)
    typer.echo(f"{headline(result)}: reports rebuilt in {run_dir}")
    if result.error or result.interrupted:
        typer.echo(f"  {result.error or 'interrupted: ' + str(result.interrupted)}")
    typer.echo(f"post-mortem: {Path(run_dir) / 'postmortem.md'}")


def register(app: typer.Typer) -> None:
    """Mount the game-day commands on the root app."""
    app.add_typer(gameday_app, name="gameday", help="Chaos game days against a target.")
    app.command("gate")(gate_command)
    app.command("report")(report_command)
