"""Game days with `target.kind: kubernetes`, end to end, from the `reliability` CLI in a subprocess.

What is real: the harness (orchestrator, Chaos Toolkit child, Locust master, a Locust worker started
with `reliability load worker` in another process, reports), the official `kubernetes` client and
chaostoolkit-kubernetes over HTTP, and a lab twin (`reliability.lab.Lab`: vLLM-like GPU nodes behind
HAProxy, kube-state-metrics and DCGM names, a real Prometheus) standing in for the cluster's service
endpoint and Prometheus - the latter behind a proxy that wants a bearer token.

What is faked: the Kubernetes API server (tests/k8s/fakeapi.py: no scheduler, kubelet, controllers,
CNI or RBAC). The test plays the CNI (`LabCni`): while a NetworkPolicy of the fake cluster isolates
a region, the lab twin's region is partitioned, so Prometheus sees what a partition does. Nothing
plays the kubelet: a drained node's pods are gone and nothing replaces them, so the capacity RTO here
is the time the harness kept the node out, not what a real cluster would take. RTO on a real
cluster needs a real cluster.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reliability.chaos.ledger import FaultLedger
from reliability.gameday import prepare
from reliability.k8s.journal import Journal
from reliability.k8s.plan import plan_scenario
from reliability.lab import Lab, load_lab_config
from reliability.lab import faults as lab_faults
from reliability.lab.events import read_events
from reliability.load import read_load_stats
from reliability.tools import free_port
from tests.k8s.authproxy import AuthProxy
from tests.k8s.conftest import EXAMPLES, example_scenario
from tests.k8s.fakeapi import FakeKubeAPI
from tests.k8s.traffic import PARTITIONED

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TOKEN = "game-day-token"
PHASES = {"baseline": "8s", "fault_hold": "8s", "recovery_max": "25s", "recovered_hold": "3s"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    config = load_lab_config(REPO / "scenarios" / "labs" / "llm-twin.yaml")
    slos = [EXAMPLES / "slos" / "vllm-gameday.yaml"]  # the example scenarios' SLOs, evaluated by the twin
    with Lab(config, tmp_path_factory.mktemp("twin"), isolation="proxy", slo_files=slos) as lab:
        yield lab


@pytest.fixture(scope="module")
def prometheus(lab: Lab) -> Iterator[AuthProxy]:
    proxy = AuthProxy(lab.prometheus_url, TOKEN).start()
    try:
        yield proxy
    finally:
        proxy.stop()


class LabCni:
    """The CNI's part, played against the lab twin: a NetworkPolicy of ours in the fake cluster that
    isolates region R partitions the twin's region R; its deletion heals it."""

    def __init__(self, api: FakeKubeAPI, lab: Lab) -> None:
        self.api, self.lab = api, lab
        self.applied: set[str] = set()
        self.done: list[tuple[str, str]] = []  # what the twin's network did, in order
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop_event.wait(0.2):
            wanted = {
                str((p["metadata"].get("annotations") or {}).get(PARTITIONED))
                for p in self.api.list("networkpolicies")
            }
            for region in sorted(wanted - self.applied):
                lab_faults.partition_region(self.lab.state_file, region)
                self.applied.add(region)
                self.done.append(("partition", region))
            for region in sorted(self.applied - wanted):
                lab_faults.heal_partition(self.lab.state_file, region)
                self.applied.discard(region)
                self.done.append(("heal", region))

    def __enter__(self) -> LabCni:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self.thread.join(10)
        for region in self.applied:
            lab_faults.heal_partition(self.lab.state_file, region)


def twin_scenario(
    name: str,
    tmp_path: Path,
    api: FakeKubeAPI,
    kubeconfig: Path,
    lab: Lab,
    prometheus: AuthProxy,
    **extra: Any,
) -> Path:
    """An example scenario whose service endpoint, Prometheus (with its token) and golden answers are
    the lab twin's, against the fake cluster."""
    target = {
        "endpoint": lab.endpoint,
        "prometheus": {"url": prometheus.url, "bearer_token_env": "PROMETHEUS_TOKEN"},
        "signals": "vllm-dcgm-ksm",  # the names the twin exports
        "golden": str(lab.golden_path),
        **extra.pop("target", {}),
    }
    sections = {"phases": PHASES, "load": {"users": 4, "spawn_rate": 4, "request_timeout": "10s"}, **extra}
    return example_scenario(name, tmp_path, api, kubeconfig, target=target, **sections)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(PYTHONPATH=str(REPO), PROMETHEUS_TOKEN=TOKEN)
    return env


def gameday(scenario: Path, run_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reliability.cli",
            "gameday",
            "run",
            str(scenario),
            "--out",
            str(run_dir),
            "--no-live",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        cwd=scenario.parent,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 150) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return out


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def calls(items: list[Any]) -> list[tuple[str, str]]:
    """(method, path) with the policy's drawn name (run id, change id) made comparable."""
    return [
        (m.method, re.sub(r"reliability-partition-eu-west-[0-9a-f]+-[0-9a-f]{6}", "<policy>", m.path))
        for m in items
    ]


def no_active_faults(run_dir: Path) -> None:
    state = run_dir / "target" / "k8s-target.json"
    assert Journal(state).active() == []
    assert FaultLedger(run_dir / "target" / "fault-ledger.jsonl").active() == []


def test_a_partition_game_day_on_kubernetes_with_a_remote_load_worker(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, lab: Lab, prometheus: AuthProxy
) -> None:
    port = free_port()
    scenario = twin_scenario(
        "region-partition",
        tmp_path,
        api,
        kubeconfig,
        lab,
        prometheus,
        target={"partition": {"verify_timeout": "30s"}},
        load={
            "users": 4,
            "spawn_rate": 4,
            "request_timeout": "10s",
            "master_bind_port": port,
            "expect_workers": 1,
        },
    )
    sc, _ = prepare(scenario)
    os.environ["PROMETHEUS_TOKEN"] = TOKEN
    try:
        plan = plan_scenario(sc, scenario)
    finally:
        del os.environ["PROMETHEUS_TOKEN"]
    assert plan.ok and api.mutations() == []
    start = len(api.requests)
    run_dir = tmp_path / "run"
    before = dict(prometheus.answered)

    with LabCni(api, lab) as cni:
        proc = gameday(scenario, run_dir)
        # A worker from another process, as a Job in the cluster would run it: no settings of its own.
        worker_env = {k: v for k, v in _env().items() if not k.startswith("RELIABILITY_")}
        with open(tmp_path / "worker.log", "w") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "reliability.cli", "load", "worker", "--master", f"127.0.0.1:{port}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=worker_env,
                cwd=tmp_path,
                start_new_session=True,
            )
        try:
            out = finish(proc)
            assert worker.wait(30) == 0, (tmp_path / "worker.log").read_text()
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(10)
    assert cni.done == [("partition", "eu-west"), ("heal", "eu-west")]

    # Judged (not "could not be judged"): the same reports as a lab game day.
    result = json.loads((run_dir / "result.json").read_text())
    assert proc.returncode in (0, 1) and result["status"] in ("passed", "failed"), out
    for name in ("report.html", "postmortem.md", "junit.xml", "run.json", "journal.json", "timeline.jsonl"):
        assert (run_dir / name).stat().st_size > 0, name
    assert (run_dir / "series" / "requests_by_region.csv").read_text().count("\n") > 10
    # The partition counted as injected once Prometheus showed eu-west silent.
    action = json.loads((run_dir / "journal.json").read_text())["run"][0]
    assert action["activity"]["provider"]["func"] == "partition_region" and action["status"] == "succeeded"
    verified = action["output"]["result"]["verified"]
    assert verified["before_rps"] > 0 and verified["after_rps"] == 0, verified
    # Every request came from the worker started elsewhere (the master ran no users of its own).
    stats = read_load_stats(run_dir / "load_stats.jsonl")
    assert int(stats["requests"].sum()) > 20
    assert not list(run_dir.glob("locust-worker*.log")) and (run_dir / "locust-master.log").exists()
    # The cluster saw exactly what the plan showed, then its undo; the watch recorded both.
    ran = [r for r in api.requests[start:] if r.mutating]
    assert calls(ran) == calls(plan.calls) + calls(plan.undo_calls)
    events = read_events(run_dir / "events.jsonl")
    applied = next(e for e in events if e["event"] == "networkpolicy_applied")
    assert ran[-1].body["preconditions"] == {"uid": applied["uid"]}
    names = [e["event"] for e in events]
    assert names[:7] == ["node_state"] * 6 + ["watch_started"]
    assert names.index("networkpolicy_applied") < names.index("networkpolicy_removed")
    no_active_faults(run_dir)
    assert lab_faults.lab_status(lab.state_file)["partitioned"] == []
    # Every query of Prometheus carried the token (series, probes, console, the partition check).
    answered = {k: v - before.get(k, 0) for k, v in prometheus.answered.items()}
    assert answered.get(200, 0) > 50 and answered.get(401, 0) == 0, answered


def test_a_partition_prometheus_does_not_see_ends_the_run_with_exit_2(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, lab: Lab, prometheus: AuthProxy
) -> None:
    """No CNI enforces the policy here (as with CNIs that keep existing connections): the run must
    say the partition never took effect and be judged as nothing, not as "no visible impact"."""
    scenario = twin_scenario(
        "region-partition",
        tmp_path,
        api,
        kubeconfig,
        lab,
        prometheus,
        target={"partition": {"verify_timeout": "6s"}},
    )
    run_dir = tmp_path / "run"

    out = finish(gameday(scenario, run_dir))

    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "error", out
    assert "partition of region eu-west NOT in effect" in result["error"]
    assert "Some CNIs do not cut existing connections" in result["error"]
    assert "NOT in effect" in out
    assert calls(api.mutations()) == [
        ("POST", "/apis/networking.k8s.io/v1/namespaces/llm/networkpolicies"),
        ("DELETE", "/apis/networking.k8s.io/v1/namespaces/llm/networkpolicies/<policy>"),
    ]
    assert api.list("networkpolicies") == []
    no_active_faults(run_dir)


@pytest.mark.parametrize("how", ["completes", "sigterm", "sigkill-then-recover"])
def test_a_node_loss_game_day_leaves_the_node_as_it_found_it(
    api: FakeKubeAPI, kubeconfig: Path, tmp_path: Path, lab: Lab, prometheus: AuthProxy, how: str
) -> None:
    phases = PHASES if how == "completes" else {**PHASES, "fault_hold": "60s"}
    scenario = twin_scenario("gpu-node-loss", tmp_path, api, kubeconfig, lab, prometheus, phases=phases)
    run_dir = tmp_path / "run"
    cordoned = lambda: bool(api.get("nodes", "us-east-1")["spec"].get("unschedulable"))  # noqa: E731

    proc = gameday(scenario, run_dir)
    if how != "completes":
        try:
            wait_for(cordoned, 90, "the drain")
        except AssertionError:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        if how == "sigterm":
            proc.send_signal(signal.SIGTERM)  # `kill PID`: the harness alone
        else:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run, chaos child included: nothing rolls back
    out = finish(proc)

    if how == "sigkill-then-recover":
        assert cordoned(), "nothing of the killed run should have run to undo the drain"
        recovered = subprocess.run(
            [sys.executable, "-m", "reliability.cli", "recover", str(run_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(),
        )
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        assert "undone: kill_node" in recovered.stdout
        assert "killed (SIGKILL or crash)" in json.loads((run_dir / "result.json").read_text())["interrupted"]
    elif how == "sigterm":
        assert proc.returncode == 128 + signal.SIGTERM, out
        assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    else:
        result = json.loads((run_dir / "result.json").read_text())
        assert proc.returncode in (0, 1) and result["status"] in ("passed", "failed"), out
        # Capacity from the cluster watch: 6 ready GPU nodes, 5 while us-east-1 was cordoned, 6 again
        # once the rollback uncordoned it (no kubelet here: that is all that changes).
        capacity = result["capacity"]
        assert (capacity["baseline"], capacity["lowest"], capacity["status"]) == (6, 5, "recovered"), capacity
        states = [
            e
            for e in read_events(run_dir / "events.jsonl")
            if e["event"] == "node_state" and e["node"] == "us-east-1"
        ]
        out_ts = next(e["ts"] for e in states if not e["ready"])
        back_ts = next(e["ts"] for e in states if e["ready"] and e["ts"] > out_ts)
        assert abs(capacity["rto_seconds"] - (back_ts - result["inject_ts"])) <= 1.0, (capacity, back_ts)
    assert not cordoned()
    # Only the named node was cordoned, only its vLLM pod evicted (the DaemonSet's pod stays).
    touched = {(r.method, r.path) for r in api.mutations()}
    assert touched == {
        ("PATCH", "/api/v1/nodes/us-east-1"),
        ("POST", "/api/v1/namespaces/llm/pods/vllm-us-east-1/eviction"),
    }
    no_active_faults(run_dir)
