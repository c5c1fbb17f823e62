"""`Lab`: start the embedded lab as a supervised set of processes, and stop it - also from a state
file left by a lab whose supervising process was killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from reliability.errors import HarnessError
from reliability.files import find_below, write_json_atomic
from reliability.lab.config import LabConfig
from reliability.lab.processes import kill_pids, process_matches
from reliability.tools import parent_death_signal

REPO_ALERTS = Path(__file__).resolve().parents[2] / "alerts"


def default_rule_files() -> list[Path]:
    """The platform alert rules shipped beside the package (GPUNodeDown, RegionUnavailable, ...)."""
    return sorted(REPO_ALERTS.glob("*.rules.yaml")) if REPO_ALERTS.is_dir() else []


def read_state(state_file: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(Path(state_file).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


class Lab:
    """Context manager: `with Lab(config, workdir) as lab: requests.post(lab.endpoint + "/v1/predict")`."""

    def __init__(
        self,
        config: LabConfig | None = None,
        workdir: Path | str = ".lab",
        isolation: str = "auto",
        slo_files: list[Path] | None = None,
        rule_files: list[Path] | None = None,
        start_timeout_s: float = 90.0,
        keep_running: bool = False,
    ) -> None:
        self.config = config or LabConfig()
        self.workdir = Path(workdir).resolve()
        self.requested_isolation = isolation
        self.slo_files = [Path(p).resolve() for p in slo_files or []]
        self.rule_files = [
            Path(p).resolve() for p in (default_rule_files() if rule_files is None else rule_files)
        ]
        self.start_timeout_s = start_timeout_s
        self.keep_running = keep_running  # `lab up --detach`: the supervisor must outlive this process
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: dict[str, Any] = {}

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @property
    def events_path(self) -> Path:
        return self.workdir / "events.jsonl"

    @property
    def endpoint(self) -> str:
        return str(self.state["endpoint"])

    @property
    def prometheus_url(self) -> str:
        return str(self.state["prometheus_url"])

    @property
    def isolation(self) -> str:
        return str(self.state.get("isolation", self.requested_isolation))

    def start(self) -> Lab:
        existing = read_state(self.state_file)
        if existing and existing.get("phase") not in (None, "down"):
            sup = (existing.get("supervisor") or {}).get("pid")
            if sup and process_matches(int(sup), "reliability.lab.supervisor"):
                raise HarnessError(f"a lab is already running in {self.workdir} (run `reliability lab down`)")
            down_from_state(self.state_file)  # a crashed lab's leftovers
        self.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        write_json_atomic(
            self.workdir / "launch.json",
            {
                "config": self.config.model_dump(mode="json"),
                "isolation": self.requested_isolation,
                "slo_files": [str(p) for p in self.slo_files],
                "rule_files": [str(p) for p in self.rule_files],
            },
        )
        log = open(self.workdir / "supervisor.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reliability.lab.supervisor", str(self.workdir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=self.keep_running,
            preexec_fn=None if self.keep_running else parent_death_signal(signal.SIGKILL),
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            state = read_state(self.state_file) or {}
            if state.get("phase") == "ready":
                self.state = state
                return self
            if self.proc.poll() is not None:
                tail = (self.workdir / "supervisor.log").read_text(errors="replace")[-1500:]
                raise HarnessError(
                    f"the lab did not start (supervisor exited {self.proc.returncode}):\n{tail}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(
                    f"the lab was not ready within {self.start_timeout_s:.0f}s; see {self.workdir}"
                )
            time.sleep(0.05)

    def refresh(self) -> dict[str, Any]:
        self.state = read_state(self.state_file) or self.state
        return self.state

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        down_from_state(self.state_file)

    def __enter__(self) -> Lab:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def down_from_state(state_file: Path | str) -> list[str]:
    """Stop whatever a lab's state file records: the supervisor first (it cleans up after itself),
    then any process, namespace or route still left. Returns what had to be removed by force."""
    state_file = Path(state_file)
    state = read_state(state_file)
    if not state:
        return []
    removed: list[str] = []
    sup = state.get("supervisor") or {}
    if sup.get("pid") and kill_pids(
        [(int(sup["pid"]), sup.get("marker", "reliability.lab.supervisor"))], 15.0
    ):
        state = read_state(state_file) or state
    leftovers = [
        (int(c["pid"]), str(c.get("marker") or c["kind"]))
        for c in state.get("components", [])
        if c.get("pid")
    ]
    prom = state.get("prometheus") or {}
    if prom.get("pid"):
        leftovers.append((int(prom["pid"]), str(prom.get("marker") or "prometheus")))
    removed += [f"pid {pid}" for pid in kill_pids(leftovers)]
    fabric = state.get("fabric") or {}
    if fabric.get("mode") == "netns":
        from reliability.lab.netns import NetnsFabric, list_namespaces

        with contextlib.suppress(Exception):
            net = NetnsFabric.from_state(fabric)
            existed = [ns for ns in list_namespaces() if ns in {net.namespace(r) for r in net.regions}]
            net.teardown()  # also routes and links when the namespaces are already gone
            removed += [f"netns {ns}" for ns in existed]
    if state.get("phase") != "down":
        state.update(phase="down", partitioned=[])
        for c in state.get("components", []):
            c["pid"] = None
        write_json_atomic(state_file, state)
    return removed


def supervisor_alive(state: dict[str, Any]) -> bool:
    sup = state.get("supervisor") or {}
    return bool(sup.get("pid")) and process_matches(
        int(sup["pid"]), sup.get("marker", "reliability.lab.supervisor")
    )


def crashed(state_file: Path | str) -> bool:
    """A lab that is not down but whose supervisor is gone (killed with the harness, or on its own):
    nothing runs its cleanup, so namespaces, routes or processes may be left."""
    state = read_state(Path(state_file))
    if not state:
        return False
    return state.get("phase") != "down" and not supervisor_alive(state)


def reap_crashed(path: Path | str) -> dict[Path, list[str]]:
    """`down_from_state` for every crashed lab whose state file is `path`, or is in `path` or up to
    two levels below it (a lab dir, a run dir, a directory of runs). Running labs are left alone."""
    return {p: down_from_state(p) for p in find_below(Path(path), "state.json") if crashed(p)}


def lab_dir() -> Path:
    return Path(os.environ.get("RELIABILITY_LAB_DIR") or ".lab")
