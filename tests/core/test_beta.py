"""Beta estimators: equal to batch least squares, recover known loadings, track, never blow up."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedger.core.bars import BarSampler, log_returns
from hedger.core.beta import (
    EwmaBeta,
    KalmanBeta,
    RollingOlsBeta,
    Winsorizer,
    half_life_to_lambda,
    vasicek_shrink,
    warm_start,
)

TRUE_LOADINGS = np.array([[0.9, 0.6], [1.3, 0.0], [0.4, 1.1]])


def _simulate(
    bars: int, loadings: np.ndarray, seed: int, idio: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = loadings.shape[1]
    corr = np.array([[1.0, 0.8], [0.8, 1.0]])[:k, :k]
    factors = rng.multivariate_normal(np.zeros(k), corr * 0.01**2, size=bars)
    assets = factors @ loadings.T + rng.normal(0.0, idio, size=(bars, loadings.shape[0]))
    return assets, factors


@pytest.mark.parametrize("k", [1, 2])
def test_rolling_ols_equals_lstsq_on_the_window(k: int) -> None:
    loadings = TRUE_LOADINGS[:, :k]
    assets, factors = _simulate(1_500, loadings, seed=1)
    est = RollingOlsBeta(3, k, window_bars=250, recompute_every=400)
    for t in range(len(assets)):
        est.update(assets[t], factors[t])
        if t in (249, 399, 400, 1_499):
            lo = max(0, t - 249)
            expected = np.linalg.lstsq(factors[lo : t + 1], assets[lo : t + 1], rcond=None)[0].T
            np.testing.assert_allclose(est.loadings, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2])
def test_ewma_equals_weighted_least_squares(k: int) -> None:
    loadings = TRUE_LOADINGS[:, :k]
    assets, factors = _simulate(600, loadings, seed=2)
    est = EwmaBeta(3, k, half_life_bars=50.0)
    for t in range(len(assets)):
        est.update(assets[t], factors[t])
    lam = half_life_to_lambda(50.0)
    sqrt_w = np.sqrt(lam ** np.arange(len(assets))[::-1])[:, None]
    expected = np.linalg.lstsq(factors * sqrt_w, assets * sqrt_w, rcond=None)[0].T
    np.testing.assert_allclose(est.loadings, expected, rtol=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(2.0, 200.0))
def test_ewma_is_wls_for_random_data(seed: int, half_life: float) -> None:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(80, 2))
    assets = rng.normal(size=(80, 2))
    est = EwmaBeta(2, 2, half_life_bars=half_life)
    for t in range(80):
        est.update(assets[t], factors[t])
    sqrt_w = np.sqrt(half_life_to_lambda(half_life) ** np.arange(80)[::-1])[:, None]
    expected = np.linalg.lstsq(factors * sqrt_w, assets * sqrt_w, rcond=None)[0].T
    np.testing.assert_allclose(est.loadings, expected, rtol=1e-8, atol=1e-10)


def test_one_factor_is_the_textbook_beta() -> None:
    assets, factors = _simulate(400, TRUE_LOADINGS[:, :1], seed=3)
    est = RollingOlsBeta(3, 1, window_bars=400)
    warm_start(est, assets, factors)
    f = factors[:, 0]
    textbook = (assets * f[:, None]).sum(axis=0) / (f * f).sum()  # no-intercept Cov/Var
    np.testing.assert_allclose(est.loadings[:, 0], textbook, rtol=1e-12)


@pytest.mark.parametrize("estimator", ["ewma", "rolling", "kalman"])
def test_recovers_known_two_factor_loadings(estimator: str) -> None:
    assets, factors = _simulate(5_000, TRUE_LOADINGS, seed=4)
    est: EwmaBeta | RollingOlsBeta | KalmanBeta
    if estimator == "ewma":
        est = EwmaBeta(3, 2, half_life_bars=2_000)
    elif estimator == "rolling":
        est = RollingOlsBeta(3, 2, window_bars=5_000)
    else:
        est = KalmanBeta(3, 2, state_noise=1e-8)
    warm_start(est, assets, factors)
    error = np.abs(est.loadings - TRUE_LOADINGS)
    assert np.all(error < 4 * est.stderr), (est.loadings, est.stderr)
    assert np.all(est.stderr < 0.1) and np.all(est.is_warm)


def test_ols_stderr_matches_the_spread_of_estimates() -> None:
    estimates = []
    stderrs = []
    for seed in range(60):
        assets, factors = _simulate(300, TRUE_LOADINGS, seed=100 + seed)
        est = RollingOlsBeta(3, 2, window_bars=300)
        warm_start(est, assets, factors)
        estimates.append(est.loadings)
        stderrs.append(est.stderr)
    spread = np.std(estimates, axis=0)
    np.testing.assert_allclose(np.mean(stderrs, axis=0), spread, rtol=0.3)


def test_kalman_tracks_a_step_change_faster_than_a_week_of_hourly_bars() -> None:
    rng = np.random.default_rng(5)
    bars = 600
    beta = np.where(np.arange(bars) < 300, 1.0, 2.0)
    factor = rng.normal(0.0, 0.01, bars)
    asset = beta * factor + rng.normal(0.0, 0.004, bars)
    kalman = KalmanBeta(1, 1, state_noise=1e-3, prior=[1.0])
    rolling = RollingOlsBeta(1, 1, window_bars=168)
    lag = {"kalman": None, "rolling": None}
    for t in range(bars):
        kalman.update([asset[t]], [factor[t]])
        rolling.update([asset[t]], [factor[t]])
        for name, est in (("kalman", kalman), ("rolling", rolling)):
            if t >= 300 and lag[name] is None and abs(est.loadings[0, 0] - 2.0) < 0.2:
                lag[name] = t - 300
    assert lag["kalman"] is not None and lag["rolling"] is not None
    assert lag["kalman"] < lag["rolling"], lag


def test_collinear_factors_give_a_finite_regularised_answer_and_a_flag() -> None:
    rng = np.random.default_rng(6)
    btc = rng.normal(0.0, 0.01, 500)
    eth = btc + rng.normal(0.0, 1e-9, 500)  # ETH moving exactly with BTC
    factors = np.column_stack([btc, eth])
    asset = 1.2 * btc + rng.normal(0.0, 0.002, 500)
    for est in (EwmaBeta(1, 2, half_life_bars=100), RollingOlsBeta(1, 2, window_bars=200)):
        warm_start(est, asset[:, None], factors)
        assert est.collinear[0]
        assert np.all(np.isfinite(est.loadings)) and np.all(np.abs(est.loadings) < 5)
        assert est.loadings.sum() == pytest.approx(1.2, abs=0.05)  # the identifiable part
    healthy = EwmaBeta(1, 2, half_life_bars=100)
    warm_start(healthy, asset[:, None], np.column_stack([btc, rng.normal(0.0, 0.01, 500)]))
    assert not healthy.collinear[0]


def test_masked_assets_are_not_updated() -> None:
    est = EwmaBeta(2, 1, half_life_bars=10)
    est.update([0.01, 0.02], [0.01])
    before = est.loadings.copy()
    est.update([0.05, np.nan], [0.01], mask=[False, True])
    np.testing.assert_array_equal(est.loadings, before)
    assert list(est.n_obs) == [1, 1]


def test_vasicek_shrinkage_weights_by_precision() -> None:
    out = vasicek_shrink([2.0, 2.0, 2.0], [0.1, 1.0, np.nan], [1.0, 1.0, 1.0], [0.1, 0.1, 0.1])
    np.testing.assert_allclose(out, [1.5, 1.0 + 1.0 * 0.01 / 1.01, 1.0])


def test_winsorizer_clips_spikes_and_keeps_nan() -> None:
    rng = np.random.default_rng(7)
    w = Winsorizer(2, k_sigma=5.0, half_life_bars=50.0)
    for _ in range(100):
        w.clip(rng.normal(0.0, 0.01, 2))
    clipped = w.clip([0.5, np.nan])
    assert 0.03 < clipped[0] < 0.08 and np.isnan(clipped[1])


def test_bar_sampler_uses_the_previous_tick_on_a_fixed_clock() -> None:
    sampler = BarSampler(2, bar_ms=1_000, start_ms=0)
    sampler.observe([0], [100.0], 100)
    sampler.observe([0, 1], [101.0, 50.0], 1_000)  # on the boundary: closes bar 1
    sampler.observe([0], [999.0], 1_001)  # belongs to bar 2
    bars = sampler.roll(1_000)
    assert [b.end_ms for b in bars] == [1_000]
    assert np.all(np.isnan(bars[0].log_return))  # no price at the start of the first bar
    sampler.observe([1], [55.0], 2_500)  # bar 2 closed by this later tick, with 999 and 50
    bars = sampler.roll(3_000)
    assert [b.end_ms for b in bars] == [2_000, 3_000]
    np.testing.assert_allclose(bars[0].log_return, [np.log(999 / 101), 0.0])  # no tick: 0
    np.testing.assert_allclose(bars[1].log_return, [0.0, np.log(55 / 50)])
    assert sampler.roll(3_000) == []


def test_bar_sampler_ignores_bad_mids() -> None:
    sampler = BarSampler(1, bar_ms=10, start_ms=0)
    sampler.observe([0], [100.0], 1)
    sampler.roll(10)
    sampler.observe([0], [np.nan], 11)
    sampler.observe([0], [-5.0], 12)
    (bar,) = sampler.roll(20)
    assert bar.log_return[0] == 0.0


def test_log_returns_from_closes() -> None:
    closes = np.array([[100.0, 10.0], [110.0, np.nan], [121.0, 12.0]])
    out = log_returns(closes)
    np.testing.assert_allclose(out[:, 0], np.log([1.1, 1.1]))
    assert np.isnan(out[:, 1]).all()
