"""Perpetual premium and funding.

The premium of a perp's mark over its index follows an OU process (exact transition for any
dt; stationary std ``premium_std``, wider in stress). Funding is Deribit's damped formula on
that premium, ``max(d, p) + min(-d, p)`` (zero inside ±d), capped at ±``cap_8h``; it is quoted
per 8 hours, and ``funding_8h`` is its exponential average over 8 hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hedger.sim.scenario import FundingSpec

F64 = NDArray[np.float64]
EIGHT_HOURS_S = 8 * 3600.0


class PerpFunding:
    def __init__(self, specs: Sequence[FundingSpec]) -> None:
        self.mean = np.array([s.premium_mean for s in specs])
        self.std = np.array([s.premium_std for s in specs])
        self.stress_mult = np.array([s.stress_std_mult for s in specs])
        self.kappa_s = np.array([math.log(2) / (s.premium_halflife_hours * 3600.0) for s in specs])
        self.damper = np.array([s.damper for s in specs])
        self.cap = np.array([s.cap_8h for s in specs])
        self.premium = self.mean.copy()
        self.current = self.rate(self.premium)
        self.funding_8h = self.current.copy()

    def rate(self, premium: F64) -> F64:
        damped = np.maximum(self.damper, premium) + np.minimum(-self.damper, premium)
        out: F64 = np.clip(damped, -self.cap, self.cap)
        return out

    def advance(self, dt_seconds: float, stressed: bool, z: F64) -> None:
        decay = np.exp(-self.kappa_s * dt_seconds)
        std = self.std * (self.stress_mult if stressed else 1.0)
        self.premium = (
            self.mean + (self.premium - self.mean) * decay + std * np.sqrt(1 - decay**2) * z
        )
        self.current = self.rate(self.premium)
        w = -math.expm1(-dt_seconds / EIGHT_HOURS_S)
        self.funding_8h = self.funding_8h + (self.current - self.funding_8h) * w
