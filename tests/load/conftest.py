"""Real stand-in servers on loopback, each in its own process: the pre-twin inference API and a
streaming OpenAI-compatible stub."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reliability.tools import free_port


class StubServer:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def served(self) -> int:
        return int(requests.get(f"{self.url}/_count", timeout=2).json()["served"])

    def fault(self, status: int = 503) -> None:
        requests.post(f"{self.url}/_fault", json={"status": status}, timeout=2).raise_for_status()

    def heal(self) -> None:
        requests.post(f"{self.url}/_heal", json={}, timeout=2).raise_for_status()


@pytest.fixture
def stub_server() -> Iterator[StubServer]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "reliability.load.stub_server", str(port)])
    server = StubServer(port)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                server.served()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("stub server did not start") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=10)


LLM_STUB = Path(__file__).resolve().parent / "llm_stub.py"
GOLDEN = [
    {"id": "greet", "api": "chat", "messages": [{"role": "user", "content": "say hello"}], "max_tokens": 8,
     "expected": "hello there"},
    {"id": "count", "api": "chat", "messages": [{"role": "user", "content": "count to three"}],
     "max_tokens": 8, "expected": "one two three"},
    {"id": "story", "api": "completions", "prompt": "once upon", "max_tokens": 8, "expected": " a time"},
]  # fmt: skip


class LlmStub:
    """tests/load/llm_stub.py in its own process: known chunks with known delays."""

    def __init__(self, port: int, golden: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.golden = golden

    def stats(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_stats", timeout=2).json())

    def configure(self, **config: Any) -> None:
        requests.post(f"{self.url}/_config", json=config, timeout=2).raise_for_status()


@pytest.fixture
def llm_stub(tmp_path: Path) -> Iterator[LlmStub]:
    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(json.dumps(case) + "\n" for case in GOLDEN))
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(LLM_STUB), str(port), str(golden)])
    stub = LlmStub(port, golden)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                stub.stats()
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("LLM stub did not start") from None
                time.sleep(0.1)
        yield stub
    finally:
        proc.terminate()
        proc.wait(timeout=10)
