"""The live console's figures from what the run wrote so far: the fault's state from the chaos
timeline, alerts as successive ALERTS queries show them, sparklines, progress lines."""

from __future__ import annotations

from reliability.gameday.live import Snapshot, event_lines, interrupt_banner, progress_line
from reliability.gameday.livefeed import AlertTracker, fault_state, region_figures, sparkline

INJECT = [
    {"ts": 100.0, "event": "activity_start", "phase": "method", "type": "action", "name": "kill-node"},
    {"ts": 100.1, "event": "fault_injected", "phase": "method", "fault": "kill_node",
     "args": {"node": "us-east-1", "mode": "xid79"}, "returned": {"ts": 100.4}},
]  # fmt: skip


def test_the_fault_goes_in_and_out() -> None:
    assert fault_state([]).state == "none"
    assert (fault_state(INJECT[:1]).state, fault_state(INJECT[:1]).since_ts) == ("injecting", 100.0)
    placed = fault_state(INJECT)
    assert (placed.state, placed.since_ts, placed.fault) == (
        "in place",
        100.4,
        "kill_node(node=us-east-1, mode=xid79)",
    )
    rolling = [*INJECT, {"ts": 120.0, "event": "rollback_start", "phase": "rollback"}]
    assert fault_state(rolling).state == "rolling back"
    done = [
        *rolling,
        {
            "ts": 120.1,
            "event": "fault_cleared",
            "phase": "rollback",
            "undo": "heal",
            "returned": {"ts": 120.3},
        },
        {"ts": 120.5, "event": "rollback_end", "phase": "rollback"},
    ]
    assert (fault_state(done).state, fault_state(done).since_ts) == ("rolled back", 120.5)


def test_a_failed_rollback_and_the_harness_undoing_it_are_said_so() -> None:
    failed = [
        *INJECT,
        {"ts": 120.0, "event": "rollback_start", "phase": "rollback"},
        {"ts": 120.2, "event": "activity_end", "phase": "rollback", "type": "action", "name": "heal",
         "status": "failed", "error": "HarnessError: supervisor gone"},
        {"ts": 120.3, "event": "rollback_end", "phase": "rollback"},
    ]  # fmt: skip
    state = fault_state(failed)
    assert (state.state, state.detail) == ("rollback failed", "HarnessError: supervisor gone")
    recovered = fault_state(
        [*failed, {"ts": 125.0, "event": "harness_recover", "fault": "kill_node", "ok": True}]
    )
    assert (recovered.state, recovered.detail) == ("rolled back", "by the harness (kill_node)")
    still = fault_state(
        [*failed, {"ts": 125.0, "event": "harness_recover", "fault": "kill_node", "ok": False}]
    )
    assert still.state == "rollback failed" and "could not undo kill_node" in still.detail
    tripped = fault_state([*INJECT, {"ts": 110, "event": "guardrail_tripped", "name": "errors", "value": 0.7,
                                     "above": 0.5}])  # fmt: skip
    assert tripped.guardrail == "errors tripped (0.7 > 0.5)"


def test_alerts_fire_resolve_and_the_first_expected_one_detects() -> None:
    tracker = AlertTracker(expected=frozenset({"GPUNodeDown"}))
    down = {"alertname": "GPUNodeDown", "alertstate": "pending", "severity": "critical", "node": "us-east-1"}
    noise = {"alertname": "KVCacheHigh", "alertstate": "firing", "severity": "warning"}
    tracker.update([down, noise], now=99.0, inject_ts=None)  # before the fault: no detection
    assert tracker.detection is None
    tracker.update([{**down, "alertstate": "firing"}], now=104.0, inject_ts=100.0)
    assert tracker.detection is not None and tracker.detection.ttd_seconds == 4.0
    shown = tracker.shown()
    assert [(a.alertname, a.state, a.expected, a.severity, a.hint) for a in shown] == [
        ("GPUNodeDown", "firing", True, "page", " (us-east-1)"),
        ("KVCacheHigh", "resolved", False, "ticket", ""),
    ]
    assert shown[1].resolved_ts == 104.0
    tracker.update([], now=130.0, inject_ts=100.0)
    first = tracker.shown()[0]
    assert (first.alertname, first.state, first.resolved_ts) == ("GPUNodeDown", "resolved", 130.0)
    # The same alert firing again is a new episode; the first detection stays.
    tracker.update([{**down, "alertstate": "firing"}], now=140.0, inject_ts=100.0)
    assert tracker.shown()[0].since_ts == 140.0 and tracker.detection.ttd_seconds == 4.0


def test_regions_sparklines_and_lines() -> None:
    traffic = [({"server": "us-east", "code": "2xx"}, 19.5), ({"server": "eu-west", "code": "5xx"}, 2.0)]
    ready = [({"label_topology_kubernetes_io_region": "us-east"}, 3.0)]
    figures = {r.region: (r.rps, r.errors_per_s, r.ready_nodes) for r in region_figures(traffic, ready)}
    assert figures == {"us-east": (19.5, 0.0, 3.0), "eu-west": (2.0, 2.0, None)}
    assert sparkline([0, 5, 10]) == "▁▅█" and sparkline([0, 0]) == "▁▁" and len(sparkline(range(100))) == 60
    assert progress_line("x", Snapshot("chaos", 12.3, 50.0, 0.5, 32.25)) == (
        "[  12.3s] x: chaos - 50.0 req/s, errors 50.00%, burn rate 32.2"
    )
    before = Snapshot("chaos", 10.0, None, None, None, fault=fault_state(INJECT[:1]))
    after = Snapshot("chaos", 11.0, None, None, None, fault=fault_state(INJECT), wall_ts=100.4)
    assert event_lines("x", before, after) == [
        "[  11.0s] x: fault in place since 00:01:40 (0 s) kill_node(node=us-east-1, mode=xid79)"
    ]
    assert interrupt_banner([], None, "chaos") is None
    banner = interrupt_banner([2], fault_state(INJECT), "rollback")
    assert banner is not None and "SIGINT" in banner.plain and "rolling back" in banner.plain


def test_run_json_records_prometheus_and_the_model_served(tmp_path, local_prometheus) -> None:  # type: ignore[no-untyped-def]
    import json

    from reliability.files import load_yaml, parse_model
    from reliability.gameday.live import LiveView
    from reliability.gameday.orchestrator import _record_target_versions, _Run
    from reliability.gameday.target import TargetInfo
    from reliability.rundir import RunDir, RunInfo, read_run_info
    from reliability.scenario import Scenario
    from tests.gameday.test_live_console import write_scenario

    run_dir = tmp_path / "run"
    write_scenario(run_dir, fault_hold="5s")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"served_model_name": "tiny-chat", "model_version": "v2", "phase": "ready"}))
    rd = RunDir(run_dir)
    sc = parse_model(Scenario, load_yaml(rd.scenario), rd.scenario)
    run = _Run(sc, rd.scenario, [], rd, LiveView(sc.name, "off"), RunInfo(scenario=sc.name, started_ts=1.0))
    info = TargetInfo(state, local_prometheus.url, "http://127.0.0.1:1", tmp_path / "events.jsonl", False)
    _record_target_versions(run, info)
    versions = read_run_info(rd.run_info).versions  # type: ignore[union-attr]
    assert versions["model"] == "tiny-chat v2"
    import subprocess

    own = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, timeout=20)
    assert versions["prometheus"] == (own.stdout or own.stderr).split()[2]  # e.g. 2.42.0+ds
