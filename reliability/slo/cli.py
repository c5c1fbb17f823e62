"""`reliability slo ...`: a thin Typer layer over reliability.slo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Compile, validate, test and report on SLOs.")

Files = Annotated[list[Path], typer.Argument(help="SLO spec files (Sloth, OpenSLO or reliability/v1).")]


@app.command()
def compile(
    files: Files,
    out: Annotated[Path, typer.Option("-o", "--out", help="Rule file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="prometheus | prometheus-operator")] = "prometheus",
    runbook_base_url: Annotated[str | None, typer.Option("--runbook-base-url")] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip promtool check rules.")] = False,
) -> None:
    """Compile SLO specs into Prometheus rules (written atomically; nothing on error)."""
    from reliability.slo.writer import compile_paths

    path = compile_paths(files, out, fmt, runbook_base_url, check=not no_check)
    typer.echo(f"wrote {path}")


@app.command()
def validate(files: Files) -> None:
    """Validate SLO specs and check the generated rules with promtool."""
    from reliability.slo.compiler import compile_rules
    from reliability.slo.loader import load_slo_files
    from reliability.slo.writer import promtool_check

    services = load_slo_files(files)
    promtool_check(compile_rules(services), services)
    count = sum(len(s.slos) for s in services)
    typer.echo(f"ok: {count} SLO(s) in {len(files)} file(s); generated rules pass promtool check rules")


@app.command()
def test(
    files: Files,
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep generated test files here.")] = None,
) -> None:
    """Generate promtool unit tests per SLO and run `promtool test rules`."""
    from reliability.slo.unittests import run_slo_tests

    result = run_slo_tests(files, keep)
    typer.echo(result.output.rstrip())
    if not result.ok:
        raise typer.Exit(1)
    typer.echo(f"ok: {result.cases} test case(s) for {result.slos} SLO(s) passed")


@app.command()
def budget(
    files: Files,
    prometheus: Annotated[str, typer.Option("--prometheus", help="Prometheus base URL.")],
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Error budget status of each SLO from a live Prometheus."""
    import json

    from reliability.slo.budget import budget_report, render_table
    from reliability.slo.loader import load_slo_files

    report = budget_report(load_slo_files(files), prometheus)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        render_table(report)
