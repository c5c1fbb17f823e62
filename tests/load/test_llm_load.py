"""The built-in LLM users against a real streaming stub on loopback (Locust in its own processes).

The stub sends known chunks with known delays; the per-second stats must show them. Latency checks
use only what a loaded machine cannot break: a measurement never undercuts the stub's delay (bucket
values round up), counts are exact, and medians sit within generous slack of the delays.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from reliability.load import LoadRun, merge_all, percentile, read_load_stats, worker_command
from reliability.tools import free_port

from .conftest import LlmStub

pytestmark = pytest.mark.slow
SLACK_MS = 100.0  # scheduling on a shared 2-core machine; the stub's delays are >= 20 ms


def _run(stub: LlmStub, out: Path, **kw: Any) -> pd.DataFrame:
    options: dict[str, Any] = dict(
        users=3, spawn_rate=3, duration_s=4, out_dir=out, user="openai-chat", user_rps=0
    )
    options.update(kw)
    run = LoadRun(stub.url, **options)
    with run:
        assert run.wait(timeout=90) == 0
    return read_load_stats(run.stats_path)


def _wait_for(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _hist(stats: pd.DataFrame, col: str) -> dict[float, int]:
    return merge_all(stats[col])


def _consecutive(ts: list[float]) -> bool:
    return all(b - a == 1 for a, b in itertools.pairwise(ts))


def test_chat_stream_measures_ttft_itl_tpot_and_tokens(tmp_path: Path, llm_stub: LlmStub) -> None:
    llm_stub.configure(ttft_ms=[80], itl_ms=30)
    stats = _run(llm_stub, tmp_path, prompt_tokens=16, output_tokens=6)
    sent = llm_stub.stats()
    n = int(stats["requests"].sum())
    # Every request the stub finished is on file once: users finish their request when the run ends.
    assert n == sent["completed"] == sent["requests"] > 0
    assert int(stats["failures"].sum()) == 0
    assert sum(c.get("200", 0) for c in stats["codes"]) == n
    assert _consecutive(list(stats["ts"])) and stats["ts"].is_unique
    ttft, itl, tpot = _hist(stats, "ttft_ms"), _hist(stats, "itl_ms"), _hist(stats, "tpot_ms")
    # TTFT is the first non-empty chunk: the stub's role chunk comes at once, content after 80 ms.
    assert sum(ttft.values()) == n and min(ttft) >= 80.0
    assert percentile(ttft, 0.5) <= 80.0 + SLACK_MS
    # 6 content chunks -> 5 gaps per request, 30 ms apart.
    assert sum(itl.values()) == 5 * n
    # A client that was not scheduled for a while reads chunks in a burst: some gaps shrink.
    assert 30.0 * 0.5 <= percentile(itl, 0.5) <= 30.0 + SLACK_MS
    assert sum(tpot.values()) == n and 30.0 * 0.5 <= percentile(tpot, 0.5) <= 30.0 + SLACK_MS
    e2e = _hist(stats, "e2e_ms")
    assert sum(e2e.values()) == n and min(e2e) >= 80.0 + 5 * 30.0
    # Tokens from usage: 6 generated, 16 words + 1 prompt tokens (the client alone would say 16).
    assert int(stats["output_tokens"].sum()) == 6 * n
    assert int(stats["prompt_tokens"].sum()) == 17 * n
    assert int(stats["judged"].sum()) == 0  # no golden file: nothing judged
    assert list(sent["models"]) == ["stub-model"]  # asked GET /v1/models for it
    assert stats["p50_ms"].dropna().ge(80.0 + 5 * 30.0).all()


def test_wrong_answers_and_goodput_are_counted(tmp_path: Path, llm_stub: LlmStub) -> None:
    llm_stub.configure(ttft_ms=[20, 800], itl_ms=20, wrong_every=2)
    stats = _run(
        llm_stub, tmp_path, output_tokens=3, golden_path=llm_stub.golden, judge_share=0.5, ttft_target_ms=400
    )
    sent = llm_stub.stats()
    assert int(stats["requests"].sum()) == sent["completed"] > 0
    assert int(stats["failures"].sum()) == 0
    # Every golden request was answered completely and judged; every wrong answer the stub sent counted.
    assert int(stats["judged"].sum()) == sent["golden"] > 0
    assert int(stats["wrong"].sum()) == sent["wrong_sent"] > 0
    wrong_seconds = stats[stats["wrong"] > 0]
    assert (
        (wrong_seconds["last_wrong_ts"] >= wrong_seconds["ts"])
        & (wrong_seconds["last_wrong_ts"] < wrong_seconds["ts"] + 1)
    ).all()
    # Good = met the 400 ms TTFT target: the answers the stub started after 20 ms, not those after 800.
    assert int(stats["good"].sum()) == sent["by_ttft"]["20"] > 0
    assert sent["by_ttft"]["800"] > 0


def test_failures_codes_and_errors_including_a_cut_stream(tmp_path: Path, llm_stub: LlmStub) -> None:
    llm_stub.configure(ttft_ms=[10], itl_ms=10, mode="http_error", status=503, cut_after=2)
    run = LoadRun(llm_stub.url, users=2, spawn_rate=2, duration_s=60, out_dir=tmp_path, user="openai-chat",
                  user_rps=0, output_tokens=5)  # fmt: skip
    with run:
        # Each failure mode in turn, each for at least 10 requests (stop() ends the run early).
        for mode in ("cut", "error_chunk", None):
            _wait_for(lambda seen=llm_stub.stats()["requests"]: llm_stub.stats()["requests"] >= seen + 10)
            if mode:
                llm_stub.configure(mode=mode)
    stats = read_load_stats(run.stats_path)
    sent = llm_stub.stats()
    n = int(stats["requests"].sum())
    assert n == sent["requests"] > 0 and sent["completed"] == 0
    assert int(stats["failures"].sum()) == n
    codes: dict[str, int] = {}
    for c in stats["codes"]:
        for k, v in c.items():
            codes[k] = codes.get(k, 0) + v
    assert set(codes) == {"200", "503"}  # a cut or broken stream had answered 200
    errors: dict[str, int] = {}
    for e in stats["errors"]:
        for k, v in e.items():
            errors[k] = errors.get(k, 0) + v
    assert sum(errors.values()) == n
    assert errors["/v1/chat/completions: HTTP 503: injected failure"] == codes["503"]
    assert any(k.startswith("/v1/chat/completions: stream cut") for k in errors)
    assert errors["/v1/chat/completions: error in stream: engine died"] > 0
    assert int(stats["good"].sum()) == 0
    # A failure before any token records how long it waited; a stream cut after its first token
    # has a TTFT (the token did come).
    assert sum(_hist(stats, "ttft_censored_ms").values()) == codes["503"]
    assert sum(_hist(stats, "ttft_ms").values()) <= n - codes["503"]
    failing = stats[stats["failures"] > 0]
    assert (failing["first_failure_ts"] <= failing["last_failure_ts"]).all()


def test_distributed_workers_count_each_request_once(tmp_path: Path, llm_stub: LlmStub) -> None:
    llm_stub.configure(ttft_ms=[20], itl_ms=10)
    stats = _run(llm_stub, tmp_path, users=4, spawn_rate=4, workers=2, output_tokens=4,
                 golden_path=llm_stub.golden, judge_share=0.3)  # fmt: skip
    sent = llm_stub.stats()
    assert stats["ts"].is_unique and _consecutive(list(stats["ts"]))
    assert int(stats["requests"].sum()) == sent["completed"] > 0
    assert sum(_hist(stats, "ttft_ms").values()) == sent["completed"]
    assert int(stats["judged"].sum()) == sent["golden"] > 0
    # Golden answers stream one character per token ("hello there", "one two three"), others 4 tokens.
    golden_tokens = int(stats["output_tokens"].sum()) - 4 * (sent["completed"] - sent["golden"])
    assert len("hello there") * sent["golden"] <= golden_tokens <= len("one two three") * sent["golden"]


def test_a_worker_started_elsewhere_joins_the_master(tmp_path: Path, llm_stub: LlmStub) -> None:
    llm_stub.configure(ttft_ms=[20, 800], itl_ms=10)
    run = LoadRun(llm_stub.url, users=2, spawn_rate=2, duration_s=4, out_dir=tmp_path / "run",
                  user="openai-chat", user_rps=0, output_tokens=3, model="stub-model",
                  golden_path=llm_stub.golden, judge_share=0.5, ttft_target_ms=400,
                  master_bind_port=free_port(), expect_workers=1)  # fmt: skip
    # The worker gets nothing from the environment: its settings come from the master.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELIABILITY_")}
    with run:
        assert run.master_port is not None and len(run.procs) == 1
        time.sleep(1.0)
        assert run.poll() is None  # waiting for its worker
        with open(tmp_path / "worker.log", "wb") as log:
            worker = subprocess.Popen(
                worker_command("127.0.0.1", run.master_port), env=env, stdout=log, stderr=log, cwd=tmp_path,
                start_new_session=True,
            )  # fmt: skip
        try:
            assert run.wait(timeout=90) == 0
            assert worker.wait(timeout=30) == 0
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    stats = read_load_stats(run.stats_path)
    sent = llm_stub.stats()
    assert int(stats["requests"].sum()) == sent["completed"] > 0
    # The golden path, the model and the TTFT target came from the master.
    assert int(stats["judged"].sum()) == sent["golden"] > 0
    assert list(sent["models"]) == ["stub-model"]
    assert int(stats["good"].sum()) == sent["by_ttft"]["20"] > 0 and sent["by_ttft"]["800"] > 0


def test_completions_and_oip_predict_users(tmp_path: Path, llm_stub: LlmStub) -> None:
    llm_stub.configure(ttft_ms=[20], itl_ms=10)
    stats = _run(llm_stub, tmp_path / "completions", user="openai-completions", output_tokens=3, duration_s=3,
                 golden_path=llm_stub.golden, judge_share=1.0)  # fmt: skip
    sent = llm_stub.stats()
    assert int(stats["requests"].sum()) == sent["completed"] > 0
    # Every request of this user is the one completions golden case, answered right.
    assert int(stats["judged"].sum()) == sent["golden"] == sent["completed"]
    assert int(stats["wrong"].sum()) == 0
    assert int(stats["output_tokens"].sum()) == len(" a time") * sent["completed"]

    before = llm_stub.stats()["completed"]
    oip = _run(llm_stub, tmp_path / "oip", user="oip-predict", model="mlp", duration_s=3, user_rps=20)
    assert int(oip["requests"].sum()) == llm_stub.stats()["completed"] - before > 0
    assert int(oip["failures"].sum()) == 0
    assert _hist(oip, "ttft_ms") == {} and sum(_hist(oip, "e2e_ms").values()) == int(oip["requests"].sum())
