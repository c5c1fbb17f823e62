"""A game day interrupted at any moment leaves nothing behind and says why it ended.

The matrix of issue 11: interrupted in the baseline, during the fault and during the recovery
watch, with SIGINT (Ctrl-C to the terminal's process group), SIGTERM (`kill PID`) and SIGKILL of
the harness alone (no command run afterwards), in both isolation modes (see CASES); plus a SIGKILL
of the whole process group, which only `reliability recover RUN_DIR` can clean up. Each run starts
its own lab, so whatever it leaves is visible: processes, network namespaces, the lab's routes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reliability.lab.state import read_state
from tests.gameday.conftest import GAMEDAY_SLOS, LOAD, REPO, TWIN

pytestmark = [pytest.mark.slow, pytest.mark.root]
CLI = [sys.executable, "-m", "reliability.cli"]
PHASE_WORD = {"baseline": "baseline", "fault": "chaos", "recovery": "recovery"}


def write_own_lab_scenario(directory: Path, isolation: str) -> Path:
    path = directory / "interrupt.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "interrupt",
                "target": {"kind": "lab", "config": str(TWIN), "isolation": isolation},
                "slos": [str(GAMEDAY_SLOS)],
                "load": {**LOAD, "users": 6, "spawn_rate": 6},
                "experiment": {
                    "file": str(REPO / "experiments" / "region-partition.yaml"),
                    "configuration": {"region": "us-east"},
                },
                "phases": {
                    "baseline": "5s",
                    "fault_hold": "6s",
                    "recovery_max": "30s",
                    "recovered_hold": "3s",
                },
            }
        )
    )
    return path


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def phase_reached(run_dir: Path, phase: str) -> bool:
    path = run_dir / "timeline.jsonl"
    if not path.exists():
        return False
    text = path.read_text()
    if phase == "fault":
        return '"event":"fault_injected"' in text
    return f'"name":"{PHASE_WORD[phase]}"' in text


def leftovers(run_dir: Path, lab_id: str | None) -> list[str]:
    found = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
    out = [f"pid {pid}" for pid in found]
    if lab_id:
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        out += [f"netns {line.split()[0]}" for line in namespaces.splitlines() if f"rl{lab_id}_" in line]
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        out += [f"link of {lab_id}" for line in links.splitlines() if f"rl{lab_id}_" in line]
    return out


def lab_id_of(run_dir: Path) -> str | None:
    state = read_state(run_dir / "lab" / "state.json")
    return state.lab_id if state is not None else None


def run_and_interrupt(tmp_path: Path, isolation: str, phase: str, how: str) -> tuple[int | None, Path]:
    scenario = write_own_lab_scenario(tmp_path, isolation)
    run_dir = tmp_path / "run"
    # Its own process group, as a terminal's foreground job: Ctrl-C reaches the whole group.
    proc = subprocess.Popen(
        [*CLI, "gameday", "run", str(scenario), "--out", str(run_dir), "--no-live"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for(lambda: phase_reached(run_dir, phase), 120, f"phase {phase}")
        if phase == "baseline":
            time.sleep(1.0)
        if how == "SIGINT":
            os.killpg(proc.pid, signal.SIGINT)
        elif how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        elif how == "SIGKILL":
            proc.send_signal(signal.SIGKILL)  # the harness alone dies: its children are orphaned
        else:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group: no code of ours runs
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return code, run_dir


# Every signal in every phase with network namespaces; with the proxy fabric (no root needed) each
# signal and each phase once, the SIGKILL while the fault is in place: its teardown differs only in
# what it tears down, and the whole square would cost CI two more minutes.
CASES = [(how, phase, "netns") for how in ("SIGINT", "SIGTERM", "SIGKILL") for phase in PHASE_WORD] + [
    ("SIGINT", "baseline", "proxy"),
    ("SIGTERM", "recovery", "proxy"),
    ("SIGKILL", "fault", "proxy"),
]


@pytest.mark.parametrize(("how", "phase", "isolation"), CASES)
def test_an_interrupted_game_day_leaves_nothing_and_says_why(
    tmp_path: Path, isolation: str, phase: str, how: str
) -> None:
    code, run_dir = run_and_interrupt(tmp_path, isolation, phase, how)
    lab_id = lab_id_of(run_dir)
    if how == "SIGKILL":
        assert code == -signal.SIGKILL
        # No command: the chaos child rolls back by itself and the orphaned lab tears itself down.
        wait_for(lambda: not leftovers(run_dir, lab_id), 60, f"{leftovers(run_dir, lab_id)} to go")
        recovered = subprocess.run(
            [*CLI, "recover", str(run_dir)], capture_output=True, text=True, timeout=120
        )
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        assert "marked as killed" in recovered.stdout, recovered.stdout
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "interrupted" and "killed" in result["interrupted"], result
        assert f"during {PHASE_WORD[phase]}" in result["interrupted"], result
    else:
        assert code == 128 + getattr(signal, how), code
        assert not leftovers(run_dir, lab_id), leftovers(run_dir, lab_id)
        result = json.loads((run_dir / "result.json").read_text())
        assert result["status"] == "interrupted", result
        assert result["interrupted"] == f"{how} in {PHASE_WORD[phase]}", result
        assert (run_dir / "junit.xml").is_file()
    state = read_state(run_dir / "lab" / "state.json")
    assert state is not None and state.phase == "down", state
    if phase != "baseline":
        ledger = run_dir / "lab" / "fault-ledger.jsonl"
        records = [json.loads(line) for line in ledger.read_text().splitlines()]
        injected = {r["id"] for r in records if r["op"] == "inject"}
        assert injected and injected <= {r["id"] for r in records if r["op"] == "cleared"}, records


@pytest.mark.parametrize("isolation", ["netns", "proxy"])
def test_a_crash_of_the_whole_group_is_cleaned_up_by_recover(tmp_path: Path, isolation: str) -> None:
    code, run_dir = run_and_interrupt(tmp_path, isolation, "fault", "group")
    assert code == -signal.SIGKILL
    lab_id = lab_id_of(run_dir)
    recovered = subprocess.run([*CLI, "recover", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert not leftovers(run_dir, lab_id), leftovers(run_dir, lab_id)
    state = read_state(run_dir / "lab" / "state.json")
    assert state is not None and state.phase == "down"
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "interrupted" and "killed" in result["interrupted"]
    again = subprocess.run([*CLI, "recover", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to undo" in again.stdout and "torn down" not in again.stdout
