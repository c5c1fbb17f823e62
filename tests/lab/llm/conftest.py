"""Real node processes on 127.0.0.1 for the tests: checkpoints, a spec, start, wait, stop."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reliability.lab.config import PredictorConfig
from reliability.lab.llm.engine import EngineConfig
from reliability.lab.llm.tinylm import LmConfig, write_checkpoint
from reliability.lab.model import write_checkpoint as write_predictor

MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@dataclass
class Checkpoints:
    lm: Path
    lm_sha: str
    predictor: Path
    predictor_sha: str


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Checkpoints:
    d = tmp_path_factory.mktemp("checkpoints")
    lm_sha = write_checkpoint(d / "lm.npz", LmConfig())
    return Checkpoints(d / "lm.npz", lm_sha, d / "mlp.npz", write_predictor(d / "mlp.npz", PredictorConfig()))


def node_spec(ck: Checkpoints, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "id": "us-east-1",
        "region": "us-east",
        "host": "127.0.0.1",
        "api_port": free_port(),
        "agent_port": free_port(),
        "checkpoint": str(ck.lm),
        "sha256": ck.lm_sha,
        "predictor_checkpoint": str(ck.predictor),
        "predictor_sha256": ck.predictor_sha,
        "served_model_name": MODEL,
        "predictor_name": "predictor",
        "model_version": "v1",
        "engine": EngineConfig.lab().model_dump(),
        "gpu": {
            "uuid": "GPU-5d3a0e1c-0000-4000-8000-000000000001",
            "model_name": "NVIDIA H100 80GB HBM3",
            "index": 0,
            "pci_bus_id": "00000000:18:00.0",
            "fb_total_mib": 81559,
        },
        "load_s": 0.2,
        "warmup_s": 0.1,
    }
    spec.update(overrides)
    return spec


class NodeProcess:
    def __init__(self, spec: dict[str, Any], log: Path) -> None:
        self.spec = spec
        self.api_port = int(spec["api_port"])
        self.agent_port = int(spec["agent_port"])
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reliability.lab.llm.node", json.dumps(spec)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def request(
        self, method: str, path: str, body: Any = None, port: int | None = None, timeout: float = 10.0
    ) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.api_port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            headers = {"Content-Type": "application/json"} if data is not None else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read(), {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def get_json(self, path: str, port: int | None = None) -> tuple[int, Any]:
        status, body, _ = self.request("GET", path, port=port)
        return status, json.loads(body) if body else None

    def post_json(self, path: str, body: Any, timeout: float = 10.0) -> tuple[int, Any]:
        status, raw, _ = self.request("POST", path, body, timeout=timeout)
        return status, json.loads(raw)

    def agent(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, raw, _ = self.request(method, path, body, port=self.agent_port)
        return status, json.loads(raw) if raw and path.startswith("/admin") else raw.decode()

    def fault(self, **body: Any) -> dict[str, Any]:
        status, data = self.agent("POST", "/admin/fault", body)
        assert status == 200, data
        return data  # type: ignore[no-any-return]

    def status(self) -> dict[str, Any]:
        return self.agent("GET", "/admin/status")[1]  # type: ignore[no-any-return]

    def api_open(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", self.api_port), timeout=0.5),
        ):
            return True
        return False

    def healthy(self) -> bool:
        try:
            return self.request("GET", "/health", timeout=1.0)[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout: float = 15.0) -> NodeProcess:
        def ready() -> bool:
            assert self.proc.poll() is None, self.log.read_text()
            return self.healthy()

        wait_for(ready, timeout)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def start_node(checkpoints: Checkpoints, tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    started: list[NodeProcess] = []

    def start(wait: bool = True, **overrides: Any) -> NodeProcess:
        node = NodeProcess(node_spec(checkpoints, **overrides), tmp_path / f"node{len(started)}.log")
        started.append(node)
        return node.wait_ready() if wait else node

    yield start
    for node in started:
        node.stop()


@pytest.fixture(scope="module")
def node(checkpoints: Checkpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """One node shared by a module's tests; each test leaves it without a fault."""
    proc = NodeProcess(node_spec(checkpoints), tmp_path_factory.mktemp("node") / "node.log")
    try:
        yield proc.wait_ready()
    finally:
        proc.stop()
