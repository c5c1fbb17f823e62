"""Process-level helpers: external programs (promtool, prometheus), free ports, child lifetimes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reliability.errors import HarnessError


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise HarnessError(
            f"'{name}' not found on PATH; install Debian's 'prometheus' package "
            "(scripts/bootstrap.sh does this when run as root)"
        )
    return path


# Ports handed out by this process: a port is picked once even before its server binds it.
_handed_out: set[int] = set()
_LOWEST_PORT = 10_000


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on host, below the kernel's ephemeral range.

    A port inside that range can be taken by any outgoing connection - the lab's own health checks,
    Prometheus' scrapes, Locust - between the moment it is picked and the moment its server binds it,
    or while a replacement node is being provisioned on its predecessor's port. Below the range only
    an explicit bind can take it."""
    low, _ = ephemeral_port_range()
    if low - _LOWEST_PORT >= 1000:
        for _ in range(200):
            port = random.randrange(_LOWEST_PORT, low)
            if port not in _handed_out and _bindable(host, port):
                _handed_out.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # odd kernel config: let it pick
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: int) -> Callable[[], None]:
    """A `preexec_fn` asking the kernel to send `sig` to the child when the thread that started it
    dies - also on SIGKILL, when no cleanup code of ours runs. Children of the harness and of the
    lab never outlive them (a chaos child gets SIGTERM and plays its rollbacks)."""

    def _set() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return _set


def signal_self_when_orphaned(sig: int = signal.SIGTERM, poll_s: float = 0.2) -> threading.Thread:
    """Send `sig` to this process once, when its parent dies (it is reparented).

    Used instead of PR_SET_PDEATHSIG where the child must clean up: the kernel sends the death
    signal again on every reparenting and when the *thread* that forked the child exits, so a
    child of a multi-threaded harness can get it twice - and chaoslib takes the second SIGTERM as
    an interrupt that aborts the rollback it is running. Polling the parent pid fires exactly once.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os.kill(os.getpid(), sig)

    thread = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    thread.start()
    return thread
