"""`slo budget` against a real Prometheus on loopback scraping an in-process exporter."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry, Counter, start_http_server

from reliability.errors import InputError
from reliability.prometheus import LocalPrometheus
from reliability.prometheus.server import ScrapeTarget
from reliability.slo import compile_paths
from reliability.slo.budget import auth_headers
from reliability.tools import free_port
from tests.slo.conftest import DATA, run_cli

SPEC = DATA / "gameday.yaml"


@pytest.fixture
def failing_service() -> Iterator[str]:
    """An exporter on 127.0.0.1 whose lab_requests_total is half 500s (~40 requests/s)."""
    registry = CollectorRegistry()
    requests_total = Counter("lab_requests", "requests", ["code"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def traffic() -> None:
        deadline = time.monotonic() + 60  # bounded even if teardown never runs
        while not stop.is_set() and time.monotonic() < deadline:
            requests_total.labels(code="200").inc(2)
            requests_total.labels(code="500").inc(2)
            stop.wait(0.1)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        worker.join(timeout=5)
        server.shutdown()
        thread.join(timeout=5)


def wait_for_alert(url: str, name: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = requests.get(f"{url}/api/v1/query", params={"query": f'ALERTS{{alertname="{name}"}}'}, timeout=5)
        if r.json()["data"]["result"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} never became active")


def test_budget_reports_burn_policy_and_firing_alert(tmp_path: Path, failing_service: str) -> None:
    rules = compile_paths([SPEC], tmp_path / "rules.yaml")
    targets = [ScrapeTarget("lab", failing_service)]
    with LocalPrometheus(tmp_path / "prom", targets=targets, rule_files=[rules]) as prom:
        wait_for_alert(prom.url, "LabHighErrorRate")
        env = {**os.environ, "RELIABILITY_PROMETHEUS_BEARER_TOKEN": "t0ken"}
        result = run_cli("slo", "budget", str(SPEC), "--prometheus", prom.url, "--json", env=env)
        table = run_cli(
            "slo", "budget", str(SPEC), "--prometheus", prom.url, env={**os.environ, "COLUMNS": "200"}
        )
    assert result.returncode == 0, result.stderr
    report = {row["slo"]: row for row in json.loads(result.stdout)}
    avail = report["availability"]
    assert avail["objective"] == 99
    assert 0.3 < avail["sli"] < 0.7  # half the requests fail
    assert avail["error_budget_remaining"] < 0  # 50% errors against a 1% budget
    assert 30 < avail["burn_rates"]["10s"] < 70
    assert avail["policy_step"]["name"] == "stop"
    assert "LabHighErrorRate (page)" in avail["firing_alerts"]
    assert report["latency"]["sli"] is None  # no histogram scraped: no sample, not NaN
    assert table.returncode == 0 and "lab-api/availability" in table.stdout


def test_auth_headers_from_environment() -> None:
    env = {"RELIABILITY_PROMETHEUS_BEARER_TOKEN": "abc", "RELIABILITY_PROMETHEUS_HEADERS": '{"X-Org": "7"}'}
    assert auth_headers(env) == {"X-Org": "7", "Authorization": "Bearer abc"}
    with pytest.raises(InputError, match="RELIABILITY_PROMETHEUS_HEADERS"):
        auth_headers({"RELIABILITY_PROMETHEUS_HEADERS": "{nope"})
