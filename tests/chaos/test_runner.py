"""The experiment runner: real chaoslib in a real child process, our controls attached."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import yaml

from reliability.chaos.jsonl import read_records
from reliability.chaos.runner import ExperimentProcess, ExperimentRunSpec, exit_code
from reliability.prometheus import LocalPrometheus
from tests.chaos.helpers import read


def write_experiment(path: Path, marks: Path, hold: float) -> Path:
    def mark(name: str) -> dict:
        return {
            "type": "action",
            "name": name,
            "provider": {
                "type": "python",
                "module": "tests.chaos.helpers",
                "func": "mark",
                "arguments": {"path": "${marks}", "text": name},
            },
        }

    inject = mark("inject")
    inject["pauses"] = {"after": "${hold}"}
    exp = {
        "version": "1.0.0",
        "title": "runner test",
        "description": "inject, hold, roll back",
        "configuration": {"marks": str(marks), "hold": 60},
        "method": [inject, mark("after-hold")],
        "rollbacks": [mark("rollback")],
    }
    path.write_text(yaml.safe_dump(exp))
    return path


def spec_for(tmp_path: Path, hold: float, **kw: object) -> tuple[ExperimentRunSpec, Path]:
    marks = tmp_path / "marks.txt"
    exp = write_experiment(tmp_path / "exp.yaml", marks, hold)
    spec = ExperimentRunSpec(
        experiment=str(exp),
        journal=str(tmp_path / "journal.json"),
        timeline=str(tmp_path / "timeline.jsonl"),
        log=str(tmp_path / "chaos.log"),
        configuration={"hold": hold},
        **kw,  # type: ignore[arg-type]
    )
    return spec, marks


def wait_for(pred, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_completed_run_writes_journal_timeline_and_rolls_back(tmp_path: Path) -> None:
    spec, marks = spec_for(tmp_path, hold=0.2)
    proc = ExperimentProcess(spec, tmp_path / "spec.json").start()
    code = proc.wait(60)
    assert code == 0, (tmp_path / "chaos.log").read_text()
    assert read(str(marks)) == ["inject", "after-hold", "rollback"]
    journal = proc.journal()
    assert journal is not None and journal["status"] == "completed"
    events = [(r["event"], r.get("name")) for r in read_records(Path(spec.timeline))]
    assert ("activity_start", "inject") in events
    assert events.index(("method_start", None)) < events.index(("activity_start", "inject"))
    assert events.index(("rollback_start", None)) < events.index(("activity_start", "rollback"))
    for r in read_records(Path(spec.timeline)):
        assert r["ts"] > 1e9 and r["mono"] > 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_hold_still_rolls_back(tmp_path: Path, sig: signal.Signals) -> None:
    # chaoslib's default strategy would skip the rollback here; we pass strategy "always".
    spec, marks = spec_for(tmp_path, hold=60)
    proc = ExperimentProcess(spec, tmp_path / "spec.json").start()
    try:
        assert wait_for(lambda: read(str(marks)) == ["inject"])
        time.sleep(0.3)
        assert proc.proc is not None
        proc.proc.send_signal(sig)
        code = proc.wait(30)
    finally:
        proc.interrupt(grace=5)
    assert read(str(marks)) == ["inject", "rollback"]
    journal = proc.journal()
    assert journal is not None and journal["status"] == "interrupted"
    assert code == 3 == exit_code(journal)


def test_guardrail_aborts_and_rolls_back_within_its_window(
    tmp_path: Path, local_prometheus: LocalPrometheus
) -> None:
    guard = {"name": "always-bad", "query": "vector(1)", "above": 0.5, "for_seconds": 2.0}
    spec, marks = spec_for(tmp_path, hold=60, guardrails=[guard], prometheus_url=local_prometheus.url)
    proc = ExperimentProcess(spec, tmp_path / "spec.json").start()
    try:
        code = proc.wait(30)
    finally:
        proc.interrupt(grace=5)
    assert code == 3
    assert read(str(marks)) == ["inject", "rollback"]
    timeline = read_records(Path(spec.timeline))
    inject = next(r for r in timeline if r["event"] == "activity_start" and r["name"] == "inject")
    trip = next(r for r in timeline if r["event"] == "guardrail_tripped")
    rolled = next(r for r in timeline if r["event"] == "activity_end" and r["name"] == "rollback")
    assert trip["name"] == "always-bad" and trip["value"] == 1.0
    # Never before its 2 s window; generous upper bound (poll interval, loaded CI machine).
    assert 2.0 <= trip["mono"] - inject["mono"] <= 2.0 + 4.0
    assert rolled["mono"] >= trip["mono"]


def test_guardrail_below_limit_does_not_trip(tmp_path: Path, local_prometheus: LocalPrometheus) -> None:
    guard = {"name": "fine", "query": "vector(0.1)", "above": 0.5, "for_seconds": 0}
    spec, marks = spec_for(tmp_path, hold=2.5, guardrails=[guard], prometheus_url=local_prometheus.url)
    proc = ExperimentProcess(spec, tmp_path / "spec.json").start()
    assert proc.wait(60) == 0
    assert read(str(marks)) == ["inject", "after-hold", "rollback"]
    assert not any(r["event"] == "guardrail_tripped" for r in read_records(Path(spec.timeline)))
    assert json.loads(Path(spec.journal).read_text())["status"] == "completed"
