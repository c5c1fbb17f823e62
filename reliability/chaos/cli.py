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
    """Undo every fault still recorded as active in the fault ledger (idempotent)."""
    from reliability.chaos.recover import recover

    results = recover(path)
    if not results:
        typer.echo("no active faults recorded; nothing to undo")
        return
    failed = 0
    for r in results:
        mark = "undone" if r.ok else "FAILED"
        extra = f" ({r.error})" if r.error else ""
        typer.echo(f"{mark}: {r.fault} via {r.undo}{extra}  [{r.ledger}]")
        failed += not r.ok
    if failed:
        typer.echo(f"{failed} fault(s) could not be undone; run `reliability recover` again", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Mount the chaos commands on the root app."""
    app.command("recover")(recover_command)
