"""One HAProxy process owned by the caller: validated config, foreground, its log read live.

`HAProxyProcess(spec, workdir, on_event=...)` writes `<workdir>/<file_stem>.cfg`, checks it with
`haproxy -c -f`, starts `[argv_prefix...] haproxy -db -f CFG` (foreground: never detaches, so the
caller owns the pid), waits - bounded - until the runtime API answers (HAProxy binds every listener
before it serves its CLI, and a failed bind ends the process), and reads its stdout in a thread:
every line is appended to `<workdir>/<file_stem>.log` and parsed into `GatewayEvent`s for
`on_event` (called in the reader thread as soon as HAProxy writes the line, so
`reliability.lab.events.append_event(path, e.event, **e.fields())` stamps it within a millisecond;
from asyncio use `loop.call_soon_threadsafe`). HAProxy's
stderr (startup errors, the same warnings again) goes to `<file_stem>.stderr`.

The child gets SIGTERM when the thread that started it dies (`parent_death_signal`), also on
SIGKILL of the parent: start it from a thread that lives as long as the gateway should.
`stop()` soft-stops (SIGUSR1: stop listening, finish open streams, bounded by the config's
`hard-stop-after`), then SIGTERM, then SIGKILL, each step bounded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from reliability.errors import HarnessError
from reliability.lab.haproxy.config import GatewaySpec, render
from reliability.lab.haproxy.logparse import GatewayEvent, LogParser
from reliability.lab.haproxy.runtime import RuntimeAPI, RuntimeAPIError
from reliability.tools import parent_death_signal

EventCallback = Callable[[GatewayEvent], None]


def haproxy_binary() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if path is None:
        raise HarnessError(
            "'haproxy' not found; install Debian's 'haproxy' package (scripts/bootstrap.sh does this as root)"
        )
    return path


def check_config(config_path: Path, binary: str | None = None) -> None:
    """`haproxy -c -f`: raises HarnessError with HAProxy's own messages when the config is invalid."""
    result = subprocess.run(
        [binary or haproxy_binary(), "-c", "-f", str(config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        messages = [line for line in (result.stdout + result.stderr).splitlines() if "[ALERT]" in line]
        detail = "; ".join(messages) or (result.stdout + result.stderr).strip()
        raise HarnessError(f"haproxy rejected {config_path}: {detail}")


class HAProxyProcess:
    def __init__(
        self,
        spec: GatewaySpec,
        workdir: Path,
        *,
        on_event: EventCallback | None = None,
        on_line: Callable[[str], None] | None = None,
        argv_prefix: Sequence[str] = (),
        file_stem: str | None = None,
        ready_timeout_s: float = 10.0,
        binary: str | None = None,
    ) -> None:
        self.spec = spec
        self.workdir = Path(workdir)
        self.on_event = on_event
        self.on_line = on_line
        self.argv_prefix = list(argv_prefix)
        stem = file_stem or spec.name.replace("/", "_")
        self.config_path = self.workdir / f"{stem}.cfg"
        self.log_path = self.workdir / f"{stem}.log"
        self.stderr_path = self.workdir / f"{stem}.stderr"
        self.ready_timeout_s = ready_timeout_s
        self.binary = binary
        self.runtime = RuntimeAPI(spec.stats_socket)
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def marker(self) -> str:
        """Part of the command line that identifies this process (never kill a recycled pid)."""
        return str(self.config_path)

    def argv(self) -> list[str]:
        return [*self.argv_prefix, self.binary or haproxy_binary(), "-db", "-f", str(self.config_path)]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.alive():
            raise HarnessError(f"{self.spec.name}: HAProxy already running (pid {self.pid})")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(self.spec), encoding="utf-8")
        check_config(self.config_path, self.binary)
        with contextlib.suppress(FileNotFoundError):
            self.spec.stats_socket.unlink()  # a stale socket would answer "refused", not "missing"
        with open(self.stderr_path, "ab") as stderr:
            self.proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                preexec_fn=parent_death_signal(signal.SIGTERM),
                close_fds=True,
            )
        parser = LogParser(self.spec.name)
        self._reader = threading.Thread(
            target=self._read, args=(self.proc, parser), name=f"haproxy-log-{self.spec.name}", daemon=True
        )
        self._reader.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop(grace_s=0.5)
            raise

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise HarnessError(f"{self.spec.name}: HAProxy exited at start: {self._stderr_tail()}")
            try:
                self.runtime.show_info()
                return
            except RuntimeAPIError:
                if time.monotonic() > deadline:
                    raise HarnessError(
                        f"{self.spec.name}: HAProxy's runtime API did not answer within "
                        f"{self.ready_timeout_s:g}s: {self._stderr_tail()}"
                    ) from None
                time.sleep(0.02)

    def _stderr_tail(self) -> str:
        try:
            lines = self.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no stderr)"
        alerts = [line for line in lines if "[ALERT]" in line]
        return "; ".join((alerts or lines)[-3:]) or "(no stderr)"

    def _read(self, proc: subprocess.Popen[bytes], parser: LogParser) -> None:
        assert proc.stdout is not None
        with open(self.log_path, "ab", buffering=0) as log:
            for raw in proc.stdout:
                log.write(raw)
                line = raw.decode(errors="replace").rstrip("\n")
                try:
                    if self.on_line is not None:
                        self.on_line(line)
                    if self.on_event is not None:
                        for event in parser.feed(line):
                            self.on_event(event)
                except Exception:  # a caller's bug must not stop the log (HAProxy would drop lines)
                    traceback.print_exc()

    def stop(self, grace_s: float = 5.0) -> int | None:
        """Soft stop, then SIGTERM, then SIGKILL; returns the exit code (None if never started)."""
        proc = self.proc
        if proc is None:
            return None
        for sig, wait_s in ((signal.SIGUSR1, grace_s), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait_s)
        if self._reader is not None:
            self._reader.join(5.0)
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode

    def __enter__(self) -> HAProxyProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
