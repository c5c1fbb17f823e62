"""Load generation: Locust in its own process, per-second stats, the RPO canary writer.

Never `import locust` in the harness or test process (gevent monkey-patching): the modules
`plugin`, `llm_locustfile`, `inference_locustfile` and `shape_locustfile` run only inside Locust.

Public API:
- `LoadRun(target_url, users=10, spawn_rate=10.0, shape="steady"|"ramp"|"spike", duration_s=60.0,
  out_dir=".", locustfile=None, workers=0, allowed_hosts=(), user_rps=10.0, extra_env=None, *,
  user=None, model=None, prompt_tokens=None, output_tokens=None, golden_path=None, judge_share=0.1,
  ttft_target_ms=None, tpot_target_ms=None, request_timeout_s=None, seed=0,
  master_bind_host="127.0.0.1", master_bind_port=None, expect_workers=0)`:
  `.start()`, `.stop()` (SIGINT, then SIGTERM and SIGKILL to each process group; idempotent),
  `.wait(timeout)` -> master exit code or None, `.poll()`, context manager (start/stop),
  `.stats_path`, `.master_port` (distributed, once started).
  `user`: "openai-chat" | "openai-completions" | "oip-predict" (built-in users, `llm_locustfile`) or
  "locustfile" (the user's own `locustfile`, with our shape and stats writer attached). `user=None`
  without a locustfile: a plain POST /v1/predict user for `stub_server` (the load generator's tests).
  `user_rps` per user, 0 = closed loop (next request as soon as the last ended). Lengths: see
  `reliability.load.workload`; measurements and goodput: `reliability.load.measure`.
  `workers=N`: Locust master + N workers on loopback; `expect_workers=M`: the master also waits for
  M workers started elsewhere with `worker_command(host, LoadRun.master_port)`, listening on
  `master_bind_host:master_bind_port`.
  Writes `out_dir/load_stats.jsonl` v2 (docs/twin.md section 3): one line per wall second of
  completion, merged across workers, also seconds with no completed request.
- `worker_command(master_host, master_port, user="openai-chat", locustfile=None) -> argv`.
- `CanaryWriter(out_path, state_file=None, store_url=None, interval_s=0.05, ...)`: RPO canary thread,
  context manager; writes `canary_writes.jsonl` (write records + a final survivors record). Store
  contract and URL discovery: see `reliability.load.canary`. No store URL -> does nothing.
- `read_load_stats(path) -> DataFrame` (v1 and v2 lines; histograms as dicts),
  `read_jsonl(path, tail_bytes=None) -> list[dict]` (torn lines skipped): the one JSONL reader.
- Histograms: `reliability.load.buckets` (`bucket_ms`, `merge`, `percentile`, `count_at_or_below`).
- `check_target(url, allowed_hosts=(), allow_any=False) -> url`.
- `python -m reliability.load.stub_server PORT`: a stand-in inference API with /_fault and /_heal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Lazy: the Locust side imports `reliability.load.plugin` & co., and every import of a submodule runs
# this file first; pandas (the reader) and pydantic would add seconds to Locust's start-up.
_EXPORTS = {
    "bucket_ms": "buckets",
    "count_at_or_below": "buckets",
    "merge": "buckets",
    "merge_all": "buckets",
    "percentile": "buckets",
    "CanaryWriter": "canary",
    "HIST_COLUMNS": "reader",
    "LOAD_COLUMNS": "reader",
    "read_jsonl": "reader",
    "read_load_stats": "reader",
    "BUILTIN_LOCUSTFILE": "run",
    "LLM_LOCUSTFILE": "run",
    "USERS": "run",
    "LoadRun": "run",
    "UserKind": "run",
    "worker_command": "run",
    "check_target": "target",
}
__all__ = [
    "BUILTIN_LOCUSTFILE",
    "HIST_COLUMNS",
    "LLM_LOCUSTFILE",
    "LOAD_COLUMNS",
    "USERS",
    "CanaryWriter",
    "LoadRun",
    "UserKind",
    "bucket_ms",
    "check_target",
    "count_at_or_below",
    "merge",
    "merge_all",
    "percentile",
    "read_jsonl",
    "read_load_stats",
    "worker_command",
]

if TYPE_CHECKING:
    from reliability.load.buckets import bucket_ms, count_at_or_below, merge, merge_all, percentile
    from reliability.load.canary import CanaryWriter
    from reliability.load.reader import HIST_COLUMNS, LOAD_COLUMNS, read_jsonl, read_load_stats
    from reliability.load.run import (
        BUILTIN_LOCUSTFILE,
        LLM_LOCUSTFILE,
        USERS,
        LoadRun,
        UserKind,
        worker_command,
    )
    from reliability.load.target import check_target


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reliability.load' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"reliability.load.{module}"), name)
    globals()[name] = value
    return value
