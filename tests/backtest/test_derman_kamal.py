"""Kamal & Derman's discrete-hedging error against Monte Carlo and against the exact
discrete-time variance (see the module docstring: the finite-N ratio to the leading-order
formula sits below 1 by O(1/sqrt(N)) and only its limit is tested at 1; the exact variance,
a sum of one-interval variances by quadrature, must match the Monte Carlo at every N)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from hedger.backtest.derman_kamal import (
    DermanKamalRow,
    derman_kamal,
    exact_interval_variances,
    exact_std,
    extrapolate,
    formula_std,
    mean_dollar_gamma_squared,
    second_order_interval_variances,
    second_order_std,
    std_stderr,
)
from hedger.core.pricing import black76

F0, T, SIGMA = 100.0, 30.0 / 365.0, 0.6


@pytest.fixture(scope="module")
def rows() -> list[DermanKamalRow]:
    return derman_kamal(paths=20_000, seed=7)


@pytest.fixture(scope="module")
def exact_over_formula() -> dict[int, float]:
    """std_exact / std_formula, deterministic, up to N = 1000 (~0.6 s)."""
    return {
        n: exact_std(F0, F0, T, SIGMA, n) / formula_std(F0, F0, T, SIGMA, n)
        for n in (10, 50, 250, 1000)
    }


def test_formula_is_vega_times_sigma_over_root_n() -> None:
    # ATM: vega per 1.00 of vol is F sqrt(T) phi(~0); at T=1, F=100, sigma=0.2, N=100.
    expected = math.sqrt(math.pi / 4) * 100 * math.exp(-0.5 * 0.1**2) / math.sqrt(2 * math.pi)
    assert formula_std(100.0, 100.0, 1.0, 0.2, 100) == pytest.approx(expected * 0.2 / 10, rel=1e-9)


def test_std_stderr_of_a_normal_sample_matches_normal_theory() -> None:
    sample = np.random.default_rng(1).standard_normal(200_000)
    std, se = std_stderr(sample)
    assert std == pytest.approx(1.0, abs=0.005)
    assert se == pytest.approx(1 / math.sqrt(2 * len(sample)), rel=0.05)


def test_hedging_error_scales_as_one_over_root_n(rows: list[DermanKamalRow]) -> None:
    by_n = {r.n_rebalances: r for r in rows}
    assert set(by_n) == {10, 50, 250}
    # Each 5x more rebalancing cuts the error by about sqrt(5).
    for low, high in ((10, 50), (50, 250)):
        ratio = by_n[low].std_pnl / by_n[high].std_pnl
        assert ratio == pytest.approx(math.sqrt(5), rel=0.05)
    assert all(abs(r.mean_pnl) < 4 * r.std_pnl / math.sqrt(20_000) for r in rows)


def test_ratio_tends_to_one(rows: list[DermanKamalRow]) -> None:
    fit = extrapolate(rows)
    # The leading-order claim: the N -> infinity ratio is 1 within 3 standard errors.
    assert abs(fit.limit - 1.0) < 3 * fit.limit_stderr
    # The finite-N correction has the sign and size a grid sum of the expiry singularity
    # gives, and the 1/sqrt(N) law fits the three points (chi-square, 1 dof, p > 0.001).
    assert -0.5 < fit.slope < 0.0
    assert fit.chi2 < 10.8
    # The largest N is close to the limit: within 3 s.e. plus its modelled correction.
    last = rows[-1]
    assert abs(last.ratio - 1.0) < 3 * last.ratio_stderr + abs(fit.slope) / math.sqrt(250)


def test_exact_std_matches_monte_carlo_at_every_n(rows: list[DermanKamalRow]) -> None:
    for r in rows:
        assert r.std_exact == exact_std(F0, F0, T, SIGMA, r.n_rebalances)
        assert r.ratio_exact == pytest.approx(r.std_pnl / r.std_exact, rel=1e-12)
        assert r.ratio_exact_stderr == pytest.approx(
            r.ratio_stderr * r.std_formula / r.std_exact, rel=1e-12
        )
        # The exact discrete-time std is the Monte Carlo's within 3 of its standard errors.
        assert abs(r.ratio_exact - 1.0) < 3 * r.ratio_exact_stderr, r


def test_second_order_grid_sum_misses_at_small_n(rows: list[DermanKamalRow]) -> None:
    # Summing the Gamma expansion over the actual grid is not enough at N = 10: the last
    # intervals, where it fails, carry O(1/sqrt(N)) of the variance (~4.7 s.e. here).
    r = rows[0]
    assert r.n_rebalances == 10
    se = r.ratio_exact_stderr * r.std_exact / r.std_second_order
    assert r.std_pnl / r.std_second_order - 1.0 > 3 * se
    assert r.std_second_order < r.std_exact < r.std_formula


def _call_partial_second_moment(f: float, k: float, s: float) -> tuple[float, float]:
    """E[(F' - K)^+] and E[((F' - K)^+)^2] for F' = f exp(s Z - s^2 / 2)."""
    x = math.log(f / k)
    m = [
        f**j * math.exp(0.5 * j * (j - 1) * s * s) * ndtr((x + (j - 0.5) * s * s) / s)
        for j in (0, 1, 2)
    ]
    return m[1] - k * m[0], m[2] - 2 * k * m[1] + k * k * m[0]


@pytest.mark.parametrize(("strike", "n"), [(100.0, 1), (100.0, 10), (90.0, 10), (115.0, 25)])
def test_exact_variance_by_an_independent_route(strike: float, n: int) -> None:
    """The sum of E[X_i^2] telescopes: E[X_i^2] = E[C_{i+1}^2] - E[C_i^2]
    - 2 E[Delta_i (E[C_{i+1} F_{i+1} | F_i] - F_i C_i)] + E[Delta_i^2 F_i^2] (e^{s^2} - 1), and
    E[C(t_{i+1}, F_{i+1}) F_{i+1} | F_i = f] = f C(t_i, f e^{s^2}) (the forward as numeraire),
    so Var(P&L) = Var(payoff) + sum_i E[g_i(F_i)], one-dimensional integrals of closed forms."""
    dt, s = T / n, SIGMA * math.sqrt(T / n)
    premium = float(black76(F0, strike, T, SIGMA, True).price[()])
    mean_payoff, payoff_sq = _call_partial_second_moment(F0, strike, SIGMA * math.sqrt(T))
    assert mean_payoff == pytest.approx(premium, rel=1e-12)
    variance = payoff_sq - premium**2
    for i in range(n):
        t, tau = i * dt, T - i * dt
        if i == 0:
            f, weight = np.array([F0]), np.array([1.0])
        else:
            a = SIGMA * math.sqrt(t)
            x = np.linspace(-0.5 * a * a - 14 * a, -0.5 * a * a + 14 * a, 4001)
            f = F0 * np.exp(x)
            weight = np.exp(-0.5 * ((x + 0.5 * a * a) / a) ** 2) * (x[1] - x[0]) / a
            weight /= math.sqrt(2 * math.pi)
        now = black76(f, strike, tau, SIGMA, True)
        up = black76(f * math.exp(s * s), strike, tau, SIGMA, True).price
        g = -2 * now.delta * f * (up - now.price) + (now.delta * f) ** 2 * math.expm1(s * s)
        variance += float(g @ weight)
    assert exact_std(F0, strike, T, SIGMA, n) == pytest.approx(math.sqrt(variance), rel=1e-8)


def test_exact_std_tends_to_the_formula(exact_over_formula: dict[int, float]) -> None:
    ratios = list(exact_over_formula.values())
    assert ratios == sorted(ratios)
    assert exact_over_formula[10] == pytest.approx(0.9464, abs=1e-4)
    # N -> infinity: the formula's claim, up to its O(sigma^2 T) terms (+0.13% here).
    assert abs(exact_over_formula[1000] - 1.0) < 0.01
    # ... approached as 1.0013 - 0.187 / sqrt(N): the deficit halves when N quadruples.
    deficit = {n: 1.0013 - r for n, r in exact_over_formula.items()}
    assert deficit[250] / deficit[1000] == pytest.approx(2.0, rel=0.02)
    assert deficit[1000] * math.sqrt(1000) == pytest.approx(0.187, rel=0.02)


def test_mean_dollar_gamma_squared_by_quadrature() -> None:
    for strike, t in ((100.0, 0.03), (90.0, 0.07), (120.0, 0.001)):
        a = SIGMA * math.sqrt(t)
        x = np.linspace(-0.5 * a * a - 14 * a, -0.5 * a * a + 14 * a, 20001)
        density = np.exp(-0.5 * ((x + 0.5 * a * a) / a) ** 2) / (a * math.sqrt(2 * math.pi))
        f = F0 * np.exp(x)
        dollar_gamma = black76(f, strike, T - t, SIGMA, True).gamma * f * f
        expected = float(np.sum(dollar_gamma**2 * density) * (x[1] - x[0]))
        assert mean_dollar_gamma_squared(F0, strike, t, T - t, SIGMA) == pytest.approx(
            expected, rel=1e-9
        )


def test_second_order_is_right_in_the_bulk_and_wrong_at_expiry() -> None:
    exact = exact_interval_variances(F0, F0, T, SIGMA, 10)
    second = second_order_interval_variances(F0, F0, T, SIGMA, 10)
    ratio = exact / second
    # Relative error O(dt / (T - t_i)): 0.15% for the first interval, growing to expiry ...
    assert ratio[0] == pytest.approx(1.0, abs=0.003)
    assert np.all(np.diff(ratio) > 0)
    # ... where the kink makes the last interval's variance ~1.3x the expansion's.
    assert 1.25 < ratio[-1] < 1.4
    assert second_order_std(F0, F0, T, SIGMA, 10) == pytest.approx(
        math.sqrt(second.sum()), rel=1e-12
    )


def test_exact_minus_second_order_is_a_one_over_root_n_term(
    exact_over_formula: dict[int, float],
) -> None:
    """The gap the last intervals open, (std_exact - std_second_order) / std_formula, is
    ~0.14 / sqrt(N): the expansion's failure near expiry, of the same order as the grid
    sum's own zeta(1/2) correction."""
    gap = {
        n: (r - second_order_std(F0, F0, T, SIGMA, n) / formula_std(F0, F0, T, SIGMA, n))
        * math.sqrt(n)
        for n, r in exact_over_formula.items()
    }
    assert gap[250] == pytest.approx(0.138, abs=0.003)
    assert gap[1000] == pytest.approx(0.140, abs=0.003)
