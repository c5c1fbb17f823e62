"""The lab's pure parts: its config and schema, the CLI's input errors, the kube-state-metrics view
of the controller and the canary's judging of answers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from reliability.errors import InputError
from reliability.lab import lab_json_schema, load_lab_config
from reliability.lab.config import MAX_NODES, MAX_REGIONS
from reliability.lab.ksm import kube_state_registry
from reliability.lab.llm.tinylm import GoldenCase
from reliability.lab.prober import answer_text, golden_request
from reliability.lab.state import NodeState

CLI = [sys.executable, "-m", "reliability.cli"]


def test_default_topology_and_schema() -> None:
    cfg = load_lab_config(None)
    assert cfg.region_names() == ["us-east", "eu-west"]
    assert [r.nodes for r in cfg.regions] == [3, 3] and all(r.standby == 0 for r in cfg.regions)
    assert cfg.store_primary() == "us-east" and cfg.active_region() == "us-east"
    assert cfg.model.served_name == "meta-llama/Llama-3.1-8B-Instruct"
    assert 79 in cfg.controller.fatal_xids and 48 in cfg.controller.fatal_xids
    schema = lab_json_schema()
    assert schema["additionalProperties"] is False and "regions" in schema["properties"]
    printed = subprocess.run([*CLI, "schema", "lab"], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and json.loads(printed.stdout) == schema


def test_a_config_file_overrides_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(
        "regions: [{name: us-east, nodes: 3, standby: 1}, {name: eu-west, nodes: 2}]\n"
        "store: {primary_region: eu-west}\n"
        "global_gateway: {routing: active-passive, primary_region: eu-west}\n"
    )
    cfg = load_lab_config(path)
    assert cfg.region("us-east").standby == 1 and cfg.region("eu-west").nodes == 2
    assert cfg.store_primary() == "eu-west" and cfg.active_region() == "eu-west"


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("regions: [{name: a}, {name: a}]", "(top level)"),
        ("store: {primary_region: mars}", "store.primary_region"),
        ("controller: {missed_heartbeats: 0}", "controller.missed_heartbeats"),
        ("model: {warmup: 3}", "model.warmup"),
        ("regions: [{name: 'Bad Name'}]", "regions[0].name"),
        ("regions: [{name: a, nodes: 17}]", "regions[0].nodes"),
        ("engine: {block_size: 0}", "engine.block_size"),
        ("global_gateway: {routing: round-robin}", "global_gateway.routing"),
    ],
)
def test_bad_lab_config_names_file_and_field(tmp_path: Path, yaml_text: str, field: str) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError) as err:
        load_lab_config(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_the_topology_is_bounded(tmp_path: Path) -> None:
    """A config the schema's per-field limits allow but one machine cannot run is refused."""
    too_many_nodes = tmp_path / "nodes.yaml"
    regions = [{"name": f"r{i}", "nodes": 16} for i in range(MAX_NODES // 16 + 1)]
    too_many_nodes.write_text(json.dumps({"regions": regions}))
    with pytest.raises(InputError, match=f"at most {MAX_NODES}"):
        load_lab_config(too_many_nodes)
    too_many_regions = tmp_path / "regions.yaml"
    too_many_regions.write_text(json.dumps({"regions": [{"name": f"r{i}", "nodes": 1} for i in range(99)]}))
    with pytest.raises(InputError, match="regions"):
        load_lab_config(too_many_regions)
    assert MAX_REGIONS < 99


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--config", "{dir}/lab.yaml"], "model.warmup"),
        (["--isolation", "bogus"], "isolation"),
        (["--config", "{dir}/missing.yaml"], "missing.yaml"),
    ],
)
def test_lab_up_with_bad_input_exits_2_with_one_line_and_starts_nothing(
    tmp_path: Path, args: list[str], text: str
) -> None:
    (tmp_path / "lab.yaml").write_text("model: {warmup: 3}\n")
    argv = [a.format(dir=tmp_path) for a in args]
    proc = subprocess.run(
        [*CLI, "lab", "up", *argv, "--dir", str(tmp_path / "l")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and text in proc.stderr
    assert not (tmp_path / "l").exists()  # nothing started, nothing written


def test_lab_down_and_status_without_a_lab(tmp_path: Path) -> None:
    down = subprocess.run(
        [*CLI, "lab", "down", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 0 and "nothing to stop" in down.stdout


def node(name: str, **kw: object) -> NodeState:
    fields: dict[str, object] = {
        "name": name,
        "region": name.rsplit("-", 1)[0],
        "status": "ready",
        "ready": True,
    }
    fields.update(kw)
    return NodeState.model_validate(fields)


def ksm_samples(nodes: list[NodeState]) -> list[tuple[str, dict[str, str], float]]:
    text = generate_latest(kube_state_registry(lambda: nodes)).decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def test_kube_state_metrics_view_of_the_controller() -> None:
    samples = ksm_samples(
        [
            node("us-east-1"),
            node(
                "us-east-2",
                status="cordoned",
                ready=False,
                unschedulable=True,
                conditions={"GPUUnhealthy": True},
            ),
            node("us-east-3", status="lost", ready=False),
            node("us-east-4", standby=True),
            node("us-east-5", status="replaced", ready=False),
        ]
    )

    def value(name: str, **labels: str) -> float | None:
        hits = [v for n, lab, v in samples if n == name and all(lab.get(k) == x for k, x in labels.items())]
        return hits[0] if hits else None

    assert value("kube_node_spec_unschedulable", node="us-east-2") == 1
    assert value("kube_node_spec_unschedulable", node="us-east-1") == 0
    assert value("kube_node_status_condition", node="us-east-2", condition="GPUUnhealthy", status="true") == 1
    assert value("kube_node_status_condition", node="us-east-3", condition="Ready", status="unknown") == 1
    assert value("kube_node_spec_taint", node="us-east-2", key="nvidia.com/gpu-unhealthy") == 1
    assert (
        value("kube_node_status_capacity", node="us-east-2", resource="nvidia_com_gpu", unit="integer") == 1
    )
    assert value("kube_node_status_allocatable", node="us-east-2", resource="nvidia_com_gpu") == 0
    assert value("kube_node_status_allocatable", node="us-east-1", resource="nvidia_com_gpu") == 1
    assert value("kube_node_labels", node="us-east-1", label_topology_kubernetes_io_region="us-east") == 1
    assert not [lab for n, lab, _ in samples if lab.get("node") == "us-east-5"]  # removed from the cluster
    # Serving capacity = ready pods in `inference`: the standby's pod is elsewhere until promoted.
    serving = {
        lab["pod"]
        for n, lab, v in samples
        if n == "kube_pod_status_ready"
        and lab["namespace"] == "inference"
        and lab["condition"] == "true"
        and v
    }
    assert serving == {"vllm-us-east-1"}
    assert (
        value("kube_pod_status_ready", pod="vllm-us-east-4", namespace="inference-standby", condition="true")
        == 1
    )


def test_the_canary_judges_answers_by_exact_match() -> None:
    chat = GoldenCase(
        id="c1", api="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4, expected="ab"
    )
    body = golden_request(chat)
    assert body["temperature"] == 0 and body["stream"] is False and body["messages"] == chat.messages
    assert answer_text("chat", {"choices": [{"message": {"content": "ab"}}]}) == "ab"
    assert answer_text("completions", {"choices": [{"text": "ab"}]}) == "ab"
    assert answer_text("chat", {"error": {"message": "x"}}) is None
