"""Imported ONLY inside the Locust process (imports locust, i.e. gevent monkey-patching).

Attaches the per-second stats writer, the load shape and the harness's options to any locustfile.

Options are Locust command-line arguments whose defaults come from environment variables set by
`LoadRun` (`OPTIONS` below). The master sends its parsed options to every worker with the spawn
message, so a worker started on another machine with only `--worker --master-host H --master-port P`
runs with the master's settings (model, lengths, golden file path, targets...).

Every user-running process (the local runner, or each worker) buckets its requests by the wall
second they completed and ships finished seconds to the master as a custom message (the local
runner delivers to itself); the master/local process writes one line per second once no worker
can still deliver to it, so the file always holds one aggregated line per second - seconds with
no completed request included, since a total outage must show as zero traffic, not as a gap.

Requests are what `events.request` reports: the built-in users fire it once per request with a
`reliability.load.measure.Measured` in `context["reliability"]` (TTFT, ITL, tokens, judgement);
a user's own locustfile gets e2e latency, failures, status codes and errors only.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from reliability.load.buckets import Bucket, error_key, stats_line
from reliability.load.defaults import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS
from reliability.load.measure import Measured, is_good
from reliability.load.shapes import shape_users

MSG = "reliability_stats"
CONTEXT_KEY = "reliability"
# Seconds a finished second waits for deliveries before it is written (shipping runs every
# SHIP_EVERY_S; over ZeroMQ from workers it takes longer than the local runner's direct call).
SHIP_EVERY_S = 0.25
GRACE_S = 3 if os.environ.get("RELIABILITY_DISTRIBUTED") == "1" else 2
log = logging.getLogger("reliability.load")

# (argument, environment variable, type, default, help): all sent from the master to its workers.
OPTIONS: list[tuple[str, str, type, Any, str]] = [
    ("--reliability-stats-path", "RELIABILITY_STATS_PATH", str, "", "load_stats.jsonl to write (master)"),
    ("--reliability-model", "RELIABILITY_MODEL", str, "", "model name; empty: the first of GET /v1/models"),
    ("--reliability-prompt-tokens", "RELIABILITY_PROMPT_TOKENS", str, json.dumps(DEFAULT_PROMPT_TOKENS),
     "prompt length distribution (JSON)"),
    ("--reliability-output-tokens", "RELIABILITY_OUTPUT_TOKENS", str, json.dumps(DEFAULT_OUTPUT_TOKENS),
     "max_tokens distribution (JSON)"),
    ("--reliability-golden-path", "RELIABILITY_GOLDEN_PATH", str, "", "golden.jsonl; empty: nothing judged"),
    ("--reliability-judge-share", "RELIABILITY_JUDGE_SHARE", float, 0.1, "share sent from golden cases"),
    ("--reliability-ttft-target-ms", "RELIABILITY_TTFT_TARGET_MS", float, None, "goodput TTFT target"),
    ("--reliability-tpot-target-ms", "RELIABILITY_TPOT_TARGET_MS", float, None, "goodput TPOT target"),
    ("--reliability-request-timeout-s", "RELIABILITY_REQUEST_TIMEOUT_S", float, None,
     "whole-request timeout (default 60 s streaming, 5 s predict)"),
    ("--reliability-user-rps", "RELIABILITY_USER_RPS", float, 10.0, "requests/s per user; 0 = closed loop"),
    ("--reliability-seed", "RELIABILITY_SEED", int, 0, "seed of the users' random draws"),
    ("--reliability-features", "RELIABILITY_FEATURES", int, 4, "OIP v2 input features"),
]  # fmt: skip


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_: Any) -> None:
    for flag, env, typ, default, help_text in OPTIONS:
        parser.add_argument(
            flag, type=typ, env_var=env, default=default, help=help_text, include_in_web_ui=False
        )


@dataclass(frozen=True)
class Targets:
    ttft_ms: float | None = None
    tpot_ms: float | None = None


def option(environment: Environment, flag: str) -> Any:
    """The value of one of OPTIONS (its default when Locust was started without our parser)."""
    attr = flag.lstrip("-").replace("-", "_")
    parsed = environment.parsed_options
    if parsed is not None and hasattr(parsed, attr):
        return getattr(parsed, attr)
    for name, env, typ, default, _ in OPTIONS:
        if name == flag:
            raw = os.environ.get(env)
            return typ(raw) if raw not in (None, "") else default
    raise KeyError(flag)


class _Local:
    """Buckets of this process not yet shipped."""

    def __init__(self) -> None:
        self.buckets: dict[int, Bucket] = {}
        self.second = -1
        self.current = Bucket()
        self.targets = Targets()
        self.no_targets = True  # every success is good

    def bucket(self, now: float) -> Bucket:
        second = int(now)
        if second != self.second:
            bucket = self.buckets.get(second)
            if bucket is None:
                bucket = self.buckets[second] = Bucket()
            self.second, self.current = second, bucket
        return self.current

    def take(self, before: float) -> dict[str, Any]:
        done = [s for s in self.buckets if s < before]
        if self.second in done:
            self.second = -1
        return {str(s): self.buckets.pop(s).to_wire() for s in sorted(done)}


class _Writer:
    """Merged buckets on the master/local process, written in order of seconds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.buckets: dict[int, Bucket] = {}
        self.next_second: int | None = None
        self.late_buckets: dict[int, Bucket] = {}
        # Users running in each second, sampled then: written seconds later, the count has moved on.
        self.users: dict[int, int] = {}

    def sample_users(self, now: float, users: int | None) -> None:
        if users is not None:
            self.users.setdefault(int(now), users)

    def merge(self, data: dict[str, Any]) -> None:
        for sec, wire in data.items():
            second = int(sec)
            if self.next_second is not None and second < self.next_second:
                # Arrived after its second was written (samples of a long stream, a slow worker):
                # appended as a `late` line for that second, which readers merge into it.
                self.late_buckets.setdefault(second, Bucket()).merge(wire)
                continue
            self.buckets.setdefault(second, Bucket()).merge(wire)

    def flush(self, upto: int) -> None:
        if self.next_second is None:
            if not self.buckets:
                return
            self.next_second = min(self.buckets)
        lines = []
        while self.next_second < upto:
            bucket = self.buckets.pop(self.next_second, None) or Bucket()
            users = self.users.pop(self.next_second, None)
            lines.append(json.dumps(stats_line(self.next_second, bucket, users), separators=(",", ":")))
            self.next_second += 1
        for second in sorted(self.late_buckets):
            line = {**stats_line(second, self.late_buckets.pop(second)), "late": True}
            lines.append(json.dumps(line, separators=(",", ":")))
        for second in [s for s in self.users if s < self.next_second]:
            del self.users[second]
        if lines:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, ("\n".join(lines) + "\n").encode())
            finally:
                os.close(fd)


_local = _Local()
_writer: _Writer | None = None
_CODES = {None: "0"}


def _message(exception: Any) -> str:
    return str(exception) or type(exception).__name__


@events.request.add_listener
def _on_request(
    request_type: str = "",
    name: str = "",
    response_time: float | None = None,
    response_length: int = 0,
    exception: Any = None,
    context: Any = None,
    response: Any = None,
    url: str | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    # The hot path: one call per request in every user-running process (benchmarks/
    # bench_locust_overhead.py measures it); a plain success takes the shortest way.
    now = time.time()
    local = _local
    bucket = local.current if int(now) == local.second else local.bucket(now)
    measured: Measured | None = context.get(CONTEXT_KEY) if context else None
    status = measured.status if measured is not None else getattr(response, "status_code", None)
    code = _CODES.get(status)
    if code is None:
        code = _CODES[status] = str(status or 0)
    e2e_ms = float(response_time or 0.0)
    if measured is None and exception is None:
        bucket.add_success(e2e_ms, code, local.no_targets)
        return
    targets = local.targets
    failed = exception is not None
    good = is_good(failed, measured, targets.ttft_ms, targets.tpot_ms)
    if measured is None or failed:
        bucket.add(e2e_ms, code, now, error_key(name, _message(exception)) if failed else None, good)
        if measured is not None:
            _samples(local, measured, now)
        return
    bucket.add(
        e2e_ms,
        code,
        now,
        None,
        good,
        None,
        (),
        measured.tpot_ms,
        measured.prompt_tokens,
        measured.output_tokens,
        measured.judged,
        measured.wrong,
    )
    _samples(local, measured, now)


def _samples(local: _Local, m: Measured, now: float) -> None:
    """TTFT and ITL samples go to the second they were observed in; a failure before any token
    records how long it waited."""
    if m.ttft_ms is not None:
        local.bucket(m.first_token_at or now).add_ttft(m.ttft_ms)
    for gap, at in zip(m.itl_ms, m.itl_at or [now] * len(m.itl_ms), strict=False):
        local.bucket(at).add_itl(gap)
    if m.waited_ms is not None:
        local.bucket(now).add_waited(m.waited_ms)


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
        _writer.sample_users(time.time(), runner.user_count if runner is not None else None)
        _writer.flush(upto)


def _on_stats_message(environment: Environment, msg: Any, **_: Any) -> None:
    if _writer is not None:
        _writer.merge(msg.data)


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _writer
    runner = environment.runner
    if runner is None:
        return
    path = option(environment, "--reliability-stats-path")
    if not isinstance(runner, WorkerRunner):
        # Registered even without a stats file: workers ship regardless (they cannot know).
        runner.register_message(MSG, _on_stats_message)
        if path:
            _writer = _Writer(path)
            gevent.spawn(_flusher, environment)
    if not isinstance(runner, MasterRunner):
        gevent.spawn(_sender, environment)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    # On a worker this runs after the master's options arrived (spawn message), before any user.
    _local.targets = Targets(
        option(environment, "--reliability-ttft-target-ms"),
        option(environment, "--reliability-tpot-target-ms"),
    )


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


def _stop_workers(runner: MasterRunner) -> None:
    """Stop every worker's users and wait until each has reported ready again, before the master quits.

    A headless master ends a shape with quit(), which gives its workers 0.5 s: the requests still in
    flight there, and their final report, would be lost. stop() lets them finish (--stop-timeout) and
    report. Each stopped worker leaves the master's list and sleeps out the stop timeout before it
    reports ready (and reads its next message): quitting before then would send it no quit at all,
    leaving it to wait a minute for a heartbeat.
    """
    workers = {c.id for c in runner.clients.all}
    runner.stop()
    deadline = time.monotonic() + runner.environment.stop_timeout + 10
    while time.monotonic() < deadline and not workers <= {c.id for c in runner.clients.ready}:
        gevent.sleep(0.1)


class ReliabilityShape(LoadTestShape):
    """`shape_users` over run time, at the configured spawn rate; stops at the configured duration."""

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        duration = float(os.environ.get("RELIABILITY_DURATION_S", 60.0))
        stop_path = os.environ.get("RELIABILITY_STOP_PATH")
        if t >= duration or (stop_path and os.path.exists(stop_path)):
            if isinstance(self.runner, MasterRunner):
                _stop_workers(self.runner)
            return None
        users = int(float(os.environ.get("RELIABILITY_USERS", 10)))
        rate = float(os.environ.get("RELIABILITY_SPAWN_RATE", 10.0))
        return shape_users(os.environ.get("RELIABILITY_SHAPE", "steady"), t, duration, users), rate
