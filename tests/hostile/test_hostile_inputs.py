"""The hostile-input corpus (issue 11, section 5): every file under cases/ given to the real CLI
gives exit code 2, one line `error: FILE[: FIELD]: message` naming the file (and the field where
there is one), no traceback, and nothing written.

Cases run through `reliability.cli.main` in this process (the entry point `reliability` calls, with
its error printing and exit codes), which is fast enough for ~70 cases; a few run as real
subprocesses too. Commands that would start something when given valid input are always given a
second, invalid input further down their checks (tests/hostile/guard/), so a case that is wrongly
accepted fails on that file's error instead of starting a lab or a game day.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from reliability.cli import main

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
GUARD_SLO = HERE / "guard" / "invalid-slo.yaml"

# case file (relative to cases/) -> what the one line must also say (the field and/or the cause)
EXPECT: dict[str, str] = {
    # SLO specs: `slo compile CASE -o OUT`
    "slo/latin1-encoded.yaml": "not UTF-8 text",
    "slo/utf16-with-bom.yaml": "UTF-16 text",
    "slo/utf16-without-bom.yaml": "NUL bytes",
    "slo/random-bytes.yaml": "not UTF-8 text",
    "slo/nul-byte.yaml": "NUL bytes",
    "slo/control-character.yaml": "control character U+0007",
    "slo/impossible-date-objective.yaml": "slos[0](avail).objective: Input should be a valid number",
    "slo/integer-over-4300-digits.yaml": "more than 4,300 digits",
    "slo/nesting-100k-deep.yaml": "maximum nesting depth",
    "slo/alias-chain-deeper-than-100.yaml": "nested deeper than 100 levels",
    "slo/period-99999999999999999999d.yaml": "period: duration '99999999999999999999d' is out of range",
    "slo/factor-1e308.yaml": "alert_windows[0].factor: Input should be less than or equal to 1000000000",
    "slo/duplicate-key-objective.yaml": "duplicate key 'objective' (first on line 6)",
    "slo/billion-laughs-in-labels.yaml": "slos[0].labels",
    "slo/recursive-alias.yaml": "recursive YAML alias",
    "slo/threshold-seconds-inf.yaml": "sli.latency.threshold_seconds: infinity is not allowed",
    "slo/objective-nan.yaml": "slos[0](avail).objective: NaN is not allowed",
    "slo/misspelled-service-key.yaml": "servce: unknown field (did you mean 'service'?)",
    "slo/python-object-tag.yaml": "could not determine a constructor",
    "slo/merge-of-a-scalar.yaml": "expected a mapping or list of mappings for merging",
    "slo/empty-file.yaml": "no SLO spec in file",
    "slo/top-level-list.yaml": "expected a mapping with `version` or `apiVersion`",
    "slo/unterminated-flow.yaml": "malformed YAML",
    "slo/sloth-contrib-plugin.yaml": "plugins.chain[0]: SLO plugins are not supported",
    "slo/openslo-threshold-metric.yaml": "thresholdMetric SLIs are not supported",
    "slo/client-sli-ttft-on-events.yaml": "client_sli 'ttft' is a latency measurement",
    "slo/duration-with-milliseconds.yaml": "period: invalid duration '1500ms'",
    "slo/binary-tag.yaml": "could not determine a constructor",
    # scenarios: `gameday run CASE`
    "scenario/latin1-encoded.yaml": "not UTF-8 text",
    "scenario/billion-laughs-in-experiment-configuration.yaml": "experiment.configuration",
    "scenario/impossible-date-as-duration.yaml": "phases.baseline: invalid duration '2026-13-45'",
    "scenario/duplicate-key-fault-hold.yaml": "duplicate key 'fault_hold'",
    "scenario/baseline-inf.yaml": "phases.baseline: infinity is not allowed",
    "scenario/baseline-400-digit-seconds.yaml": "phases.baseline: duration",
    "scenario/misspelled-phase-key.yaml": "fault_hld: unknown field (did you mean 'fault_hold'?)",
    "scenario/nesting-100k-deep.yaml": "maximum nesting depth",
    "scenario/budget-nan.yaml": "objectives.max_budget_spent",
    "scenario/random-bytes.yaml": "not UTF-8 text",
    # lab configs: `lab up --config CASE`
    "lab/1000-regions-of-16-nodes.yaml": "regions: List should have at most 8 items",
    "lab/64-gpu-nodes.yaml": "regions: 64 GPU nodes in total",
    "lab/utf16-with-bom.yaml": "UTF-16 text",
    "lab/duplicate-key-nodes.yaml": "duplicate key 'nodes'",
    "lab/heartbeat-nan.yaml": "controller.heartbeat_interval_s: NaN is not allowed",
    "lab/misspelled-regions-key.yaml": "regoins: unknown field (did you mean 'regions'?)",
    "lab/integer-over-4300-digits.yaml": "more than 4,300 digits",
    # runbooks: `runbook check --dir DIR` with the case as DIR's only runbook
    "runbook/latin1-encoded.md": "not UTF-8 text",
    "runbook/duplicate-key-severity.md": "duplicate key 'severity'",
    "runbook/impossible-date.md": "last_reviewed: Input should be a valid date",
    "runbook/billion-laughs-in-tags.md": "laughs",
    "runbook/utf16-with-bom.md": "UTF-16 text",
    "runbook/misspelled-owners-key.md": "owner: unknown field (did you mean 'owners'?)",
    # Chaos Toolkit experiments: `gameday run` of a scenario naming the case
    "experiment/latin1-encoded.yaml": "not UTF-8 text",
    "experiment/random-bytes.json": "not UTF-8 text",
    "experiment/nesting-100k-deep.json": "malformed JSON: nested too deeply",
    "experiment/duplicate-key-title.yaml": "duplicate key 'title'",
    "experiment/billion-laughs-in-configuration.yaml": "configuration",
    "experiment/top-level-list.json": "must be a mapping",
    "experiment/utf16-with-bom.json": "UTF-16 text",
    "experiment/truncated.json": "malformed JSON",
    # run directories: `report RUN_DIR`, the case put at PATH of WHAT@PATH ('+' for '/')
    "rundir/latin1-encoded@scenario.yaml": "not UTF-8 text",
    "rundir/duplicate-key-name@scenario.yaml": "duplicate key 'name'",
    "rundir/nesting-100k-deep-line@events.jsonl": "unreadable JSON lines: nested too deeply",
    "rundir/random-bytes@series+sli.csv": "unreadable CSV",
    "rundir/seq-not-a-number@canary_writes.jsonl": "unreadable canary records",
    "rundir/ts-of-mixed-types@load_stats.jsonl": "unreadable load statistics",
}

ALL_CASES = sorted(str(p.relative_to(CASES)) for p in CASES.rglob("*") if p.is_file())


@dataclass
class Run:
    code: int
    out: str
    err: str


def run_main(*args: str) -> Run:
    """`reliability ARGS` in this process; an exception escaping main() is a traceback (test fails)."""
    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["reliability", *args]
    code: int | str | None = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = old_argv
    return Run(code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


MINIMAL_SCENARIO = """\
name: hostile
slos: [slo.yaml]
experiment: {file: experiment.yaml}
phases: {baseline: 15s, fault_hold: 20s, recovery_max: 60s}
"""


def command_for(case: str, tmp: Path) -> tuple[list[str], str, Path]:
    """(CLI arguments, file name the message must name, directory that must stay as it is)."""
    kind, name = case.split("/", 1)
    src = CASES / case
    work = tmp / "work"
    work.mkdir()
    if kind == "slo":
        return ["slo", "compile", str(src), "-o", str(work / "rules.yaml")], name, work
    if kind == "scenario":
        return ["gameday", "run", str(src), "--no-live", "--out", str(work / "run")], name, work
    if kind == "lab":
        args = ["lab", "up", "--config", str(src), "--isolation", "proxy", "--dir", str(work / "lab")]
        return [*args, "--slo", str(GUARD_SLO)], name, work
    if kind == "runbook":
        runbooks, empty = tmp / "runbooks", tmp / "empty"
        runbooks.mkdir()
        empty.mkdir()
        shutil.copyfile(src, runbooks / name)
        args = ["runbook", "check", "--dir", str(runbooks), "--slos", str(empty), "--alerts", str(empty)]
        return args, name, runbooks
    if kind == "experiment":
        scenario = tmp / "scenario.yaml"
        # The guard SLO is checked after the experiment: accepting the case fails on it instead.
        scenario.write_text(
            MINIMAL_SCENARIO.replace("experiment.yaml", str(src)).replace("slo.yaml", str(GUARD_SLO)),
            encoding="utf-8",
        )
        return ["gameday", "run", str(scenario), "--no-live", "--out", str(work / "run")], name, work
    assert kind == "rundir", case
    target = name.split("@", 1)[1].replace("+", "/")
    run_dir = work / "run"
    (run_dir / "series").mkdir(parents=True)
    (run_dir / "scenario.yaml").write_text(MINIMAL_SCENARIO, encoding="utf-8")
    (run_dir / target).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, run_dir / target)
    return ["report", str(run_dir)], target.rsplit("/", 1)[-1], work


def test_every_case_file_has_an_expectation_and_back() -> None:
    assert sorted(EXPECT) == ALL_CASES


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELIABILITY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RELIABILITY_LAB_DIR", str(tmp_path / "lab-dir"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("case", ALL_CASES)
def test_hostile_case_is_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    args, file_name, watched = command_for(case, tmp_path)
    before = files_under(watched)
    result = run_main(*args)
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert result.code == 2, (result.code, result.out, result.err)
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ") and file_name in lines[0], lines[0]
    assert EXPECT[case] in lines[0], lines[0]
    assert "Traceback" not in result.err + result.out
    assert files_under(watched) == before
    assert not (tmp_path / "lab-dir").exists()


# One case per loader through the installed entry point, as a user runs it.
SUBPROCESS_CASES = [
    "slo/duplicate-key-objective.yaml",
    "scenario/billion-laughs-in-experiment-configuration.yaml",
    "lab/1000-regions-of-16-nodes.yaml",
    "runbook/utf16-with-bom.md",
    "experiment/nesting-100k-deep.json",
    "rundir/nesting-100k-deep-line@events.jsonl",
]


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_real_entry_point_prints_the_same_single_line(case: str, tmp_path: Path) -> None:
    args, file_name, watched = command_for(case, tmp_path)
    before = files_under(watched)
    proc = subprocess.run(
        [sys.executable, "-c", "from reliability.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert file_name in proc.stderr and EXPECT[case] in proc.stderr
    assert files_under(watched) == before


# ---- -o: where `slo compile` may write ------------------------------------------------------

VALID_SLO = CASES.parent / "guard" / "valid-slo.yaml"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("directory", "is a directory"),
        ("input", "is the input file"),
        ("under-a-file", "not a writable directory"),
    ],
)
def test_compile_output_path_that_cannot_or_must_not_be_written(
    target: str, message: str, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(VALID_SLO.read_bytes())
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    out = {"directory": tmp_path, "input": spec, "under-a-file": blocker / "rules.yaml"}[target]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = run_main("slo", "compile", str(spec), "-o", str(out), "--no-check")
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert result.code == 2 and len(lines) == 1, result.err
    assert lines[0].startswith(f"error: -o {out}") and message in lines[0]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_compile_of_the_valid_guard_spec_writes_rules(tmp_path: Path) -> None:
    """The -o checks above fail for the path, not the spec."""
    out = tmp_path / "rules.yaml"
    result = run_main("slo", "compile", str(VALID_SLO), "-o", str(out), "--no-check")
    assert result.code == 0, result.err
    assert "sloth-slo-sli-recordings-svc-avail" in out.read_text()
