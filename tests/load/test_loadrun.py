"""Real Locust processes against a real loopback server (the harness never imports locust)."""

from __future__ import annotations

import itertools
import os
import sys
import time
from pathlib import Path

import pytest

from reliability.analysis import SliSpec, per_second, rto_from_seconds
from reliability.load import LoadRun, read_load_stats

from .conftest import StubServer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _consecutive(frame_ts: list[float]) -> bool:
    return all(b - a == 1 for a, b in itertools.pairwise(frame_ts))


def _counted_all(counted: int, served: int, users: int) -> bool:
    """Every answered request is on file, except at most one in flight per user when Locust
    killed its users at the end (Locust's own totals miss those too)."""
    return served > 0 and served - users <= counted <= served


def test_every_request_is_counted_once_per_second(tmp_path: Path, stub_server: StubServer) -> None:
    run = LoadRun(stub_server.url, users=4, spawn_rate=4, duration_s=5, out_dir=tmp_path)
    with run:
        assert run.wait(timeout=60) == 0
    stats = read_load_stats(run.stats_path)
    assert _counted_all(int(stats["requests"].sum()), stub_server.served(), users=4)
    assert int(stats["failures"].sum()) == 0
    assert _consecutive(list(stats["ts"]))
    assert stats["p95_ms"].dropna().gt(0).all()
    assert "locust" not in sys.modules  # the test process stays free of gevent patching


def test_outage_is_seen_and_rto_measured(tmp_path: Path, stub_server: StubServer) -> None:
    run = LoadRun(stub_server.url, users=5, spawn_rate=5, duration_s=14, out_dir=tmp_path, user_rps=20)
    with run:
        time.sleep(4)
        inject = time.time()
        stub_server.fault(503)
        time.sleep(3)
        stub_server.heal()
        healed = time.time()
        assert run.wait(timeout=60) == 0
    stats = read_load_stats(run.stats_path)
    failed = stats[stats["failures"] > 0]
    assert not failed.empty
    assert {"503"} <= set().union(*(set(c) for c in failed["codes"]))
    result = rto_from_seconds(per_second(stats, SliSpec("a", "availability", 0.99)), inject, hold_s=3)
    assert result.status == "recovered"
    # Per-second resolution: the measured RTO is within a second of the real outage.
    assert result.rto_seconds == pytest.approx(healed - inject, abs=1.0)


def test_distributed_workers_aggregate_into_one_line_per_second(
    tmp_path: Path, stub_server: StubServer
) -> None:
    run = LoadRun(stub_server.url, users=4, spawn_rate=4, duration_s=5, out_dir=tmp_path, workers=2)
    with run:
        assert run.wait(timeout=90) == 0
    assert len(run.procs) == 3
    stats = read_load_stats(run.stats_path)
    assert stats["ts"].is_unique
    assert _consecutive(list(stats["ts"]))
    assert _counted_all(int(stats["requests"].sum()), stub_server.served(), users=4)


def test_users_own_locustfile_gets_the_stats_writer(tmp_path: Path, stub_server: StubServer) -> None:
    own = tmp_path / "mine.py"
    own.write_text(
        "from locust import HttpUser, constant, task\n\n"
        "class Mine(HttpUser):\n"
        "    wait_time = constant(0.2)\n\n"
        "    @task\n"
        "    def go(self):\n"
        "        self.client.post('/v1/predict', json={'inputs': [[1.0, 2.0]]})\n"
    )
    run = LoadRun(
        stub_server.url, users=2, spawn_rate=2, duration_s=4, out_dir=tmp_path / "out", locustfile=own
    )
    with run:
        assert run.wait(timeout=60) == 0
    stats = read_load_stats(run.stats_path)
    assert _counted_all(int(stats["requests"].sum()), stub_server.served(), users=2)
    # From a user's own locustfile only e2e latency, failures and codes are known.
    assert sum(sum(h.values()) for h in stats["e2e_ms"]) == int(stats["requests"].sum())
    assert all(not h for h in stats["ttft_ms"]) and int(stats["output_tokens"].sum()) == 0
    assert int(stats["good"].sum()) == int(stats["requests"].sum())  # no latency targets: every success
    assert int(stats["judged"].sum()) == 0


@pytest.mark.parametrize("workers", [0, 2])
def test_stop_ends_every_process_early_and_keeps_the_stats(
    tmp_path: Path, stub_server: StubServer, workers: int
) -> None:
    run = LoadRun(stub_server.url, users=2, spawn_rate=2, duration_s=600, out_dir=tmp_path, workers=workers)
    started = time.monotonic()
    with run:
        time.sleep(3 + 2 * workers)
        assert run.poll() is None
    assert time.monotonic() - started < 30
    assert all(not _alive(p.pid) for p in run.procs)
    # Locust shut down cleanly on stop(): what it sent is on file.
    assert _counted_all(int(read_load_stats(run.stats_path)["requests"].sum()), stub_server.served(), users=2)
