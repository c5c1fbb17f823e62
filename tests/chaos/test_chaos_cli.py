"""The shipped experiments are plain Chaos Toolkit files: `chaos run experiments/X.yaml` against a
lab started with `reliability lab up --detach`, as the README says - no harness involved."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reliability.chaos.ledger import FaultLedger, ledger_for_state
from reliability.lab import faults
from reliability.lab.events import read_events

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
CLI = [sys.executable, "-m", "reliability.cli"]
CHAOS = shutil.which("chaos", path=str(Path(sys.executable).parent)) or "chaos"
# Lab event each experiment's fault shows up as, and the event that says it was undone.
FAULT_EVENTS = {
    "gpu-node-loss": ("node_xid", "replacement_ready"),
    "model-failure": ("fault_set", "fault_cleared"),
    "region-partition": ("partition_applied", "partition_removed"),
    "silent-model-degradation": ("fault_set", "fault_cleared"),
    "store-region-loss": ("partition_applied", "partition_removed"),
}


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cwd = tmp_path_factory.mktemp("chaos-cli")
    up = subprocess.run(
        [*CLI, "lab", "up", "--detach", "--slo", str(REPO / "scenarios" / "slos" / "inference-gameday.yaml")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield cwd
    finally:
        subprocess.run([*CLI, "lab", "down"], cwd=cwd, capture_output=True, timeout=120)


def _all_nodes_up(state: Path) -> bool:
    status = faults.lab_status(state)
    return status.get("phase") == "ready" and set(status["nodes"].values()) == {"up"}


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda p: p.stem)
def test_chaos_run_against_lab_up(lab_dir: Path, exp: Path) -> None:
    state = lab_dir / ".lab" / "state.json"
    deadline = time.monotonic() + 60
    while not _all_nodes_up(state):  # a replaced node from the previous experiment
        assert time.monotonic() < deadline, faults.lab_status(state)
        time.sleep(0.2)
    started = time.time()
    journal = lab_dir / f"{exp.stem}-journal.json"
    proc = subprocess.run(
        [
            CHAOS,
            "run",
            "--rollback-strategy",
            "always",
            "--var",
            "fault_hold:int=2",
            "--journal-path",
            str(journal),
            str(exp),
        ],
        cwd=lab_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(journal.read_text())
    assert doc["status"] == "completed", proc.stderr[-3000:]
    actions = [r for r in doc["run"] if r["activity"]["type"] == "action"]
    assert actions and all(r["status"] == "succeeded" for r in actions), proc.stderr[-3000:]
    assert all(r["status"] == "succeeded" for r in doc["rollbacks"])
    # The lab saw the fault go in and come out again; the ledger has nothing left to undo.
    inject, undone = FAULT_EVENTS[exp.stem]
    deadline = time.monotonic() + 30
    while True:
        events = [e for e in read_events(lab_dir / ".lab" / "events.jsonl") if e["ts"] >= started]
        names = [e["event"] for e in events]
        if inject in names and undone in names[names.index(inject) :]:
            break
        assert time.monotonic() < deadline, names
        time.sleep(0.2)
    assert FaultLedger(ledger_for_state(state)).active() == []
    status = faults.lab_status(state)
    assert not status["faults"] and not status["partitioned"]
