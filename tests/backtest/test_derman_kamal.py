"""Kamal & Derman's discrete-hedging error against Monte Carlo (see the module docstring for
why the finite-N ratio sits below 1 by O(1/sqrt(N)) and only its limit is tested at 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hedger.backtest.derman_kamal import (
    DermanKamalRow,
    derman_kamal,
    extrapolate,
    formula_std,
    std_stderr,
)


@pytest.fixture(scope="module")
def rows() -> list[DermanKamalRow]:
    return derman_kamal(paths=20_000, seed=7)


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
