"""Retry pacing shared by every feed, the executor and the venue link: exponential, capped,
jittered."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


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


async def retry(
    call: Callable[[], Awaitable[T]],
    *,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    give_up_s: float,
    pacing: Backoff,
    rng: random.Random,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    on_failure: Callable[[int, BaseException], None] | None = None,
) -> T:
    """``call()`` until it returns, retrying ``retry_on`` paced by ``pacing`` for
    ``give_up_s`` (on the injected clock, so fault tests can run on virtual time); then the
    last error is raised. ``on_failure(attempt, error)`` hears every failure."""
    gives_up = monotonic() + give_up_s
    attempt = 0
    while True:
        try:
            return await call()
        except retry_on as exc:
            if on_failure is not None:
                on_failure(attempt, exc)
            if monotonic() >= gives_up:
                raise
        await sleep(pacing.delay_s(attempt, rng))
        attempt += 1
