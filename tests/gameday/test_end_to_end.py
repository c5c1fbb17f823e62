"""Game days against a real lab: measurements against the lab's ground truth, the gate's exit code,
guardrails, and interrupted runs leaving no fault behind.

Runs attach to one lab per module (see conftest) and go through the `reliability` CLI in a
subprocess, as a user or CI would run them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from reliability.lab import Lab, faults
from reliability.lab.events import read_events
from reliability.lab.lab import read_state
from tests.gameday.conftest import GAMEDAY_SLOS, REPO, write_scenario

CLI = [sys.executable, "-m", "reliability.cli"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def events_between(run_dir: Path, name: str, start: float, end: float | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in read_events(run_dir / "events.jsonl")
        if e["event"] == name and e["ts"] >= start and (end is None or e["ts"] <= end)
    ]


def assert_lab_clean(lab: Lab) -> None:
    status = faults.lab_status(lab.state_file)
    assert status["phase"] == "ready"
    assert not status["faults"], status["faults"]
    assert not status["partitioned"], status["partitioned"]
    for _ in range(20):  # every region answers correctly again
        r = requests.post(f"{lab.endpoint}/v1/predict", json={"inputs": [[0.2] * 4]}, timeout=5)
        assert r.status_code == 200, r.text


def first_firing(lab: Lab, alertname: str, after: float) -> float:
    """When Prometheus first evaluated `alertname` as firing in an episode that began after `after`
    (raw samples of ALERTS, one per rule evaluation)."""
    r = requests.get(
        f"{lab.prometheus_url}/api/v1/query",
        params={"query": f'ALERTS{{alertname="{alertname}",alertstate="firing"}}[10m]'},
        timeout=10,
    )
    starts = []
    for series in r.json()["data"]["result"]:
        ts = [float(t) for t, _ in series["values"]]
        starts += [t for i, t in enumerate(ts) if t >= after and (i == 0 or t - ts[i - 1] > 1.5)]
    assert starts, f"{alertname} never started firing after {after}"
    return min(starts)


@pytest.mark.parametrize(
    ("hold", "rto_max", "exit_code", "workers"),
    [(6, 30, 0, 2), (11, 5, 1, 0)],
    ids=["healthy-passes-distributed-load", "rto-missed-fails"],
)
def test_rto_and_ttd_match_the_event_log_and_the_gate_decides(
    lab: Lab, tmp_path: Path, hold: int, rto_max: int, exit_code: int, workers: int
) -> None:
    scenario = write_scenario(
        tmp_path,
        lab,
        "model-failure.yaml",
        {"target": "us-east", "failure_mode": "errors", "failure_rate": 1.0},
        {"baseline": "5s", "fault_hold": f"{hold}s", "recovery_max": "30s", "recovered_hold": "3s"},
        {"rto_max": f"{rto_max}s", "ttd_max": "30s", "expected_alerts": ["InferenceAPIHighErrorRate"]},
    )
    started = time.time()
    junit = tmp_path / "gate.xml"
    proc = run_cli(
        "gate",
        str(scenario),
        "--junit",
        str(junit),
        "--out",
        str(tmp_path / "runs"),
        "--workers",
        str(workers),
    )
    assert proc.returncode == exit_code, proc.stdout + proc.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    # CI's log shows the run's progress: a line per phase, with the load's figures once it runs.
    progress = [line for line in proc.stderr.splitlines() if "] test-scenario: " in line]
    for phase in ("setup", "baseline", "chaos", "recovery", "end"):
        assert any(f": {phase}" in line for line in progress), proc.stderr
    assert any("req/s" in line for line in progress), proc.stderr
    # Locust's own distributed mode when asked for: one log per worker beside the master's.
    assert sorted(p.name for p in run_dir.glob("locust-worker*.log")) == [
        f"locust-worker{i}.log" for i in range(workers)
    ]
    result = json.loads((run_dir / "result.json").read_text())
    fault_set = events_between(run_dir, "fault_set", started)[0]
    cleared = events_between(run_dir, "fault_cleared", fault_set["ts"])[0]
    # Every us-east request fails from the moment the fault lands until it is cleared: that is the truth.
    truth_rto = cleared["ts"] - fault_set["ts"]
    assert abs(result["rto_seconds"] - truth_rto) <= 1.0, (result["rto_seconds"], truth_rto)
    # Prometheus' SLI (a 5 s rate) agrees, trailing by at most its window.
    assert result["rto_prometheus_seconds"] is not None
    assert -1.0 <= result["rto_prometheus_seconds"] - result["rto_seconds"] <= 6.5, result
    assert abs(result["inject_ts"] - fault_set["ts"]) <= 1.0
    # Prometheus' own record of the alert (raw evaluation samples), against the lab's fault time.
    truth_ttd = first_firing(lab, "InferenceAPIHighErrorRate", fault_set["ts"]) - fault_set["ts"]
    assert result["ttd_seconds"] is not None
    assert abs(result["ttd_seconds"] - truth_ttd) <= 1.0, (result["ttd_seconds"], truth_ttd)
    verdicts = {o["name"]: o["verdict"] for o in result["objectives"]}
    assert verdicts["rto"] == ("pass" if exit_code == 0 else "fail")
    assert ('failures="1"' in junit.read_text()) == (exit_code == 1)
    assert_lab_clean(lab)


@pytest.mark.parametrize("baseline", [4, 7])
def test_rpo_matches_the_writes_the_store_lost(lab: Lab, tmp_path: Path, baseline: int) -> None:
    scenario = write_scenario(
        tmp_path,
        lab,
        "store-region-loss.yaml",
        {},
        {"baseline": f"{baseline}s", "fault_hold": "6s", "recovery_max": "20s", "recovered_hold": "2s"},
        {"rpo_max": "5s"},
        name="store-loss",
    )
    started = time.time()
    proc = run_cli("gameday", "run", str(scenario), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    cut = events_between(tmp_path / "run", "partition_applied", started)[0]
    promoted = events_between(tmp_path / "run", "store_promoted", started)[0]
    # The lab's truth: the primary's last acknowledged write as its region went, against the newest
    # write the promoted secondary held.
    truth_rpo = cut["store_last_ack_ts"] - promoted["last_ts"]
    assert 0.5 <= truth_rpo <= 2.0  # ~ the configured 1 s replication lag
    assert abs(result["rpo_seconds"] - truth_rpo) <= 1.0, (result["rpo_seconds"], truth_rpo)
    assert result["lost_writes"] > 0
    assert_lab_clean(lab)


def test_guardrail_aborts_and_rolls_back_within_its_window(lab: Lab, tmp_path: Path) -> None:
    window = 3.0
    scenario = write_scenario(
        tmp_path,
        lab,
        "model-failure.yaml",
        {"target": "eu-west", "failure_mode": "errors", "failure_rate": 1.0},
        {"baseline": "4s", "fault_hold": "60s", "recovery_max": "20s", "recovered_hold": "2s"},
        {"rto_max": "90s"},
        guardrails=[
            {
                "name": "error-ratio-over-20pct",
                "query": 'sum(rate(inference_requests_total{code!~"2.."}[5s]))'
                " / sum(rate(inference_requests_total[5s]))",
                "above": 0.2,
                "for": f"{window}s",
            }
        ],
        name="guardrail",
    )
    started = time.time()
    proc = run_cli("gameday", "run", str(scenario), "--out", str(tmp_path / "run"))
    run_dir = tmp_path / "run"
    timeline = [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines()]
    tripped = [r for r in timeline if r["event"] == "guardrail_tripped"]
    assert tripped, proc.stdout + proc.stderr
    fault_set = events_between(run_dir, "fault_set", started)[0]
    cleared = events_between(run_dir, "fault_cleared", fault_set["ts"])[0]
    # Far sooner than the 60 s hold: the stop condition's window, Prometheus' rate window and scrape lag.
    assert cleared["ts"] - fault_set["ts"] < window + 12, cleared["ts"] - fault_set["ts"]
    assert cleared["ts"] - tripped[0]["ts"] < 5
    assert_lab_clean(lab)


def test_a_fault_that_could_not_be_injected_is_an_error_not_a_pass(lab: Lab, tmp_path: Path) -> None:
    """A typo in the experiment's configuration must not read as "no visible impact"."""
    scenario = write_scenario(
        tmp_path,
        lab,
        "gpu-node-loss.yaml",
        {"node": "us-east-9"},
        {"baseline": "2s", "fault_hold": "2s", "recovery_max": "10s", "recovered_hold": "1s"},
        {"rto_max": "30s"},
        name="typo",
    )
    proc = run_cli("gate", str(scenario), "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    result = json.loads((run_dir / "result.json").read_text())
    assert result["passed"] is False
    assert "'kill-gpu-node' failed" in result["error"] and "us-east-9" in result["error"], result["error"]
    assert "us-east-9" in proc.stdout + proc.stderr
    assert_lab_clean(lab)


def _read(path: Path) -> str:
    return path.read_text().replace(" ", "") if path.exists() else ""


def _wait_for(check: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.parametrize(
    ("sig", "phase"),
    [
        (signal.SIGINT, "fault"),
        (signal.SIGTERM, "fault"),
        (signal.SIGTERM, "baseline"),
        (signal.SIGINT, "recovery"),
        (signal.SIGKILL, "fault"),
    ],
    ids=lambda v: v.name if isinstance(v, signal.Signals) else v,
)
def test_interrupted_run_leaves_no_fault_behind(
    lab: Lab, tmp_path: Path, sig: signal.Signals, phase: str
) -> None:
    scenario = write_scenario(
        tmp_path,
        lab,
        "region-partition.yaml",
        {"region": "us-east"},
        {"baseline": "4s", "fault_hold": "30s", "recovery_max": "30s", "recovered_hold": "2s"},
        {"rto_max": "60s"},
        name="interrupt",
    )
    started = time.time()
    # Own process group, so Ctrl-C and a crash can be delivered as a terminal or the kernel would.
    proc = subprocess.Popen(
        [*CLI, "gameday", "run", str(scenario), "--out", str(tmp_path / "run"), "--no-live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if phase == "baseline":
            _wait_for(lambda: (tmp_path / "run" / "load_stats.jsonl").exists(), 60)
            time.sleep(1.0)
        elif phase == "fault":
            _wait_for(lambda: faults.lab_status(lab.state_file)["partitioned"] == ["us-east"], 60)
        else:
            _wait_for(lambda: '"name":"recovery"' in _read(tmp_path / "run" / "timeline.jsonl"), 90)
        if sig == signal.SIGTERM:
            proc.send_signal(sig)  # `kill PID`: the harness alone
        else:
            # Ctrl-C reaches the whole foreground group (harness and chaos child); a crash of the
            # whole group (SIGKILL) leaves no code of ours running to undo anything.
            os.killpg(proc.pid, sig)
        proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    if sig == signal.SIGKILL:
        _wait_for(lambda: not _processes_of(tmp_path), 30)  # load generator follows its parent
        assert faults.lab_status(lab.state_file)["partitioned"] == ["us-east"]  # nothing rolled back
        recovered = run_cli("recover", str(Path(lab.state_file).parent))
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        assert "undone" in recovered.stdout
    else:
        assert proc.returncode != 0
    assert_lab_clean(lab)
    if phase == "fault" and sig != signal.SIGKILL:
        assert events_between(tmp_path / "run", "partition_removed", started)
    assert not _processes_of(tmp_path), "a process of the interrupted run is still alive"


def _processes_of(directory: Path) -> list[str]:
    return subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, text=True).stdout.split()


@pytest.mark.parametrize(
    ("phase", "isolation"), [("baseline", "auto"), ("fault", "auto"), ("fault", "proxy")]
)
def test_a_run_killed_with_its_own_lab_is_cleaned_up_by_recover(
    tmp_path: Path, phase: str, isolation: str
) -> None:
    """SIGKILL of the whole group while the run owns its lab: no code of ours runs, so namespaces
    and routes stay (the unreachable route keeps traffic in); `reliability recover RUN_DIR`
    then removes every trace, fault or not."""
    scenario = tmp_path / "own-lab.yaml"
    scenario.write_text(
        yaml.safe_dump(
            {
                "name": "own-lab",
                "target": {
                    "kind": "lab",
                    "config": str(REPO / "scenarios" / "labs" / "node-replacement.yaml"),
                },
                "slos": [str(GAMEDAY_SLOS)],
                "load": {"users": 2, "spawn_rate": 2},
                "experiment": {
                    "file": str(REPO / "experiments" / "region-partition.yaml"),
                    "configuration": {"region": "us-east"},
                },
                "phases": {"baseline": "3s", "fault_hold": "60s", "recovery_max": "10s"},
            }
        )
    )
    run_dir = tmp_path / "run"
    state_file = run_dir / "lab" / "state.json"
    proc = subprocess.Popen(
        [*CLI, "gameday", "run", str(scenario), "--out", str(run_dir), "--no-live"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if phase == "baseline":
            _wait_for(lambda: (run_dir / "load_stats.jsonl").exists(), 60)
        else:
            _wait_for(lambda: (read_state(state_file) or {}).get("partitioned") == ["us-east"], 60)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    state = read_state(state_file)
    assert state is not None and state["phase"] == "ready"  # nobody got to stop it
    _wait_for(lambda: not _processes_of(tmp_path), 30)  # the fleet and Prometheus die with their parent
    namespaces = _lab_namespaces(state)
    if state["isolation"] == "netns":
        assert namespaces, "the crashed lab's namespaces should still be there before recover"

    recovered = run_cli("recover", str(run_dir))
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert ("undone: partition_region" in recovered.stdout) == (phase == "fault"), recovered.stdout
    assert read_state(state_file)["phase"] == "down"
    assert not _lab_namespaces(state)
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
    subnet = (state.get("fabric") or {}).get("subnet")
    assert not subnet or subnet not in routes, routes
    assert not _processes_of(tmp_path)
    again = run_cli("recover", str(run_dir))
    assert again.returncode == 0 and "nothing to undo" in again.stdout and "torn down" not in again.stdout


def _lab_namespaces(state: dict[str, Any]) -> list[str]:
    if state.get("isolation") != "netns":
        return []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in listed.splitlines() if line and state["lab_id"] in line.split()[0]]
