"""A running lab per isolation mode, shared by the tests of a module (start ~5 s, stop ~4 s).

Each test leaves the lab healed; the fixture's teardown checks nothing is left behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reliability.lab import Lab, LabConfig
from reliability.lab.events import read_events
from reliability.lab.netns import netns_available

REPO = Path(__file__).resolve().parents[2]

ISOLATIONS = [
    "proxy",
    pytest.param("netns", marks=pytest.mark.skipif(not netns_available(), reason="netns needs root")),
]


def fast_config() -> LabConfig:
    return LabConfig.model_validate(
        {
            "model": {"warmup_s": 0.5},
            "controller": {"provisioning_delay_s": 1.0},
            "store": {"replication_lag_s": 1.0},
        }
    )


@pytest.fixture(scope="module", params=ISOLATIONS)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir = tmp_path_factory.mktemp(f"lab-{request.param}")
    with Lab(
        fast_config(), workdir, isolation=request.param, slo_files=[REPO / "slos" / "inference-api.yaml"]
    ) as lab:
        yield lab


def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def events_named(lab: Lab, name: str, after: float = 0.0, **match: Any) -> list[dict[str, Any]]:
    """Events of the lab's ground-truth log with this name (and fields), after a monotonic time."""
    return [
        e
        for e in read_events(lab.events_path)
        if e["event"] == name and e["mono"] > after and all(e.get(k) == v for k, v in match.items())
    ]


def prom_value(lab: Lab, query: str) -> float | None:
    r = requests.get(f"{lab.prometheus_url}/api/v1/query", params={"query": query}, timeout=5).json()
    result = r["data"]["result"]
    return float(result[0]["value"][1]) if result else None


class Traffic:
    """Predictions through the global gateway from a thread, each outcome recorded with its time."""

    def __init__(self, endpoint: str, features: int = 4, interval_s: float = 0.01) -> None:
        self.endpoint = endpoint
        self.body = {"inputs": [[0.1] * features]}
        self.interval_s = interval_s
        self.results: list[tuple[float, int, str]] = []  # (mono, status or 0, answering node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        for _ in range(100_000):
            if self._stop.is_set():
                return
            try:
                r = session.post(f"{self.endpoint}/v1/predict", json=self.body, timeout=3)
                node = r.json().get("node", "") if r.status_code == 200 else ""
                self.results.append((time.monotonic(), r.status_code, node))
            except requests.RequestException:
                self.results.append((time.monotonic(), 0, ""))
            time.sleep(self.interval_s)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def failures(self) -> int:
        return sum(1 for _, code, _ in self.results if code != 200)
