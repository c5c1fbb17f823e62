"""Model faults on a node or a region, and the platform's canary rollout with automatic rollback:
each fault shows where an SRE would look (the node's answers and vLLM metrics, the canary) and
leaves its events in the ground-truth log."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from reliability.lab import Lab, faults
from reliability.lab.llm.tinylm import GoldenCase, read_golden
from reliability.lab.state import NodeState
from tests.lab.conftest import (
    PREFERRED,
    chat_body,
    events_named,
    serving_nodes,
    state,
    wait_event,
    wait_for,
)
from tests.lab.test_twin_serving import canary_count

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("twin", [PREFERRED], indirect=True)]


def golden(lab: Lab) -> GoldenCase:
    return read_golden(lab.golden_path)[0]  # type: ignore[arg-type]


def ask(lab: Lab, url: str, case: GoldenCase, timeout: float = 10.0) -> tuple[int, str | None]:
    """A golden case at temperature 0: (status, generated text or None)."""
    path = "/v1/chat/completions" if case.api == "chat" else "/v1/completions"
    body: dict[str, Any] = {
        "model": state(lab).served_model_name,
        "max_tokens": case.max_tokens,
        "temperature": 0,
    }
    body.update({"messages": case.messages} if case.api == "chat" else {"prompt": case.prompt})
    r = requests.post(url + path, json=body, timeout=timeout)
    if r.status_code != 200:
        return r.status_code, None
    choice = r.json()["choices"][0]
    return 200, choice["message"]["content"] if case.api == "chat" else choice["text"]


def node_metrics(node: NodeState) -> dict[str, float]:
    """The node's vLLM metrics now, `name{label=value,...}` (labels sorted) -> value."""
    text = requests.get(node.api_url + "/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(
                f"{k}={v}" for k, v in sorted(s.labels.items()) if k not in ("model_name", "engine")
            )
            out[f"{s.name}{{{labels}}}"] = float(s.value)
    return out


def stream(url: str, lab: Lab, max_tokens: int, timeout: float = 60.0) -> int:
    body = {
        **chat_body(lab, "Count the GPUs in the rack", max_tokens=max_tokens, stream=True),
        "ignore_eos": True,
    }
    with requests.post(url + "/v1/chat/completions", json=body, stream=True, timeout=timeout) as r:
        for _ in r.iter_lines():
            pass
        return r.status_code


def fault_events(lab: Lab, t0: float, target: str, mode: str) -> None:
    set_ = wait_event(lab, "fault_set", t0, fault="fail_model", target=target)
    assert set_["mode"] == mode
    cleared = wait_event(lab, "fault_cleared", t0, fault="fail_model", target=target)
    assert cleared["mono"] > set_["mono"]


# -- rollout ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", ["errors", "wrong"])
def test_a_broken_model_version_is_rolled_back_by_the_canary_analysis(lab: Lab, failure: str) -> None:
    t0 = time.monotonic()
    out = faults.deploy_model(lab.state_file, "us-east", "v2-broken", failure=failure)
    started = wait_event(lab, "model_rollout_started", t0, target="us-east", version="v2-broken")
    assert started["failure"] == failure
    canary = wait_event(lab, "model_rollout_canary", t0, version="v2-broken")
    assert canary["node"] == out["canary"] and canary["region"] == "us-east"
    cfg = lab.config.controller.rollout
    rollback = wait_event(lab, "model_rollback", t0, cfg.analysis_s + 10, node=canary["node"])
    assert rollback["mono"] - canary["mono"] <= cfg.analysis_s
    assert rollback["failures"] >= cfg.max_failures
    assert not events_named(lab, "model_rollout_complete", t0)
    # Rolled back by the platform itself: no fault left, the canary answers right again.
    wait_for(lambda: not state(lab).faults, 10, what="no fault left after the rollback")
    node = next(n for n in state(lab).nodes if n.name == canary["node"])
    assert ask(lab, node.api_url, golden(lab)) == (200, golden(lab).expected)


def test_restore_model_cancels_a_rollout_in_progress(lab: Lab) -> None:
    t0 = time.monotonic()
    out = faults.deploy_model(lab.state_file, "us-east", "v2-broken", failure="errors")
    faults.restore_model(lab.state_file, "us-east")
    cancelled = wait_event(lab, "model_rollout_cancelled", t0, target="us-east")
    wait_event(lab, "fault_cleared", t0, fault="fail_model", target="us-east")
    # The analysis would have rolled back after max_failures probes; it was cancelled before.
    cfg = lab.config.controller.rollout
    time.sleep(cfg.max_failures * cfg.probe_interval_s + 1.0)
    assert not events_named(lab, "model_rollback", t0) and not events_named(lab, "model_rollout_complete", t0)
    assert cancelled["mono"] - t0 < cfg.max_failures * cfg.probe_interval_s
    node = next(n for n in state(lab).nodes if n.name == out["canary"])
    assert ask(lab, node.api_url, golden(lab)) == (200, golden(lab).expected)
    assert not state(lab).faults


# -- model faults ----------------------------------------------------------------------------------------
def test_errors_on_a_node(lab: Lab) -> None:
    node = serving_nodes(lab, "us-east")[0]
    t0 = time.monotonic()
    faults.fail_model(lab.state_file, node.name, "errors", rate=1.0)
    assert f"model:{node.name}" in state(lab).faults
    r = requests.post(node.api_url + "/v1/chat/completions", json=chat_body(lab), timeout=10)
    assert r.status_code == 500
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}  # OpenAI's error shape
    faults.restore_model(lab.state_file, node.name)
    assert requests.post(node.api_url + "/v1/chat/completions", json=chat_body(lab), timeout=10).ok
    fault_events(lab, t0, node.name, "errors")


def test_wrong_answers_in_a_region_are_seen_by_the_canary(lab: Lab) -> None:
    region = "eu-west"
    node = serving_nodes(lab, region)[0]
    case = golden(lab)
    wrong = canary_count(lab, region, "wrong")
    t0 = time.monotonic()
    faults.fail_model(lab.state_file, region, "wrong")
    status, text = ask(lab, node.api_url, case)
    assert status == 200 and text != case.expected  # HTTP is fine; the answer is not
    wait_for(lambda: canary_count(lab, region, "wrong") > wrong, 15, what="canary counts wrong answers")
    faults.restore_model(lab.state_file, region)
    assert ask(lab, node.api_url, case) == (200, case.expected)
    correct = canary_count(lab, region, "correct")
    wait_for(lambda: canary_count(lab, region, "correct") > correct, 15, what="canary correct again")
    fault_events(lab, t0, region, "wrong")


def test_gray_failure_health_stays_green_while_generation_hangs(lab: Lab) -> None:
    node = serving_nodes(lab, "us-east")[0]
    t0 = time.monotonic()
    faults.fail_model(lab.state_file, node.name, "gray", hang=True)
    assert requests.get(node.api_url + "/health", timeout=5).status_code == 200
    with pytest.raises(requests.Timeout):
        requests.post(node.api_url + "/v1/chat/completions", json=chat_body(lab), timeout=1.5)
    assert requests.get(node.api_url + "/health", timeout=5).status_code == 200
    faults.restore_model(lab.state_file, node.name)
    assert requests.post(node.api_url + "/v1/chat/completions", json=chat_body(lab), timeout=10).ok
    fault_events(lab, t0, node.name, "gray")


ITL = "vllm:inter_token_latency_seconds"


def mean_itl(before: dict[str, float], after: dict[str, float]) -> float:
    count = after[f"{ITL}_count{{}}"] - before[f"{ITL}_count{{}}"]
    assert count > 0
    return (after[f"{ITL}_sum{{}}"] - before[f"{ITL}_sum{{}}"]) / count


def test_slow_decode_grows_inter_token_latency(lab: Lab) -> None:
    node = serving_nodes(lab, "us-east")[0]
    m0 = node_metrics(node)
    assert stream(node.api_url, lab, 16) == 200
    m1 = node_metrics(node)
    t0 = time.monotonic()
    faults.fail_model(lab.state_file, node.name, "slow_decode", factor=10)
    m2 = node_metrics(node)
    assert stream(node.api_url, lab, 16) == 200
    m3 = node_metrics(node)
    faults.restore_model(lab.state_file, node.name)
    healthy, slow = mean_itl(m0, m1), mean_itl(m2, m3)
    # Ten times the decode step; at least three times the healthy inter-token latency of this run.
    assert slow >= 3 * healthy, (healthy, slow)
    assert slow >= 0.09  # the lab engine's 10 ms step, times 10
    fault_events(lab, t0, node.name, "slow_decode")


def test_kv_cache_cut_fills_the_cache_and_preempts(lab: Lab) -> None:
    node = serving_nodes(lab, "eu-west")[0]
    preempted = "vllm:num_preemptions_total{}"
    before = node_metrics(node)
    t0 = time.monotonic()
    faults.fail_model(lab.state_file, node.name, "kv_cache_cut", fraction=0.05)
    usage: list[float] = []
    codes: list[int] = []
    threads = [
        threading.Thread(target=lambda: codes.append(stream(node.api_url, lab, 120)), daemon=True)
        for _ in range(10)
    ]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        status = requests.get(node.agent_url + "/admin/status", timeout=5).json()
        usage.append(float(status["kv_cache_usage"]))
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    after = node_metrics(node)
    faults.restore_model(lab.state_file, node.name)
    assert codes == [200] * 10  # preempted requests are recomputed, not failed
    assert max(usage) >= 0.9, max(usage)
    assert after[preempted] > before[preempted]
    assert after["vllm:kv_cache_usage_perc{}"] >= 0  # exported
    fault_events(lab, t0, node.name, "kv_cache_cut")
