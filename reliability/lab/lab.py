"""`Lab`: start the embedded lab as a supervised set of processes, and stop it - also from a state
file left by a lab whose supervising process was killed.

One lab per directory: `start()` takes an exclusive lock on `<workdir>/lab.lock` and hands it to
the supervisor, which holds it for the lab's whole life (the kernel releases it when the
supervisor dies, whatever kills it). Two `lab up` started together: one gets the lock, the other
is refused before it touches anything.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from reliability.errors import HarnessError
from reliability.files import find_below, write_json_atomic
from reliability.lab.config import LabConfig
from reliability.lab.processes import kill_pids, process_matches
from reliability.lab.state import LabState, read_state, write_state

REPO_ALERTS = Path(__file__).resolve().parents[2] / "alerts"
LOCK_NAME = "lab.lock"
SUPERVISOR = "reliability.lab.supervisor"


def default_rule_files() -> list[Path]:
    """The platform alert rules shipped beside the package (GPUNodeDown, RegionUnavailable, ...)."""
    return sorted(REPO_ALERTS.glob("*.rules.yaml")) if REPO_ALERTS.is_dir() else []


def lock_lab_dir(workdir: Path) -> int:
    """An exclusive lock on the lab directory, as an open descriptor; HarnessError when another lab
    holds it."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd = os.open(workdir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise HarnessError(f"a lab is already running in {workdir} (run `reliability lab down`)") from None
    return fd


class Lab:
    """Context manager: `with Lab(config, workdir) as lab: requests.post(lab.endpoint + ...)`."""

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
        self.state: LabState | None = None

    @property
    def state_file(self) -> Path:
        return self.workdir / "state.json"

    @property
    def events_path(self) -> Path:
        return self.workdir / "events.jsonl"

    def _ready_state(self) -> LabState:
        if self.state is None:
            raise HarnessError("the lab is not running")
        return self.state

    @property
    def endpoint(self) -> str:
        return self._ready_state().endpoint

    @property
    def prometheus_url(self) -> str:
        return str(self._ready_state().prometheus_url)

    @property
    def golden_path(self) -> Path | None:
        golden = self._ready_state().golden_path
        return Path(golden) if golden else None

    @property
    def isolation(self) -> str:
        return self.state.isolation if self.state is not None else self.requested_isolation

    def start(self) -> Lab:
        lock = lock_lab_dir(self.workdir)
        try:
            existing = read_state(self.state_file)
            if existing is not None and existing.phase != "down":
                down_from_state(self.state_file)  # a crashed lab's leftovers (no supervisor holds the lock)
            with contextlib.suppress(FileNotFoundError):
                self.state_file.unlink()
            write_json_atomic(
                self.workdir / "launch.json",
                {
                    "lab_id": secrets.token_hex(4),
                    "config": self.config.model_dump(mode="json"),
                    "isolation": self.requested_isolation,
                    "slo_files": [str(p) for p in self.slo_files],
                    "rule_files": [str(p) for p in self.rule_files],
                },
            )
            env = {**os.environ, "RELIABILITY_LAB_LOCK_FD": str(lock)}
            if not self.keep_running:
                env["RELIABILITY_LAB_STOP_WHEN_ORPHANED"] = "1"
            log = open(self.workdir / "supervisor.log", "ab")  # noqa: SIM115 - the child owns it
            self.proc = subprocess.Popen(
                [sys.executable, "-m", SUPERVISOR, str(self.workdir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own session always: a terminal's Ctrl-C is for the harness, which stops the lab
                # in order once its rollbacks are done (the lab tearing itself down under a rollback
                # would fail it); an orphaned lab stops by itself.
                start_new_session=True,
                pass_fds=(lock,),
                env=env,
                # No PR_SET_PDEATHSIG: an orphaned supervisor tears its lab down once, by itself
                # (RELIABILITY_LAB_STOP_WHEN_ORPHANED); a signal would kill it before it could.
            )
            log.close()
        finally:
            os.close(lock)  # the supervisor holds its own copy of the lock from here on
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            state = read_state(self.state_file)
            if state is not None and state.phase == "ready":
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

    def refresh(self) -> LabState | None:
        self.state = read_state(self.state_file) or self.state
        return self.state

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
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
    then any process, namespace or route still left. Returns what had to be removed by force.
    A network teardown that fails raises HarnessError and leaves the lab marked as not down."""
    state_file = Path(state_file)
    state = read_state(state_file)
    if state is None:
        return []
    removed: list[str] = []
    sup = state.supervisor
    if sup.pid and kill_pids([(sup.pid, sup.marker or SUPERVISOR)], 30.0):
        state = read_state(state_file) or state
    leftovers = [(c.pid, c.marker or c.kind) for c in state.components if c.pid]
    if state.prometheus.pid:
        leftovers.append((state.prometheus.pid, state.prometheus.marker or "prometheus"))
    removed += [f"pid {pid}" for pid in kill_pids(leftovers)]
    if state.fabric.get("mode") == "netns":
        from reliability.lab.netns import NetnsFabric, list_namespaces

        net = NetnsFabric.from_state(state.fabric)
        existed = [ns for ns in list_namespaces() if ns in {net.namespace(r) for r in net.regions}]
        try:
            net.teardown()  # also routes and links when the namespaces are already gone
        except HarnessError as exc:
            state = state.model_copy(
                update={"phase": "teardown_failed", "error": f"network teardown failed: {exc}"}
            )
            write_state(state_file, state)
            raise
        removed += [f"netns {ns}" for ns in existed]
    from reliability.lab.topology import tmp_socket_dir

    sockets = tmp_socket_dir(state.lab_id)
    if sockets.is_dir():  # the supervisor removes it when it stops; not when it was killed
        shutil.rmtree(sockets, ignore_errors=True)
        removed.append(f"dir {sockets}")
    if state.phase != "down":
        comps = [c.model_copy(update={"pid": None}) for c in state.components]
        write_state(
            state_file, state.model_copy(update={"phase": "down", "partitioned": [], "components": comps})
        )
    return removed


def supervisor_alive(state: LabState) -> bool:
    sup = state.supervisor
    return bool(sup.pid) and process_matches(sup.pid or 0, sup.marker or SUPERVISOR)


def crashed(state_file: Path | str) -> bool:
    """A lab that is not down but whose supervisor is gone (killed with the harness, or on its own):
    nothing runs its cleanup, so namespaces, routes or processes may be left."""
    state = read_state(Path(state_file))
    return state is not None and state.phase != "down" and not supervisor_alive(state)


def reap_crashed(path: Path | str) -> dict[Path, list[str]]:
    """`down_from_state` for every crashed lab whose state file is `path`, or is in `path` or up to
    two levels below it (a lab dir, a run dir, a directory of runs). Running labs are left alone."""
    return {p: down_from_state(p) for p in find_below(Path(path), "state.json") if crashed(p)}


def lab_dir() -> Path:
    return Path(os.environ.get("RELIABILITY_LAB_DIR") or ".lab")
