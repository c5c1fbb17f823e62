"""A real stand-in inference API on loopback, in its own process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

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
