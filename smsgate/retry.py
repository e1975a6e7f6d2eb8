"""Exponential backoff: the one rule for how long to wait before trying again.

Outbound sends, webhook deliveries and the SIM-busy retry at bring-up all wait with it. Jitter is on by
default so that many messages (or several boxes) failing together do not all come back in the same second.
"""

from __future__ import annotations

import random

_rng = random.Random()


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float = 0.2,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before try `attempt + 1`, for `attempt` ≥ 0 tries already failed.

    `base * 2**attempt`, capped at `cap`, then spread by ±`jitter` (a fraction; 0 for a fixed delay).
    The cap applies before the jitter, so a capped delay still spreads.
    """
    if base < 0 or cap < 0:
        raise ValueError("backoff base and cap must not be negative")
    if not 0 <= jitter < 1:
        raise ValueError("backoff jitter is a fraction between 0 and 1")
    # 2**attempt overflows float for absurd attempt counts; the cap has long been reached by then.
    exponent = min(max(attempt, 0), 60)
    delay = min(base * 2.0**exponent, cap)
    if jitter:
        delay *= (rng or _rng).uniform(1 - jitter, 1 + jitter)
    return delay
