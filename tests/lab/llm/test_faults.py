"""Every fault of the node (docs/twin.md 1.4) and its clear, on a real node process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from reliability.lab.llm.openai import ENGINE_DEAD
from reliability.lab.llm.tinylm import GoldenCase, golden_cases
from tests.lab.llm.conftest import MODEL, Checkpoints, NodeProcess, wait_for
from tests.lab.llm.sse import Stream, stream
from tests.lab.llm.test_metrics import check_dcgm_exposition, families


@pytest.fixture(scope="module")
def golden(checkpoints: Checkpoints) -> list[GoldenCase]:
    return golden_cases(checkpoints.lm, checkpoints.lm_sha)


@pytest.fixture(autouse=True)
def cleared(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "node" in request.fixturenames:
        node: NodeProcess = request.getfixturevalue("node")
        node.fault(mode=None)


def answers(node: NodeProcess, cases: list[GoldenCase]) -> list[tuple[int, str]]:
    def ask(case: GoldenCase) -> tuple[int, str]:
        body: dict[str, Any] = {"model": MODEL, "max_tokens": case.max_tokens, "temperature": 0}
        if case.api == "chat":
            status, resp = node.post_json("/v1/chat/completions", {**body, "messages": case.messages})
            return status, resp["choices"][0]["message"]["content"] if status == 200 else ""
        status, resp = node.post_json("/v1/completions", {**body, "prompt": case.prompt})
        return status, resp["choices"][0]["text"] if status == 200 else ""

    with ThreadPoolExecutor(len(cases)) as pool:
        return list(pool.map(ask, cases))


def all_golden(node: NodeProcess, cases: list[GoldenCase]) -> bool:
    return [(200, c.expected) for c in cases] == answers(node, cases)


def dcgm(node: NodeProcess) -> dict[str, dict[str, str]]:
    return check_dcgm_exposition(node.agent("GET", "/metrics")[1])


def vllm_value(node: NodeProcess, sample: str, **labels: str) -> float:
    text = node.request("GET", "/metrics")[1].decode()
    return sum(
        s.value
        for f in families(text).values()
        for s in f.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def chat(node: NodeProcess, **extra: Any) -> tuple[int, Any]:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, **extra}
    return node.post_json("/v1/chat/completions", body)


class Background:
    """A long streamed request in a thread, started and known to be running in the engine."""

    def __init__(self, node: NodeProcess, max_tokens: int = 2000) -> None:
        self.result: Stream | None = None
        self.error: BaseException | None = None
        body = {"prompt": "Keep going:", "max_tokens": max_tokens, "ignore_eos": True, "stream": True}

        def run() -> None:
            try:
                self.result = stream(node.api_port, "/v1/completions", body, timeout=30)
            except BaseException as exc:  # the connection may be cut
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        wait_for(lambda: node.status()["running"] >= 1)

    def join(self) -> Stream | None:
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.result


@pytest.mark.parametrize("code", [48, 95])
def test_fatal_ecc_xids_kill_the_engine_until_cleared(
    node: NodeProcess, golden: list[GoldenCase], code: int
) -> None:
    rows = int(dcgm(node)["DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"]["value"])
    errors = vllm_value(node, "vllm:request_success_total", finished_reason="error")
    inflight = Background(node)
    status = node.fault(mode="xid", code=code)
    assert status["engine"] == "dead" and status["last_xid"] == code
    cut = inflight.join()
    assert cut is not None and cut.status == 200
    *_, err, done = cut.data()
    assert err == {
        "error": {"message": ENGINE_DEAD, "type": "InternalServerError", "param": None, "code": 500}
    }
    assert done == "[DONE]"
    assert node.request("GET", "/health")[0] == 503
    assert chat(node) == (
        500,
        {"error": {"message": ENGINE_DEAD, "type": "InternalServerError", "param": None, "code": 500}},
    )
    assert node.get_json("/v2/health/ready")[0] == 503
    series = dcgm(node)
    assert series["DCGM_FI_DEV_XID_ERRORS"]["value"] == str(code)
    assert series["DCGM_FI_DEV_XID_ERRORS"]["err_code"] == str(code)
    assert series["DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"]["value"] == str(rows + 1)
    assert vllm_value(node, "vllm:request_success_total", finished_reason="error") == errors + 1
    node.fault(mode=None)
    assert node.healthy() and all_golden(node, golden)
    series = dcgm(node)
    assert series["DCGM_FI_DEV_XID_ERRORS"]["value"] == "0"
    assert series["DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS"]["value"] == str(rows + 1)  # rows stay remapped


def test_contained_ecc_fails_only_the_requests_in_flight(node: NodeProcess) -> None:
    inflight = Background(node)
    node.fault(mode="xid", code=94)
    cut = inflight.join()
    assert cut is not None and cut.data()[-2]["error"]["type"] == "InternalServerError"
    assert node.healthy()
    assert chat(node)[0] == 200
    assert dcgm(node)["DCGM_FI_DEV_XID_ERRORS"]["err_msg"] == "Contained ECC error"


def test_row_remapping_xids_move_the_counters_and_leave_serving_alone(node: NodeProcess) -> None:
    before = dcgm(node)
    node.fault(mode="xid", code=63)
    after = dcgm(node)
    assert (
        int(after["DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"]["value"])
        == int(before["DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS"]["value"]) + 1
    )
    assert chat(node)[0] == 200
    node.fault(mode="xid", code=64)
    after = dcgm(node)
    assert after["DCGM_FI_DEV_ROW_REMAP_FAILURE"]["value"] == "1"
    assert (
        after["DCGM_FI_DEV_XID_ERRORS"]["err_msg"] == "ECC page retirement or row remapper recording failure"
    )
    assert chat(node)[0] == 200
    node.fault(mode=None)
    assert dcgm(node)["DCGM_FI_DEV_ROW_REMAP_FAILURE"]["value"] == "0"


def test_gray_failure_keeps_health_green_while_generation_fails(node: NodeProcess) -> None:
    node.fault(mode="gray")
    assert node.request("GET", "/health")[0] == 200
    status, err = chat(node)
    assert status == 500 and err["error"]["type"] == "InternalServerError"
    infer = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [0.1] * 4}]}
    assert node.post_json("/v2/models/predictor/infer", infer)[0] == 500
    node.fault(mode=None)
    assert chat(node)[0] == 200


def test_gray_hang_keeps_health_green_while_requests_hang(node: NodeProcess) -> None:
    node.fault(mode="gray", hang=True)
    result: list[tuple[int, Any]] = []
    waiter = threading.Thread(target=lambda: result.append(chat(node)), daemon=True)
    waiter.start()
    wait_for(lambda: node.status()["waiting"] >= 1)
    assert node.request("GET", "/health")[0] == 200 and node.status()["engine"] == "hung"
    assert waiter.is_alive() and not result
    node.fault(mode=None)
    waiter.join(10)
    assert result and result[0][0] == 200


def mean_itl(node: NodeProcess, tokens: int) -> float:
    s0 = vllm_value(node, "vllm:inter_token_latency_seconds_sum")
    n0 = vllm_value(node, "vllm:inter_token_latency_seconds_count")
    node.post_json("/v1/completions", {"prompt": "x", "max_tokens": tokens, "ignore_eos": True})
    s1 = vllm_value(node, "vllm:inter_token_latency_seconds_sum")
    n1 = vllm_value(node, "vllm:inter_token_latency_seconds_count")
    assert n1 - n0 == tokens - 1
    return (s1 - s0) / (n1 - n0)


def test_slow_decode_multiplies_inter_token_latency(node: NodeProcess) -> None:
    normal = mean_itl(node, 20)
    node.fault(mode="slow_decode", factor=5)
    slow = mean_itl(node, 20)
    assert slow > 3 * normal  # modelled: 5 x 10.25 ms against 10.25 ms per step


def test_kv_cache_cut_causes_preemption_and_every_request_still_completes(node: NodeProcess) -> None:
    preempted = vllm_value(node, "vllm:num_preemptions_total")
    node.fault(mode="kv_cache_cut", fraction=0.05)  # 38 of 768 blocks: 608 tokens
    body = {"prompt": "y" * 40, "max_tokens": 150, "ignore_eos": True}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: node.post_json("/v1/completions", body, timeout=60), range(8)))
    assert all(s == 200 and r["usage"]["completion_tokens"] == 150 for s, r in results)
    assert vllm_value(node, "vllm:num_preemptions_total") > preempted


def test_errors_fail_requests_inside_the_engine(node: NodeProcess) -> None:
    errors = vllm_value(node, "vllm:request_success_total", finished_reason="error")
    node.fault(mode="errors", rate=1.0)
    status, err = chat(node)
    assert status == 500 and err["error"] == {
        "message": "Internal server error",
        "type": "InternalServerError",
        "param": None,
        "code": 500,
    }
    s = stream(node.api_port, "/v1/completions", {"prompt": "x", "max_tokens": 5, "stream": True})
    assert s.status == 200 and s.data()[-2]["error"]["code"] == 500 and s.data()[-1] == "[DONE]"
    assert vllm_value(node, "vllm:request_success_total", finished_reason="error") == errors + 2
    node.fault(mode=None)
    assert chat(node)[0] == 200


def test_latency_delays_every_answer(node: NodeProcess) -> None:
    node.fault(mode="latency", latency_ms=300)
    t0 = time.monotonic()
    assert chat(node, max_tokens=1)[0] == 200
    assert time.monotonic() - t0 >= 0.3


@pytest.mark.parametrize("mode", ["wrong", "bad_version"])
def test_silent_corruption_is_visible_only_in_the_answers(
    node: NodeProcess, golden: list[GoldenCase], mode: str
) -> None:
    node.fault(mode=mode, version="v2") if mode == "bad_version" else node.fault(mode=mode)
    got = answers(node, golden)
    assert all(status == 200 for status, _ in got)
    assert all(text != case.expected for (_, text), case in zip(got, golden, strict=True))
    assert node.request("GET", "/health")[0] == 200
    if mode == "bad_version":
        assert node.status()["model_version"] == "v2"
    node.fault(mode=None)
    assert all_golden(node, golden) and node.status()["model_version"] == "v1"


def test_bad_fault_bodies_are_rejected(node: NodeProcess) -> None:
    assert node.agent("POST", "/admin/fault", {"mode": "melt"})[0] == 400
    assert node.agent("POST", "/admin/fault", {"mode": "xid", "code": 13})[0] == 400
    assert node.agent("POST", "/admin/fault", {"mode": "slow_decode"})[0] == 400


def test_xid_79_closes_the_api_port_and_cuts_streams_while_dcgm_reports_it(
    start_node: Callable[..., NodeProcess],
) -> None:
    lost = start_node()
    inflight = Background(lost)
    status = lost.fault(mode="xid", code=79)
    assert status["state"] == "lost" and not status["api_listening"]
    cut = inflight.join()
    assert inflight.error is not None or (
        cut is not None and (not cut.complete or cut.data()[-1] != "[DONE]")
    )
    assert not lost.api_open()  # connection refused
    series = dcgm(lost)
    assert series["DCGM_FI_DEV_XID_ERRORS"]["value"] == "79"
    assert series["DCGM_FI_DEV_XID_ERRORS"]["err_msg"] == "GPU has fallen off the bus"
    code, body = lost.agent("POST", "/admin/fault", {"mode": None})
    assert code == 409 and "replace the node" in body["error"]
    assert lost.proc.poll() is None  # alive, reporting, until the controller kills it
