"""Undo from the ledger alone: the chaos actions (unchanged, `faults_module: reliability.k8s.faults`)
inject, then `reliability recover` in another process - after a clean exit or a SIGKILL mid-drain -
undoes everything on the right cluster with no scenario at hand.

Faked: the API server (tests/k8s/fakeapi.py: no scheduler, kubelet, controllers, CNI or RBAC).
Real: the processes, the ledger and journal files, HTTP, the kubernetes client and chaosk8s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reliability.chaos import actions
from reliability.chaos.ledger import FaultLedger, ledger_for_state
from reliability.k8s.journal import Journal
from tests.k8s.fakeapi import FakeKubeAPI

REPO = Path(__file__).resolve().parents[2]
CONFIG = {"faults_module": "reliability.k8s.faults"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _recover(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reliability.cli", "recover", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=REPO,
    )


def _original(api: FakeKubeAPI) -> dict[str, object]:
    return {
        "nodes": {n["metadata"]["name"]: n["spec"] for n in api.list("nodes")},
        "deployments": {d["metadata"]["name"]: d["spec"] for d in api.list("deployments")},
        "policies": api.list("networkpolicies"),
    }


@pytest.mark.slow
def test_recover_in_another_process_undoes_what_the_chaos_actions_did(api: FakeKubeAPI, state: Path) -> None:
    before = _original(api)

    actions.kill_node("us-east-2", mode="taint", state_file=str(state), configuration=CONFIG)
    actions.partition_region("eu-west", state_file=str(state), configuration=CONFIG)
    actions.fail_model("vllm-eu-west", mode="bad_version", state_file=str(state), configuration=CONFIG)
    assert len(FaultLedger(ledger_for_state(state)).active()) == 3
    assert _original(api) != before

    done = _recover(state.parent)

    assert done.returncode == 0, done.stderr
    assert _original(api) == before
    assert FaultLedger(ledger_for_state(state)).active() == []
    assert Journal(state).active() == []
    # Undone by exactly what was recorded: the node patch, the policy's uid, the reverse patch.
    undo = [r for r in api.mutations()][-3:]
    assert {r.method for r in undo} == {"PATCH", "DELETE"}
    assert all("preconditions" in r.body for r in undo if r.method == "DELETE")
    assert _recover(state.parent).returncode == 0  # idempotent: nothing left


@pytest.mark.slow
def test_recover_after_sigkill_in_the_middle_of_a_drain(api: FakeKubeAPI, state: Path) -> None:
    held = api.hold("POST", "/pods/vllm-us-east-1/eviction$")
    script = textwrap.dedent(
        f"""
        from reliability.chaos import actions
        actions.kill_node("us-east-1", mode="drain", state_file={str(state)!r},
                          configuration={{"faults_module": "reliability.k8s.faults"}})
        """
    )
    victim = subprocess.Popen([sys.executable, "-c", script], env=_env(), cwd=REPO)
    try:
        api.wait_for(lambda r: r.path.endswith("/vllm-us-east-1/eviction"), timeout=60)
        assert bool(api.get("nodes", "us-east-1")["spec"].get("unschedulable"))  # cordoned, mid-drain
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    held.set()

    done = _recover(state.parent)

    assert done.returncode == 0, done.stdout + done.stderr
    assert not api.get("nodes", "us-east-1")["spec"].get("unschedulable")
    assert FaultLedger(ledger_for_state(state)).active() == []
    assert Journal(state).active() == []


def test_recover_refuses_when_the_context_now_reaches_another_cluster(
    api: FakeKubeAPI, state: Path, kubeconfig: Path
) -> None:
    actions.kill_node("us-east-1", mode="drain", state_file=str(state), configuration=CONFIG)
    with FakeKubeAPI() as impostor:
        impostor.kubeconfig(kubeconfig)  # the same file and context name now point elsewhere
        done = _recover(state.parent)
        assert impostor.mutations() == []
    assert done.returncode != 0 and "wrong cluster" in done.stdout + done.stderr
    assert len(FaultLedger(ledger_for_state(state)).active()) == 1  # kept for a later recover
    assert api.get("nodes", "us-east-1")["spec"].get("unschedulable")


def test_chaosk8s_drains_on_the_named_kubeconfig_not_the_home_one(
    api: FakeKubeAPI, state: Path, tmp_path: Path
) -> None:
    """chaosk8s loads `~/.kube/config` when $KUBECONFIG was unset at import time, whatever it checks;
    a decoy cluster there, with a context of the same name, must get nothing."""
    with FakeKubeAPI() as decoy:
        home = tmp_path / "home"
        (home / ".kube").mkdir(parents=True)
        decoy.kubeconfig(home / ".kube" / "config")
        script = (
            f"from reliability.k8s import faults; faults.kill_node({str(state)!r}, 'us-east-3', mode='drain')"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=_env(HOME=str(home)),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert decoy.requests == []
    assert api.get("nodes", "us-east-3")["spec"].get("unschedulable")
    assert json.loads(Journal(state).path.read_text().splitlines()[-1])["op"] == "applied"


def test_recover_without_the_state_file_reports_and_keeps_the_fault(api: FakeKubeAPI, state: Path) -> None:
    """A cluster outlives its state file: recover must not take "file gone" for "fault gone"."""
    actions.kill_node("us-east-1", mode="taint", state_file=str(state), configuration=CONFIG)
    hidden = state.with_name("k8s-target.json.moved")
    state.rename(hidden)

    done = _recover(state.parent)

    assert done.returncode == 1, done.stdout + done.stderr
    assert f"state file {state} is missing" in done.stdout and "may still be in place" in done.stdout
    assert len(FaultLedger(ledger_for_state(state)).active()) == 1
    assert api.get("nodes", "us-east-1")["spec"]["taints"]  # nothing sent, nothing cleared
    assert api.mutations()[-1].method == "PATCH" and len(api.mutations()) == 1

    hidden.rename(state)
    assert _recover(state.parent).returncode == 0
    assert not api.get("nodes", "us-east-1")["spec"].get("taints")
    assert FaultLedger(ledger_for_state(state)).active() == []
