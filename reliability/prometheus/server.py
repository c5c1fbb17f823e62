"""A real Prometheus process on loopback, owned by the harness (lab, tests, game days)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import yaml

from reliability.errors import HarnessError
from reliability.files import write_atomic
from reliability.tools import free_port, parent_death_signal, require_tool


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    labels: dict[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"


def render_config(
    targets: list[ScrapeTarget],
    rule_files: list[Path],
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> dict[str, Any]:
    """prometheus.yml as a dict: one scrape job per job name, static targets with labels."""
    jobs: dict[tuple[str, str], list[ScrapeTarget]] = {}
    for t in targets:
        jobs.setdefault((t.job, t.metrics_path), []).append(t)
    return {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in ts],
            }
            for (job, path), ts in jobs.items()
        ],
    }


class LocalPrometheus:
    """Start Prometheus with a generated config on 127.0.0.1 and a free port.

    Usable as a context manager; `stop()` is idempotent. Lifecycle API is enabled so
    callers can `reload()` after rewriting targets or rules.
    """

    def __init__(
        self,
        workdir: Path,
        targets: list[ScrapeTarget] | None = None,
        rule_files: list[Path] | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        port: int | None = None,
        retention: str = "2d",
        extra_args: list[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.targets = list(targets or [])
        self.rule_files = [Path(p) for p in rule_files or []]
        self.scrape_interval = scrape_interval
        self.evaluation_interval = evaluation_interval
        self.port = port or free_port()
        self.retention = retention
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    def write_config(self) -> None:
        cfg = render_config(self.targets, self.rule_files, self.scrape_interval, self.evaluation_interval)
        write_atomic(self.config_path, yaml.safe_dump(cfg, sort_keys=False))

    def start(self, timeout: float = 30.0) -> LocalPrometheus:
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the process without waiting for it (the lab starts everything at once)."""
        binary = require_tool("prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        log = open(self.workdir / "prometheus.log", "ab")  # noqa: SIM115 - owned by the child
        cmd = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            *self.extra_args,
        ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # Own session (a terminal's Ctrl-C is for its owner to handle), but never an orphan: a
            # SIGKILLed lab supervisor or test runner takes its Prometheus with it.
            preexec_fn=parent_death_signal(signal.SIGTERM),
        )
        log.close()

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout: float = 30.0) -> LocalPrometheus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                tail = (self.workdir / "prometheus.log").read_text(errors="replace")[-2000:]
                code = None if self.proc is None else self.proc.returncode
                raise HarnessError(f"prometheus exited with {code}: {tail}")
            if self.ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise HarnessError(f"prometheus did not become ready within {timeout}s")

    def reload(self) -> None:
        self.write_config()
        r = requests.post(f"{self.url}/-/reload", timeout=10)
        if r.status_code != 200:
            raise HarnessError(f"prometheus reload failed: {r.status_code} {r.text.strip()}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def __enter__(self) -> LocalPrometheus:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
