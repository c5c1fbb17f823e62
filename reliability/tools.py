"""Process-level helpers: external programs (promtool, prometheus), free ports, child lifetimes."""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import socket
from collections.abc import Callable

from reliability.errors import HarnessError


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise HarnessError(
            f"'{name}' not found on PATH; install Debian's 'prometheus' package "
            "(scripts/bootstrap.sh does this when run as root)"
        )
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on host (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


_PR_SET_PDEATHSIG = 1


def parent_death_signal(sig: int) -> Callable[[], None]:
    """A `preexec_fn` asking the kernel to send `sig` to the child when the thread that started it
    dies - also on SIGKILL, when no cleanup code of ours runs. Children of the harness and of the
    lab never outlive them (a chaos child gets SIGTERM and plays its rollbacks)."""

    def _set() -> None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return _set
