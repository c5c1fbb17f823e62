"""The shipped experiments through our runner, and crash recovery through the ledger.

The lab side is `tests.chaos.recording_faults` (the same functions over a state file) and the
detection side a real Prometheus whose rules make every alert an experiment expects fire at once:
this tests the chaos layer (ledger, rollbacks, recover, the hypothesis' probes), not the platform.
tests/chaos/test_chaos_cli.py runs experiments with plain `chaos run` against the real lab.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from reliability.chaos.ledger import FaultLedger, ledger_for_state
from reliability.chaos.probes import alert_firing
from reliability.chaos.runner import ExperimentProcess, ExperimentRunSpec, validate_experiment
from reliability.errors import InputError
from reliability.lab.state import LabState, NodeState, ProcessRef, write_state
from reliability.prometheus import LocalPrometheus
from tests.chaos.recording_faults import active_faults

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))
FAULTS = "tests.chaos.recording_faults"


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_state(tmp_path: Path, endpoint: str) -> Path:
    """A lab state whose service endpoint and every node's API are the stub HTTP server."""
    state = tmp_path / "lab" / "state.json"
    state.parent.mkdir()
    nodes = [
        NodeState(name=f"{r}-{i}", region=r, status="ready", ready=True, api_url=endpoint)
        for r in ("us-east", "eu-west")
        for i in (1, 2, 3)
    ]
    doc = LabState(
        lab_id="recorded",
        workdir=str(state.parent),
        phase="ready",
        isolation="proxy",
        supervisor=ProcessRef(),
        started_at=time.time(),
        endpoint=endpoint,
        regions=["us-east", "eu-west"],
        nodes=nodes,
    )
    write_state(state, doc)
    return state


def spec(tmp_path: Path, exp: Path, state: Path, prom: str, hold: float) -> ExperimentRunSpec:
    return ExperimentRunSpec(
        experiment=str(exp),
        journal=str(tmp_path / "journal.json"),
        timeline=str(tmp_path / "timeline.jsonl"),
        log=str(tmp_path / "chaos.log"),
        configuration={"lab_state": str(state), "faults_module": FAULTS, "fault_hold": hold},
        prometheus_url=prom,
        env={"RELIABILITY_PROMETHEUS_URL": prom},
    )


def expected_alerts(exp: Path) -> set[str]:
    """The alerts an experiment's steady-state hypothesis expects to fire during the fault."""
    doc = yaml.safe_load(exp.read_text(encoding="utf-8"))
    probes = (doc.get("steady-state-hypothesis") or {}).get("probes", [])
    return {
        p["provider"]["arguments"]["alertname"]
        for p in probes
        if p["provider"].get("func") == "alert_fired_during_fault"
    }


def injections(exp: Path) -> int:
    doc = yaml.safe_load(exp.read_text(encoding="utf-8"))
    undo = {"heal", "heal_partition", "restore_model", "unstall_replacements"}
    return sum(1 for a in doc["method"] if a["type"] == "action" and a["provider"]["func"] not in undo)


@pytest.fixture
def alerting_prometheus(local_prometheus: LocalPrometheus, tmp_path: Path) -> LocalPrometheus:
    """The real Prometheus with every expected alert of the shipped experiments firing."""
    names = sorted({a for exp in EXPERIMENTS for a in expected_alerts(exp)})
    rules = {
        "groups": [
            {
                "name": "always-firing",
                "rules": [
                    {"alert": n, "expr": "vector(1)", "labels": {"severity": "critical"}} for n in names
                ],
            }
        ]
    }
    path = tmp_path / "always.rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    local_prometheus.rule_files = [path]
    local_prometheus.write_config()
    local_prometheus.reload()
    for _ in range(100):
        if all(alert_firing(n, local_prometheus.url) for n in names):
            break
        time.sleep(0.1)
    return local_prometheus


def test_the_shipped_experiments_are_valid_and_each_expects_a_detection() -> None:
    names = {p.stem for p in EXPERIMENTS}
    assert names == {
        "gpu-node-loss",
        "gray-failure",
        "kv-cache-pressure",
        "model-failure",
        "region-partition",
        "replacement-stuck",
        "silent-model-degradation",
        "slow-decode",
        "store-region-loss",
    }
    platform = {
        r["alert"]
        for g in yaml.safe_load((REPO / "alerts" / "platform.rules.yaml").read_text())["groups"]
        for r in g["rules"]
    }
    slo_alerts = {
        s["alerting"]["name"]
        for s in yaml.safe_load((REPO / "slos" / "llm-serving.yaml").read_text())["slos"]
    }
    for p in EXPERIMENTS:
        validate_experiment(p)
        # Every alert an experiment expects exists, so plain `chaos run` deviates when it does not
        # fire. Two detect otherwise: model-failure by the platform's own rollback, gray-failure by
        # the load generator's time to first token (no token, no vLLM sample).
        assert expected_alerts(p) <= platform | slo_alerts, p.stem
        assert expected_alerts(p) or p.stem in ("model-failure", "gray-failure"), p.stem


def test_unknown_configuration_override_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"configuration\.nodes"):
        validate_experiment(REPO / "experiments" / "gpu-node-loss.yaml", {"nodes": "x"})


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_injects_then_rolls_back(
    tmp_path: Path, exp: Path, endpoint: str, alerting_prometheus: LocalPrometheus
) -> None:
    state = make_state(tmp_path, endpoint)
    proc = ExperimentProcess(spec(tmp_path, exp, state, alerting_prometheus.url, 0.3), tmp_path / "s.json")
    assert proc.start().wait(90) == 0, (tmp_path / "chaos.log").read_text()[-3000:]
    ledger = FaultLedger(ledger_for_state(state))
    assert len(ledger.entries()) == injections(exp)  # each recorded before it was injected
    assert ledger.active() == [] and active_faults(state) == {}
    events = [json.loads(line)["event"] for line in (tmp_path / "timeline.jsonl").read_text().splitlines()]
    assert events.index("fault_injected") < events.index("rollback_start") < events.index("fault_cleared")


def wait_for(pred, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_sigkill_then_recover_leaves_no_fault_and_recover_is_idempotent(
    tmp_path: Path, endpoint: str, local_prometheus: LocalPrometheus
) -> None:
    state = make_state(tmp_path, endpoint)
    exp = REPO / "experiments" / "region-partition.yaml"
    proc = ExperimentProcess(
        spec(tmp_path, exp, state, local_prometheus.url, 120), tmp_path / "s.json"
    ).start()
    try:
        assert wait_for(lambda: active_faults(state) != {})
        assert proc.proc is not None
        proc.proc.kill()  # no rollback can run
        proc.wait(10)
    finally:
        proc.interrupt(grace=5)
    assert active_faults(state) == {"partition:eu-west": {"fault": "partition_region"}}

    def recover() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reliability.cli", "recover", str(state.parent)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    first = recover()
    assert first.returncode == 0, first.stderr
    assert "undone: partition_region" in first.stdout
    assert active_faults(state) == {}
    second = recover()
    assert second.returncode == 0 and "nothing to undo" in second.stdout


def test_recover_on_a_missing_path_is_an_input_error(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "reliability.cli", "recover", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 2 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
