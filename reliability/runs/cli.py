"""`reliability runs list [DIR]` and `reliability runs compare RUN RUN...`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "?"


def _value(v: float | None, unit: str) -> str:
    from reliability.report.summary import with_unit

    return with_unit(v, unit)


def _console() -> object:
    from rich.console import Console

    # A pipe gets the whole table: names are never cut.
    return Console(width=None if typer.get_text_stream("stdout").isatty() else 200)


@app.command("list")
def list_command(
    directory: Annotated[Path, typer.Argument(help="Where the run directories are.")] = Path("runs"),
    scenario: Annotated[str | None, typer.Option("--scenario", help="Only this scenario's runs.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The game-day runs under DIR, oldest first: scenario, start, status and each objective."""
    from rich.table import Table

    from reliability.runs.discover import find_runs, summary_json

    runs = find_runs(directory, scenario)
    if as_json:
        typer.echo(summary_json(runs), nl=False)
        return
    if not runs:
        typer.echo(f"no game-day runs under {directory}")
        return
    table = Table(show_lines=False)
    for col in ("run", "scenario", "started (UTC)", "status", "objectives"):
        table.add_column(col, overflow="fold")
    for r in runs:
        objectives = ", ".join(f"{o.name} {_value(o.measured, o.unit)} ({o.verdict})" for o in r.objectives)
        table.add_row(r.name, r.scenario, _when(r.started_ts), r.status, objectives)
    _console().print(table)  # type: ignore[attr-defined]


@app.command("compare")
def compare_command(
    runs: Annotated[list[Path], typer.Argument(help="Run directories of one scenario, oldest first.")],
    as_json: JsonOption = False,
) -> None:
    """Each objective's measured value across runs of the same scenario, with the change from the
    run before the last."""
    from rich.table import Table

    from reliability.runs.compare import compare
    from reliability.runs.discover import load_runs

    result = compare(load_runs(runs))
    if as_json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2))
        return
    table = Table(title=f"{result.scenario}: {len(result.runs)} runs")
    table.add_column("objective", overflow="fold")
    table.add_column("target", justify="right")
    for run in result.runs:
        table.add_column(f"{run.name}\n{_when(run.started_ts)}", justify="right", overflow="fold")
    table.add_column("change", justify="right")
    for t in result.objectives:
        cells = [
            _value(v, t.unit) + ("" if verdict in (None, "pass") else " FAIL")
            for v, verdict in zip(t.values, t.verdicts, strict=True)
        ]
        change = "n/a"
        if t.change is not None:
            change = f"{t.change:+.3g} {t.unit}" + (
                f" ({t.change_ratio:+.0%})" if t.change_ratio is not None else ""
            )
        table.add_row(t.name, _value(t.target, t.unit), *cells, change)
    _console().print(table)  # type: ignore[attr-defined]
