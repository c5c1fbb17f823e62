"""`LoadRun`: Locust headless in its own process group(s) - local, or a master with N workers on loopback
and/or workers joining from elsewhere (`worker_command`)."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from reliability.errors import HarnessError, InputError
from reliability.load.target import check_target
from reliability.load.workload import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS, dist_json, read_golden
from reliability.tools import free_port, parent_death_signal

Shape = Literal["steady", "ramp", "spike"]
SHAPES = ("steady", "ramp", "spike")
UserKind = Literal["openai-chat", "openai-completions", "oip-predict", "locustfile"]
USERS = ("openai-chat", "openai-completions", "oip-predict", "locustfile")
_HERE = Path(__file__).resolve().parent
LLM_LOCUSTFILE = _HERE / "llm_locustfile.py"
# A plain POST /v1/predict user (`user=None`), for `stub_server`: Locust measured without the lab.
BUILTIN_LOCUSTFILE = _HERE / "inference_locustfile.py"
SHAPE_LOCUSTFILE = _HERE / "shape_locustfile.py"
USER_CLASSES = {
    "openai-chat": "OpenAIChatUser",
    "openai-completions": "OpenAICompletionsUser",
    "oip-predict": "OIPPredictUser",
}
STOP_GRACE_S = 10.0
# Users finish the request in flight when the run ends (else it is lost to the stats), for so long.
STOP_TIMEOUT_S = 5
EXPECT_WORKERS_MAX_WAIT_S = 120
_ANY_HOST = ("0.0.0.0", "::", "*", "")


def locust_files(user: UserKind | None, locustfile: Path | str | None = None) -> str:
    """The `-f` argument of Locust for a kind of user."""
    if user == "locustfile":
        if locustfile is None:
            raise InputError("load.locustfile", "user 'locustfile' needs a locustfile")
        return f"{SHAPE_LOCUSTFILE},{Path(locustfile).resolve()}"
    if user is None:
        return str(BUILTIN_LOCUSTFILE)
    return f"{SHAPE_LOCUSTFILE},{LLM_LOCUSTFILE}"


def worker_command(
    master_host: str,
    master_port: int,
    user: UserKind | None = "openai-chat",
    locustfile: Path | str | None = None,
    python: str = sys.executable,
) -> list[str]:
    """A Locust worker for a master started by `LoadRun` (here or on another machine).

    It needs no environment: the master sends its options (model, lengths, golden file path,
    targets...) to each worker with the spawn message. A golden file path must exist on the worker's
    machine too. Only the master writes `load_stats.jsonl`.
    """
    files = locust_files(user, locustfile)
    return [python, "-m", "locust", "-f", files, "--loglevel", "WARNING", "--worker",
            "--master-host", master_host, "--master-port", str(int(master_port))]  # fmt: skip


def _opt_env(name: str, value: object) -> dict[str, str]:
    return {} if value is None else {name: str(value)}


class LoadRun:
    """Locust against `target_url` for `duration_s`, stats to `out_dir/load_stats.jsonl`.

    Never imports locust here (gevent monkey-patching); Locust's own log goes to
    `out_dir/locust*.log`. Exit codes of Locust are not a verdict: the gate is the analysis.
    `user=None` without a locustfile: a plain POST /v1/predict user, for `stub_server`.
    """

    def __init__(
        self,
        target_url: str,
        users: int = 10,
        spawn_rate: float = 10.0,
        shape: Shape = "steady",
        duration_s: float = 60.0,
        out_dir: Path | str = ".",
        locustfile: Path | str | None = None,
        workers: int = 0,
        allowed_hosts: Iterable[str] = (),
        user_rps: float = 10.0,
        extra_env: dict[str, str] | None = None,
        *,
        user: UserKind | None = None,
        model: str | None = None,
        prompt_tokens: Any = None,
        output_tokens: Any = None,
        golden_path: Path | str | None = None,
        judge_share: float = 0.1,
        ttft_target_ms: float | None = None,
        tpot_target_ms: float | None = None,
        request_timeout_s: float | None = None,
        seed: int = 0,
        master_bind_host: str = "127.0.0.1",
        master_bind_port: int | None = None,
        expect_workers: int = 0,
    ) -> None:
        self.target_url = check_target(target_url, allowed_hosts)
        if shape not in SHAPES:
            raise InputError("load.shape", f"unknown shape {shape!r} (use one of {', '.join(SHAPES)})")
        if users < 1 or spawn_rate <= 0 or duration_s <= 0 or workers < 0 or expect_workers < 0:
            raise InputError(
                "load",
                "users >= 1, spawn_rate > 0, duration_s > 0, workers >= 0 and expect_workers >= 0 required",
            )
        if locustfile is not None and not Path(locustfile).is_file():
            raise InputError("load.locustfile", f"file not found: {locustfile}")
        if user is None and locustfile is not None:
            user = "locustfile"
        if user is not None and user not in USERS:
            raise InputError("load.user", f"unknown user {user!r} (use one of {', '.join(USERS)})")
        if (user == "locustfile") != (locustfile is not None):
            raise InputError("load.locustfile", "a locustfile goes with user 'locustfile' (and only with it)")
        if user == "oip-predict" and not model:
            raise InputError("load.model", "oip-predict needs the model name (POST /v2/models/{name}/infer)")
        if user_rps < 0 or not 0.0 <= judge_share <= 1.0:
            raise InputError("load", "user_rps >= 0 and judge_share in [0, 1] required")
        for where, target in (
            ("load.ttft_target_ms", ttft_target_ms),
            ("load.tpot_target_ms", tpot_target_ms),
        ):
            if target is not None and not 0 < target < math.inf:
                raise InputError(where, "a latency target is a positive number of ms")
        if request_timeout_s is not None and not 0 < request_timeout_s < math.inf:
            raise InputError("load.request_timeout_s", "a positive number of seconds")
        if master_bind_port is not None and not 0 < master_bind_port < 65536:
            raise InputError("load.master_bind_port", f"not a port: {master_bind_port}")
        self.prompt_tokens = dist_json(
            DEFAULT_PROMPT_TOKENS if prompt_tokens is None else prompt_tokens, "load.prompt_tokens"
        )
        self.output_tokens = dist_json(
            DEFAULT_OUTPUT_TOKENS if output_tokens is None else output_tokens, "load.output_tokens"
        )
        self.golden_path = Path(golden_path).resolve() if golden_path is not None else None
        if self.golden_path is not None:
            read_golden(self.golden_path)  # bad cases are the user's input error, before anything starts
        self.users, self.spawn_rate, self.shape = users, spawn_rate, shape
        self.duration_s, self.workers, self.user_rps = duration_s, workers, user_rps
        self.out_dir = Path(out_dir)
        self.locustfile = Path(locustfile).resolve() if locustfile else None
        self.extra_env = dict(extra_env or {})
        self.user: UserKind | None = user
        self.model, self.judge_share, self.seed = model, judge_share, seed
        self.ttft_target_ms, self.tpot_target_ms = ttft_target_ms, tpot_target_ms
        self.request_timeout_s = request_timeout_s
        self.master_bind_host, self.master_bind_port = master_bind_host, master_bind_port
        self.expect_workers = expect_workers
        self.master_port: int | None = None
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def stats_path(self) -> Path:
        return self.out_dir / "load_stats.jsonl"

    @property
    def stop_path(self) -> Path:
        """Created by `stop()`: the shape ends the run as at its duration (users finish, stats flush)."""
        return self.out_dir / "locust.stop"

    @property
    def distributed(self) -> bool:
        return bool(self.workers or self.expect_workers)

    def _files(self) -> str:
        return locust_files(self.user, self.locustfile)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "RELIABILITY_STATS_PATH": str(self.stats_path.resolve()),
                "RELIABILITY_STOP_PATH": str(self.stop_path.resolve()),
                "RELIABILITY_USERS": str(self.users),
                "RELIABILITY_SPAWN_RATE": str(self.spawn_rate),
                "RELIABILITY_SHAPE": self.shape,
                "RELIABILITY_DURATION_S": str(self.duration_s),
                "RELIABILITY_USER_RPS": str(self.user_rps),
                "RELIABILITY_DISTRIBUTED": "1" if self.distributed else "0",
                "RELIABILITY_PROMPT_TOKENS": self.prompt_tokens,
                "RELIABILITY_OUTPUT_TOKENS": self.output_tokens,
                "RELIABILITY_JUDGE_SHARE": str(self.judge_share),
                "RELIABILITY_SEED": str(self.seed),
                **_opt_env("RELIABILITY_MODEL", self.model),
                **_opt_env("RELIABILITY_GOLDEN_PATH", self.golden_path),
                **_opt_env("RELIABILITY_TTFT_TARGET_MS", self.ttft_target_ms),
                **_opt_env("RELIABILITY_TPOT_TARGET_MS", self.tpot_target_ms),
                **_opt_env("RELIABILITY_REQUEST_TIMEOUT_S", self.request_timeout_s),
                **self.extra_env,
            }
        )
        return env

    def commands(self, master_port: int | None = None) -> list[list[str]]:
        base = [sys.executable, "-m", "locust", "-f", self._files(), "--loglevel", "WARNING"]
        classes = [USER_CLASSES[self.user]] if self.user in USER_CLASSES else []
        # Locust's own final summary (locust.stderr) is an independent count of the requests; no
        # --csv: Locust writes its CSV before the requests in flight at the stop have ended.
        common = [*classes, "--host", self.target_url, "--exit-code-on-error", "0",
                  "--stop-timeout", f"{STOP_TIMEOUT_S}s", "--headless", "--only-summary"]  # fmt: skip
        if not self.distributed:
            return [[*base, *common, "--logfile", self._log("locust")]]
        assert master_port is not None
        master = [
            *base,
            *common,
            "--master",
            "--master-bind-host",
            self.master_bind_host or "*",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(self.workers + self.expect_workers),
            "--expect-workers-max-wait",
            str(EXPECT_WORKERS_MAX_WAIT_S),
            "--logfile",
            self._log("locust-master"),
        ]
        connect = "127.0.0.1" if self.master_bind_host in _ANY_HOST else self.master_bind_host
        worker = worker_command(connect, master_port, self.user, self.locustfile)
        return [master] + [
            [*worker, "--logfile", self._log(f"locust-worker{i}")] for i in range(self.workers)
        ]

    def _log(self, name: str) -> str:
        return str((self.out_dir / f"{name}.log").resolve())

    def start(self) -> LoadRun:
        if self.procs:
            raise HarnessError("load run already started")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.stop_path.unlink(missing_ok=True)  # an earlier run's
        env = self._env()
        if self.distributed:
            self.master_port = self.master_bind_port or free_port()
        cmds = self.commands(self.master_port)
        stderr = open(self.out_dir / "locust.stderr", "ab")  # noqa: SIM115 - handed to the children
        try:
            for cmd in cmds:
                # Own session = own process group, so stop() reaches gevent children too.
                self.procs.append(
                    subprocess.Popen(
                        cmd,
                        env=env,
                        start_new_session=True,
                        stdout=subprocess.DEVNULL,
                        stderr=stderr,
                        preexec_fn=parent_death_signal(signal.SIGTERM),  # no load outliving the harness
                    )
                )
        except OSError as exc:
            self.stop()
            raise HarnessError(f"cannot start locust: {exc}") from exc
        finally:
            stderr.close()
        return self

    def poll(self) -> int | None:
        """The master's (or local runner's) exit code; None while running."""
        return self.procs[0].poll() if self.procs else None

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the run to end by itself (the shape stops at duration_s); None on timeout."""
        if not self.procs:
            return None
        try:
            code = self.procs[0].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        for p in self.procs[1:]:
            try:
                p.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
        return code

    def stop(self) -> None:
        """The stop file (the shape ends the run as at its duration), then SIGINT to the master (or
        local runner), then SIGTERM and SIGKILL to every process group after grace periods;
        idempotent.

        The stop file first: a KeyboardInterrupt lands in whichever greenlet runs, possibly between
        our request listener and Locust's, so the two counts would differ by a request. SIGINT, not
        SIGTERM, after it: in headless mode with a shape class, Locust 2.47 blocks on the shape
        before installing its SIGTERM handler, so SIGTERM kills it without flushing its stats, while
        SIGINT (KeyboardInterrupt) runs its normal shutdown, workers included.
        """
        if self.procs and self.procs[0].poll() is None:
            with contextlib.suppress(OSError):
                self.stop_path.touch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                # the shape's next tick (1 s) + users finishing their request (--stop-timeout)
                self.procs[0].wait(timeout=STOP_TIMEOUT_S + 3.0)
        if self.procs and self.procs[0].poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.procs[0].pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        for p in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for p in self.procs:
                # Also for a leader that exited: stray gevent children may remain in its group.
                _signal_group(p, sig)
            for p in self.procs:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(timeout=2.0)

    def __enter__(self) -> LoadRun:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(p: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, sig)
