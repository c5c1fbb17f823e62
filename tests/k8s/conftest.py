"""A two-region GPU cluster on the fake API server (tests/k8s/fakeapi.py: real HTTP on 127.0.0.1; no
scheduler, kubelet, controllers, CNI or RBAC - see its docstring), and a target state file for it.

Cluster: 3 GPU nodes per region (`us-east-1..3`, `eu-west-1..3`) and a control-plane node without
GPUs; on each GPU node a vLLM pod (namespace `llm`, owned by a ReplicaSet, labels app=vllm,
region=R) and a DCGM exporter pod (namespace `gpu-operator`, owned by a DaemonSet, tolerating every
taint as such pods usually do); per region a vLLM Deployment; one KServe InferenceService and one
LLMInferenceService in `llm`.

Prometheus: one real Prometheus for the session scrapes each region's traffic from the test's CNI
stand-in (tests/k8s/traffic.py): a partition policy stops its region's traffic while `enforced`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliability.k8s.target import KubernetesTarget, write_state
from tests.k8s.fakeapi import FakeKubeAPI, namespace, node, pod
from tests.k8s.traffic import PROFILE, RegionTraffic

REGIONS = ("us-east", "eu-west")
VLLM_ARGS = ["--model", "Qwen/Qwen2.5-0.5B-Instruct", "--gpu-memory-utilization", "0.9", "--port", "8000"]


def deployment(region: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"vllm-{region}", "namespace": "llm", "labels": {"app": "vllm"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "vllm", "region": region}},
            "template": {
                "metadata": {"labels": {"app": "vllm", "region": region}},
                "spec": {
                    "containers": [
                        {"name": "vllm", "image": "vllm/vllm-openai:v0.11.0", "args": list(VLLM_ARGS)},
                        {"name": "sidecar", "image": "busybox"},
                    ]
                },
            },
        },
    }


INFERENCE_SERVICE = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "llama-isvc", "namespace": "llm"},
    "spec": {
        "predictor": {
            "model": {
                "modelFormat": {"name": "huggingface"},
                "storageUri": "hf://meta-llama/Llama-3.2-1B-Instruct",
                "args": ["--max-model-len=4096"],
            }
        }
    },
}
LLM_INFERENCE_SERVICE = {
    "apiVersion": "serving.kserve.io/v1alpha1",
    "kind": "LLMInferenceService",
    "metadata": {"name": "qwen-llmisvc", "namespace": "llm"},
    "spec": {
        "model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct", "name": "Qwen/Qwen2.5-7B-Instruct"},
        "replicas": 2,
        "template": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
    },
}


def seed(api: FakeKubeAPI) -> None:
    for ns in ("llm", "gpu-operator", "monitoring"):
        api.add(namespace(ns))
    api.add(node("control-plane", "us-east", gpu=False))
    for region in REGIONS:
        api.add(deployment(region))
        for i in (1, 2, 3):
            name = f"{region}-{i}"
            api.add(node(name, region))
            api.add(pod(f"vllm-{name}", "llm", name, labels={"app": "vllm", "region": region}))
            api.add(
                pod(
                    f"dcgm-exporter-{name}",
                    "gpu-operator",
                    name,
                    labels={"app": "dcgm-exporter"},
                    owner="DaemonSet",
                    tolerations=[{"operator": "Exists"}],
                )
            )
    api.add(copy.deepcopy(INFERENCE_SERVICE))
    api.add(copy.deepcopy(LLM_INFERENCE_SERVICE))


def target_dict(api: FakeKubeAPI, kubeconfig: Path, **overrides: Any) -> dict[str, Any]:
    regions: dict[str, Any] = {
        region: {
            "models": [
                {
                    "kind": "Deployment",
                    "namespace": "llm",
                    "name": f"vllm-{region}",
                    "container": "vllm",
                    "bad_version": "vllm/vllm-openai:v0.0.0-broken",
                }
            ],
            "pod_selector": {"app": "vllm", "region": region},
        }
        for region in REGIONS
    }
    regions["us-east"]["models"].append(
        {
            "kind": "InferenceService",
            "namespace": "llm",
            "name": "llama-isvc",
            "bad_version": "hf://example/missing",
        }
    )
    regions["eu-west"]["models"].append(
        {"kind": "LLMInferenceService", "namespace": "llm", "name": "qwen-llmisvc"}
    )
    data: dict[str, Any] = {
        "kind": "kubernetes",
        "kubeconfig": str(kubeconfig),
        "context": "staging",
        "cluster_uid": api.kube_system_uid,
        "namespaces": ["llm"],
        "regions": regions,
        "endpoint": "http://127.0.0.1:9",
        "prometheus": {"url": api.traffic.url if api.traffic else "http://127.0.0.1:9"},
        "signals": str(PROFILE),
        "drain_timeout": 30,
    }
    data.update(overrides)
    return data


@pytest.fixture(scope="session")
def region_traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegionTraffic]:
    traffic = RegionTraffic(tmp_path_factory.mktemp("traffic-prometheus")).start()
    try:
        yield traffic
    finally:
        traffic.stop()


@pytest.fixture
def api(region_traffic: RegionTraffic) -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        seed(server)
        region_traffic.reset()
        region_traffic.api = server
        server.traffic = region_traffic
        region_traffic.settle()
        try:
            yield server
        finally:
            region_traffic.api = None


@pytest.fixture
def kubeconfig(api: FakeKubeAPI, tmp_path: Path) -> Path:
    return api.kubeconfig(tmp_path / "kubeconfig")


def make_state(
    api: FakeKubeAPI, run_dir: Path, kubeconfig: Path, dry_run: bool = False, **overrides: Any
) -> Path:
    target = KubernetesTarget.model_validate(target_dict(api, kubeconfig, **overrides))
    return write_state(target, run_dir, run_id="run1", dry_run=dry_run)


@pytest.fixture
def state(api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path) -> Path:
    return make_state(api, tmp_path / "run", kubeconfig)


def mutations(api: FakeKubeAPI) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in api.mutations()]


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"


def example_scenario(
    name: str,
    out: Path,
    api: FakeKubeAPI,
    kubeconfig: Path,
    target: dict[str, Any] | None = None,
    **sections: Any,
) -> Path:
    """A copy of examples/kubernetes/scenarios/<name>.yaml pointed at the fake cluster (kubeconfig,
    identity, this test's Prometheus and profile; the bearer token still from $PROMETHEUS_TOKEN):
    `target` entries and whole `sections` replace the example's; its experiment and SLO files stay
    the shipped ones."""
    import yaml

    source = EXAMPLES / "scenarios" / f"{name}.yaml"
    data = yaml.safe_load(source.read_text())
    data["target"].update(kubeconfig=str(kubeconfig), cluster_uid=api.kube_system_uid, signals=str(PROFILE))
    data["target"]["prometheus"]["url"] = api.traffic.url if api.traffic else "http://127.0.0.1:9"
    data["target"]["partition"]["verify_timeout"] = "10s"
    data["target"].update(target or {})
    data["experiment"]["file"] = str((source.parent / data["experiment"]["file"]).resolve())
    data["slos"] = [str((source.parent / s).resolve()) for s in data["slos"]]
    if name == "gpu-node-loss":
        data["experiment"]["configuration"]["node"] = "us-east-1"
    data["load"] = {"users": 2, "spawn_rate": 2}
    data.update(sections)
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
