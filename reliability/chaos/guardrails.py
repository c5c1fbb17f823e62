"""Stop conditions (like AWS FIS): a value above its limit for N seconds aborts the experiment.

Pure logic, fed with (time, value) samples, so the rule is testable without a clock.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StopCondition:
    name: str
    query: str
    above: float
    for_seconds: float = 0.0
    breach_since: float | None = None

    def observe(self, t: float, value: float | None) -> bool:
        """Feed one sample; True when the condition has held continuously for `for_seconds`.

        No data (None) breaks a breach: a target that stopped reporting is not evidence of harm,
        and treating it as such would abort every run whose metrics lag at start.
        """
        if value is None or value <= self.above:
            self.breach_since = None
            return False
        if self.breach_since is None:
            self.breach_since = t
        return t - self.breach_since >= self.for_seconds
