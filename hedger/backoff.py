"""Retry pacing shared by every feed, the executor and the venue link: exponential, capped,
jittered."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): ``initial_s * 2**n`` capped at ``cap_s``,
    scaled by a uniform factor in [0.5, 1]. The jitter keeps many daemons (or many symbol loops)
    that lost the same venue at once from reconnecting in lockstep; the floor of one half keeps
    a flapping venue from being hammered at near-zero delays."""

    initial_s: float = 0.1
    cap_s: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.cap_s:
            raise ValueError(
                f"backoff needs 0 < initial_s <= cap_s, got {self.initial_s=} {self.cap_s=}"
            )

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        # min() before the power would overflow for huge attempt counts; clamp the exponent.
        ceiling = min(self.cap_s, self.initial_s * 2.0 ** min(attempt, 62))
        return ceiling * rng.uniform(0.5, 1.0)
