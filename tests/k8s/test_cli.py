"""The Kubernetes target from the command line, before any game day runs: `gameday plan`, `gameday run
--dry-run` and the refusals of `gameday run` - asserted from the fake API server's request log (real
HTTP; no RBAC there: access reviews answer what the test sets) and from exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.k8s.conftest import example_scenario
from tests.k8s.fakeapi import FakeKubeAPI

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "PROMETHEUS_TOKEN")}
    base["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "reliability.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
        cwd=cwd,
    )


TOKEN = {"PROMETHEUS_TOKEN": "t0ken"}


@pytest.mark.parametrize("command", [["gameday", "plan"], ["gameday", "run", "--dry-run"]])
def test_plan_prints_what_a_run_touches_and_sends_only_dry_runs(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, command: list[str]
) -> None:
    scenario = example_scenario("region-partition", tmp_path, api, kubeconfig)

    done = cli(*command, str(scenario), env=TOKEN, cwd=tmp_path)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"context staging -> {api.url}" in done.stdout
    assert "NetworkPolicy llm/reliability-partition-eu-west-" in done.stdout
    assert "POST /apis/networking.k8s.io/v1/namespaces/llm/networkpolicies -> 201" in done.stdout
    assert "DELETE /apis/networking.k8s.io/v1/namespaces/llm/networkpolicies/" in done.stdout  # the undo
    assert done.stdout.rstrip().endswith("plan OK")
    assert api.mutations() == [] and api.mutations(include_dry_run=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kubeconfig", "region-partition.yaml"]  # no run


def test_a_plan_with_a_denied_verb_exits_2(api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path) -> None:
    api.deny("create", "networkpolicies", "llm")
    scenario = example_scenario("region-partition", tmp_path, api, kubeconfig)

    done = cli("gameday", "plan", str(scenario), env=TOKEN)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "DENY create networking.k8s.io/networkpolicies in llm" in done.stdout
    assert "plan NOT OK" in done.stdout
    assert api.mutations() == []


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ({"cluster_uid": "another-cluster"}, "wrong cluster, nothing was sent"),
        ({"context": "production"}, "context 'production' is not in"),
        ({"namespaces": ["kube-system"]}, "kube-system is never a target namespace"),
        ({"kubeconfig": "/nonexistent/kubeconfig"}, "kubeconfig not found: /nonexistent/kubeconfig"),
    ],
    ids=["wrong-identity", "unknown-context", "kube-system", "no-kubeconfig"],
)
def test_a_run_against_the_wrong_cluster_or_namespace_is_refused_before_anything_is_sent(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, target: dict[str, object], says: str
) -> None:
    scenario = example_scenario("gpu-node-loss", tmp_path, api, kubeconfig, target=target)

    done = cli("gameday", "run", str(scenario), "--out", str(tmp_path / "run"), env=TOKEN)

    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line naming file and field
    assert api.mutations(include_dry_run=True) == []
    assert [r.path for r in api.requests] in ([], ["/api/v1/namespaces/kube-system"])


def test_a_run_without_the_prometheus_token_in_the_environment_is_refused(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    scenario = example_scenario("gpu-node-loss", tmp_path, api, kubeconfig)

    done = cli("gameday", "run", str(scenario), "--out", str(tmp_path / "run"))

    assert done.returncode == 2
    assert "target.prometheus: environment variable PROMETHEUS_TOKEN is not set" in done.stderr
    assert not (tmp_path / "run").exists() and api.requests == []


def test_an_experiment_without_a_kubernetes_mapping_is_refused(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path
) -> None:
    scenario = example_scenario(
        "gpu-node-loss",
        tmp_path,
        api,
        kubeconfig,
        experiment={"file": str(REPO / "experiments" / "store-region-loss.yaml")},
    )

    done = cli("gameday", "plan", str(scenario), env=TOKEN)

    assert done.returncode == 2
    assert "action 'partition_store_primary' has no Kubernetes mapping" in done.stderr
    assert api.requests == []


def test_plan_refuses_a_lab_scenario() -> None:
    done = cli("gameday", "plan", "scenarios/gpu-node-loss.yaml")
    assert done.returncode == 2 and "target.kind: a plan is for a Kubernetes target" in done.stderr


@pytest.mark.parametrize(
    ("master", "says"),
    [("", "no host"), ("host:port", "not a port: 'port'"), ("host:70000", "not a port: 70000")],
)
def test_load_worker_refuses_a_bad_master(master: str, says: str) -> None:
    done = cli("load", "worker", "--master", master)
    assert done.returncode == 2 and says in done.stderr


def test_master_addresses() -> None:
    from reliability.load.cli import parse_master

    assert parse_master("10.0.0.5") == ("10.0.0.5", 5557)
    assert parse_master("gameday-master.reliability.svc:6000") == ("gameday-master.reliability.svc", 6000)
    assert parse_master("[fd00::1]:5558") == ("fd00::1", 5558)
