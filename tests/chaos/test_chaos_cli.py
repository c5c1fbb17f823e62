"""The shipped experiments are plain Chaos Toolkit files: `chaos run experiments/X.yaml` against a
lab started with `reliability lab up --detach`, as the README says - no harness involved. Plain
Chaos Toolkit judges detection too (the hypothesis' `alert_fired_during_fault` probe), and a
`chaos run` killed mid-fault is undone by `reliability recover`."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.chaos.ledger import FaultLedger, ledger_for_state
from reliability.lab import faults
from reliability.lab.events import read_events
from reliability.lab.state import read_state
from tests.lab.conftest import PREFERRED, fast_config

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
CLI = [sys.executable, "-m", "reliability.cli"]
CHAOS = shutil.which("chaos", path=str(Path(sys.executable).parent)) or "chaos"
HOLD = "fault_hold:int=5"
RUN = [CHAOS, "--no-log-file", "run", "--rollback-strategy", "always"]


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory with a lab started by `reliability lab up --detach` in it (as `.lab`)."""
    cwd = tmp_path_factory.mktemp("chaos-cli")
    (cwd / "lab.yaml").write_text(yaml.safe_dump(fast_config().model_dump(mode="json")))
    argv = [*CLI, "lab", "up", "--detach", "--isolation", PREFERRED, "--config", "lab.yaml"]
    argv += ["--slo", str(REPO / "slos" / "llm-serving.yaml")]
    try:
        up = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stdout + up.stderr
        yield cwd
    finally:
        subprocess.run([*CLI, "lab", "down"], cwd=cwd, capture_output=True, timeout=120)


def state_file(lab_dir: Path) -> Path:
    return lab_dir / ".lab" / "state.json"


def fleet_whole(lab_dir: Path) -> bool:
    s = read_state(state_file(lab_dir))
    if s is None or s.phase != "ready" or s.faults or s.partitioned:
        return False
    live = [n for n in s.nodes if n.status not in ("replaced", "stopped")]
    return len(live) == 6 and all(n.ready and n.status == "ready" for n in live)


def wait_whole(lab_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not fleet_whole(lab_dir):  # a node being replaced after the previous experiment
        assert time.monotonic() < deadline, faults.lab_status(state_file(lab_dir))
        time.sleep(0.2)


def chaos_run(
    lab_dir: Path, exp: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    journal = lab_dir / f"{exp.stem}-journal.json"
    proc = subprocess.run(
        [*RUN, "--var", HOLD, *extra, "--journal-path", str(journal), str(exp)],
        cwd=lab_dir,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return proc, json.loads(journal.read_text())


def test_every_shipped_experiment_validates_as_plain_chaos_validates_it() -> None:
    """What `chaos validate` does (chaoslib's loader and validation), in this process: the two
    experiments below then run with the real `chaos` command."""
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    for exp in EXPERIMENTS:
        ensure_experiment_is_valid(load_experiment(str(exp)))
    assert len(EXPERIMENTS) == 9


# Experiment, the lab event its fault shows up as, and the event of the platform's recovery.
RUNS = [
    ("gpu-node-loss", "node_xid", "replacement_ready"),
    ("region-partition", "partition_applied", "partition_removed"),
]


@pytest.mark.parametrize(("name", "inject", "recovered"), RUNS)
def test_chaos_run_against_lab_up_detects_and_rolls_back(
    lab_dir: Path, name: str, inject: str, recovered: str
) -> None:
    wait_whole(lab_dir)
    started = time.time()
    proc, doc = chaos_run(lab_dir, REPO / "experiments" / f"{name}.yaml")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert doc["status"] == "completed" and doc["deviated"] is False
    after = doc["steady_states"]["after"]
    assert after["steady_state_met"] and all(p["status"] == "succeeded" for p in after["probes"])
    actions = [r for r in doc["run"] if r["activity"]["type"] == "action"]
    assert actions and all(r["status"] == "succeeded" for r in actions)
    assert doc["rollbacks"] and all(r["status"] == "succeeded" for r in doc["rollbacks"])
    # The lab saw the fault go in and the platform recover; the ledger has nothing left to undo.
    deadline = time.monotonic() + 60
    while True:
        names = [e["event"] for e in read_events(lab_dir / ".lab" / "events.jsonl") if e["ts"] >= started]
        if inject in names and recovered in names[names.index(inject) :]:
            break
        assert time.monotonic() < deadline, names
        time.sleep(0.2)
    assert FaultLedger(ledger_for_state(state_file(lab_dir))).active() == []
    wait_whole(lab_dir)


def test_chaos_run_deviates_when_the_expected_alert_does_not_fire(lab_dir: Path, tmp_path: Path) -> None:
    """The same experiment expecting an alert that cannot fire: Chaos Toolkit itself reports the
    deviation, and still rolls the fault back."""
    wait_whole(lab_dir)
    doc = yaml.safe_load((REPO / "experiments" / "region-partition.yaml").read_text())
    for probe in doc["steady-state-hypothesis"]["probes"]:
        if probe["provider"]["func"] == "alert_fired_during_fault":
            probe["provider"]["arguments"]["alertname"] = "NoSuchAlertEverFires"
    exp = tmp_path / "region-partition-bogus-alert.yaml"
    exp.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc, journal = chaos_run(lab_dir, exp)
    assert proc.returncode != 0
    assert journal["deviated"] is True and "deviated" in proc.stderr + proc.stdout
    failed = [p for p in journal["steady_states"]["after"]["probes"] if not p["tolerance_met"]]
    assert [p["activity"]["provider"]["func"] for p in failed] == ["alert_fired_during_fault"]
    assert journal["rollbacks"] and all(r["status"] == "succeeded" for r in journal["rollbacks"])
    assert FaultLedger(ledger_for_state(state_file(lab_dir))).active() == []
    wait_whole(lab_dir)


def test_sigkill_of_chaos_run_then_recover_leaves_no_fault_and_is_idempotent(lab_dir: Path) -> None:
    wait_whole(lab_dir)
    state = state_file(lab_dir)
    proc = subprocess.Popen(
        [*RUN, "--var", "fault_hold:int=120", str(REPO / "experiments" / "region-partition.yaml")],
        cwd=lab_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (read_state(state) and read_state(state).partitioned):  # type: ignore[union-attr]
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # no rollback can run
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert read_state(state).partitioned == ["eu-west"]  # type: ignore[union-attr]
    assert [e.fault for e in FaultLedger(ledger_for_state(state)).active()] == ["partition_region"]

    def recover() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "recover", ".lab"], cwd=lab_dir, capture_output=True, text=True, timeout=60
        )

    first = recover()
    assert first.returncode == 0, first.stderr
    assert "undone: partition_region" in first.stdout
    s = read_state(state)
    assert s is not None and s.partitioned == [] and not s.faults
    assert any(e["event"] == "partition_removed" for e in read_events(lab_dir / ".lab" / "events.jsonl"))
    second = recover()
    assert second.returncode == 0 and "nothing to undo" in second.stdout
    wait_whole(lab_dir)
