"""Signals become one exception in the main thread; more signals during cleanup do not."""

from __future__ import annotations

import os
import signal
import time

import pytest

from reliability.gameday.interrupts import RunInterrupted, interrupts


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_raises_later_ones_are_only_counted(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    cleaned = False
    with interrupts() as state:
        with pytest.raises(RunInterrupted) as exc:
            os.kill(os.getpid(), sig)
            for _ in range(100):  # the handler runs between bytecodes; bounded wait
                time.sleep(0.01)
        try:
            os.kill(os.getpid(), sig)  # a second Ctrl-C during cleanup
            time.sleep(0.05)
        finally:
            cleaned = True
    assert cleaned and exc.value.signum == sig
    assert state.received == [sig, sig] and state.exit_code == 128 + sig
    assert signal.getsignal(sig) == before
