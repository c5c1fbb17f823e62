"""Faults on a Kubernetes target, asserted from the fake API server's request log.

Faked (see fakeapi.py): the API server itself - no scheduler, kubelet, controllers, CNI or RBAC; an
evicted pod disappears at once and nothing replaces it; a NetworkPolicy is stored, not enforced.
Real: HTTP on loopback, the official `kubernetes` client and chaostoolkit-kubernetes' drain_nodes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from reliability.errors import HarnessError, InputError
from reliability.k8s import faults
from reliability.k8s.client import NeedsHuman, Refused
from reliability.k8s.journal import Journal
from reliability.k8s.objects import TAINT_KEY
from tests.k8s.conftest import VLLM_ARGS, make_state, mutations
from tests.k8s.fakeapi import FakeKubeAPI, pod


def _unschedulable(api: FakeKubeAPI, name: str) -> bool:
    return bool((api.get("nodes", name) or {}).get("spec", {}).get("unschedulable"))


def _pods_on(api: FakeKubeAPI, name: str) -> set[str]:
    return {p["metadata"]["name"] for p in api.list("pods") if p["spec"].get("nodeName") == name}


# ---------------------------------------------------------------- lose a GPU node


def test_drain_touches_only_the_named_node_and_heal_uncordons_it(api: FakeKubeAPI, state: Path) -> None:
    out = faults.kill_node(state, "us-east-1", mode="drain")

    assert out["changes"][0]["change"]["was_unschedulable"] is False
    assert _unschedulable(api, "us-east-1")
    assert _pods_on(api, "us-east-1") == {"dcgm-exporter-us-east-1"}  # DaemonSet pods stay, as kubectl drain
    assert mutations(api) == [
        ("PATCH", "/api/v1/nodes/us-east-1"),
        ("POST", "/api/v1/namespaces/llm/pods/vllm-us-east-1/eviction"),
    ]
    assert not any(_unschedulable(api, n) for n in ("us-east-2", "us-east-3", "eu-west-1", "control-plane"))

    healed = faults.heal(state)

    assert healed["healed"] == ["node us-east-1 uncordoned"]
    assert not _unschedulable(api, "us-east-1")
    undo = api.mutations()[-1]
    assert undo.path == "/api/v1/nodes/us-east-1"
    assert undo.content_type == "application/json-patch+json"
    assert undo.body[0] == {"op": "test", "path": "/spec/unschedulable", "value": True}
    assert Journal(state).active() == []
    # A second heal finds nothing to do and sends nothing.
    before = len(api.mutations())
    assert faults.heal(state)["healed"] == []
    assert len(api.mutations()) == before


def test_a_node_cordoned_before_the_fault_stays_cordoned(api: FakeKubeAPI, state: Path) -> None:
    api.update("nodes", "", "us-east-2", lambda n: n["spec"].update(unschedulable=True))

    faults.kill_node(state, "us-east-2", mode="drain")
    assert faults.heal(state)["healed"] == ["node us-east-2 left cordoned (it was cordoned before the fault)"]

    assert _unschedulable(api, "us-east-2")
    assert [m for m in mutations(api) if m[0] == "PATCH"] == [
        ("PATCH", "/api/v1/nodes/us-east-2")
    ]  # the drain's


def test_a_drain_that_meets_a_disruption_budget_undoes_its_cordon_at_once(
    api: FakeKubeAPI, state: Path
) -> None:
    api.add(
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "vllm-us-east", "namespace": "llm"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "vllm", "region": "us-east"}}},
        }
    )

    with pytest.raises(HarnessError, match=r"drain of node us-east-1 failed .*disruption budget.*uncordoned"):
        faults.kill_node(state, "us-east-1", mode="drain")

    assert not _unschedulable(api, "us-east-1")
    evictions = [r for r in api.mutations() if r.path.endswith("/eviction")]
    assert [r.status for r in evictions] == [429]
    assert mutations(api)[-1] == ("PATCH", "/api/v1/nodes/us-east-1")  # the uncordon, right after
    assert Journal(state).active() == []


def test_an_ownerless_pod_on_the_node_is_refused_before_anything_is_sent(
    api: FakeKubeAPI, state: Path
) -> None:
    api.add(pod("debug-shell", "llm", "us-east-1", owner=None))

    with pytest.raises(Refused, match="debug-shell on node us-east-1 has no owner"):
        faults.kill_node(state, "us-east-1", mode="drain")
    assert mutations(api) == []


@pytest.mark.parametrize("ns", ["team-b", "kube-system"])
def test_a_node_running_pods_of_a_namespace_off_the_allow_list_is_refused(
    api: FakeKubeAPI, state: Path, ns: str
) -> None:
    api.add(pod("other-team", ns, "us-east-2"))

    with pytest.raises(Refused, match=f"namespace {ns} is not on the allow-list"):
        faults.kill_node(state, "us-east-2", mode="drain")
    assert mutations(api) == []


@pytest.mark.parametrize(
    ("node", "overrides", "message"),
    [
        (["us-east-1", "us-east-2"], {}, "2 nodes named, the limit is 1"),
        ("control-plane", {}, "does not match 'nvidia.com/gpu.present=true'"),
        ("", {}, "an empty name would select every node"),
        ("us-east-1", {"gpu_node_selector": "nvidia.com/gpu.present=nope"}, "matches no node"),
        ("us-east-1", {"limits": {"min_gpu_nodes_per_region": 3}}, "would leave 2 ready GPU node"),
    ],
)
def test_node_loss_refusals_send_nothing(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, node: Any, overrides: dict[str, Any], message: str
) -> None:
    state = make_state(api, tmp_path / "run", kubeconfig, **overrides)
    with pytest.raises(Refused, match=message):
        faults.kill_node(state, node, mode="drain")
    assert mutations(api) == []


def test_min_gpu_nodes_counts_nodes_already_down(api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path) -> None:
    api.update("nodes", "", "us-east-3", lambda n: n["status"]["conditions"][0].update(status="False"))
    state = make_state(api, tmp_path / "run", kubeconfig, limits={"min_gpu_nodes_per_region": 2})

    with pytest.raises(Refused, match="would leave 1 ready GPU node"):
        faults.kill_node(state, "us-east-1")
    assert mutations(api) == []


def test_taint_mode_adds_only_our_taint_and_heal_removes_only_ours(api: FakeKubeAPI, state: Path) -> None:
    theirs = {"key": "example.com/maintenance", "value": "soon", "effect": "NoSchedule"}
    api.update("nodes", "", "us-east-2", lambda n: n["spec"].update(taints=[theirs]))

    faults.kill_node(state, "us-east-2", mode="xid79")  # the lab's mode name: a GPU fell off the bus

    taints = api.get("nodes", "us-east-2")["spec"]["taints"]
    assert taints[0] == theirs
    assert (taints[1]["key"], taints[1]["value"], taints[1]["effect"]) == (TAINT_KEY, "run1", "NoExecute")
    sent = api.mutations()[-1]
    assert sent.body[0] == {"op": "test", "path": "/spec/taints", "value": [theirs]}

    faults.heal(state)

    assert api.get("nodes", "us-east-2")["spec"]["taints"] == [theirs]
    undo = api.mutations()[-1]
    assert undo.body[0]["op"] == "test" and undo.body[0]["path"] == "/spec/taints/1"
    assert {p for m, p in mutations(api)} == {"/api/v1/nodes/us-east-2"}


# ---------------------------------------------------------------- partition a region


def test_partition_is_one_labelled_policy_deleted_by_uid(api: FakeKubeAPI, state: Path) -> None:
    out = faults.partition_region(state, "eu-west")

    change = out["changes"][0]["change"]
    policy = api.get("networkpolicies", change["name"], "llm")
    assert policy is not None and policy["metadata"]["uid"] == change["uid"]
    assert policy["metadata"]["labels"]["reliability.dev/run-id"] == "run1"
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app": "vllm", "region": "eu-west"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["egress"][0]["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    assert {p["port"] for p in spec["egress"][0]["ports"]} == {53}
    assert spec["ingress"][0]["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "monitoring"}
    }

    faults.heal_partition(state, "eu-west")

    assert api.get("networkpolicies", change["name"], "llm") is None
    delete = api.mutations()[-1]
    assert delete.method == "DELETE" and delete.path.endswith(f"/networkpolicies/{change['name']}")
    assert delete.body["preconditions"] == {"uid": change["uid"]}
    assert [m for m, _ in mutations(api)] == ["POST", "DELETE"]


def test_a_same_named_policy_made_by_someone_else_survives_the_heal(api: FakeKubeAPI, state: Path) -> None:
    change = faults.partition_region(state, "eu-west")["changes"][0]["change"]
    replacement = api.get("networkpolicies", change["name"], "llm")
    api.remove("networkpolicies", "llm", change["name"])
    replacement["metadata"].pop("uid")
    api.add(replacement)  # same name, new uid

    faults.heal_partition(state, "eu-west")

    assert api.get("networkpolicies", change["name"], "llm") is not None
    assert api.mutations()[-1].status == 409  # the uid precondition held
    assert Journal(state).active() == []


def test_a_partition_counts_only_once_prometheus_shows_the_region_silent(
    api: FakeKubeAPI, state: Path
) -> None:
    out = faults.partition_region(state, "eu-west")

    assert out["verified"]["before_rps"] == 10.0 and out["verified"]["after_rps"] == 0.0
    assert api.traffic.seen() == {"us-east": 10.0, "eu-west": 0.0}


def test_a_partition_the_network_does_not_enforce_fails_and_is_undone(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    """A CNI that keeps existing connections (or enforces no policy): the policy is stored, the
    traffic goes on - the fault fails, saying so, and stays recorded for the rollback."""
    state = make_state(api, tmp_path / "run", kubeconfig, partition={"verify_timeout": 2})
    api.traffic.enforced = False

    with pytest.raises(HarnessError, match="partition of region eu-west NOT in effect") as failed:
        faults.partition_region(state, "eu-west")

    assert "still shows 10.0 req/s of its traffic" in str(failed.value)
    assert "Some CNIs do not cut existing connections" in str(failed.value)
    assert len(api.list("networkpolicies")) == 1 and len(Journal(state).active()) == 1
    faults.heal(state)
    assert api.list("networkpolicies") == [] and Journal(state).active() == []


def test_a_region_without_traffic_is_not_partitioned(api: FakeKubeAPI, state: Path) -> None:
    api.traffic.rps["eu-west"] = 0.0
    api.traffic.settle()

    with pytest.raises(Refused, match=r"shows 0 req/s of traffic of region eu-west.*could not be verified"):
        faults.partition_region(state, "eu-west")
    assert mutations(api) == [] and Journal(state).entries() == []


def test_a_pod_selector_matching_nothing_is_refused(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    state = make_state(api, tmp_path / "run", kubeconfig)
    for i in (1, 2, 3):
        api.remove("pods", "llm", f"vllm-eu-west-{i}")

    with pytest.raises(Refused, match="matches no pod in namespace llm"):
        faults.partition_region(state, "eu-west")
    assert mutations(api) == []


# ---------------------------------------------------------------- fail a model


def test_bad_version_patches_the_image_with_a_test_and_restore_reverses_it(
    api: FakeKubeAPI, state: Path
) -> None:
    faults.fail_model(state, "llm/vllm-us-east", mode="bad_version")

    dep = api.get("deployments", "vllm-us-east", "llm")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.0.0-broken"
    sent = api.mutations()[-1]
    assert sent.content_type == "application/json-patch+json"
    assert {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "vllm"} in sent.body
    assert {
        "op": "test",
        "path": "/spec/template/spec/containers/0/image",
        "value": "vllm/vllm-openai:v0.11.0",
    } in sent.body

    faults.restore_model(state, "llm/vllm-us-east")

    assert api.get("deployments", "vllm-us-east", "llm")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == ("vllm/vllm-openai:v0.11.0")
    assert mutations(api) == [("PATCH", "/apis/apps/v1/namespaces/llm/deployments/vllm-us-east")] * 2


def test_restore_after_someone_else_changed_the_field_needs_a_human(api: FakeKubeAPI, state: Path) -> None:
    faults.fail_model(state, "vllm-us-east", mode="bad_version")

    def hotfix(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "vllm/vllm-openai:v0.11.1-hotfix"

    api.update("deployments", "llm", "vllm-us-east", hotfix)
    sent = len(api.mutations())

    with pytest.raises(NeedsHuman, match="needs a human"):
        faults.restore_model(state, "vllm-us-east")

    dep = api.get("deployments", "vllm-us-east", "llm")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.11.1-hotfix"
    assert len(api.mutations()) == sent  # never overwritten
    # The entry stays active: the next heal / recover reports it again.
    assert [e.status for e in Journal(state).active()] == ["needs_human"]
    with pytest.raises(NeedsHuman):
        faults.heal(state)


def test_a_reverse_patch_whose_test_fails_on_the_server_leaves_the_object_alone(
    api: FakeKubeAPI, state: Path
) -> None:
    faults.fail_model(state, "vllm-us-east", mode="slow_decode")
    released = api.hold("PATCH", "/deployments/vllm-us-east$")
    errors: list[BaseException] = []

    def restore() -> None:
        try:
            faults.restore_model(state, "vllm-us-east")
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=restore)
    worker.start()
    api.wait_for(lambda r: r.method == "PATCH" and r.status == 0)
    # Someone edits the args between our read and our patch: the patch's `test` must fail (422).
    api.update(
        "deployments",
        "llm",
        "vllm-us-east",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(args=["--model", "other"]),
    )
    released.set()
    worker.join(30)

    assert len(errors) == 1 and isinstance(errors[0], NeedsHuman) and "needs a human" in str(errors[0])
    assert api.mutations()[-1].status == 422
    dep = api.get("deployments", "vllm-us-east", "llm")
    assert dep["spec"]["template"]["spec"]["containers"][0]["args"] == ["--model", "other"]


def test_custom_resources_get_json_patches(api: FakeKubeAPI, state: Path) -> None:
    faults.fail_model(state, "llama-isvc", mode="bad_version")
    faults.fail_model(state, "qwen-llmisvc", mode="slow_decode")

    isvc = api.get("inferenceservices", "llama-isvc", "llm")
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == "hf://example/missing"
    llm = api.get("llminferenceservices", "qwen-llmisvc", "llm")
    assert llm["spec"]["template"]["containers"][0]["args"] == ["--enforce-eager"]
    assert {r.content_type for r in api.mutations()} == {"application/json-patch+json"}

    faults.heal(state)

    assert api.get("inferenceservices", "llama-isvc", "llm")["spec"] == {
        "predictor": {
            "model": {
                "modelFormat": {"name": "huggingface"},
                "storageUri": "hf://meta-llama/Llama-3.2-1B-Instruct",
                "args": ["--max-model-len=4096"],
            }
        }
    }
    assert (
        "args"
        not in api.get("llminferenceservices", "qwen-llmisvc", "llm")["spec"]["template"]["containers"][0]
    )


def test_kv_cache_cut_scales_gpu_memory_utilization(api: FakeKubeAPI, state: Path) -> None:
    faults.fail_model(state, "vllm-eu-west", mode="kv_cache_cut", fraction=0.5)

    args = api.get("deployments", "vllm-eu-west", "llm")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "--model",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "--gpu-memory-utilization",
        "0.450",
        "--port",
        "8000",
    ]
    faults.restore_model(state, "vllm-eu-west")
    args = api.get("deployments", "vllm-eu-west", "llm")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == VLLM_ARGS


def test_a_region_target_patches_every_model_object_of_the_region(api: FakeKubeAPI, state: Path) -> None:
    out = faults.fail_model(state, "us-east", mode="bad_version")
    assert len(out["changes"]) == 2
    assert len(faults.restore_model(state, "us-east")["healed"]) == 2


@pytest.mark.parametrize("mode", ["errors", "latency", "wrong", "nan"])
def test_lab_modes_without_a_kubernetes_mapping_are_refused(api: FakeKubeAPI, state: Path, mode: str) -> None:
    with pytest.raises(Refused, match="has no Kubernetes mapping"):
        faults.fail_model(state, "vllm-us-east", mode=mode)
    assert mutations(api) == []


def test_a_forward_patch_refused_by_the_server_leaves_nothing_to_undo(api: FakeKubeAPI, state: Path) -> None:
    released = api.hold("PATCH", "/deployments/vllm-us-east$")
    errors: list[BaseException] = []
    worker = threading.Thread(
        target=lambda: _capture(errors, lambda: faults.fail_model(state, "vllm-us-east", mode="bad_version"))
    )
    worker.start()
    api.wait_for(lambda r: r.method == "PATCH" and r.status == 0)
    api.update(
        "deployments",
        "llm",
        "vllm-us-east",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="vllm/vllm-openai:v0.12.0"),
    )
    released.set()
    worker.join(30)

    assert len(errors) == 1 and "refused it (422" in str(errors[0])
    assert Journal(state).active() == []
    faults.heal(state)
    assert api.get("deployments", "vllm-us-east", "llm")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ] == ("vllm/vllm-openai:v0.12.0")


def _capture(errors: list[BaseException], fn: Any) -> None:
    try:
        fn()
    except BaseException as exc:
        errors.append(exc)


# ---------------------------------------------------------------- the right cluster, or nothing


def test_a_wrong_cluster_identity_sends_nothing_mutating(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    state = make_state(api, tmp_path / "run", kubeconfig, cluster_uid="0000-not-this-cluster")

    for call in (
        lambda: faults.kill_node(state, "us-east-1"),
        lambda: faults.partition_region(state, "us-east"),
        lambda: faults.fail_model(state, "us-east", mode="bad_version"),
        lambda: faults.heal(state),
    ):
        with pytest.raises(Refused, match="wrong cluster, nothing was sent"):
            call()
    assert mutations(api) == []
    assert {(r.method, r.path) for r in api.requests} == {("GET", "/api/v1/namespaces/kube-system")}


def test_a_context_pointing_at_another_cluster_is_refused_there(api: FakeKubeAPI, tmp_path: Path) -> None:
    with FakeKubeAPI() as other:
        seed_other = other.kubeconfig(tmp_path / "unused")
        assert seed_other.exists()
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", others={"prod": other.url})
        state = make_state(api, tmp_path / "run", kubeconfig, context="prod")

        with pytest.raises(Refused, match="wrong cluster"):
            faults.kill_node(state, "us-east-1")
        assert other.mutations() == [] and api.requests == []


def test_a_context_not_in_the_kubeconfig_or_a_missing_kubeconfig_is_refused_offline(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="context 'nope' is not in"):
        make_state(api, tmp_path / "a", kubeconfig, context="nope")
    with pytest.raises(InputError, match="kubeconfig not found"):
        make_state(api, tmp_path / "b", tmp_path / "missing-kubeconfig")
    # A state file whose kubeconfig vanished since (recover on another machine): no fallback either.
    state = make_state(api, tmp_path / "c", kubeconfig)
    kubeconfig.unlink()
    with pytest.raises(InputError, match="kubeconfig not found"):
        faults.heal(state)
    assert api.requests == []


def test_a_dry_run_state_sends_only_dry_run_calls_and_records_nothing(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    state = make_state(api, tmp_path / "run", kubeconfig, dry_run=True)

    faults.kill_node(state, "us-east-1", mode="drain")
    faults.partition_region(state, "eu-west")
    faults.fail_model(state, "vllm-us-east", mode="bad_version")

    assert mutations(api) == []
    sent = api.mutations(include_dry_run=True)
    assert len(sent) == 4 and all(r.dry_run for r in sent)
    assert Journal(state).entries() == []
    assert not _unschedulable(api, "us-east-1") and _pods_on(api, "us-east-1") == {
        "vllm-us-east-1",
        "dcgm-exporter-us-east-1",
    }
    assert api.list("networkpolicies") == []
