"""Load shapes as pure functions of run time (the Locust shape class in `plugin` calls these)."""

from __future__ import annotations

import math


def shape_users(shape: str, t: float, duration: float, users: int) -> int:
    """steady: `users` throughout; ramp: linear from 1 to `users` over the first half, then hold;
    spike: a fifth of `users`, with all of them from 40% to 60% of the duration."""
    if shape == "ramp":
        return max(1, math.ceil(users * min(1.0, t / max(duration * 0.5, 1e-9))))
    if shape == "spike":
        return users if 0.4 * duration <= t < 0.6 * duration else max(1, users // 5)
    return users
