"""Starting and stopping the lab's component processes, and finding them again from a state file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability.tools import parent_death_signal


@dataclass
class Component:
    name: str  # unique: "node/us-east-1", "region-gateway/us-east", "store/eu-west", ...
    kind: str  # node | region-gateway | global-gateway | store | proxy | prometheus | supervisor
    module: str
    spec: dict[str, Any]
    region: str | None = None
    host: str = "127.0.0.1"
    port: int = 0
    url: str = ""  # how the supervisor reaches it (possibly through the fabric)
    argv_prefix: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    generation: int = 0

    @property
    def marker(self) -> str:
        """Part of the command line that identifies our process (never kill a recycled pid)."""
        return self.module

    def argv(self) -> list[str]:
        import json

        return [*self.argv_prefix, sys.executable, "-m", self.module, json.dumps(self.spec)]

    def start(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        log = open(log_dir / f"{self.name.replace('/', '_')}.log", "ab")  # noqa: SIM115 - child owns it
        self.proc = subprocess.Popen(
            self.argv(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=parent_death_signal(signal.SIGKILL),
            close_fds=True,
        )
        log.close()
        self.pid = self.proc.pid
        self.generation += 1

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def to_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "region": self.region,
            "pid": self.pid,
            "host": self.host,
            "port": self.port,
            "url": self.url,
            "marker": self.marker,
            "generation": self.generation,
        }


def process_matches(pid: int, marker: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return marker in cmdline


def kill_pids(entries: list[tuple[int, str]], grace_s: float = 3.0) -> list[int]:
    """SIGTERM then SIGKILL every (pid, marker) whose command line still matches; returns those signalled."""
    mine = [pid for pid, marker in entries if pid and process_matches(pid, marker)]
    for pid in mine:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for pid in mine:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists() and not _zombie(pid):
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists() and not _zombie(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return mine


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
