"""`reliability recover`: undo the faults a crashed game day left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def recover_command(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="A fault ledger, a lab dir or a run dir (default: $RELIABILITY_LAB_DIR or .lab).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Undo every fault still recorded as active in the fault ledger, and tear down any lab left
    behind by a crash (idempotent)."""
    from reliability.chaos.recover import recover
    from reliability.chaos.state import default_lab_dir
    from reliability.gameday.killed import mark_killed_runs
    from reliability.lab import reap_crashed

    results = recover(path)
    # A game day killed with its own lab leaves no fault running, but namespaces, routes and
    # processes nobody will stop: those go too (a lab whose supervisor still runs is left alone).
    for state_file, removed in reap_crashed(path if path is not None else default_lab_dir()).items():
        typer.echo(f"torn down: crashed lab {state_file}" + (f" ({', '.join(removed)})" if removed else ""))
    for run_dir in mark_killed_runs(path if path is not None else default_lab_dir()):
        typer.echo(f"marked as killed: {run_dir} (result.json says so)")
    if not results:
        typer.echo("no active faults recorded; nothing to undo")
        return
    failed = 0
    for r in results:
        mark = "undone" if r.ok else "FAILED"
        extra = f" ({r.error or r.note})" if r.error or r.note else ""
        typer.echo(f"{mark}: {r.fault} via {r.undo}{extra}  [{r.ledger}]")
        failed += not r.ok
    if failed:
        typer.echo(f"{failed} fault(s) could not be undone; run `reliability recover` again", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount the chaos commands on the root app."""
    app.command("recover")(recover_command)
