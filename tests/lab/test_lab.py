"""The embedded lab end to end: real processes, real Prometheus, both isolation modes."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from reliability.lab import Lab, faults
from reliability.lab.processes import process_matches
from tests.lab.conftest import Traffic, events_named, prom_value, wait_for

EXPECTED_JOBS = {"gpu-node": 6, "region-gateway": 2, "global-gateway": 1, "store": 2, "canary": 1}


def test_prediction_through_the_global_gateway_and_every_target_up(lab: Lab) -> None:
    r = requests.post(f"{lab.endpoint}/v1/predict", json={"inputs": [[0.1, 0.2, 0.3, 0.4]]}, timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert len(body["outputs"][0]) == 4 and body["model_version"] == "v1"
    bad = requests.post(f"{lab.endpoint}/v1/predict", json={"inputs": [[1, 2]]}, timeout=5)
    assert bad.status_code == 400 and "4 numbers" in bad.json()["error"]

    def all_up() -> bool:
        got = requests.get(
            f"{lab.prometheus_url}/api/v1/query", params={"query": "up == 1"}, timeout=5
        ).json()
        jobs: dict[str, int] = {}
        for s in got["data"]["result"]:
            jobs[s["metric"]["job"]] = jobs.get(s["metric"]["job"], 0) + 1
        return jobs == EXPECTED_JOBS

    wait_for(all_up, timeout=15)
    status = faults.lab_status(lab.state_file)
    assert status["isolation"] == lab.isolation and status["phase"] == "ready"
    assert all(c["alive"] and c["ready"] for c in status["components"]), status["components"]
    rules = requests.get(f"{lab.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"InferenceAPIHighErrorRate", "GPUNodeDown", "RegionUnavailable"} <= names


def component(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in status["components"] if c["name"] == name)


def test_killed_node_is_replaced_and_traffic_routes_around_it(lab: Lab) -> None:
    node = "us-east-2"
    t0 = time.monotonic()
    before = faults.lab_status(lab.state_file)
    old_pid = next(c["pid"] for c in before["components"] if c["name"] == f"node/{node}")
    with Traffic(lab.endpoint) as traffic:
        time.sleep(0.5)
        faults.kill_node(lab.state_file, node, mode="sigkill")
        # `lab status` shows the hole until the replacement is warm.
        wait_for(lambda: not component(faults.lab_status(lab.state_file), f"node/{node}")["ready"], timeout=5)
        ready = wait_for(lambda: events_named(lab, "replacement_ready", t0, node=node), timeout=30)
        time.sleep(0.5)
    killed = events_named(lab, "node_killed", node=node)[-1]
    lost = events_named(lab, "node_lost_detected", node=node)[-1]
    started = events_named(lab, "replacement_started", node=node)[-1]
    assert killed["mono"] < lost["mono"] < started["mono"] < ready[-1]["mono"]
    # Detection takes the missed heartbeats; the replacement waits the provisioning delay, then warms up.
    assert 0.5 <= lost["mono"] - killed["mono"] < 5
    assert started["mono"] - lost["mono"] >= 1.0
    assert ready[-1]["mono"] - started["mono"] >= 0.5
    replaced = component(faults.lab_status(lab.state_file), f"node/{node}")
    new_pid = replaced["pid"]
    assert replaced["ready"] and replaced["status"] == "up"
    assert new_pid != old_pid and process_matches(new_pid, "reliability.lab.node")
    # Retries on another node hide the loss from clients; the replacement serves again afterwards.
    assert traffic.failures() <= 2, traffic.failures()
    assert len(traffic.results) > 100
    after_ready = {n for t, code, n in traffic.results if t > ready[-1]["mono"]}
    wait_for(lambda: prom_value(lab, f'up{{job="gpu-node",node="{node}"}}') == 1, timeout=10)
    assert "" not in after_ready


def test_xid79_reports_the_gpu_lost_then_dies(lab: Lab) -> None:
    node = "eu-west-3"
    t0 = time.monotonic()
    faults.kill_node(lab.state_file, node, mode="xid79")
    wait_for(lambda: prom_value(lab, f'gpu_xid_errors_total{{node="{node}",xid="79"}}') == 1, timeout=10)
    killed = wait_for(lambda: events_named(lab, "node_killed", t0, node=node), timeout=10)[-1]
    xid = events_named(lab, "node_xid", node=node)[-1]
    assert killed["mode"] == "xid79" and killed["mono"] - xid["mono"] >= 1.0
    wait_for(lambda: events_named(lab, "replacement_ready", t0, node=node), timeout=30)


def test_partitioned_region_is_failed_away_from_and_back(lab: Lab) -> None:
    with Traffic(lab.endpoint) as traffic:
        time.sleep(1.0)
        t_cut = time.monotonic()
        faults.partition_region(lab.state_file, "us-east")
        failover = wait_for(
            lambda: events_named(lab, "region_failover", t_cut, region="us-east"), timeout=10
        )[-1]
        time.sleep(2.0)
        during = [r for r in traffic.results if r[0] > failover["mono"] + 0.5]
        _assert_cut_off(lab, "us-east")
        faults.heal_partition(lab.state_file, "us-east")
        back = wait_for(lambda: events_named(lab, "region_failback", t_cut, region="us-east"), timeout=10)[-1]
        time.sleep(1.5)
    assert failover["mono"] - t_cut < 3.0
    assert during and all(code == 200 and node.startswith("eu-west") for _, code, node in during)
    after = [n for t, code, n in traffic.results if t > back["mono"] + 0.5 and code == 200]
    assert any(n.startswith("us-east") for n in after), "traffic did not come back to us-east"
    # Requests in flight at the cut are retried on the other region: few or no failures.
    assert traffic.failures() <= 3
    applied = events_named(lab, "partition_applied", region="us-east")[-1]
    assert applied["isolation"] == lab.isolation


def _assert_cut_off(lab: Lab, region: str) -> None:
    """A request into the partitioned region fails locally and quickly - it never leaves the machine."""
    state = json.loads(Path(lab.state_file).read_text())
    gw = next(c for c in state["components"] if c["name"] == f"region-gateway/{region}")
    if lab.isolation == "netns":
        import subprocess

        route = subprocess.run(
            ["ip", "route", "show", "exact", f"{gw['host']}/32"], capture_output=True, text=True
        )
        assert route.stdout.startswith("blackhole"), route.stdout
        with pytest.raises(OSError):
            socket.create_connection((gw["host"], gw["port"]), timeout=1.0).close()
    else:
        # The path from outside the region goes through the proxy, which answers nothing.
        with pytest.raises(requests.RequestException):
            requests.post(gw["url"] + "/v1/predict", json={"inputs": [[0.0] * 4]}, timeout=1.0)


def test_failed_model_shows_up_as_errors_in_prometheus(lab: Lab) -> None:
    query = 'sum(inference_requests_total{job="global-gateway",region="eu-west",code="500"})'
    before = prom_value(lab, query) or 0.0
    faults.fail_model(lab.state_file, "eu-west", mode="errors", rate=1.0)
    try:
        with Traffic(lab.endpoint, interval_s=0.02) as traffic:
            wait_for(lambda: (prom_value(lab, query) or 0.0) >= before + 5, timeout=15)
        assert any(code == 500 for _, code, _ in traffic.results)
    finally:
        faults.restore_model(lab.state_file, "eu-west")
    assert events_named(lab, "fault_set", target="eu-west")[-1]["mode"] == "errors"
    assert events_named(lab, "fault_cleared", target="eu-west")
    ok = requests.post(f"{lab.endpoint}/v1/predict", json={"inputs": [[0.1] * 4]}, timeout=5)
    assert ok.status_code == 200


def test_silent_degradation_is_seen_only_by_the_canary(lab: Lab) -> None:
    wrong = 'sum(inference_canary_predictions_total{region="us-east",outcome="wrong"})'
    before = prom_value(lab, wrong) or 0.0
    faults.fail_model(lab.state_file, "us-east", mode="nan")
    try:
        r = requests.post(f"{lab.endpoint}/v1/predict", json={"inputs": [[0.1] * 4]}, timeout=5)
        assert r.status_code == 200
        wait_for(lambda: (prom_value(lab, wrong) or 0.0) >= before + 5, timeout=15)
    finally:
        faults.heal(lab.state_file)
    assert not faults.lab_status(lab.state_file)["faults"]


def test_losing_the_store_primary_loses_exactly_the_unreplicated_writes(lab: Lab) -> None:
    state = json.loads(Path(lab.state_file).read_text())
    store = state["store_url"]
    primary = state["store"]["primary"]
    t0 = time.monotonic()
    acked: dict[int, float] = {}
    stop = threading.Event()

    def writer() -> None:
        session = requests.Session()
        for seq in range(100_000):
            if stop.is_set():
                return
            try:
                r = session.post(f"{store}/write", json={"key": "rpo-test", "seq": seq}, timeout=0.5)
                if r.status_code == 200:
                    acked[seq] = time.time()
            except requests.RequestException:
                pass
            time.sleep(0.02)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    time.sleep(3.0)
    faults.partition_region(lab.state_file, primary)
    cut = events_named(lab, "partition_applied", region=primary)[-1]["ts"]
    promoted = wait_for(lambda: events_named(lab, "store_promoted", t0, old_primary=primary), timeout=15)[-1]
    wait_for(lambda: json.loads(Path(lab.state_file).read_text())["store"]["primary"] != primary, timeout=5)
    time.sleep(1.0)
    stop.set()
    thread.join(5)
    try:
        survivors = set(requests.get(f"{store}/seqs", params={"key": "rpo-test"}, timeout=5).json()["seqs"])
        verify = requests.get(f"{store}/verify", timeout=5).json()
    finally:
        faults.heal_partition(lab.state_file, primary)
    lag = 1.0
    before_cut = {s for s, ts in acked.items() if ts <= cut}
    lost = before_cut - survivors
    # What the promoted secondary had not pulled when the primary's region went: the last ~lag seconds.
    assert lost, "no acknowledged write was lost, but replication lags by 1 s"
    assert all(acked[s] > cut - lag - 0.35 for s in lost)
    assert all(s in survivors for s, ts in acked.items() if ts <= cut - lag - 0.35)
    assert max(lost) == max(before_cut)  # the lost writes are the tail, not holes
    assert min(lost) > max(s for s in survivors if s in before_cut)
    assert verify["ok"] and promoted["new_primary"] != primary
    # Writes acknowledged after the promotion survive on the new primary.
    assert {s for s, ts in acked.items() if ts > promoted["ts"] + 0.5} <= survivors
    wait_for(lambda: events_named(lab, "store_demoted", t0, region=primary), timeout=10)


def test_lab_down_after_the_supervisor_was_killed_leaves_nothing(tmp_path: Path) -> None:
    import os
    import signal

    from reliability.lab import down_from_state
    from reliability.lab.netns import list_namespaces
    from tests.lab.conftest import fast_config

    lab = Lab(fast_config(), tmp_path / "lab", isolation="auto", slo_files=[], keep_running=True)
    lab.start()
    state = json.loads(lab.state_file.read_text())
    pids = [c["pid"] for c in state["components"]] + [state["prometheus"]["pid"], state["supervisor"]["pid"]]
    ports = [c["port"] for c in state["components"] if c["host"] == "127.0.0.1"]
    os.kill(state["supervisor"]["pid"], signal.SIGKILL)
    lab.proc.wait(5)  # type: ignore[union-attr]
    down_from_state(lab.state_file)
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"  # gone or a zombie
    assert not [ns for ns in list_namespaces() if ns.startswith(f"rl{state['lab_id']}")]
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free again
    assert json.loads(lab.state_file.read_text())["phase"] == "down"


def test_a_lost_node_that_is_still_running_is_fenced_before_its_replacement(tmp_path: Path) -> None:
    """An Xid node that outlives the provisioning delay is killed by the controller, and the event
    log says so, before the replacement takes its port."""
    from reliability.lab import LabConfig

    config = LabConfig.model_validate(
        {
            "model": {"warmup_s": 0.2},
            "node": {"xid_die_after_s": 60},
            "controller": {"provisioning_delay_s": 0.5},
        }
    )
    with Lab(config, tmp_path / "lab", isolation="proxy", slo_files=[]) as lab:
        faults.kill_node(lab.state_file, "eu-west-1", mode="xid79")
        ready = wait_for(lambda: events_named(lab, "replacement_ready", node="eu-west-1"), timeout=20)[-1]
        fenced = events_named(lab, "node_killed", node="eu-west-1")
        started = events_named(lab, "replacement_started", node="eu-west-1")[-1]
    assert [e["mode"] for e in fenced] == ["fenced"]
    assert fenced[0]["mono"] <= started["mono"] < ready["mono"]
