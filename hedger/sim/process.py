"""Correlated, regime-switching, jumpy log prices: factors (BTC, optionally ETH), then alts.

Per step of ``dt`` seconds (τ = dt in years), with the regime drawn first and in force for the
whole step:

    factor log-returns  f = (μ_f - σ_f²/2 - λ_f κ_f)·τ + L·z·sqrt(τ) + J_f      (L L' = Σ)
    alt log-returns     r = B·f + (μ_a - s_a²/2 - λ_a κ_a)·τ + s_a·z_a·sqrt(τ) + J_a

Σ holds the factor vols and their correlation, B the loadings, s the idiosyncratic vols;
J are Merton compound-Poisson jumps (N ~ Poisson(λτ), each jump ~ N(m, v²)) and
κ = E[e^jump] - 1 their compensator, so each component's own price is a martingale when μ = 0
(Merton 1976). In stress, factor vols, loadings, factor correlation and jump rates rise and
idiosyncratic vols fall. The regime is a two-state Markov chain sampled exactly for any dt.

Each step draws a fixed set of variates (one uniform, 2·n normals, n Poissons), so a seed and
the sequence of ``dt`` values determine the path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from hedger.sim.scenario import Scenario

F64 = NDArray[np.float64]
SECONDS_PER_YEAR = 365.0 * 86_400.0


class Regime(IntEnum):
    CALM = 0
    STRESS = 1

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(slots=True, frozen=True, eq=False)
class RegimeParams:
    """Everything a step needs in one regime, precomputed."""

    chol: F64  # K x K, Cholesky factor of the factor covariance (annual)
    factor_var: F64  # K
    loadings: F64  # n_alts x K
    idio_vol: F64  # n_alts
    jump_rate: F64  # n_assets, per year
    drift: F64  # n_assets, log drift per year including the convexity and jump compensators


def _regime_params(s: Scenario, stressed: bool) -> RegimeParams:
    r = s.regime
    k = len(s.factors)
    vol = np.array([f.vol for f in s.factors]) * (r.factor_vol_mult if stressed else 1.0)
    corr = np.eye(k)
    if k == 2:
        corr[0, 1] = corr[1, 0] = r.factor_corr_stress if stressed else s.factor_corr
    cov = corr * np.outer(vol, vol)
    loadings = np.array([a.loadings for a in s.alts], dtype=np.float64).reshape(len(s.alts), k)
    idio = np.array([a.vol for a in s.alts]) * (r.idio_vol_mult if stressed else 1.0)
    assets = s.assets
    rate = np.array([a.jumps.per_year for a in assets]) * (r.jump_rate_mult if stressed else 1.0)
    m = np.array([a.jumps.mean for a in assets])
    v = np.array([a.jumps.std for a in assets])
    compensator = rate * (np.exp(m + 0.5 * v**2) - 1.0)
    own_var = np.concatenate([np.diag(cov), idio**2])
    mu = np.array([a.drift_per_year for a in assets])
    return RegimeParams(
        chol=np.asarray(np.linalg.cholesky(cov), dtype=np.float64),
        factor_var=np.diag(cov).copy(),
        loadings=loadings * (r.loading_mult if stressed else 1.0),
        idio_vol=idio,
        jump_rate=rate,
        drift=mu - 0.5 * own_var - compensator,
    )


class FactorProcess:
    """Log prices of ``scenario.assets`` (factors first), advanced by ``advance(dt_seconds)``."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        self.scenario = scenario
        self.rng = rng
        self.assets = tuple(a.name for a in scenario.assets)
        self.n_factors = len(scenario.factors)
        self.log_price = np.log([a.spot_usd for a in scenario.assets])
        self.regime = Regime.STRESS if scenario.regime.start_in_stress else Regime.CALM
        self._params = (_regime_params(scenario, False), _regime_params(scenario, True))
        self._jump_mean = np.array([a.jumps.mean for a in scenario.assets])
        self._jump_std = np.array([a.jumps.std for a in scenario.assets])
        day = 86_400.0
        self._to_stress = scenario.regime.calm_to_stress_per_day / day
        self._to_calm = scenario.regime.stress_to_calm_per_day / day
        self.market_shock = 0.0  # the first factor's standard normal shock of the last step

    @property
    def params(self) -> RegimeParams:
        """The current regime's parameters; ``params.loadings`` are the true alt betas."""
        return self._params[self.regime]

    def _switch(self, dt_seconds: float) -> None:
        # Exact two-state transition: P(leave) = rate_out / total * (1 - exp(-total * dt)).
        total = self._to_stress + self._to_calm
        u = self.rng.random()
        if total <= 0.0:
            return
        out = self._to_stress if self.regime is Regime.CALM else self._to_calm
        if u < out / total * -math.expm1(-total * dt_seconds):
            self.regime = Regime(1 - self.regime)

    def advance(self, dt_seconds: float) -> F64:
        """Move every log price by one step; returns the log-returns (factors, then alts)."""
        self._switch(dt_seconds)
        p = self.params
        tau = dt_seconds / SECONDS_PER_YEAR
        k = self.n_factors
        z = self.rng.standard_normal(2 * len(self.assets))
        n_jumps = self.rng.poisson(p.jump_rate * tau)
        jumps = (
            n_jumps * self._jump_mean + np.sqrt(n_jumps) * self._jump_std * z[len(self.assets) :]
        )
        ret: F64 = p.drift * tau + jumps
        ret[:k] += p.chol @ z[:k] * math.sqrt(tau)
        ret[k:] += p.loadings @ ret[:k] + p.idio_vol * z[k : len(self.assets)] * math.sqrt(tau)
        self.market_shock = float(z[0])
        self.log_price += ret
        return ret
