"""Load generation: Locust in its own process, per-second stats, the RPO canary writer.

Never `import locust` in the harness or test process (gevent monkey-patching): the modules
`plugin`, `inference_locustfile` and `shape_locustfile` run only inside Locust.

Public API:
- `LoadRun(target_url, users=10, spawn_rate=10.0, shape="steady"|"ramp"|"spike", duration_s=60.0,
  out_dir=".", locustfile=None, workers=0, allowed_hosts=(), user_rps=10.0, extra_env=None)`:
  `.start()`, `.stop()` (SIGTERM then SIGKILL to each process group; idempotent), `.wait(timeout)`
  -> master exit code or None, `.poll()`, context manager (start/stop), `.stats_path`.
  Writes `out_dir/load_stats.jsonl`: one line per wall second (also seconds with no completed
  request): `ts, requests, failures, rps, p50_ms, p95_ms, p99_ms, codes {status: count}, users`.
  `workers=N` runs Locust's master + N workers on 127.0.0.1. `locustfile` = the user's own file;
  our shape and stats writer are attached to it. `target_url` must be loopback or in
  `allowed_hosts` (InputError otherwise). The built-in user POSTs /v1/predict {"inputs": [[f,...]]}
  at `user_rps` per user; non-2xx and network errors count as failures.
- `CanaryWriter(out_path, state_file=None, store_url=None, interval_s=0.05, ...)`: RPO canary thread,
  context manager; writes `canary_writes.jsonl` (write records + a final survivors record). Store
  contract and URL discovery: see `reliability.load.canary`. No store URL -> does nothing.
- `read_load_stats(path) -> DataFrame`, `read_jsonl(path) -> list[dict]` (torn lines skipped).
- `check_target(url, allowed_hosts=(), allow_any=False) -> url`.
- `python -m reliability.load.stub_server PORT`: a stand-in inference API with /_fault and /_heal.
"""

from reliability.load.canary import CanaryWriter
from reliability.load.reader import LOAD_COLUMNS, read_jsonl, read_load_stats
from reliability.load.run import BUILTIN_LOCUSTFILE, LoadRun
from reliability.load.target import check_target

__all__ = [
    "BUILTIN_LOCUSTFILE",
    "LOAD_COLUMNS",
    "CanaryWriter",
    "LoadRun",
    "check_target",
    "read_jsonl",
    "read_load_stats",
]
