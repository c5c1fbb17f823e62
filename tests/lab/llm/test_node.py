"""The GPU node as a real process on 127.0.0.1: OpenAI streaming, OIP v2, errors, metrics, lifecycle."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from reliability.lab.llm.node import main as node_main
from reliability.lab.llm.tinylm import GoldenCase, golden_cases
from reliability.lab.model import load_checkpoint as load_predictor
from tests.lab.llm.conftest import MODEL, Checkpoints, NodeProcess, node_spec, wait_for
from tests.lab.llm.sse import stream
from tests.lab.llm.test_metrics import check_api_exposition, check_dcgm_exposition


@pytest.fixture(scope="module")
def golden(checkpoints: Checkpoints) -> dict[str, GoldenCase]:
    return {c.id: c for c in golden_cases(checkpoints.lm, checkpoints.lm_sha)}


def body_for(case: GoldenCase, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"model": MODEL, "max_tokens": case.max_tokens, "temperature": 0, **extra}
    if case.api == "chat":
        body["messages"] = case.messages
    else:
        body["prompt"] = case.prompt
    return body


def path_for(case: GoldenCase) -> str:
    return "/v1/chat/completions" if case.api == "chat" else "/v1/completions"


def test_streamed_chat_is_vllm_sse_with_usage_and_the_golden_answer(
    node: NodeProcess, golden: dict[str, GoldenCase]
) -> None:
    case = golden["chat-slo"]
    body = body_for(case, stream=True, stream_options={"include_usage": True})
    s = stream(node.api_port, "/v1/chat/completions", body)
    assert s.status == 200 and s.headers["content-type"].startswith("text/event-stream")
    assert s.headers.get("transfer-encoding") == "chunked"
    data = s.data()
    assert data[-1] == "[DONE]"
    first, *chunks, usage, _ = data
    assert first["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    ids = {d["id"] for d in data[:-1]}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    for d in data[:-1]:
        assert (
            d["object"] == "chat.completion.chunk" and d["model"] == MODEL and isinstance(d["created"], int)
        )
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert all(len(c["choices"][0]["delta"]["content"]) == 1 for c in chunks[:-1])  # one token a chunk
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")
    assert s.content() == case.expected
    assert usage["choices"] == [] and set(usage["usage"]) == {
        "prompt_tokens",
        "total_tokens",
        "completion_tokens",
    }
    assert usage["usage"]["prompt_tokens"] == len(case.prompt_text())
    finish = chunks[-1]["choices"][0]["finish_reason"]
    generated = len(case.expected) + (1 if finish == "stop" else 0)  # the end-of-sequence token counts
    assert usage["usage"]["completion_tokens"] == generated


def test_streamed_completions_without_usage(node: NodeProcess, golden: dict[str, GoldenCase]) -> None:
    case = golden["completion-newline"]
    s = stream(node.api_port, "/v1/completions", body_for(case, stream=True))
    data = s.data()
    assert data[-1] == "[DONE]" and all("usage" not in d for d in data[:-1])
    assert all(d["object"] == "text_completion" and d["id"].startswith("cmpl-") for d in data[:-1])
    assert s.content() == case.expected
    assert data[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_non_streamed_answers_are_golden(node: NodeProcess, golden: dict[str, GoldenCase]) -> None:
    cases = list(golden.values())
    with ThreadPoolExecutor(len(cases)) as pool:  # batched together in the engine
        answers = list(pool.map(lambda c: node.post_json(path_for(c), body_for(c)), cases))
    for case, (status, resp) in zip(cases, answers, strict=True):
        assert status == 200, resp
        choice = resp["choices"][0]
        text = choice["message"]["content"] if case.api == "chat" else choice["text"]
        assert text == case.expected, case.id
        assert resp["usage"]["prompt_tokens"] == len(case.prompt_text())
        assert resp["object"] == ("chat.completion" if case.api == "chat" else "text_completion")


def test_sampling_with_a_seed_repeats_and_max_tokens_with_ignore_eos_is_exact(node: NodeProcess) -> None:
    body = {"prompt": "Tell me a story", "max_tokens": 80, "temperature": 0.8, "seed": 42, "ignore_eos": True}
    bodies = [body, body, {**body, "seed": 43}]
    with ThreadPoolExecutor(3) as pool:
        a, b, c = (r[1] for r in pool.map(lambda x: node.post_json("/v1/completions", x), bodies))
    assert a["choices"][0]["text"] == b["choices"][0]["text"] != c["choices"][0]["text"]
    assert a["usage"]["completion_tokens"] == 80 and a["choices"][0]["finish_reason"] == "length"


def test_stop_strings_end_the_answer(node: NodeProcess, golden: dict[str, GoldenCase]) -> None:
    case = golden["completion-budget"]
    stop = case.expected[10:13]
    cut = case.expected[: case.expected.find(stop)]
    status, resp = node.post_json("/v1/completions", body_for(case, stop=[stop]))
    assert status == 200 and resp["choices"][0]["text"] == cut
    assert resp["choices"][0]["finish_reason"] == "stop" and resp["choices"][0]["stop_reason"] == stop
    s = stream(node.api_port, "/v1/completions", body_for(case, stop=stop, stream=True))
    assert s.content() == cut and s.data()[-2]["choices"][0]["stop_reason"] == stop


def test_models_and_health(node: NodeProcess) -> None:
    status, models = node.get_json("/v1/models")
    assert status == 200 and models["object"] == "list"
    (card,) = models["data"]
    assert card["id"] == MODEL and card["object"] == "model" and card["owned_by"] == "vllm"
    assert card["max_model_len"] == 2048 and card["permission"][0]["object"] == "model_permission"
    status, body, _ = node.request("GET", "/health")
    assert status == 200 and body == b""


def test_errors_in_openai_shape_with_vllm_status_codes(node: NodeProcess) -> None:
    status, err = node.post_json(
        "/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}
    )
    assert status == 404
    assert err == {
        "error": {
            "message": f"The model `gpt-4` does not exist. Valid aliases: {MODEL}.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }
    status, raw, _ = node.request("POST", "/v1/completions", None)
    assert status == 400 and json.loads(raw)["error"]["type"] == "BadRequestError"
    status, err = node.post_json("/v1/completions", {"prompt": "x", "max_tokens": 0})
    assert status == 400 and err["error"]["code"] == 400 and "max_tokens" in err["error"]["message"]
    status, err = node.post_json("/v1/completions", {"prompt": "x" * 3000})
    assert status == 400 and "maximum context length is 2048 tokens" in err["error"]["message"]
    status, err = node.post_json("/v1/chat/completions", {"messages": []})
    assert status == 400 and err["error"]["type"] == "BadRequestError"
    status, err = node.post_json(
        "/v1/completions", {"prompt": "x", "stream_options": {"include_usage": True}}
    )
    assert status == 400 and "stream=True" in err["error"]["message"]
    status, raw, _ = node.request("GET", "/v1/nothing")
    assert status == 404 and json.loads(raw) == {"detail": "Not Found"}


def test_oip_v2_predictor(node: NodeProcess, checkpoints: Checkpoints) -> None:
    assert node.get_json("/v2/health/live") == (200, {"live": True})
    assert node.get_json("/v2/health/ready") == (200, {"ready": True})
    assert node.get_json("/v2/models/predictor/ready") == (200, {"name": "predictor", "ready": True})
    status, err = node.get_json("/v2/models/other/ready")
    assert status == 404 and "does not exist" in err["error"]
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 4)).astype(np.float32)
    req = {
        "id": "r1",
        "inputs": [{"name": "input-0", "shape": [3, 4], "datatype": "FP32", "data": x.ravel().tolist()}],
    }
    status, resp = node.post_json("/v2/models/predictor/infer", req)
    assert status == 200, resp
    assert resp["model_name"] == "predictor" and resp["id"] == "r1" and resp["model_version"] == "v1"
    (out,) = resp["outputs"]
    assert out["name"] == "output-0" and out["datatype"] == "FP32" and out["shape"] == [3, 4]
    expected = load_predictor(checkpoints.predictor, checkpoints.predictor_sha).predict(x)
    assert np.allclose(np.array(out["data"]).reshape(3, 4), expected, rtol=1e-5)
    bad = {"inputs": [{"name": "input-0", "shape": [3, 5], "datatype": "FP32", "data": [0.0] * 15}]}
    status, err = node.post_json("/v2/models/predictor/infer", bad)
    assert status == 400 and "shape" in err["error"]


def test_metrics_on_both_ports_have_the_real_names(node: NodeProcess, golden: dict[str, GoldenCase]) -> None:
    def series() -> dict:
        status, raw, headers = node.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        return check_api_exposition(raw.decode())

    def value(found: dict, family: str, sample: str, **labels: str) -> float:
        return sum(
            s.value
            for s in found[family].samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        )

    before = series()
    case = golden["chat-short"]
    node.post_json("/v1/chat/completions", body_for(case))
    node.request("GET", "/health")
    after = series()
    done = {r: value(after, "vllm:request_success", "vllm:request_success_total", finished_reason=r)
            - value(before, "vllm:request_success", "vllm:request_success_total", finished_reason=r)
            for r in ("stop", "length")}  # fmt: skip
    assert sum(done.values()) == 1
    chat = {"handler": "/v1/chat/completions", "method": "POST", "status": "2xx"}
    assert (
        value(after, "http_requests", "http_requests_total", **chat)
        - value(before, "http_requests", "http_requests_total", **chat)
        == 1
    )
    assert value(after, "http_requests", "http_requests_total", handler="/health") == 0
    prompt = value(after, "vllm:prompt_tokens", "vllm:prompt_tokens_total") - value(
        before, "vllm:prompt_tokens", "vllm:prompt_tokens_total"
    )
    assert prompt == len(case.prompt_text())
    assert value(after, "vllm:time_to_first_token_seconds", "vllm:time_to_first_token_seconds_count") > 0
    labels = {s.labels["model_name"] for s in after["vllm:num_requests_running"].samples}
    assert labels == {MODEL}
    _, text = node.agent("GET", "/metrics")
    dcgm = check_dcgm_exposition(text)
    assert dcgm["DCGM_FI_DEV_XID_ERRORS"]["value"] == "0"
    assert dcgm["DCGM_FI_DEV_FB_USED"]["value"] == str(int(81559 * 0.92))
    assert dcgm["DCGM_FI_DEV_GPU_UTIL"]["UUID"] == "GPU-5d3a0e1c-0000-4000-8000-000000000001"
    assert dcgm["DCGM_FI_DEV_GPU_UTIL"]["Hostname"] == "us-east-1"


def test_curl_streams_sse_chunks_as_they_are_generated(node: NodeProcess) -> None:
    body = {
        "model": MODEL,
        "prompt": "Incident timeline:",
        "max_tokens": 150,
        "ignore_eos": True,
        "stream": True,
    }
    curl = subprocess.Popen(
        ["curl", "-sS", "-N", "--max-time", "30", f"http://127.0.0.1:{node.api_port}/v1/completions",
         "-H", "Content-Type: application/json", "-d", json.dumps(body)],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert curl.stdout is not None
    first = curl.stdout.readline()
    assert first.startswith(b"data: {") and json.loads(first[6:])["choices"][0]["text"]
    # The first chunk arrived while the node was still generating the other 149.
    assert curl.poll() is None
    rest = curl.stdout.read()
    assert curl.wait(30) == 0
    events = [e for e in (first + rest).split(b"\n\n") if e]
    assert len(events) == 151 and events[-1] == b"data: [DONE]"


def test_the_api_port_opens_only_after_the_model_is_loaded(start_node: Callable[..., NodeProcess]) -> None:
    node = start_node(wait=False, load_s=1.5, warmup_s=0.5)
    wait_for(lambda: node.status()["state"] == "loading" if _agent_up(node) else False)
    assert not node.api_open()  # connection refused, as vLLM before its server starts
    wait_for(node.api_open)
    assert node.status()["state"] in ("warming", "ready")
    status, _, _ = node.request("GET", "/health")
    if status == 503:  # still warming up
        assert node.post_json("/v1/completions", {"prompt": "x"})[0] == 503
    node.wait_ready()
    assert node.status()["state"] == "ready"


def _agent_up(node: NodeProcess) -> bool:
    try:
        node.status()
        return True
    except OSError:
        return False


def test_a_corrupt_checkpoint_refuses_to_serve(checkpoints: Checkpoints) -> None:
    spec = node_spec(checkpoints, sha256="0" * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "reliability.lab.llm.node", json.dumps(spec)], capture_output=True, timeout=30
    )
    assert proc.returncode == 1 and b"corrupt" in proc.stderr


def test_a_bad_spec_is_one_line_naming_the_field(
    checkpoints: Checkpoints, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["node", json.dumps(node_spec(checkpoints, load_s=-1))])
    with pytest.raises(SystemExit) as exc:
        node_main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spec: load_s:") and "\n" not in err


def test_engine_metrics_agree_with_what_the_client_saw(node: NodeProcess) -> None:
    def sums() -> dict[str, float]:
        found = check_api_exposition(node.request("GET", "/metrics")[1].decode())
        names = ("e2e_request_latency", "request_decode_time", "time_to_first_token")
        fams = {n: found[f"vllm:{n}_seconds"] for n in names}
        return {n: next(s.value for s in f.samples if s.name.endswith("_sum")) for n, f in fams.items()}

    before = sums()
    t0 = time.monotonic()
    body = {"prompt": "abc", "max_tokens": 20, "ignore_eos": True, "stream": True}
    s = stream(node.api_port, "/v1/completions", body)
    wall = time.monotonic() - t0
    after = sums()
    assert len([d for d in s.data() if isinstance(d, dict)]) == 20
    delta = {k: after[k] - before[k] for k in before}
    assert delta["request_decode_time"] >= 19 * 0.010  # 19 decode steps of at least the modelled 10 ms
    assert delta["time_to_first_token"] + delta["request_decode_time"] <= delta["e2e_request_latency"] + 1e-6
    assert delta["e2e_request_latency"] <= wall  # the engine's view fits inside the client's
