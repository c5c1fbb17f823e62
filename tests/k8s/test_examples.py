"""examples/kubernetes: the scenarios are game-day scenarios (`prepare` accepts them), the manifests say
what the README says, and the RBAC grants exactly the verbs a plan
of every fault kind checks - no fewer (the run would fail) and no more (least privilege)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.gameday import prepare
from reliability.k8s.experiment import fault_calls
from reliability.k8s.plan import FaultCall, plan_faults
from reliability.k8s.target import KubernetesTarget
from reliability.scenario import resolve
from reliability.signals import load_profile
from tests.k8s.conftest import make_state
from tests.k8s.fakeapi import FakeKubeAPI

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
SCENARIOS = sorted((EXAMPLES / "scenarios").glob("*.yaml"))


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((EXAMPLES / name).read_text()) if d]


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_example_scenarios_are_game_day_scenarios(path: Path) -> None:
    scenario, slos = prepare(path)  # every offline check of `gameday run`, the experiment's included
    assert isinstance(scenario.target, KubernetesTarget) and scenario.target.context
    assert scenario.target.limits.max_nodes_per_fault == 1
    assert scenario.experiment.configuration["faults_module"] == "reliability.k8s.faults"
    assert load_profile(resolve(path, scenario.target.signals)).series["requests_by_region"]
    calls = fault_calls(resolve(path, scenario.experiment.file), scenario.experiment.configuration)
    assert [c.func for c in calls] == [EXPECTED[path.stem]]
    assert slos


EXPECTED = {
    "gpu-node-loss": "kill_node",
    "region-partition": "partition_region",
    "model-failure": "fail_model",
}


def test_the_vllm_manifests_probe_as_the_reference_says() -> None:
    deployments = [d for d in _docs("vllm-two-regions.yaml") if d["kind"] == "Deployment"]
    assert {
        d["spec"]["template"]["spec"]["nodeSelector"]["topology.kubernetes.io/region"] for d in deployments
    } == {
        "us-east",
        "eu-west",
    }
    for d in deployments:
        c = d["spec"]["template"]["spec"]["containers"][0]
        assert c["readinessProbe"]["periodSeconds"] == 1
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # minutes for model load
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_worker_job_runs_the_load_worker() -> None:
    (job,) = _docs("locust-workers-job.yaml")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:4] == ["reliability", "load", "worker", "--master"]


def _grants(rules: list[dict[str, Any]], check: Any) -> list[tuple[int, str]]:
    resource = check.resource + (f"/{check.subresource}" if check.subresource else "")
    return [
        (i, check.verb)
        for i, r in enumerate(rules)
        if check.group in r["apiGroups"]
        and resource in r["resources"]
        and check.verb in r["verbs"]
        and (not r.get("resourceNames") or check.name in r["resourceNames"])
    ]


def test_the_rbac_grants_exactly_what_a_plan_of_every_fault_checks(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    state = make_state(api, tmp_path / "run", kubeconfig)
    plan = plan_faults(
        state,
        [
            FaultCall(func="kill_node", args={"node": "us-east-1", "mode": "drain"}),
            FaultCall(func="partition_region", args={"region": "eu-west"}),
            FaultCall(func="fail_model", args={"target": "vllm-us-east", "mode": "bad_version"}),
            FaultCall(func="fail_model", args={"target": "llama-isvc", "mode": "bad_version"}),
            FaultCall(func="fail_model", args={"target": "qwen-llmisvc", "mode": "slow_decode"}),
        ],
    )
    docs = _docs("rbac.yaml")
    cluster_rules = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    ns_rules = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "llm")["rules"]
    used: set[tuple[str, int, str]] = set()
    for check in plan.access:
        found = [("cluster", *g) for g in _grants(cluster_rules, check)]
        if check.namespace == "llm":
            found += [("llm", *g) for g in _grants(ns_rules, check)]
        assert found, f"rbac.yaml does not grant {check}"
        used.update(found)
    granted = {("cluster", i, v) for i, r in enumerate(cluster_rules) for v in r["verbs"]}
    granted |= {("llm", i, v) for i, r in enumerate(ns_rules) for v in r["verbs"]}
    ssar = {
        ("cluster", i, "create")
        for i, r in enumerate(cluster_rules)
        if "selfsubjectaccessreviews" in r["resources"]
    }
    assert granted - used - ssar == set()
