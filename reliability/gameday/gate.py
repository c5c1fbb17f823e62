"""`reliability gate`: several scenarios in a row, one exit code, one JUnit file for CI."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from reliability.files import write_atomic
from reliability.gameday.live import ViewMode
from reliability.gameday.orchestrator import GameDayOutcome, prepare, run_gameday
from reliability.report.model import RunResult


def combine_junit(files: list[Path]) -> str:
    """Merge the <testsuite> elements of per-run junit.xml files into one <testsuites>."""
    # No attributes on <testsuites>: the strict (Windy Road) JUnit schema allows none there.
    root = ET.Element("testsuites")
    for f in files:
        try:
            tree = ET.parse(f)
        except (OSError, ET.ParseError):
            continue
        node = tree.getroot()
        suites = [node] if node.tag == "testsuite" else list(node.iter("testsuite"))
        root.extend(suites)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def gate_exit_code(outcomes: list[GameDayOutcome]) -> int:
    """2 if any run could not be judged (harness error, interruption), else 1 if any objective
    failed, else 0."""
    codes = [o.exit_code for o in outcomes]
    if any(c not in (0, 1) for c in codes):
        return 2
    return 1 if 1 in codes else 0


def gate(
    paths: list[Path],
    junit: Path | None = None,
    out_root: Path | None = None,
    view: ViewMode = "off",
    workers: int | None = None,
) -> tuple[int, list[GameDayOutcome]]:
    for p in paths:  # all inputs are checked before anything runs
        prepare(p)
    outcomes: list[GameDayOutcome] = []
    for p in paths:
        out = None if out_root is None else Path(out_root) / Path(p).stem
        outcome = run_gameday(p, out=out, view=view, workers=workers)
        outcomes.append(outcome)
        if outcome.interrupted_by:
            break
    if junit is not None:
        write_atomic(Path(junit), combine_junit([o.run_dir / "junit.xml" for o in outcomes]))
    return gate_exit_code(outcomes), outcomes


def rebuild_reports(run_dir: Path) -> RunResult:
    from reliability.errors import InputError
    from reliability.gameday import integrations

    run_dir = Path(run_dir)
    if not (run_dir / "scenario.yaml").is_file():
        raise InputError(str(run_dir), "not a game-day run directory (no scenario.yaml)")
    return integrations.build_reports(run_dir)
