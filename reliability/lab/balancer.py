"""Pure routing state shared by the gateways: health, circuit breakers, round-robin choice.

No I/O here, so the rules (who gets traffic, when a breaker opens, how many backends may be
ejected at once) are unit-tested without sockets.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field


@dataclass
class Backend:
    name: str
    url: str
    healthy: bool = False
    consecutive_failures: int = 0
    open_until: float = 0.0  # monotonic; breaker open while now < open_until

    def breaker_open(self, now: float) -> bool:
        return now < self.open_until


@dataclass
class Balancer:
    backends: list[Backend]
    breaker_failures: int = 3
    breaker_cooldown_s: float = 2.0
    max_ejected_ratio: float = 0.5
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.by_name = {b.name: b for b in self.backends}

    def candidates(self, now: float, exclude: frozenset[str] = frozenset()) -> list[Backend]:
        return [b for b in self.backends if b.healthy and not b.breaker_open(now) and b.name not in exclude]

    def pick(self, now: float, exclude: frozenset[str] = frozenset()) -> Backend | None:
        ready = self.candidates(now, exclude)
        if not ready:
            return None
        return ready[next(self._rr) % len(ready)]

    def ejected(self, now: float) -> int:
        return sum(1 for b in self.backends if b.breaker_open(now))

    def record(self, backend: Backend, ok: bool, now: float) -> None:
        if ok:
            backend.consecutive_failures = 0
            backend.open_until = 0.0
            return
        backend.consecutive_failures += 1
        if backend.consecutive_failures < self.breaker_failures or backend.breaker_open(now):
            return
        # Like Envoy's max_ejection_percent: never eject so many that a bad deploy turns into an outage
        # of the healthy remainder.
        if self.ejected(now) + 1 <= self.max_ejected_ratio * len(self.backends):
            backend.open_until = now + self.breaker_cooldown_s
            backend.consecutive_failures = 0
