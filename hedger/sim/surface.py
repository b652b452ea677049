"""Implied-vol surface: ATM term structure, a quadratic smile, and a regime-driven vol level.

The smile is quadratic in standardized log-moneyness ``x = ln(K/F) / (atm·sqrt(t))`` — the
usual "sticky-delta" shape, so every expiry has the same smile in delta terms — clipped at
``|x| <= 4`` so far wings stay finite. Vectorized over a whole chain: every argument is an
array with one entry per option (or broadcastable to it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from hedger.sim.scenario import SurfaceSpec

F64 = NDArray[np.float64]
X_MAX = 4.0
MIN_VOL = 0.05
SECONDS_PER_YEAR = 365.0 * 86_400.0


def atm_vol(t_years: F64, log_level: F64, short: F64, long_: F64, decay_days: F64) -> F64:
    """ATM vol: short blends into long with e-folding ``decay_days``; the level scales the
    short end fully and the long end by half (in log), so stress inverts the term structure."""
    e = np.exp(-t_years * 365.0 / decay_days)
    base = long_ + (short - long_) * e
    out: F64 = base * np.exp(log_level * (0.5 + 0.5 * e))
    return out


def smile_vol(log_moneyness: F64, t_years: F64, atm: F64, skew: F64, curvature: F64) -> F64:
    x = np.clip(log_moneyness / (atm * np.sqrt(t_years)), -X_MAX, X_MAX)
    out: F64 = np.maximum(atm * (1.0 + x * (skew + curvature * x)), MIN_VOL)
    return out


class VolLevels:
    """One log vol level per option underlying: an OU process toward 0 in calm and toward
    ``ln(stress_level)`` in stress, with shocks correlated to the market factor's (spot-vol
    correlation: vols rise when BTC falls)."""

    def __init__(self, specs: Sequence[SurfaceSpec]) -> None:
        self.stress_target = np.log([s.stress_level for s in specs])
        hours_per_year = SECONDS_PER_YEAR / 3600.0
        self.kappa = np.array(
            [math.log(2) * hours_per_year / s.level_halflife_hours for s in specs]
        )
        self.std = np.array([s.level_std for s in specs])
        self.rho = np.array([s.spot_vol_corr for s in specs])
        self.log_level = np.zeros(len(specs))

    def advance(self, dt_seconds: float, stressed: bool, z_market: float, z_own: F64) -> None:
        decay = np.exp(-self.kappa * dt_seconds / SECONDS_PER_YEAR)
        target = self.stress_target if stressed else 0.0
        shock = self.rho * z_market + np.sqrt(1.0 - self.rho**2) * z_own
        # Exact OU transition: stationary std ``std``, so the shock scales by sqrt(1 - decay²).
        self.log_level = (
            target + (self.log_level - target) * decay + self.std * np.sqrt(1 - decay**2) * shock
        )

    def stress_weight(self) -> F64:
        """How far each level has moved toward its stress target, in [0, 1]."""
        ratio = np.divide(
            self.log_level,
            self.stress_target,
            out=np.zeros_like(self.log_level),
            where=self.stress_target > 0,
        )
        w: F64 = np.clip(ratio, 0.0, 1.0)
        return w
