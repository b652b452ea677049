"""Theory check: the hedging error of a discretely delta-hedged option.

Kamal and Derman (1999), "When you cannot hedge continuously: the corrections of
Black-Scholes" (Risk 12(1); Goldman Sachs QS note "The patterns of hedging error"): an
option delta-hedged N times, equally spaced over its life, in a Black-Scholes world whose
volatility equals the implied one, leaves a P&L with mean ~0 and standard deviation

    std_formula = sqrt(pi / 4) * vega * sigma / sqrt(N),    vega = dPrice/dsigma (per 1.00 of vol),

to leading order in 1/N. Here: a short ATM call (Black-76, r = 0, the core's ``black76``),
GBM with sigma equal to the implied vol, deltas computed for every Monte Carlo path at once.
The standard error of the sample standard deviation comes from its delta-method variance
``(m4 / s^4 - 1) s^2 / (4 M)`` (M paths, m4 the fourth central moment), which holds for the
heavy-tailed P&L too, unlike the normal-theory s / sqrt(2 M).

Each row compares the Monte Carlo ``std_pnl`` with two predictions:

- ``ratio = std_pnl / std_formula``: against the leading-order formula. It sits below 1 by
  ``O(1 / sqrt(N))``, as the exact ``std_exact / std_formula`` does (0.946 at N = 10, 0.976
  at 50, 0.990 at 250 for the defaults): the formula is asymptotic, and only its
  N -> infinity limit is its claim (see :func:`extrapolate`).
- ``ratio_exact = std_pnl / std_exact``: against the exact discrete-time standard deviation,
  which should be 1 within the Monte Carlo error at every N (a check of the simulation).

Why the exact variance is a sum of one-interval variances. With ``C(t, F)`` the Black-76
price, the book is: premium ``C(0, F_0)`` received, ``Delta_i = dC/dF(t_i, F_i)`` forwards
held over ``[t_i, t_{i+1}]`` (r = 0: no financing), the payoff ``C(T, F_N)`` paid. So

    P&L = -sum_i X_i,    X_i = C(t_{i+1}, F_{i+1}) - C(t_i, F_i) - Delta_i (F_{i+1} - F_i),

a telescoping sum. Under the simulated GBM (sigma = the pricing vol, zero drift of F), F and
``C(t, F_t) = E[payoff | F_t]`` are martingales and ``Delta_i`` is known at ``t_i``, so the
``X_i`` are martingale differences: mean 0 (so is the P&L's) and uncorrelated, and

    Var(P&L) = sum_i E[ Var(X_i | F_i) ] = sum_i E[ X_i^2 ],

with no approximation. ``std_exact`` computes each term by deterministic quadrature: the
inner expectation over ``F_{i+1} = F_i exp(s Z - s^2 / 2)``, ``s = sigma sqrt(dt)``, by
Gauss-Hermite on ``X_i^2`` itself (no cancellation); for the last interval, where
``C(T, .)`` is the payoff's kink, in closed form from the lognormal partial moments
``E[F'^k 1{F' > K}]``; the outer one over the lognormal ``F_i`` by the trapezoid rule on a
uniform grid in ``log F_i`` whose step resolves both the density of ``F_i`` and the
integrand's width ``sigma sqrt(T - t_{i+1})`` (exponentially convergent for these smooth,
rapidly decaying integrands). Doubling every node count moves it by ~1e-12 relative.

Where the finite-N correction comes from. To second order in the move, ``X_i ~= Gamma_i
F_i^2 (y^2 - sigma^2 dt) / 2`` (y the log return), whose conditional variance is
``(Gamma_i F_i^2)^2 Var(y^2) / 4`` with ``Var(y^2) = 2 s^4 + s^6`` exactly for GBM.
``std_second_order`` sums this over the actual grid, with ``E[(Gamma_i F_i^2)^2]`` in closed
form (a Gaussian integral in ``log F_i``); replacing the sum by an integral, ``Var(y^2)`` by
``2 s^4`` and dropping ``O(sigma^2 T)`` terms of that integral gives ``std_formula``. In the
bulk of the grid this is the right variance: for the first interval the exact term exceeds
it by ~0.15% at N = 10, whereas the same expansion in the arithmetic return ``R = dF / F``
(``Var(R^2) = 2 s^4 (1 + 9 s^2 + ...)``) overshoots by 2.4%: its larger ``s^6`` term is
cancelled by the third- and fourth-order Taylor terms, which the log return absorbs. But
the expansion's relative error is ``O(dt / (T - t_i))``: it fails in the last few intervals
(the last one's exact variance is 1.32x the second-order one at N = 10), and because an ATM
``Gamma^2`` grows like ``(T - t)^(-1/2)`` those intervals carry weight ``O(sqrt(dt))``. For
the defaults (sigma = 0.6, 30 days), relative to ``std_formula``:

- the integral the formula approximates is 1.0013 (its dropped ``O(sigma^2 T)`` terms);
- summing it over the grid instead (the ``zeta(1/2)`` term of the Euler-Maclaurin expansion
  of the ``(T - t)^(-1/2)`` singularity) gives ``sqrt(2) zeta(1/2) / (2 pi) / sqrt(N) =
  -0.329 / sqrt(N)``: ``std_second_order`` ~= 1.0013 - 0.33 / sqrt(N) (0.909 at N = 10);
- the exact last intervals add back ``+0.141 / sqrt(N)`` (measured: the gap
  ``(std_exact - std_second_order) sqrt(N) / std_formula`` is 0.118, 0.132, 0.138, 0.140,
  0.141 at N = 10, 50, 250, 1000, 4000), so ``std_exact / std_formula ~= 1.0013 - 0.187 /
  sqrt(N)``, up to ``O(1 / N)``: 0.9464 against 0.9422 at N = 10, 0.9757 against 0.9749
  at N = 50.

So the second-order grid sum still misses at order ``1 / sqrt(N)``, 4% of the std at N = 10
(several Monte Carlo standard errors with 20k paths), and only the exact per-interval
variance reproduces the Monte Carlo at small N.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from hedger.core.pricing import VOL_POINT, FloatArray, black76

DEFAULT_REBALANCES = (10, 50, 250)
_HERMITE_NODES = 32
"""Gauss-Hermite nodes for the move over one interval (the integrand varies on a scale of
at least one standard deviation of the move)."""
_GRID_SPAN = 12.0
"""Half-width of the outer grid in ``log F_i``, in widths of the narrower of the density and
the integrand (both decay like Gaussians in ``log F_i``)."""
_GRID_STEP = 1.0 / 3.0
"""Outer grid step, in the same widths: the trapezoid rule's error on a Gaussian of width w
with step h is ~exp(-2 pi^2 w^2 / h^2), below 1e-70 here."""


@dataclass(slots=True, frozen=True)
class DermanKamalRow:
    n_rebalances: int
    std_pnl: float
    std_formula: float
    ratio: float
    ratio_stderr: float
    mean_pnl: float
    std_exact: float
    """the exact discrete-time std of the P&L, by deterministic quadrature"""
    ratio_exact: float
    """std_pnl / std_exact: 1 within Monte Carlo error at every N"""
    ratio_exact_stderr: float
    std_second_order: float
    """the second-order expansion summed over the actual grid (misses the last intervals)"""

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def formula_std(forward: float, strike: float, t_years: float, sigma: float, n: int) -> float:
    vega = float(black76(forward, strike, t_years, sigma, True).vega[()]) / VOL_POINT
    return math.sqrt(math.pi / 4.0) * vega * sigma / math.sqrt(n)


def _forward_grid(
    forward: float, strike: float, sigma: float, t: float, integrand_width: float
) -> tuple[FloatArray, FloatArray]:
    """Nodes and trapezoid weights for E[g(F_t)], F_t lognormal with E[F_t] = ``forward``,
    for a ``g`` that varies on ``integrand_width`` in ``log F`` around ``log strike``."""
    if t <= 0.0:
        return np.array([forward]), np.array([1.0])
    a = sigma * math.sqrt(t)
    mean = math.log(forward / strike) - 0.5 * a * a
    width = min(a, integrand_width)
    lo, hi = min(mean, 0.0) - _GRID_SPAN * width, max(mean, 0.0) + _GRID_SPAN * width
    x = np.linspace(lo, hi, math.ceil((hi - lo) / (_GRID_STEP * width)) + 1)
    z = (x - mean) / a
    weight = np.exp(-0.5 * z * z) * ((x[1] - x[0]) / (a * math.sqrt(2.0 * math.pi)))
    return strike * np.exp(x), weight


def _last_interval_variance(
    f: FloatArray, strike: float, tau: float, sigma: float, s: float
) -> FloatArray:
    """E[X^2 | F = f] for the interval ending at expiry, in closed form.

    X = (F' - K)^+ - C - Delta (F' - f), F' = f exp(s Z - s^2 / 2); with the partial moments
    M_k = E[F'^k 1{F' > K}] = f^k exp(k (k - 1) s^2 / 2) N((log(f / K) + (k - 1/2) s^2) / s)
    and E[(F' - K)^+] = C, E[X^2] = E[((F' - K)^+)^2] - C^2 - 2 Delta (E[(F' - K)^+ F'] - f C)
    + Delta^2 f^2 (exp(s^2) - 1).
    """
    x = np.log(f / strike)
    m0, m1, m2 = (
        f**k * math.exp(0.5 * k * (k - 1) * s * s) * ndtr((x + (k - 0.5) * s * s) / s)
        for k in (0, 1, 2)
    )
    now = black76(f, strike, tau, sigma, True)
    price, delta = now.price, now.delta
    payoff_sq = m2 - 2.0 * strike * m1 + strike * strike * m0
    payoff_times_f = m2 - strike * m1
    result: FloatArray = (
        payoff_sq
        - price * price
        - 2.0 * delta * (payoff_times_f - f * price)
        + delta * delta * f * f * math.expm1(s * s)
    )
    return result


def _interval_variance(
    f: FloatArray,
    strike: float,
    tau: float,
    dt: float,
    sigma: float,
    growth: FloatArray,
    weight: FloatArray,
) -> FloatArray:
    """E[X^2 | F = f] for an interval ending before expiry, by Gauss-Hermite over the move
    (``growth`` = F'/F at the nodes, ``weight`` their probabilities)."""
    now = black76(f, strike, tau, sigma, True)
    moved = f[:, None] * growth[None, :]
    after = black76(moved, strike, tau - dt, sigma, True).price
    x = after - now.price[:, None] - now.delta[:, None] * (moved - f[:, None])
    result: FloatArray = (x * x) @ weight
    return result


def exact_interval_variances(
    forward: float, strike: float, t_years: float, sigma: float, n: int
) -> FloatArray:
    """E[X_i^2] for each of the ``n`` intervals: the exact hedging-error variance they add
    (see the module docstring), deterministic. Their sum is Var(P&L)."""
    dt = t_years / n
    s = sigma * math.sqrt(dt)
    z, w = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    growth = np.exp(s * z - 0.5 * s * s)
    w = w / w.sum()
    out = np.empty(n)
    for i in range(n):
        tau = t_years - i * dt  # as the simulation computes it
        width = sigma * math.sqrt(max(tau - dt, dt))
        f, weight = _forward_grid(forward, strike, sigma, i * dt, width)
        if i == n - 1:
            g = _last_interval_variance(f, strike, tau, sigma, s)
        else:
            g = _interval_variance(f, strike, tau, dt, sigma, growth, w)
        out[i] = float(g @ weight)
    return out


def exact_std(forward: float, strike: float, t_years: float, sigma: float, n: int) -> float:
    """The exact standard deviation of the P&L of the call hedged ``n`` times."""
    return math.sqrt(float(exact_interval_variances(forward, strike, t_years, sigma, n).sum()))


def mean_dollar_gamma_squared(
    forward: float, strike: float, t: float, tau: float, sigma: float
) -> float:
    """E[(Gamma F^2)^2] at time ``t`` (``tau`` before expiry), F_t lognormal from ``forward``.

    Gamma F^2 = F phi(d1) / v with v^2 = sigma^2 tau, so with x = log(F / K) ~ N(mu, a^2),
    a^2 = sigma^2 t, and y = x + v^2 / 2: (Gamma F^2)^2 = K^2 exp(2 y - v^2 - y^2 / v^2) /
    (2 pi v^2), a Gaussian integral: E[exp(2 y - y^2 / v^2)] = exp((4 a^2 + 4 m - 2 m^2 /
    v^2) / (2 D)) / sqrt(D), m = E[y], D = 1 + 2 a^2 / v^2.
    """
    a2, v2 = sigma * sigma * t, sigma * sigma * tau
    m = math.log(forward / strike) - 0.5 * a2 + 0.5 * v2
    d = 1.0 + 2.0 * a2 / v2
    exponent = (4.0 * a2 + 4.0 * m - 2.0 * m * m / v2) / (2.0 * d) - v2
    return strike * strike / (2.0 * math.pi * v2) * math.exp(exponent) / math.sqrt(d)


def second_order_interval_variances(
    forward: float, strike: float, t_years: float, sigma: float, n: int
) -> FloatArray:
    """E[(Gamma_i F_i^2)^2] Var(y^2) / 4 per interval, ``Var(y^2) = 2 s^4 + s^6`` the exact
    variance of the squared log return (mean -s^2 / 2, variance s^2) of one interval."""
    dt = t_years / n
    s2 = sigma * sigma * dt
    var_y2 = 2.0 * s2 * s2 + s2 * s2 * s2
    return np.array(
        [
            0.25
            * var_y2
            * mean_dollar_gamma_squared(forward, strike, i * dt, t_years - i * dt, sigma)
            for i in range(n)
        ]
    )


def second_order_std(forward: float, strike: float, t_years: float, sigma: float, n: int) -> float:
    variances = second_order_interval_variances(forward, strike, t_years, sigma, n)
    return math.sqrt(float(variances.sum()))


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
        exact = exact_std(forward, forward, t_years, sigma, n)
        rows.append(
            DermanKamalRow(
                n_rebalances=n,
                std_pnl=std,
                std_formula=expected,
                ratio=std / expected,
                ratio_stderr=se / expected,
                mean_pnl=float(pnl.mean()),
                std_exact=exact,
                ratio_exact=std / exact,
                ratio_exact_stderr=se / exact,
                std_second_order=second_order_std(forward, forward, t_years, sigma, n),
            )
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
    ratio sits below 1 by ``O(N^(-1/2))``, and only the limit is the formula's claim. The
    exact discrete-time variance (``std_exact``, module docstring) puts the curve at
    ``1.0013 - 0.187 / sqrt(N)`` for the defaults: the 0.13% is an ``O(sigma^2 T)`` term the
    formula drops, well inside the fitted limit's standard error.
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
