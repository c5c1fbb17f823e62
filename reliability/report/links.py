"""Where the reports link a runbook: one lookup, shared by postmortem.md and report.html.

Without a configured base URL the runbooks the reports link are copied into the run directory
(`runbooks/<id>.md`) and linked there, so the links still open after the run directory has been
archived, attached to a ticket or moved to another machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class RunbookLinks:
    # Alert that fired -> (runbook id, link); alerts without a runbook are absent.
    by_alert: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Runbook id -> link: the runbooks of the alerts that fired, then the scenario's own list.
    exercised: dict[str, str] = field(default_factory=dict)
    # Runbook file -> where it goes in the run directory (relative), for the reports' own links.
    copies: dict[Path, str] = field(default_factory=dict)


RUNBOOKS_IN_RUN = "runbooks"


def runbook_link(runbook_id: str, runbook_dir: Path, run_dir: Path, base_url: str | None = None) -> str:
    """The link to a runbook as the reports print it.

    With a configured base URL (a wiki, a rendered site): `runbook_url(id)`. Otherwise the runbook
    file relative to the run directory, since the reports live there and a Markdown viewer or a
    browser resolves relative links against the report's own location (`find_runbook_links` links
    the copy it puts into the run directory instead).
    """
    if base_url:
        from reliability.runbooks.links import runbook_url

        return runbook_url(runbook_id, base_url)
    target = Path(runbook_dir) / f"{runbook_id}.md"
    try:
        rel = os.path.relpath(target, Path(run_dir))
    except ValueError:  # another drive on Windows: no relative path exists
        return Path(target).resolve().as_uri()
    # Quoted so that a space or a parenthesis in the path does not end the Markdown link early.
    return quote(Path(rel).as_posix())


def find_runbook_links(
    alerts: Iterable[str],
    scenario_runbooks: Iterable[str],
    runbook_dir: Path,
    run_dir: Path,
    base_url: str | None = None,
) -> RunbookLinks:
    """The runbook of each alert that fired (the runbooks' own alert index), and every runbook
    the game day exercised."""
    alerts = list(alerts)
    by_alert: dict[str, tuple[str, str]] = {}
    if alerts and Path(runbook_dir).is_dir():
        from reliability.runbooks import runbooks_for_alerts

        try:
            found = runbooks_for_alerts(alerts, Path(runbook_dir))
        except Exception:  # a broken runbook must not cost the run its post-mortem
            found = {}
        by_alert = {
            alert: (rb.id, runbook_link(rb.id, runbook_dir, run_dir, base_url)) for alert, rb in found.items()
        }
    exercised = {rid: link for rid, link in by_alert.values()}
    for rid in scenario_runbooks:
        exercised.setdefault(rid, runbook_link(rid, runbook_dir, run_dir, base_url))
    copies: dict[Path, str] = {}
    if not base_url:
        # Link the copy kept with the run; a runbook that does not exist keeps its (broken) link.
        local = {}
        for rid in exercised:
            source = Path(runbook_dir) / f"{rid}.md"
            if source.is_file():
                rel = f"{RUNBOOKS_IN_RUN}/{quote(rid)}.md"
                copies[source] = f"{RUNBOOKS_IN_RUN}/{rid}.md"
                local[rid] = rel
        by_alert = {alert: (rid, local.get(rid, link)) for alert, (rid, link) in by_alert.items()}
        exercised = {rid: local.get(rid, link) for rid, link in exercised.items()}
    return RunbookLinks(by_alert=by_alert, exercised=exercised, copies=copies)
