"""Pure parts of the Kubernetes target: the target model, object layouts and patches; and the fake API
server's own semantics that the other tests rely on (so that a lenient fake cannot hide a bug)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from reliability.errors import InputError
from reliability.files import parse_model
from reliability.k8s import objects as o
from reliability.k8s.client import api_client
from reliability.k8s.target import KubernetesTarget, kubernetes_target_json_schema
from tests.k8s.conftest import INFERENCE_SERVICE, LLM_INFERENCE_SERVICE, deployment, target_dict
from tests.k8s.fakeapi import FakeKubeAPI, json_patch, label_matcher

# ---------------------------------------------------------------- target model


def test_context_and_cluster_identity_are_required_with_no_default(tmp_path: Path) -> None:
    schema = kubernetes_target_json_schema()
    assert {"kubeconfig", "context", "cluster_uid", "namespaces", "regions"} <= set(schema["required"])
    assert schema["properties"]["gpu_node_selector"]["default"] == "nvidia.com/gpu.present=true"
    assert schema["properties"]["region_label"]["default"] == "topology.kubernetes.io/region"
    assert schema["properties"]["signals"]["default"] == "vllm-dcgm-ksm"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda d: d.pop("context"), "target.context", "Field required"),
        (
            lambda d: d.update(namespaces=["llm", "kube-system"]),
            "target.namespaces",
            "never a target namespace",
        ),
        (
            lambda d: d["regions"]["us-east"]["models"][0].update(namespace="other"),
            "target",
            "not in namespaces",
        ),
        (
            lambda d: d["regions"]["us-east"].update(pod_selector={}),
            "target.regions.us-east.pod_selector",
            "empty",
        ),
        (
            lambda d: d["prometheus"].update(bearer_token="s3cret"),
            "target.prometheus.bearer_token",
            "unknown field",
        ),
    ],
)
def test_bad_targets_are_one_line_errors_naming_the_field(
    change, field: str, message: str, tmp_path: Path
) -> None:
    api = FakeKubeAPI()  # not started: the model needs no server
    data = target_dict(api, tmp_path / "kubeconfig")
    change(data)
    with pytest.raises(InputError) as err:
        parse_model(KubernetesTarget, data, "scenario.yaml", prefix="target")
    assert str(err.value).startswith(f"scenario.yaml: {field}")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_prometheus_auth_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = target_dict(FakeKubeAPI(), tmp_path / "k")
    data["prometheus"] = {
        "url": "https://prom",
        "bearer_token_env": "PROM_TOKEN",
        "headers_env": {"X-Org": "ORG"},
    }
    t = KubernetesTarget.model_validate(data)
    monkeypatch.setenv("PROM_TOKEN", "abc")
    with pytest.raises(InputError, match="ORG is not set"):
        t.prometheus.headers()
    monkeypatch.setenv("ORG", "team")
    assert t.prometheus.headers() == {"Authorization": "Bearer abc", "X-Org": "team"}


# ---------------------------------------------------------------- objects


def test_set_arg_replaces_either_spelling_or_appends() -> None:
    assert o.set_arg(["--a", "1", "--b=2"], "--a", "9") == ["--a", "9", "--b=2"]
    assert o.set_arg(["--a", "1", "--b=2"], "--b", "9") == ["--a", "1", "--b=9"]
    assert o.set_arg(["--a"], "--c", "3") == ["--a", "--c=3"]
    assert o.set_arg(["--enforce-eager"], "--enforce-eager", None) == ["--enforce-eager"]
    assert o.get_arg(["--gpu-memory-utilization", "0.8"], "--gpu-memory-utilization") == "0.8"


def test_tolerations() -> None:
    taint = o.our_taint("r1")
    assert o.tolerates({"spec": {"tolerations": [{"operator": "Exists"}]}}, taint)
    assert o.tolerates({"spec": {"tolerations": [{"key": taint["key"], "operator": "Exists"}]}}, taint)
    assert not o.tolerates({"spec": {"tolerations": [{"key": taint["key"], "value": "x"}]}}, taint)
    assert not o.tolerates({"spec": {"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}]}}, taint)
    assert not o.tolerates({"spec": {}}, taint)


@pytest.mark.parametrize(
    ("obj", "kind", "container", "mode", "path"),
    [
        (
            deployment("us-east"),
            "Deployment",
            "sidecar",
            "bad_version",
            "/spec/template/spec/containers/1/image",
        ),
        (INFERENCE_SERVICE, "InferenceService", None, "bad_version", "/spec/predictor/model/storageUri"),
        (INFERENCE_SERVICE, "InferenceService", None, "env", "/spec/predictor/model/env"),
        (LLM_INFERENCE_SERVICE, "LLMInferenceService", None, "bad_version", "/spec/model/uri"),
        (
            LLM_INFERENCE_SERVICE,
            "LLMInferenceService",
            None,
            "kv_cache_cut",
            "/spec/template/containers/0/args",
        ),
    ],
)
def test_patches_round_trip_on_every_kind(obj, kind: str, container, mode: str, path: str) -> None:
    fc = o.model_field_change(obj, kind, container, mode, bad_version="x:broken", name="N", value="v")
    assert fc.path == path
    changed = json_patch(obj, o.forward_ops(fc))
    assert o.pointer_get(changed, path) == (True, fc.after)
    assert json_patch(changed, o.reverse_ops(fc)) == obj
    with pytest.raises(Exception, match=r"test failed|not found"):
        json_patch(obj, o.reverse_ops(fc))  # the undo of a change that is not there is refused


def test_a_container_index_that_drifted_fails_the_guard() -> None:
    dep = deployment("us-east")
    fc = o.model_field_change(dep, "Deployment", "vllm", "slow_decode")
    moved = copy.deepcopy(dep)
    moved["spec"]["template"]["spec"]["containers"].reverse()
    with pytest.raises(Exception, match="test failed"):
        json_patch(moved, o.forward_ops(fc))


# ---------------------------------------------------------------- the fake's semantics


def test_label_selectors() -> None:
    assert label_matcher("a=1,b!=2,c in (x,y),!d,e")({"a": "1", "b": "3", "c": "y", "e": ""})
    assert not label_matcher("c notin (x,y)")({"c": "x"})


def test_the_fake_enforces_conflicts_and_refuses_strategic_patches_to_custom_resources(
    tmp_path: Path,
) -> None:
    with FakeKubeAPI() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "llm"}})
        api.add(copy.deepcopy(INFERENCE_SERVICE))
        api.add(deployment("us-east"))
        c = api_client(api.kubeconfig(tmp_path / "kc"), "staging")
        apps, custom = k8s.AppsV1Api(c), k8s.CustomObjectsApi(c)
        stale = apps.read_namespaced_deployment("vllm-us-east", "llm")
        apps.patch_namespaced_deployment("vllm-us-east", "llm", {"metadata": {"labels": {"x": "1"}}})
        with pytest.raises(ApiException) as err:
            apps.replace_namespaced_deployment("vllm-us-east", "llm", stale)
        assert err.value.status == 409
        with pytest.raises(ApiException) as err:
            custom.patch_namespaced_custom_object(
                "serving.kserve.io",
                "v1beta1",
                "llm",
                "inferenceservices",
                "llama-isvc",
                {"spec": {"predictor": {"model": {"storageUri": "x"}}}},
                _content_type="application/strategic-merge-patch+json",
            )
        assert err.value.status == 415
        assert api.get("inferenceservices", "llama-isvc", "llm")["spec"] == INFERENCE_SERVICE["spec"]


# ---------------------------------------------------------------- partition verification


def test_a_region_rate_sums_its_series_by_region_or_gateway_server() -> None:
    from reliability.k8s.verify import region_rate

    samples = [
        ({"server": "eu-west", "code": "2xx"}, 3.0),
        ({"server": "eu-west", "code": "5xx"}, 1.0),
        ({"region": "us-east", "code": "2xx"}, 7.0),
        ({"server": "us-east", "code": "other"}, float("nan")),
    ]
    assert region_rate(samples, "eu-west") == 4.0
    assert region_rate(samples, "us-east") == 7.0
    assert region_rate(samples, "ap-south") is None  # no series: no evidence either way


def test_waiting_for_silence_is_bounded_and_no_data_is_not_silence() -> None:
    from reliability.k8s.verify import wait_stopped

    now = [0.0]
    values = iter([5.0, 2.0, 0.0])
    assert wait_stopped(lambda: next(values), 0.0, 10, clock=lambda: now[0], sleep=_advance(now)) == (
        True,
        0.0,
        2.0,
    )
    now[0] = 0.0
    stopped, last, waited = wait_stopped(lambda: None, 0.0, 3, clock=lambda: now[0], sleep=_advance(now))
    assert (stopped, last, waited) == (False, None, 3.0)


def _advance(now: list[float]) -> Any:
    def sleep(s: float) -> None:
        now[0] += s

    return sleep


# ---------------------------------------------------------------- experiments and Prometheus auth


def test_the_faults_of_an_experiment_are_its_method_actions_substituted(tmp_path: Path) -> None:
    from reliability.k8s.experiment import fault_calls

    repo = Path(__file__).resolve().parents[2] / "experiments"
    assert [c.model_dump() for c in fault_calls(repo / "gpu-node-loss.yaml", {"node": "n7"})] == [
        {"func": "kill_node", "args": {"node": "n7", "mode": "xid79"}}
    ]
    assert [c.model_dump() for c in fault_calls(repo / "model-failure.yaml", {"target": "llm/vllm-a"})] == [
        {"func": "fail_model", "args": {"target": "llm/vllm-a", "mode": "bad_version"}}
    ]
    assert fault_calls(repo / "kv-cache-pressure.yaml")[0].args == {
        "target": "us-east",
        "mode": "kv_cache_cut",
        "fraction": 0.1,
    }
    with pytest.raises(InputError, match="'stall_replacements' has no Kubernetes mapping"):
        fault_calls(repo / "replacement-stuck.yaml")


def test_prometheus_auth_comes_from_the_environment_never_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from reliability.chaos.prom import prometheus_headers

    state = tmp_path / "k8s-target.json"
    target = {
        "prometheus": {"url": "https://p", "bearer_token_env": "MY_TOKEN", "headers_env": {"X-Org": "ORG"}}
    }
    state.write_text(json.dumps({"kind": "kubernetes", "target": target}))
    config = {"lab_state": str(state)}
    for name in ("RELIABILITY_PROMETHEUS_HEADERS", "RELIABILITY_PROMETHEUS_BEARER_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MY_TOKEN", "s3cret")
    monkeypatch.setenv("ORG", "tenant-1")
    assert prometheus_headers(config) == {"Authorization": "Bearer s3cret", "X-Org": "tenant-1"}
    assert "s3cret" not in state.read_text()
    monkeypatch.delenv("MY_TOKEN")
    with pytest.raises(InputError, match="environment variable MY_TOKEN is not set"):
        prometheus_headers(config)
    monkeypatch.setenv("RELIABILITY_PROMETHEUS_BEARER_TOKEN", "override")
    assert prometheus_headers(config) == {"Authorization": "Bearer override"}
    lab_state = tmp_path / "state.json"
    lab_state.write_text(json.dumps({"prometheus_url": "http://p"}))
    monkeypatch.delenv("RELIABILITY_PROMETHEUS_BEARER_TOKEN")
    assert prometheus_headers({"lab_state": str(lab_state)}) == {}
