"""The cluster watch writes ground-truth events from real watch streams of the fake API server (which
has no kubelet: the tests flip readiness themselves, as a kubelet would)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from reliability.k8s import faults
from reliability.k8s.watch import ClusterWatch, node_events, pod_events
from reliability.lab.events import read_events
from tests.k8s.fakeapi import FakeKubeAPI, node, pod


def _wait_for(path: Path, wanted: set[str], timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_events(path)
        if wanted <= {e["event"] for e in events}:
            return events
        time.sleep(0.05)
    raise AssertionError(f"missing events {wanted - {e['event'] for e in read_events(path)}}")


def _not_ready(obj: dict[str, Any]) -> None:
    obj["status"]["conditions"][0].update(status="False", reason="KubeletNotReady")


def test_the_watch_records_cordons_readiness_and_our_policies(
    api: FakeKubeAPI, state: Path, tmp_path: Path
) -> None:
    events_path = tmp_path / "events.jsonl"
    with ClusterWatch(state, events_path, window_s=2) as w:
        faults.kill_node(state, "us-east-1", mode="drain")
        api.update("nodes", "", "us-east-1", _not_ready)
        api.update("pods", "llm", "vllm-us-east-2", _not_ready)
        replacement = pod(
            "vllm-us-east-4", "llm", "us-east-2", labels={"app": "vllm", "region": "us-east"}, ready=False
        )
        api.add(replacement)
        api.update(
            "pods", "llm", "vllm-us-east-4", lambda p: p["status"]["conditions"][0].update(status="True")
        )
        faults.partition_region(state, "eu-west")
        faults.heal(state)
        events = _wait_for(
            events_path,
            {
                "node_cordoned",
                "node_uncordoned",
                "node_condition",
                "pod_deleted",
                "pod_not_ready",
                "pod_ready",
                "networkpolicy_applied",
                "networkpolicy_removed",
            },
        )
    assert w.written == len(read_events(events_path))
    by = {e["event"]: e for e in events}
    # The baseline first: one node_state per GPU node (the capacity before any fault), then the start.
    assert [e["event"] for e in events[:7]] == ["node_state"] * 6 + ["watch_started"]
    assert events[6]["gpu_nodes"] == 6 and all(e["ready"] for e in events[:6])
    assert {e["node"] for e in events[:6]} == {f"{r}-{i}" for r in ("us-east", "eu-west") for i in (1, 2, 3)}
    # Capacity transitions of the drained node: out when cordoned, back when uncordoned (it is still
    # not Ready, as the test's "kubelet" said, so it stays out until then).
    states = [(e["ready"], e["reason"]) for e in events[7:] if e["event"] == "node_state"]
    assert states == [(False, "cordoned")]
    assert by["node_cordoned"]["node"] == "us-east-1" and by["node_cordoned"]["region"] == "us-east"
    assert by["node_condition"] == {**by["node_condition"], "condition": "Ready", "status": "False"}
    assert by["pod_deleted"]["pod"] == "vllm-us-east-1"
    assert by["pod_ready"] == {
        **by["pod_ready"],
        "pod": "vllm-us-east-4",
        "node": "us-east-2",
        "region": "us-east",
    }
    assert by["pod_not_ready"]["pod"] == "vllm-us-east-2"
    assert by["networkpolicy_applied"]["region"] == "eu-west"
    assert all({"ts", "mono", "event"} <= set(e) for e in events)
    # Pods outside the allow-listed namespaces are not watched.
    assert not any(e.get("namespace") == "gpu-operator" for e in events)
    names = [e["event"] for e in events]
    assert names.index("node_cordoned") < names.index("node_uncordoned")


def test_the_watch_is_bounded(api: FakeKubeAPI, state: Path, tmp_path: Path) -> None:
    events_path = tmp_path / "events.jsonl"
    with ClusterWatch(state, events_path, window_s=1, max_events=3):
        for i in range(6):
            api.add(node(f"extra-{i}", "us-east"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(read_events(events_path)) < 3:
            time.sleep(0.05)
    events = read_events(events_path)
    assert len(events) == 3 and events[-1]["event"] == "watch_truncated"


def test_transitions_are_pure_functions_of_two_versions() -> None:
    a = node("n1", "us-east")
    b = node("n1", "us-east", ready=False, unschedulable=True, taints=[{"key": "k", "effect": "NoExecute"}])
    down = node_events(a, b, "topology.kubernetes.io/region")
    assert [e["event"] for e in down] == ["node_condition", "node_cordoned", "node_tainted", "node_state"]
    assert down[-1] == {
        "event": "node_state",
        "node": "n1",
        "region": "us-east",
        "ready": False,
        "reason": "not Ready",
    }
    up = node_events(b, a, "topology.kubernetes.io/region")
    assert [e["event"] for e in up] == ["node_condition", "node_uncordoned", "node_untainted", "node_state"]
    assert up[-1]["ready"] is True
    tainted = node("n1", "us-east", taints=[{"key": "gpu-lost", "effect": "NoExecute"}])
    assert node_events(a, tainted, "r")[-1] == {**node_events(a, tainted, "r")[-1], "ready": False}
    assert node_events(a, tainted, "r")[-1]["reason"] == "tainted gpu-lost"
    assert node_events(None, a, "r")[-1]["event"] == "node_state"
    assert node_events(a, None, "r")[-1] == {
        "event": "node_state",
        "node": "n1",
        "region": None,
        "ready": False,
        "reason": "deleted",
    }
    assert node_events(a, a, "topology.kubernetes.io/region") == []
    p1, p2 = pod("p", "llm", "n1", ready=False), pod("p", "llm", "n1", ready=True)
    assert pod_events(None, p1, lambda n: "us-east") == []  # created not ready: nothing yet
    assert pod_events(p1, p2, lambda n: "us-east")[0]["event"] == "pod_ready"
    assert pod_events(p2, None, lambda n: "us-east")[0] == {
        "event": "pod_deleted",
        "pod": "p",
        "namespace": "llm",
        "node": "n1",
        "region": "us-east",
    }
