"""`plan_faults`: what a run would touch, sent with dryRun=All, plus access reviews - asserted from the
fake API server's log (real HTTP; no RBAC there: access reviews answer what the test sets)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reliability.k8s import faults
from reliability.k8s.client import Refused
from reliability.k8s.journal import Journal
from reliability.k8s.plan import FaultCall, plan_faults, render_plan
from reliability.k8s.target import KubernetesTarget
from tests.k8s.conftest import target_dict
from tests.k8s.fakeapi import FakeKubeAPI

FAULTS = [
    FaultCall(func="kill_node", args={"node": "us-east-1", "mode": "drain"}),
    FaultCall(func="partition_region", args={"region": "eu-west"}),
    FaultCall(func="fail_model", args={"target": "vllm-us-east", "mode": "bad_version"}),
]


def test_a_plan_sends_only_dry_run_calls_and_names_what_it_touches(api: FakeKubeAPI, state: Path) -> None:
    plan = plan_faults(state, FAULTS)

    assert api.mutations() == []  # nothing that changes the cluster
    dry = api.mutations(include_dry_run=True)
    assert dry and all(r.dry_run for r in dry)
    assert [(m.method, m.path) for m in plan.calls] == [(r.method, r.path) for r in dry]
    assert plan.nodes == ["us-east-1"]
    assert plan.namespaces == ["llm"]
    assert plan.objects[0] == "Deployment llm/vllm-us-east"
    assert plan.objects[1].startswith("NetworkPolicy llm/reliability-partition-eu-west-run1-")
    assert plan.context == "staging" and plan.server == api.url
    assert plan.ok
    assert Journal(state).entries() == []
    text = render_plan(plan)
    assert "PATCH /api/v1/nodes/us-east-1" in text and "plan OK" in text
    reviews = [r for r in api.requests if r.path.endswith("selfsubjectaccessreviews")]
    assert {r.body["spec"]["resourceAttributes"]["verb"] for r in reviews} >= {
        "patch",
        "create",
        "delete",
        "watch",
    }


def test_the_plan_shows_the_calls_the_run_then_makes(api: FakeKubeAPI, state: Path) -> None:
    plan = plan_faults(state, FAULTS)
    planned = [(m.method, m.path) for m in plan.calls]
    start = len(api.requests)

    faults.kill_node(state, "us-east-1", mode="drain")
    faults.partition_region(state, "eu-west")
    faults.fail_model(state, "vllm-us-east", mode="bad_version")

    ran = [(r.method, r.path) for r in api.requests[start:] if r.mutating]
    assert ran == planned
    undo_start = len(api.requests)
    faults.heal(state)
    undone = sorted((r.method, _unique(r.path)) for r in api.requests[undo_start:] if r.mutating)
    # The same calls; only the policy's unique name suffix is drawn anew by the run.
    assert undone == sorted((m.method, _unique(m.path)) for m in plan.undo_calls)


def _unique(path: str) -> str:
    return re.sub(r"-run1-[0-9a-f]{6}$", "-run1-<change id>", path)


def test_a_denied_verb_and_a_budget_that_forbids_the_eviction_show_in_the_plan(
    api: FakeKubeAPI, state: Path
) -> None:
    api.deny("patch", "deployments", "llm")
    api.add(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "vllm", "namespace": "llm"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "vllm"}}},
        }
    )

    plan = plan_faults(state, FAULTS)

    assert not plan.ok
    assert [a.verb for a in plan.access if not a.allowed] == ["patch"]
    assert any("disruption budget" in p for p in plan.changes[0].dry_run_problems)
    assert "DENY patch apps/deployments in llm" in render_plan(plan)
    assert api.mutations() == []


def test_planning_from_the_scenario_target_writes_nothing_and_refuses_like_a_run(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    target = KubernetesTarget.model_validate(target_dict(api, kubeconfig))
    plan = plan_faults(target, FAULTS[:1], scenario_path=tmp_path / "scenario.yaml")
    assert plan.nodes == ["us-east-1"] and api.mutations() == []
    assert list(tmp_path.iterdir()) == [kubeconfig]

    with pytest.raises(Refused, match="2 nodes named"):
        plan_faults(target, [FaultCall(func="kill_node", args={"node": ["us-east-1", "us-east-2"]})])
    # Two faults that each keep the minimum alone but not together are refused too.
    target2 = KubernetesTarget.model_validate(
        target_dict(api, kubeconfig, limits={"min_gpu_nodes_per_region": 2})
    )
    with pytest.raises(Refused, match="would leave 1 ready GPU node"):
        plan_faults(
            target2,
            [
                FaultCall(func="kill_node", args={"node": "us-east-1"}),
                FaultCall(func="kill_node", args={"node": "us-east-2"}),
            ],
        )
    assert api.mutations(include_dry_run=True) != [] and api.mutations() == []


def test_a_plan_against_the_wrong_cluster_sends_nothing(api: FakeKubeAPI, kubeconfig: Path) -> None:
    target = KubernetesTarget.model_validate(target_dict(api, kubeconfig, cluster_uid="someone-else"))
    with pytest.raises(Refused, match="wrong cluster"):
        plan_faults(target, FAULTS)
    assert [(r.method, r.path) for r in api.requests] == [("GET", "/api/v1/namespaces/kube-system")]
