"""Every shipped scenario, end to end, exactly as a user runs it: its own lab, Locust load, the Chaos
Toolkit experiment, the measurements and the reports. Each must pass its objectives on the lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reliability.lab.events import read_events

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((REPO / "scenarios").glob("*.yaml"))
# What each scenario's fault must have done in the lab (its ground-truth event log).
EXPECTED_EVENTS = {
    "gpu-node-loss": {"node_xid", "node_killed", "node_lost_detected", "replacement_ready"},
    "region-partition": {"partition_applied", "region_failover", "partition_removed", "region_failback"},
    "model-failure": {"fault_set", "fault_cleared"},
    "silent-model-degradation": {"fault_set", "fault_cleared"},
    "store-region-loss": {"partition_applied", "store_promoted", "partition_removed"},
}


def test_every_scenario_is_covered() -> None:
    assert {p.stem for p in SCENARIOS} == set(EXPECTED_EVENTS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_passes_end_to_end(scenario: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.cli",
            "gameday",
            "run",
            str(scenario),
            "--out",
            str(run_dir),
            "--no-live",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"post-mortem: {run_dir / 'postmortem.md'}" in proc.stdout
    for name in (
        "postmortem.md",
        "report.html",
        "result.json",
        "junit.xml",
        "journal.json",
        "timeline.jsonl",
        "load_stats.jsonl",
        "events.jsonl",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    result = json.loads((run_dir / "result.json").read_text())
    assert result["passed"] is True and result["scenario"] == scenario.stem
    assert all(o["verdict"] in ("pass", "no_data") for o in result["objectives"])
    events = read_events(run_dir / "events.jsonl")
    happened = {e["event"] for e in events}
    assert EXPECTED_EVENTS[scenario.stem] <= happened, happened
    # The run's own lab is gone: no process refers to the run directory any more.
    left = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
    assert not left, f"processes left behind: {left}"
    if scenario.stem == "gpu-node-loss":
        # Capacity comes back when the replacement is ready; Prometheus sees it up to a scrape
        # interval plus a health check later.
        xid = next(e for e in events if e["event"] == "node_xid")
        ready = next(e for e in events if e["event"] == "replacement_ready")
        truth = ready["ts"] - xid["ts"]
        assert truth - 0.5 <= result["capacity_rto_seconds"] <= truth + 2.5, (
            result["capacity_rto_seconds"],
            truth,
        )
    html = (run_dir / "report.html").read_text()
    assert "plotly" in html.lower()
    postmortem = (run_dir / "postmortem.md").read_text()
    assert "runbooks/" in postmortem
