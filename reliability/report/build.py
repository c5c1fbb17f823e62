"""`build_reports(run_dir)`: every report rebuilt from the files of a run directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from reliability.files import write_atomic
from reliability.report.analyze import analyse
from reliability.report.html import render_html
from reliability.report.junit import junit_xml
from reliability.report.links import find_runbook_links
from reliability.report.model import RunResult
from reliability.report.postmortem import render_postmortem
from reliability.report.rundir import read_run
from reliability.report.story import tell


def build_reports(
    run_dir: Path, runbook_dir: Path | None = None, runbook_base_url: str | None = None
) -> RunResult:
    """Analyse the run and write result.json, junit.xml, postmortem.md and report.html.

    Everything is rendered before anything is written, so a failure leaves the old reports intact.
    `runbook_dir` defaults as for `reliability runbook`: $RELIABILITY_RUNBOOK_DIR, ./runbooks, or
    the repository's. Runbooks are linked at `runbook_base_url` ($RELIABILITY_RUNBOOK_BASE_URL) when
    one is configured, else copied into the run directory (`runbooks/`) and linked there, so the
    links survive archiving. report.html shows the earlier runs of the same scenario found in
    sibling directories as a trend.
    """
    from reliability.runbooks.cli import runbook_dir as default_runbook_dir
    from reliability.runbooks.links import configured_base_url
    from reliability.runs.discover import previous_runs

    data = read_run(Path(run_dir))
    result = tell(analyse(data), data)
    links = find_runbook_links(
        result.alerts_fired,
        data.scenario.objectives.runbooks,
        runbook_dir or default_runbook_dir(None),
        data.root,
        configured_base_url(runbook_base_url),
    )
    previous = previous_runs(data.root, result.scenario, result.started_ts)
    outputs = {
        "postmortem.md": render_postmortem(
            result, data.scenario, data.timeline, data.events, links, previous
        ),
        "report.html": render_html(result, data, links, previous),
        "junit.xml": junit_xml(result),
        # result.json last: it is what `gate` reads, so it only appears once the rest is there.
        "result.json": result.model_dump_json(indent=2) + "\n",
    }
    for source, rel in links.copies.items():
        target = data.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != target.resolve():
            shutil.copyfile(source, target)
    for name, text in outputs.items():
        write_atomic(data.root / name, text)
    return result
