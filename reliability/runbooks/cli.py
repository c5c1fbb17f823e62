"""`reliability runbook search|show|check`: a thin layer over reliability.runbooks.

Library imports happen inside the commands so that `reliability --help` stays fast.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)

DIR_ENV = "RELIABILITY_RUNBOOK_DIR"

DirOpt = Annotated[
    Path | None,
    typer.Option("--dir", help=f"Runbook directory (default: ${DIR_ENV}, ./runbooks, or the repository's)."),
]


def runbook_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    if os.environ.get(DIR_ENV):
        return Path(os.environ[DIR_ENV])
    local = Path("runbooks")
    if local.is_dir():
        return local
    # Installed from a checkout: the repository's runbooks, wherever the command is run from.
    repo = Path(__file__).resolve().parents[2] / "runbooks"
    return repo if repo.is_dir() else local


@app.command()
def search(
    words: Annotated[list[str], typer.Argument(help="Alert name, symptom or keywords.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=100)] = 5,
    directory: DirOpt = None,
) -> None:
    """Ranked runbooks for an alert name, a symptom or keywords (typo-tolerant for alert names)."""
    from reliability.runbooks.cache import cached_index
    from reliability.runbooks.render import format_results

    query = " ".join(words)
    results = cached_index(runbook_dir(directory)).search(query, limit=limit)
    if as_json:
        typer.echo(json.dumps({"query": query, "results": [r.to_dict() for r in results]}, indent=2))
    elif results:
        typer.echo(format_results(results))
    else:
        typer.echo(f"no runbook matches {query!r}", err=True)
    if not results:
        raise typer.Exit(1)


@app.command()
def show(
    key: Annotated[str, typer.Argument(help="Runbook id or alert name.")],
    directory: DirOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print the Markdown source.")] = False,
) -> None:
    """A runbook rendered for the terminal, by id or by alert name."""
    from reliability.errors import InputError
    from reliability.runbooks.links import find_runbook
    from reliability.runbooks.loader import load_runbooks
    from reliability.runbooks.render import print_runbook
    from reliability.runbooks.search import SearchIndex

    runbooks = load_runbooks(runbook_dir(directory))
    rb = find_runbook(key, runbooks)
    if rb is None:
        hits = SearchIndex.build(runbooks).search(key, limit=3)
        hint = f" (did you mean: {', '.join(h.id for h in hits)}?)" if hits else ""
        raise InputError(f"runbook {key!r}", f"no runbook with this id or alert{hint}")
    if raw:
        typer.echo(rb.path.read_text(encoding="utf-8"), nl=False)
    else:
        print_runbook(rb)


def sibling_dir(explicit: Path | None, name: str, option: str, runbooks: Path) -> Path:
    """`--slos`/`--alerts`: as given (it must exist), else ./NAME, else NAME next to the runbook
    directory (the repository's, when run from elsewhere). Never a silently empty check: without
    the SLOs every runbook's alerts would be reported unknown."""
    from reliability.errors import InputError

    if explicit is not None:
        if not explicit.is_dir():
            raise InputError(f"{option} {explicit}", "directory not found")
        return explicit
    candidates = [Path(name), Path(runbooks).resolve().parent / name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = " and ".join(str(c) for c in dict.fromkeys(candidates))
    raise InputError(
        option,
        f"no {name}/ directory (looked for {looked}); run from the repository or pass {option} DIR",
    )


@app.command()
def check(
    directory: DirOpt = None,
    slos: Annotated[
        Path | None,
        typer.Option(
            "--slos",
            help="SLO spec directory, compiled in memory (default: slos/ here or beside the runbooks).",
        ),
    ] = None,
    alerts: Annotated[
        Path | None,
        typer.Option(
            "--alerts",
            help="Directory of Prometheus rule files (default: alerts/ here or beside the runbooks).",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="runbook_url base (default: $RELIABILITY_RUNBOOK_BASE_URL, else runbooks/)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every alert has a runbook, every runbook's alerts exist, every runbook_url resolves. Exit 1 if not."""
    from reliability.runbooks.check import check_runbooks

    runbooks = runbook_dir(directory)
    slo_dir = sibling_dir(slos, "slos", "--slos", runbooks)
    alert_dir = sibling_dir(alerts, "alerts", "--alerts", runbooks)
    report = check_runbooks(runbooks, slo_dir, alert_dir, base_url)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for p in report.problems:
            typer.echo(f"{p.kind}: {p}")
        n_alerts = len({a.name for a in report.alerts})
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        typer.echo(f"runbook check: {n_alerts} alerts, {len(report.runbooks)} runbooks: {verdict}")
    if not report.ok:
        raise typer.Exit(1)
