"""The twin as a client and an SRE see it, in both isolation modes: OpenAI streaming and KServe v2
through the ingress, every scrape target up with the names the SLOs and alerts are written on, the
ground-truth log of the start; a region partition failing over and back; the store losing exactly
its unreplicated writes when its primary's region goes."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from reliability.lab import Lab, faults
from reliability.lab.llm.tinylm import read_golden
from reliability.signals import load_profile
from tests.lab.conftest import (
    REPO,
    Traffic,
    chat_body,
    events,
    events_named,
    prom_query,
    prom_value,
    servers,
    state,
    wait_event,
    wait_for,
)

pytestmark = pytest.mark.slow

JOBS = {
    "vllm": 6,
    "dcgm-exporter": 6,
    "haproxy-region": 2,
    "haproxy-global": 1,
    "store": 2,
    "kube-state-metrics": 1,
    "canary": 1,
}
# Metric families of the exporters the twin stands for; any of their names in the SLO, alert and
# signals files must be a series the lab exports.
EXPORTED = re.compile(
    r"\b(vllm:[a-z_:]+|DCGM_FI_[A-Z_]+|kube_[a-z_]+|haproxy_[a-z_]+|llm_canary_[a-z_]+|store_[a-z_]+)"
    r"(\{[^{}]*\})?"
)
NAME_FILES = [
    REPO / "slos" / "llm-serving.yaml",
    REPO / "scenarios" / "slos" / "llm-gameday.yaml",
    REPO / "alerts" / "platform.rules.yaml",
    REPO / "reliability" / "signals" / "profiles" / "vllm-dcgm-ksm.yaml",
]


def strings(doc: Any) -> list[str]:
    """Every string value of a YAML document (queries, expressions; not the keys)."""
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in strings(v)]
    return [doc] if isinstance(doc, str) else []


def sse_lines(lines: list[str]) -> tuple[list[dict[str, Any]], bool]:
    """The JSON chunks of an SSE body and whether it ended with `data: [DONE]`."""
    data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    done = bool(data) and data[-1] == "[DONE]"
    return [json.loads(d) for d in data if d != "[DONE]"], done


def test_a_streamed_chat_completion_through_the_ingress(lab: Lab) -> None:
    body = {**chat_body(lab, "Tell me about GPUs", max_tokens=24, stream=True), "ignore_eos": True}
    body["stream_options"] = {"include_usage": True}
    with requests.post(f"{lab.endpoint}/v1/chat/completions", json=body, stream=True, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        chunks, done = sse_lines([line.decode() for line in r.iter_lines() if line])
    assert done, "the stream did not end with data: [DONE]"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(text) == 24  # one character a token, ignore_eos
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert usage and usage[-1]["completion_tokens"] == 24


def test_curl_streams_sse_from_the_ingress(lab: Lab) -> None:
    """`curl -N` gets the chunks as they are generated, not in one piece at the end: the engine
    needs at least 10 ms a decode step, so 64 tokens cannot arrive within less than ~0.6 s."""
    body = {**chat_body(lab, "Stream please", max_tokens=64, stream=True), "ignore_eos": True}
    proc = subprocess.Popen(
        [
            "curl",
            "-sN",
            "--max-time",
            "30",
            "-H",
            "Content-Type: application/json",
            "-d",
            json.dumps(body),
            f"{lab.endpoint}/v1/chat/completions",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    arrivals: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip():
            arrivals.append((time.monotonic(), line.strip()))
    assert proc.wait(10) == 0
    chunks, done = sse_lines([line for _, line in arrivals])
    assert done and len(chunks) >= 64
    first_token = next(t for t, line in arrivals if '"content":"' in line and '"content":""' not in line)
    assert arrivals[-1][0] - first_token >= 0.3, "the stream arrived in one piece (buffered)"


def test_oip_v2_inference_through_the_ingress(lab: Lab) -> None:
    name = lab.config.predictor.name
    body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": [0.1] * 8}]}
    r = requests.post(f"{lab.endpoint}/v2/models/{name}/infer", json=body, timeout=10)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model_name"] == name and out["outputs"][0]["shape"] == [2, lab.config.predictor.outputs]
    assert requests.get(f"{lab.endpoint}/v2/models/{name}/ready", timeout=5).status_code == 200
    bad = requests.post(f"{lab.endpoint}/v2/models/{name}/infer", json={"inputs": []}, timeout=5)
    assert bad.status_code == 400 and "error" in bad.json()
    unknown = requests.post(f"{lab.endpoint}/v2/models/nope/infer", json=body, timeout=5)
    assert unknown.status_code == 404


def test_every_target_up_and_every_name_the_slos_and_alerts_use_exported(lab: Lab) -> None:
    def jobs_up() -> dict[str, int] | None:
        up: dict[str, int] = {}
        for s in prom_query(lab, "up == 1"):
            up[s["metric"]["job"]] = up.get(s["metric"]["job"], 0) + 1
        return up if up == JOBS else None

    wait_for(jobs_up, 30, what=f"targets up: {JOBS}")
    missing = []
    for path in NAME_FILES:
        text = "\n".join(strings(yaml.safe_load(path.read_text(encoding="utf-8"))))
        for name, selector in set(EXPORTED.findall(text)):
            query = name + selector
            if not prom_query(lab, f"count({query})") and not prom_query(lab, f"count({name}_bucket)"):
                missing.append(f"{path.name}: {query}")
    assert not missing, "not exported by the lab:\n" + "\n".join(sorted(missing))
    # Capacity as the harness reads it (the signals profile): every serving pod ready.
    ready = load_profile().series["ready_nodes"].query
    assert wait_for(lambda: prom_value(lab, ready) == 6, 15, what=ready)
    rules = requests.get(f"{lab.prometheus_url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"GPUXidErrors", "GPUNodeDown", "RegionUnavailable", "LLMHighErrorRate"} <= names


def test_start_is_ground_truth_and_the_canary_knows_the_answers(lab: Lab) -> None:
    log = events(lab)
    up = [i for i, e in enumerate(log) if e["event"] == "lab_up"]
    assert len(up) == 1 and log[up[0]]["isolation"] == lab.isolation
    before = log[: up[0]]
    ready = sorted(e["node"] for e in before if e["event"] == "node_state" and e["ready"])
    assert ready == sorted(f"{r}-{i}" for r in ("us-east", "eu-west") for i in (1, 2, 3))
    assert not [e for e in before if e["event"] == "node_state" and not e["ready"]]
    golden = read_golden(lab.golden_path)  # type: ignore[arg-type]
    assert golden and all(case.expected for case in golden)
    # The healthy fleet answers every known prompt right (earlier tests may have injected wrong
    # answers into this shared lab: compare counts now, not totals).
    regions = ("us-east", "eu-west")
    correct = {r: canary_count(lab, r, "correct") for r in regions}
    wrong = {r: canary_count(lab, r, "wrong") for r in regions}
    for r in regions:
        wait_for(lambda r=r: canary_count(lab, r, "correct") >= correct[r] + 5, 15, what=f"canary {r}")  # type: ignore[misc]
        assert canary_count(lab, r, "wrong") == wrong[r]
        query = f'llm_canary_requests_total{{region="{r}",outcome="correct"}}'
        wait_for(lambda q=query: (prom_value(lab, q) or 0) > 0, 15, what=query)  # type: ignore[misc]
    # A golden case through the ingress gets its known answer.
    case = golden[0]
    path = "/v1/chat/completions" if case.api == "chat" else "/v1/completions"
    req: dict[str, Any] = {"model": state(lab).served_model_name, "max_tokens": case.max_tokens}
    req["temperature"] = 0
    req.update({"messages": case.messages} if case.api == "chat" else {"prompt": case.prompt})
    answer = requests.post(lab.endpoint + path, json=req, timeout=10).json()["choices"][0]
    assert (answer["message"]["content"] if case.api == "chat" else answer["text"]) == case.expected
    status = faults.lab_status(lab.state_file)
    assert status["phase"] == "ready" and status["isolation"] == lab.isolation
    gone = {f"node/{n['name']}" for n in status["nodes"] if n["status"] in ("replaced", "stopped")}
    running = [c for c in status["components"] if c["name"] not in gone]
    assert len(running) == 6 + 2 + 2 + 1 + (
        1 if lab.isolation == "proxy" else 0
    )  # + region gws, stores, ingress, proxy
    assert all(c["pid"] for c in running), running


def canary_count(lab: Lab, region: str, outcome: str) -> float:
    """The prober's counter as its exporter says it now (no scrape delay)."""
    text = requests.get(f"{state(lab).admin_url}/metrics/canary", timeout=5).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "llm_canary_requests_total" and s.labels == {"region": region, "outcome": outcome}:
                return float(s.value)
    return 0.0


def test_a_partitioned_region_fails_over_and_back(lab: Lab) -> None:
    region, other = "eu-west", "us-east"
    with Traffic(lab) as traffic:
        time.sleep(1.0)
        t_cut = time.monotonic()
        wrong_before = canary_count(lab, region, "wrong")
        errors_before = canary_count(lab, region, "error")
        faults.partition_region(lab.state_file, region)
        applied = wait_event(lab, "partition_applied", t_cut, region=region)
        assert applied["isolation"] == lab.isolation
        down = wait_event(
            lab, "gateway_server_down", t_cut, 15, gateway="global", backend="regions", server=region
        )
        _assert_cut_off(lab, region)
        served_before = {name: row.stot for name, row in servers(lab, "global", "regions").items()}
        wait_for(lambda: canary_count(lab, region, "error") > errors_before, 15, what="canary errors")
        time.sleep(1.5)
        during = servers(lab, "global", "regions")
        t_heal = time.monotonic()
        faults.heal_partition(lab.state_file, region)
        wait_event(lab, "partition_removed", t_heal, region=region)
        up = wait_event(
            lab, "gateway_server_up", t_heal, 15, gateway="global", backend="regions", server=region
        )
        wait_for(
            lambda: servers(lab, "global", "regions")[region].stot > during[region].stot,
            15,
            what="traffic back in the healed region",
        )
    # Requests sent after the ingress took the region out all succeeded, through the other region.
    after_down = traffic.between(down["mono"], t_heal)
    assert after_down and set(after_down) == {200}, after_down
    assert during[region].status == "DOWN" and during[other].status == "UP"
    assert during[other].stot > served_before[other] and during[region].stot == served_before[region]
    # The canary cannot reach the region: errors, never wrong answers (quality is not availability).
    assert canary_count(lab, region, "wrong") == wrong_before
    assert up["mono"] > down["mono"]


def _assert_cut_off(lab: Lab, region: str) -> None:
    """A request into the partitioned region fails locally and fast - it never leaves the machine."""
    gw = state(lab).component(f"region-gateway/{region}")
    assert gw is not None
    if lab.isolation == "netns":
        route = subprocess.run(
            ["ip", "route", "show", "exact", f"{gw.host}/32"], capture_output=True, text=True, check=False
        )
        assert route.stdout.startswith("blackhole"), route.stdout
        with pytest.raises(OSError):
            socket.create_connection((gw.host, gw.port), timeout=1.0).close()
    else:
        # From outside the region the path goes through the fabric's proxy, which answers nothing.
        ingress = next(s for s in servers(lab, "global", "regions").values() if s.svname == region)
        addr = ingress.raw.get("addr", "")
        host, port = addr.rsplit(":", 1)
        with pytest.raises(requests.RequestException):
            requests.get(f"http://{host}:{port}/health", timeout=1.0)


def test_losing_the_store_primary_loses_exactly_the_unreplicated_writes(lab: Lab) -> None:
    store = state(lab).store
    assert store is not None
    primary = store.primary
    t0 = time.monotonic()
    acks: list[dict[str, Any]] = []  # {"seq", "index", "region", "mono"}
    stop = threading.Event()

    def writer() -> None:
        session = requests.Session()
        seq = 0
        while not stop.is_set():
            seq += 1
            try:
                r = session.post(f"{store.url}/write", json={"key": "rpo", "seq": seq}, timeout=1.0)
                if r.status_code == 200:
                    acks.append({**r.json(), "seq": seq, "mono": time.monotonic()})
            except requests.RequestException:
                pass
            stop.wait(0.02)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(acks) > 50, 15, what="writes acknowledged")
        faults.partition_region(lab.state_file, primary)
        cut = wait_event(lab, "partition_applied", t0, region=primary)
        promoted = wait_event(lab, "store_promoted", t0, 20, old_primary=primary)
        new = promoted["new_primary"]
        # The ingress finds the new primary on its own: writes are acknowledged again, by it.
        wait_for(lambda: any(a["region"] == new for a in acks), 15, what="a write acked by the new primary")
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(5)
    survivors = set(requests.get(f"{store.url}/seqs", params={"key": "rpo"}, timeout=5).json()["seqs"])
    assert requests.get(f"{store.url}/verify", timeout=5).json()["ok"]
    assert state(lab).store.primary == new  # type: ignore[union-attr]
    old_acks = [a for a in acks if a["region"] == primary]
    lost = {a["seq"] for a in old_acks} - survivors
    # Exactly the writes the old primary acknowledged past what the promoted secondary had pulled.
    assert lost == {a["seq"] for a in old_acks if a["index"] > promoted["last_index"]}
    assert lost, "no acknowledged write was lost, but replication lags by 1 s"
    assert max(lost) == max(a["seq"] for a in old_acks)  # the tail, not holes
    # Replication lags by 1 s: what was lost had been acknowledged shortly before the cut (the
    # margin covers the secondary's polling on a loaded machine).
    lag = lab.config.store.replication_lag_s
    assert min(a["mono"] for a in old_acks if a["seq"] in lost) > cut["mono"] - lag - 3.0
    assert {a["seq"] for a in acks if a["region"] == new} <= survivors
    assert cut["store_last_ack_index"] >= promoted["last_index"]
    faults.heal_partition(lab.state_file, primary)
    wait_event(lab, "store_demoted", t0, 20, region=primary)
    assert events_named(lab, "partition_removed", t0, region=primary)
