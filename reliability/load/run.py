"""`LoadRun`: Locust headless in its own process group(s) - local, or master + N workers on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Literal

from reliability.errors import HarnessError, InputError
from reliability.load.target import check_target
from reliability.tools import free_port, parent_death_signal

Shape = Literal["steady", "ramp", "spike"]
SHAPES = ("steady", "ramp", "spike")
_HERE = Path(__file__).resolve().parent
BUILTIN_LOCUSTFILE = _HERE / "inference_locustfile.py"
SHAPE_LOCUSTFILE = _HERE / "shape_locustfile.py"
STOP_GRACE_S = 10.0


class LoadRun:
    """Locust against `target_url` for `duration_s`, stats to `out_dir/load_stats.jsonl`.

    Never imports locust here (gevent monkey-patching); Locust's own log goes to
    `out_dir/locust*.log`. Exit codes of Locust are not a verdict: the gate is the analysis.
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
    ) -> None:
        self.target_url = check_target(target_url, allowed_hosts)
        if shape not in SHAPES:
            raise InputError("load.shape", f"unknown shape {shape!r} (use one of {', '.join(SHAPES)})")
        if users < 1 or spawn_rate <= 0 or duration_s <= 0 or workers < 0:
            raise InputError("load", "users >= 1, spawn_rate > 0, duration_s > 0 and workers >= 0 required")
        if locustfile is not None and not Path(locustfile).is_file():
            raise InputError("load.locustfile", f"file not found: {locustfile}")
        self.users, self.spawn_rate, self.shape = users, spawn_rate, shape
        self.duration_s, self.workers, self.user_rps = duration_s, workers, user_rps
        self.out_dir = Path(out_dir)
        self.locustfile = Path(locustfile).resolve() if locustfile else None
        self.extra_env = dict(extra_env or {})
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def stats_path(self) -> Path:
        return self.out_dir / "load_stats.jsonl"

    def _files(self) -> str:
        if self.locustfile is None:
            return str(BUILTIN_LOCUSTFILE)
        return f"{SHAPE_LOCUSTFILE},{self.locustfile}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "RELIABILITY_STATS_PATH": str(self.stats_path.resolve()),
                "RELIABILITY_USERS": str(self.users),
                "RELIABILITY_SPAWN_RATE": str(self.spawn_rate),
                "RELIABILITY_SHAPE": self.shape,
                "RELIABILITY_DURATION_S": str(self.duration_s),
                "RELIABILITY_USER_RPS": str(self.user_rps),
                "RELIABILITY_DISTRIBUTED": "1" if self.workers else "0",
                **self.extra_env,
            }
        )
        return env

    def commands(self, master_port: int | None = None) -> list[list[str]]:
        base = [sys.executable, "-m", "locust", "-f", self._files(), "--loglevel", "WARNING"]
        common = ["--host", self.target_url, "--exit-code-on-error", "0"]
        if not self.workers:
            return [[*base, *common, "--headless", "--only-summary", "--logfile", self._log("locust")]]
        assert master_port is not None
        master = [
            *base,
            *common,
            "--headless",
            "--only-summary",
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            str(self.workers),
            "--logfile",
            self._log("locust-master"),
        ]
        worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
        return [master] + [
            [*worker, "--logfile", self._log(f"locust-worker{i}")] for i in range(self.workers)
        ]

    def _log(self, name: str) -> str:
        return str((self.out_dir / f"{name}.log").resolve())

    def start(self) -> LoadRun:
        if self.procs:
            raise HarnessError("load run already started")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        env = self._env()
        cmds = self.commands(free_port() if self.workers else None)
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
        """SIGINT to the master (or local runner), then SIGTERM and SIGKILL to every process group
        after a grace period; idempotent.

        SIGINT, not SIGTERM: in headless mode with a shape class, Locust 2.47 blocks on the shape
        before installing its SIGTERM handler, so SIGTERM kills it without flushing its stats,
        while SIGINT (KeyboardInterrupt) runs its normal shutdown, workers included.
        """
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
