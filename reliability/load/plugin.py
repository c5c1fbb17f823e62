"""Imported ONLY inside the Locust process (imports locust, i.e. gevent monkey-patching).

Attaches the per-second stats writer and the load shape to any locustfile. Configuration comes
from environment variables set by `LoadRun` (see `reliability.load.run.ENV`).

Every user-running process (the local runner, or each worker) buckets its requests by the wall
second they completed and ships finished seconds to the master as a custom message (the local
runner delivers to itself); the master/local process writes one line per second once no worker
can still deliver to it, so the file always holds one aggregated line per second - seconds with
no completed request included, since a total outage must show as zero traffic, not as a gap.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from reliability.load.buckets import Bucket, stats_line
from reliability.load.shapes import shape_users

MSG = "reliability_stats"
# Seconds a finished second waits for deliveries before it is written (shipping runs every
# SHIP_EVERY_S; over ZeroMQ from workers it takes longer than the local runner's direct call).
SHIP_EVERY_S = 0.25
GRACE_S = 3 if os.environ.get("RELIABILITY_DISTRIBUTED") == "1" else 2


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class _Local:
    """Buckets of this process not yet shipped."""

    def __init__(self) -> None:
        self.buckets: dict[int, Bucket] = {}

    def add(self, ms: float, failed: bool, code: int | None) -> None:
        # Called for every request: no Bucket is built unless the second is new.
        now = time.time()
        bucket = self.buckets.get(int(now))
        if bucket is None:
            bucket = self.buckets[int(now)] = Bucket()
        bucket.add(ms, failed, code, now)

    def take(self, before: float) -> dict[str, Any]:
        done = [s for s in self.buckets if s < before]
        return {str(s): self.buckets.pop(s).to_wire() for s in sorted(done)}


class _Writer:
    """Merged buckets on the master/local process, written in order of seconds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.buckets: dict[int, Bucket] = {}
        self.next_second: int | None = None

    def merge(self, data: dict[str, Any]) -> None:
        for sec, wire in data.items():
            second = int(sec)
            if self.next_second is not None and second < self.next_second:
                continue  # arrived after its second was written: dropping beats rewriting the file
            self.buckets.setdefault(second, Bucket()).merge(wire)

    def flush(self, upto: int, users: int | None) -> None:
        if self.next_second is None:
            if not self.buckets:
                return
            self.next_second = min(self.buckets)
        lines = []
        while self.next_second < upto:
            bucket = self.buckets.pop(self.next_second, Bucket())
            lines.append(json.dumps(stats_line(self.next_second, bucket, users), separators=(",", ":")))
            self.next_second += 1
        if lines:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, ("\n".join(lines) + "\n").encode())
            finally:
                os.close(fd)


_local = _Local()
_writer: _Writer | None = None


@events.request.add_listener
def _on_request(response_time: float, exception: Any = None, response: Any = None, **_: Any) -> None:
    _local.add(float(response_time or 0.0), exception is not None, getattr(response, "status_code", None))


def _ship(environment: Environment, final: bool = False) -> None:
    data = _local.take(math.inf if final else int(time.time()))
    if data and environment.runner is not None:
        environment.runner.send_message(MSG, data)


def _sender(environment: Environment) -> None:
    while True:
        gevent.sleep(SHIP_EVERY_S)
        _ship(environment)


def _flusher(environment: Environment) -> None:
    while True:
        gevent.sleep(0.5)
        _flush(environment, int(time.time()) - GRACE_S + 1)


def _flush(environment: Environment, upto: int) -> None:
    if _writer is not None:
        runner = environment.runner
        _writer.flush(upto, runner.user_count if runner is not None else None)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _writer
    runner = environment.runner
    path = os.environ.get("RELIABILITY_STATS_PATH")
    if runner is None or not path:
        return
    if not isinstance(runner, WorkerRunner):
        _writer = _Writer(path)
        runner.register_message(MSG, lambda environment, msg, **kw: _writer.merge(msg.data))  # type: ignore[union-attr]
        gevent.spawn(_flusher, environment)
    if not isinstance(runner, MasterRunner):
        gevent.spawn(_sender, environment)


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        _ship(environment, final=True)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        _ship(environment, final=True)
    if _writer is not None:
        _flush(environment, max(_writer.buckets, default=int(time.time()) - 1) + 1)


class ReliabilityShape(LoadTestShape):
    """`shape_users` over run time, at the configured spawn rate; stops at the configured duration."""

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        duration = _env_float("RELIABILITY_DURATION_S", 60.0)
        if t >= duration:
            return None
        users = int(_env_float("RELIABILITY_USERS", 10))
        rate = _env_float("RELIABILITY_SPAWN_RATE", 10.0)
        return shape_users(os.environ.get("RELIABILITY_SHAPE", "steady"), t, duration, users), rate
