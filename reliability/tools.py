"""Locating external programs (promtool, prometheus) with a clear error when absent."""

from __future__ import annotations

import shutil
import socket

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
