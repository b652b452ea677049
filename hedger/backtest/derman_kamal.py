"""Theory check: the hedging error of a discretely delta-hedged option.

Kamal and Derman (1999), "When you cannot hedge continuously: the corrections of
Black-Scholes" (Risk 12(1); Goldman Sachs QS note "The patterns of hedging error"): an
option delta-hedged N times, equally spaced over its life, in a Black-Scholes world whose
volatility equals the implied one, leaves a P&L with mean ~0 and standard deviation

    std ~= sqrt(pi / 4) * vega * sigma / sqrt(N),      vega = dPrice/dsigma (per 1.00 of vol),

to leading order in 1/N. Here: a short ATM call (Black-76, r = 0, the core's ``black76``),
GBM with sigma equal to the implied vol, deltas computed for every Monte Carlo path at once.
The standard error of the sample standard deviation comes from its delta-method variance
``(m4 / s^4 - 1) s^2 / (4 M)`` (M paths, m4 the fourth central moment), which holds for the
heavy-tailed P&L too, unlike the normal-theory s / sqrt(2 M).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from hedger.core.pricing import VOL_POINT, black76

DEFAULT_REBALANCES = (10, 50, 250)


@dataclass(slots=True, frozen=True)
class DermanKamalRow:
    n_rebalances: int
    std_pnl: float
    std_formula: float
    ratio: float
    ratio_stderr: float
    mean_pnl: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def formula_std(forward: float, strike: float, t_years: float, sigma: float, n: int) -> float:
    vega = float(black76(forward, strike, t_years, sigma, True).vega[()]) / VOL_POINT
    return math.sqrt(math.pi / 4.0) * vega * sigma / math.sqrt(n)


def hedged_short_call_pnl(
    rng: np.random.Generator,
    n: int,
    paths: int,
    forward: float,
    strike: float,
    t_years: float,
    sigma: float,
) -> np.ndarray[tuple[int], np.dtype[np.float64]]:
    """P&L per path of selling the call at its Black-76 price and holding +delta forwards,
    rebalanced at the start of each of ``n`` equal intervals."""
    dt = t_years / n
    f = np.full(paths, forward)
    call = np.ones(paths, np.bool_)
    premium = float(black76(forward, strike, t_years, sigma, True).price[()])
    pnl = np.full(paths, premium)
    drift, scale = -0.5 * sigma * sigma * dt, sigma * math.sqrt(dt)
    for step in range(n):
        delta = black76(f, strike, t_years - step * dt, sigma, call).delta
        moved = f * np.exp(drift + scale * rng.standard_normal(paths))
        pnl += delta * (moved - f)
        f = moved
    pnl -= np.maximum(f - strike, 0.0)
    return pnl


def std_stderr(sample: np.ndarray[tuple[int], np.dtype[np.float64]]) -> tuple[float, float]:
    """Sample standard deviation and its delta-method standard error."""
    centred = sample - sample.mean()
    var = float(np.mean(centred**2))
    kurtosis = float(np.mean(centred**4)) / (var * var)
    std = math.sqrt(var)
    return std, std * math.sqrt(max(kurtosis - 1.0, 0.0) / (4.0 * len(sample)))


def derman_kamal(
    rebalances: tuple[int, ...] = DEFAULT_REBALANCES,
    paths: int = 20_000,
    seed: int = 7,
    forward: float = 100.0,
    t_years: float = 30.0 / 365.0,
    sigma: float = 0.6,
) -> list[DermanKamalRow]:
    """One row per N; the call is at the money (strike = forward)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in rebalances:
        pnl = hedged_short_call_pnl(rng, n, paths, forward, forward, t_years, sigma)
        std, se = std_stderr(pnl)
        expected = formula_std(forward, forward, t_years, sigma, n)
        rows.append(
            DermanKamalRow(n, std, expected, std / expected, se / expected, float(pnl.mean()))
        )
    return rows


@dataclass(slots=True, frozen=True)
class Extrapolation:
    """``ratio(N) = limit + slope / sqrt(N)``, fitted by weighted least squares."""

    limit: float
    limit_stderr: float
    slope: float
    chi2: float
    """of the residuals, in standard errors (1 degree of freedom for three N)."""

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def extrapolate(rows: list[DermanKamalRow]) -> Extrapolation:
    """The ratio at N -> infinity: what the asymptotic formula claims is exactly 1.

    Why ``1 / sqrt(N)``: the formula sums the per-interval variance ``Gamma^2 S^4 sigma^4
    dt^2 / 2`` as an integral, but an at-the-money gamma squared grows like
    ``(T - t)^(-1/2)`` into expiry, and a sum over a grid of such an integrable singularity
    misses the integral by a term of order ``sqrt(dt)`` (the zeta(1/2) term of the
    Euler-Maclaurin expansion), i.e. ``1 / sqrt(N)`` relative; the last few intervals, where
    gamma changes within the interval, contribute at the same order. So the finite-N
    ratio sits below 1 by ``O(N^(-1/2))``, and only the limit is the formula's claim.
    """
    n = np.array([r.n_rebalances for r in rows], np.float64)
    y = np.array([r.ratio for r in rows])
    w = 1.0 / np.array([r.ratio_stderr for r in rows]) ** 2
    x = np.column_stack([np.ones_like(n), 1.0 / np.sqrt(n)])
    cov = np.linalg.inv(x.T @ (w[:, None] * x))
    limit, slope = cov @ (x.T @ (w * y))
    residual = y - x @ np.array([limit, slope])
    return Extrapolation(
        float(limit), float(math.sqrt(cov[0, 0])), float(slope), float(np.sum(w * residual**2))
    )
