"""`reliability slo ...`: a thin Typer layer over reliability.slo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Compile, validate, test and report on SLOs.")

PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--default-slo-period", help="Period of Sloth specs, which have none (default 30d, as Sloth)."
    ),
]
Files = Annotated[
    list[Path],
    typer.Argument(
        help="SLO spec files (Sloth prometheus/v1 or sloth.slok.dev/v1, OpenSLO or reliability/v1)."
    ),
]


@app.command()
def compile(
    files: Files,
    out: Annotated[Path, typer.Option("-o", "--out", help="Rule file to write.")],
    fmt: Annotated[str, typer.Option("--format", help="prometheus | prometheus-operator")] = "prometheus",
    runbook_base_url: Annotated[str | None, typer.Option("--runbook-base-url")] = None,
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip promtool check rules.")] = False,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="prometheus-operator: metadata.namespace of the rules.")
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            help="prometheus-operator: KEY=VALUE label on the PrometheusRule (repeatable), e.g. the "
            "`release` label kube-prometheus-stack's ruleSelector matches.",
        ),
    ] = None,
    default_period: PeriodOpt = None,
) -> None:
    """Compile SLO specs into Prometheus rules (written atomically; nothing on error)."""
    from reliability.slo.writer import compile_paths, parse_labels

    labels = parse_labels(label or [])
    path = compile_paths(files, out, fmt, runbook_base_url, not no_check, namespace, labels, default_period)
    typer.echo(f"wrote {path}")


@app.command()
def validate(files: Files, default_period: PeriodOpt = None) -> None:
    """Validate SLO specs and check the generated rules with promtool (warns, without failing, when a
    latency threshold is not a bucket edge of its histogram)."""
    from reliability.slo.buckets import latency_warnings
    from reliability.slo.compiler import all_slos, compile_rules
    from reliability.slo.loader import load_slo_files
    from reliability.slo.writer import promtool_check

    services = load_slo_files(files, default_period)
    promtool_check(compile_rules(services), services)
    for warning in latency_warnings(all_slos(services)):
        typer.echo(f"warning: {warning}", err=True)
    count = sum(len(s.slos) for s in services)
    typer.echo(f"ok: {count} SLO(s) in {len(files)} file(s); generated rules pass promtool check rules")


@app.command()
def test(
    files: Files,
    keep: Annotated[Path | None, typer.Option("--keep", help="Keep generated test files here.")] = None,
) -> None:
    """Generate promtool unit tests per SLO and run `promtool test rules`."""
    from reliability.errors import InputError
    from reliability.slo.unittests import run_slo_tests

    if keep is not None and keep.exists() and not keep.is_dir():
        raise InputError(f"--keep {keep}", "is a file; give a directory")
    try:
        result = run_slo_tests(files, keep)
    except OSError as exc:
        raise InputError(f"--keep {keep}", f"cannot write: {exc.strerror or exc}") from exc
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
