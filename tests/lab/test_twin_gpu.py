"""GPU failure handling as on a real cluster, stage by stage in the lab's ground truth and in what
Prometheus and the gateways show: Xid 79 and 48 (GPU health tooling cordons and replaces), a lost
host (missed heartbeats), and a warm standby that takes over at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from reliability.lab import Lab, faults
from reliability.signals import load_profile
from tests.lab.conftest import (
    PREFERRED,
    events_named,
    fast_config,
    prom_query,
    prom_value,
    servers,
    serving_nodes,
    start_lab,
    state,
    wait_event,
    wait_for,
)

pytestmark = pytest.mark.slow
# The shared twin in one isolation mode: replacement does not depend on it.
on_twin = pytest.mark.parametrize("twin", [PREFERRED], indirect=True)


def first(lab: Lab, name: str, after: float, **match: Any) -> dict[str, Any]:
    found = events_named(lab, name, after, **match)
    assert found, f"no {name} {match} in the event log"
    return found[0]


def seen(lab: Lab, selector: str) -> float | None:
    """The highest value Prometheus recorded for a selector in the last two minutes (also for a
    node no longer scraped)."""
    value = prom_value(lab, f"max(max_over_time({selector}[2m]))")
    if value is None:  # say what Prometheus does know, to tell a naming problem from a scrape problem
        name = selector.split("{")[0]
        known = [s["metric"] for s in prom_query(lab, f"max_over_time({name}[2m])")]
        up = [(s["metric"].get("node"), s["value"][1]) for s in prom_query(lab, "max_over_time(up[2m])")]
        raise AssertionError(f"no {selector} in Prometheus; {name}: {known}; up: {up}")
    return value


def replacement_chain(lab: Lab, old: str, t0: float, retired: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """Wait for the node's replacement to be ready and the old node retired (`node_drained`: kept,
    cordoned, for repair; `node_removed`: gone); the events by name."""
    ready = wait_event(lab, "replacement_ready", t0, 60, replaces=old)
    out = wait_event(lab, retired, t0, 30, node=old)
    new = ready["node"]
    return new, {
        "replacement_started": first(lab, "replacement_started", t0, replaces=old),
        "replacement_ready": ready,
        retired: out,
    }


def assert_replacement_serves(lab: Lab, region: str, old: str, new: str) -> None:
    """The region gateway routes to the new node (added through HAProxy's runtime API) and no longer
    knows the old one; Prometheus scrapes the new node and no longer the old."""
    wait_for(lambda: servers(lab, region, "vllm").get(new) is not None, 10, what=f"{new} in the gateway")
    wait_for(
        lambda: (
            servers(lab, region, "vllm")[new].status == "UP" and servers(lab, region, "vllm")[new].stot > 0
        ),
        20,
        what=f"{new} serving through the region gateway",
    )
    assert old not in servers(lab, region, "vllm")
    for job in ("vllm", "dcgm-exporter"):
        # Prometheus applies new static targets within its discovery manager's 5 s update cycle.
        wait_for(lambda j=job: prom_value(lab, f'up{{job="{j}",node="{new}"}}') == 1, 20, what=f"{job} {new}")  # type: ignore[misc]
    wait_for(lambda: not prom_query(lab, f'up{{job="vllm",node="{old}"}}'), 20, what=f"vllm {old} gone")


def assert_drained_until_repaired(lab: Lab, old: str, xid: int) -> None:
    """A node whose GPU failed stays after its replacement took over - cordoned, without its pod,
    its DCGM exporter still reporting the Xid, so the alert on it keeps firing - until `heal`
    repairs it away."""
    node = next(n for n in state(lab).nodes if n.name == old)
    assert node.status == "drained" and node.unschedulable and not node.ready
    pod = f'kube_pod_status_ready{{pod="vllm-{old}"}}'
    wait_for(lambda: not prom_query(lab, pod), 20, what=f"{old}'s pod gone")
    assert prom_value(lab, f'DCGM_FI_DEV_XID_ERRORS{{node="{old}"}}') == xid
    assert prom_value(lab, f'kube_node_spec_unschedulable{{node="{old}"}}') == 1
    t0 = time.monotonic()
    faults.heal(lab.state_file)
    removed = wait_event(lab, "node_removed", t0, 15, node=old)
    assert removed["reason"] == "repaired"
    assert not events_named(lab, "node_killed", t0, node=old)  # a repair is not a fault
    assert old not in {n.name for n in state(lab).nodes if n.status not in ("replaced", "stopped")}
    wait_for(
        lambda: not prom_query(lab, f'up{{job="dcgm-exporter",node="{old}"}}'), 20, what=f"dcgm {old} gone"
    )


@on_twin
def test_xid79_gpu_falls_off_the_bus_and_the_node_is_cordoned_and_replaced(lab: Lab) -> None:
    region = "us-east"
    old = serving_nodes(lab, region)[0].name
    names_before = {n.name for n in state(lab).nodes}
    t0 = time.monotonic()
    faults.kill_node(lab.state_file, old, "xid79")
    new, tail = replacement_chain(lab, old, t0, "node_drained")
    chain = [
        first(lab, "node_xid", t0, node=old, xid=79),
        first(lab, "node_condition", t0, node=old, condition="GPUUnhealthy", status=True),
        first(lab, "node_cordoned", t0, node=old),
        first(lab, "node_state", t0, node=old, ready=False),
        tail["replacement_started"],
        tail["replacement_ready"],
        tail["node_drained"],
    ]
    monos = [e["mono"] for e in chain]
    assert monos == sorted(monos), [(e["event"], e["mono"] - t0) for e in chain]
    ejected = first(lab, "gateway_server_down", t0, gateway=f"region-{region}", backend="vllm", server=old)
    assert chain[0]["mono"] < ejected["mono"] < tail["replacement_ready"]["mono"]
    assert new not in names_before and new.startswith(f"{region}-")
    assert tail["replacement_started"]["node"] == new
    # Prometheus saw what an SRE would: the Xid on the GPU, the node cordoned while it waited.
    assert seen(lab, f'DCGM_FI_DEV_XID_ERRORS{{node="{old}"}}') == 79
    assert seen(lab, f'kube_node_spec_unschedulable{{node="{old}"}}') == 1
    assert (
        seen(lab, f'kube_node_status_condition{{node="{old}",condition="GPUUnhealthy",status="true"}}') == 1
    )
    assert_replacement_serves(lab, region, old, new)
    assert prom_value(lab, f'kube_node_spec_unschedulable{{node="{new}"}}') == 0
    assert_drained_until_repaired(lab, old, 79)


@on_twin
def test_xid48_engine_dies_and_takes_the_same_path(lab: Lab) -> None:
    region = "eu-west"
    node = serving_nodes(lab, region)[-1]
    t0 = time.monotonic()
    faults.kill_node(lab.state_file, node.name, "xid48")
    # The engine is dead but the host and its API server are up: /health answers 503, as vLLM's.
    assert requests.get(node.api_url + "/health", timeout=5).status_code == 503
    new, tail = replacement_chain(lab, node.name, t0, "node_drained")
    chain = [
        first(lab, "node_xid", t0, node=node.name, xid=48),
        first(lab, "node_condition", t0, node=node.name, condition="GPUUnhealthy"),
        first(lab, "node_cordoned", t0, node=node.name),
        first(lab, "node_state", t0, node=node.name, ready=False),
        tail["replacement_started"],
        tail["replacement_ready"],
        tail["node_drained"],
    ]
    monos = [e["mono"] for e in chain]
    assert monos == sorted(monos), [(e["event"], e["mono"] - t0) for e in chain]
    first(lab, "gateway_server_down", t0, gateway=f"region-{region}", backend="vllm", server=node.name)
    assert seen(lab, f'DCGM_FI_DEV_XID_ERRORS{{node="{node.name}"}}') == 48
    assert_replacement_serves(lab, region, node.name, new)
    assert_drained_until_repaired(lab, node.name, 48)


@on_twin
def test_a_lost_host_is_detected_by_missed_heartbeats_and_replaced(lab: Lab) -> None:
    region = "us-east"
    old = serving_nodes(lab, region)[-1].name
    t0 = time.monotonic()
    faults.kill_node(lab.state_file, old, "sigkill")
    new, tail = replacement_chain(lab, old, t0, "node_removed")
    killed = first(lab, "node_killed", t0, node=old, mode="sigkill")
    lost = first(lab, "node_lost_detected", t0, node=old)
    cfg = lab.config.controller
    assert f"{cfg.missed_heartbeats} heartbeats missed" in lost["reason"]
    # Detection needs the missed beats: the first may fall right after the kill, in a round of
    # heartbeats that began before it; the others are an interval apart.
    assert lost["mono"] - killed["mono"] >= (cfg.missed_heartbeats - 2) * cfg.heartbeat_interval_s
    not_ready = first(lab, "node_state", t0, node=old, ready=False)
    assert killed["mono"] < lost["mono"] <= not_ready["mono"] < tail["replacement_started"]["mono"]
    assert tail["replacement_started"]["mono"] - lost["mono"] >= cfg.provisioning_delay_s
    assert not events_named(lab, "node_condition", t0, node=old)  # no Xid: a lost host, not a GPU
    assert_replacement_serves(lab, region, old, new)
    wait_for(lambda: not prom_query(lab, f'up{{job="dcgm-exporter",node="{old}"}}'), 20, what="dcgm gone")


# -- warm standby ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def standby_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    config = fast_config(
        regions=[{"name": "us-east", "nodes": 2, "standby": 1}],
        controller={"provisioning_delay_s": 5.0},
    )
    lab = start_lab(config, tmp_path_factory.mktemp("standby"), PREFERRED, slo_files=[])
    try:
        yield lab
    finally:
        lab.stop()


def test_a_warm_standby_replaces_a_lost_node_at_once(standby_lab: Lab) -> None:
    lab = standby_lab
    standby = [n for n in state(lab).nodes if n.standby]
    assert len(standby) == 1 and standby[0].ready
    spare = standby[0].name
    capacity = load_profile().series["ready_nodes"].query
    # Before: the standby is not capacity - no node_state for it, no gateway server, no ready pod.
    assert not events_named(lab, "node_state", node=spare)
    assert spare not in servers(lab, "us-east", "vllm")
    wait_for(lambda: prom_value(lab, capacity) == 2, 15, what="capacity 2 in Prometheus")
    assert prom_value(lab, f'kube_pod_status_ready{{pod="vllm-{spare}",namespace="inference"}}') is None
    old = serving_nodes(lab, "us-east")[0].name
    t0 = time.monotonic()
    faults.kill_node(lab.state_file, old, "sigkill")
    lost = wait_event(lab, "node_lost_detected", t0, 15, node=old)
    promoted = wait_event(lab, "standby_promoted", t0, 15, replaces=old)
    ready = wait_event(lab, "replacement_ready", t0, 15, replaces=old)
    assert promoted["node"] == ready["node"] == spare
    # At once: no provisioning (5 s here), no model load.
    assert ready["mono"] - lost["mono"] < 1.5
    assert not events_named(lab, "replacement_started", t0)
    came_back = first(lab, "node_state", t0, node=spare, ready=True)
    assert came_back["mono"] <= ready["mono"]
    wait_event(lab, "node_removed", t0, 15, node=old)
    wait_for(
        lambda: servers(lab, "us-east", "vllm").get(spare) is not None, 10, what="standby in the gateway"
    )
    wait_for(lambda: servers(lab, "us-east", "vllm")[spare].stot > 0, 20, what="the standby serving")
    wait_for(lambda: prom_value(lab, capacity) == 2, 15, what="capacity 2 again")
    assert not [n for n in state(lab).nodes if n.standby]
