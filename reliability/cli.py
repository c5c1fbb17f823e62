"""The `reliability` command: a thin Typer layer over the library.

Each command group lives next to the library it drives (`reliability/<area>/cli.py`)
and is mounted here. Heavy imports (chaoslib, pandas, plotly) stay inside commands so
that `reliability --help` and runbook lookups at 3 a.m. start fast. Locust is never
imported in this process.
"""

from __future__ import annotations

import sys

import typer

from reliability.errors import HarnessError, InputError

app = typer.Typer(
    name="reliability",
    help="SLOs compiled to Prometheus rules, and chaos game days for AI inference platforms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _mount() -> None:
    from reliability.chaos.cli import register as register_chaos
    from reliability.gameday_cli import register as register_gameday
    from reliability.lab.cli import app as lab_app
    from reliability.load.cli import app as load_app
    from reliability.runbooks.cli import app as runbook_app
    from reliability.runs.cli import app as runs_app
    from reliability.schema_cli import app as schema_app
    from reliability.slo.cli import app as slo_app

    app.add_typer(slo_app, name="slo", help="Compile, validate, test and report on SLOs.")
    app.add_typer(lab_app, name="lab", help="The embedded multi-region GPU inference lab.")
    app.add_typer(load_app, name="load", help="Load generation: Locust workers for a game day's master.")
    app.add_typer(runbook_app, name="runbook", help="Search, show and check runbooks.")
    app.add_typer(schema_app, name="schema", help="Print JSON Schema for the file formats.")
    app.add_typer(runs_app, name="runs", help="Game-day runs over time: list and compare.")
    register_gameday(app)
    register_chaos(app)


_mount()


def main() -> None:
    try:
        app()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except HarnessError as exc:
        print(f"harness error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
