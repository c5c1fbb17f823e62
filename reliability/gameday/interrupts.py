"""Ctrl-C and SIGTERM as one exception in the orchestrating (main) thread.

The first signal raises `RunInterrupted` wherever the run is; cleanup then runs in `finally`
blocks. Further signals during cleanup are counted but not raised: a second Ctrl-C must not
abort the rollback it is waiting for (cleanup is bounded in time on its own).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType


class RunInterrupted(BaseException):
    """Raised in the main thread on the first SIGINT/SIGTERM; BaseException so that
    `except Exception` in library code does not swallow it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class InterruptState:
    received: list[int] = field(default_factory=list)
    armed: bool = True

    @property
    def exit_code(self) -> int:
        return 128 + self.received[0] if self.received else 0


@contextmanager
def interrupts() -> Iterator[InterruptState]:
    state = InterruptState()
    if threading.current_thread() is not threading.main_thread():
        yield state  # signal handlers can only be set in the main thread
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        state.received.append(signum)
        if state.armed:
            state.armed = False
            raise RunInterrupted(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield state
    finally:
        for s, h in old.items():
            signal.signal(s, h)
