"""The scenario's `target` is the lab or a Kubernetes cluster (a pydantic discriminated union), and the
load section says where the Locust master listens for workers started elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability.errors import InputError
from reliability.k8s.target import KubernetesTarget
from reliability.scenario import LabTarget, Scenario, load_scenario, scenario_json_schema
from tests.k8s.conftest import EXAMPLES

REPO = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "name": "s",
    "slos": [str(REPO / "scenarios" / "slos" / "llm-gameday.yaml")],
    "experiment": {"file": str(REPO / "experiments" / "gpu-node-loss.yaml")},
    "phases": {"baseline": "5s", "fault_hold": "5s", "recovery_max": "10s"},
}


def _write(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({**BASE, **fields}))
    return path


def test_the_scenario_schema_shows_both_targets() -> None:
    schema = scenario_json_schema()
    target = schema["properties"]["target"]
    assert target["discriminator"]["propertyName"] == "kind"
    assert set(target["discriminator"]["mapping"]) == {"lab", "kubernetes"}
    k8s = schema["$defs"]["KubernetesTarget"]
    assert {"kubeconfig", "context", "cluster_uid", "namespaces", "regions", "endpoint", "prometheus"} <= set(
        k8s["required"]
    )
    assert {"master_bind_host", "master_bind_port", "expect_workers"} <= set(
        schema["$defs"]["LoadSpec"]["properties"]
    )
    printed = subprocess.run(
        [sys.executable, "-m", "reliability.cli", "schema", "scenario"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "KubernetesTarget" in printed and "cluster_uid" in printed


def test_a_target_without_kind_is_the_lab(tmp_path: Path) -> None:
    assert isinstance(Scenario.model_validate(BASE).target, LabTarget)
    scenario = load_scenario(_write(tmp_path, target={"isolation": "proxy"}))
    assert isinstance(scenario.target, LabTarget) and scenario.target.isolation == "proxy"


def test_a_kubernetes_target_parses_and_its_mistakes_name_the_field(tmp_path: Path) -> None:
    target = yaml.safe_load((EXAMPLES / "scenarios" / "gpu-node-loss.yaml").read_text())["target"]
    assert isinstance(load_scenario(_write(tmp_path, target=target)).target, KubernetesTarget)

    without_context = {k: v for k, v in target.items() if k != "context"}
    with pytest.raises(InputError, match=r"scenario\.yaml: target\.kubernetes\.context: Field required"):
        load_scenario(_write(tmp_path, target=without_context))
    with pytest.raises(InputError, match=r"target\.kubernetes\.namespaces: .*kube-system is never a target"):
        load_scenario(_write(tmp_path, target={**target, "namespaces": ["llm", "kube-system"]}))
    with pytest.raises(InputError, match=r"target\.golden: file not found: missing\.jsonl"):
        load_scenario(_write(tmp_path, target={**target, "golden": "missing.jsonl"}))
    with pytest.raises(
        InputError,
        match=r"target: Input tag 'nomad' found using 'kind' does not match .* 'lab', 'kubernetes'",
    ):
        load_scenario(_write(tmp_path, target={**target, "kind": "nomad"}))


def test_workers_from_elsewhere_need_the_port_they_connect_to(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expect_workers needs master_bind_port"):
        load_scenario(_write(tmp_path, load={"expect_workers": 2}))
    load = load_scenario(_write(tmp_path, load={"expect_workers": 2, "master_bind_port": 5557})).load
    assert (load.master_bind_host, load.master_bind_port, load.expect_workers) == ("127.0.0.1", 5557, 2)
    assert json.loads(load.model_dump_json())["expect_workers"] == 2
