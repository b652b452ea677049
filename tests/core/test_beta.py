"""Beta estimators: equal to batch least squares, recover known loadings, track, never blow up."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hedger.core.bars import BarSampler, Winsorizer, log_returns
from hedger.core.beta import (
    BetaBook,
    BetaEstimator,
    EwmaBeta,
    KalmanBeta,
    RollingOlsBeta,
    ewma_effective_bars,
    half_life_to_lambda,
    min_half_life_bars,
    to_bars,
    vasicek_shrink,
    with_factor_rows,
)

F64 = np.ndarray
TRUE_LOADINGS = np.array([[0.9, 0.6], [1.3, 0.0], [0.4, 1.1]])
IDIO_VOL = np.array([0.01, 0.006, 0.015])
FACTOR_VOL, FACTOR_CORR = 0.01, 0.8


def _simulate(bars: int, loadings: F64, seed: int) -> tuple[F64, F64]:
    """Asset returns (bars, n) = factors (bars, K) @ loadings' + idiosyncratic noise."""
    rng = np.random.default_rng(seed)
    k = loadings.shape[1]
    corr = np.array([[1.0, FACTOR_CORR], [FACTOR_CORR, 1.0]])[:k, :k]
    factors = rng.multivariate_normal(np.zeros(k), corr * FACTOR_VOL**2, size=bars)
    noise = rng.normal(0.0, 1.0, (bars, len(loadings))) * IDIO_VOL[: len(loadings)]
    return factors @ loadings.T + noise, factors


def _wls(assets: F64, factors: F64, weights: F64, intercept: bool) -> F64:
    """Loadings (n, K) by numpy lstsq per asset on rows scaled by sqrt(weight)."""
    x = np.column_stack([factors, np.ones(len(factors))]) if intercept else factors
    out = []
    for i in range(assets.shape[1]):
        w = np.sqrt(weights[:, i])
        out.append(np.linalg.lstsq(x * w[:, None], assets[:, i] * w, rcond=None)[0])
    return np.array(out)[:, : factors.shape[1]]


def _ewma_weights(bars: int, half_life: float, mask: F64) -> F64:
    return mask * half_life_to_lambda(half_life) ** np.arange(bars - 1, -1, -1.0)[:, None]


# --- equality with batch least squares -------------------------------------------------------


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_rolling_ols_equals_lstsq_on_the_last_window(k: int, intercept: bool) -> None:
    loadings = TRUE_LOADINGS[:, :k]
    assets, factors = _simulate(1_500, loadings, seed=1)
    window = 250
    est = RollingOlsBeta(3, k, window_bars=window, recompute_every=400, intercept=intercept)
    checked = 0
    for t in range(len(assets)):
        est.update(assets[t], factors[t])
        if t in (9, 249, 250, 398, 399, 400, 1_000, 1_499):  # around the recomputes too
            lo = max(0, t + 1 - window)
            ones = np.ones((t + 1 - lo, 3))
            expected = _wls(assets[lo : t + 1], factors[lo : t + 1], ones, intercept)
            np.testing.assert_allclose(est.loadings, expected, rtol=1e-10, atol=1e-12)
            assert list(est.n_obs) == [t + 1 - lo] * 3
            checked += 1
    assert checked == 8


def test_rolling_recompute_discards_the_drift_a_spike_leaves_behind() -> None:
    assets, factors = _simulate(700, TRUE_LOADINGS, seed=2)
    assets[100] *= 1e5  # absurd on purpose: its square leaves rounding residue in the sums
    factors[100] *= 1e5
    window = 200
    est = RollingOlsBeta(3, 2, window_bars=window, recompute_every=500)
    errors = []
    for t in range(len(assets)):
        est.update(assets[t], factors[t])
        if t in (498, 499):  # spike long gone; recompute after the 500th bar
            rows = slice(t + 1 - window, t + 1)
            expected = _wls(assets[rows], factors[rows], np.ones((window, 3)), False)
            errors.append(np.abs(est.loadings - expected).max() / np.abs(expected).max())
    assert errors[0] > 1e-9  # the running sums have drifted ...
    assert errors[1] < 1e-12  # ... and the exact recompute puts them back


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("k", [1, 2])
def test_ewma_equals_weighted_least_squares(k: int, intercept: bool) -> None:
    loadings = TRUE_LOADINGS[:, :k]
    assets, factors = _simulate(600, loadings, seed=3)
    mask = np.random.default_rng(4).random(assets.shape) > 0.1
    est = EwmaBeta(3, k, half_life_bars=50.0, intercept=intercept)
    for t in range(len(assets)):
        est.update(assets[t], factors[t], mask[t])
    expected = _wls(assets, factors, _ewma_weights(600, 50.0, mask), intercept)
    np.testing.assert_allclose(est.loadings, expected, rtol=1e-10)
    np.testing.assert_array_equal(est.n_obs, mask.sum(axis=0))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    k=st.integers(1, 3),
    bars=st.integers(8, 120),
    half_life=st.floats(1.0, 500.0),
    intercept=st.booleans(),
)
def test_ewma_is_wls_for_random_data(
    seed: int, k: int, bars: int, half_life: float, intercept: bool
) -> None:
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(bars, k)) * rng.uniform(0.003, 0.03, k)
    assets = factors @ rng.normal(size=(k, 4)) + rng.normal(0.0, 0.01, (bars, 4))
    mask = rng.random((bars, 4)) > 0.2
    est = EwmaBeta(4, k, half_life_bars=half_life, intercept=intercept)
    for t in range(bars):
        est.update(assets[t], factors[t], mask[t])
    weights = _ewma_weights(bars, half_life, mask)
    assume(not est.collinear.any())  # regularised: not plain least squares
    assume((mask.sum(axis=0) > k + intercept).all())
    expected = _wls(assets, factors, weights, intercept)
    np.testing.assert_allclose(est.loadings, expected, rtol=1e-8, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    window=st.integers(4, 60),
    bars=st.integers(1, 200),
    recompute_every=st.integers(1, 100),
)
def test_rolling_is_ols_on_the_window_for_random_data(
    seed: int, window: int, bars: int, recompute_every: int
) -> None:
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (bars, 2))
    assets = factors @ TRUE_LOADINGS.T + rng.normal(0.0, 0.01, (bars, 3))
    mask = rng.random((bars, 3)) > 0.2
    est = RollingOlsBeta(3, 2, window_bars=window, recompute_every=recompute_every)
    for t in range(bars):
        est.update(assets[t], factors[t], mask[t])
    rows = slice(max(0, bars - window), bars)
    np.testing.assert_array_equal(est.n_obs, mask[rows].sum(axis=0))
    assume(not est.collinear.any() and (est.n_obs > 2).all())
    expected = _wls(assets[rows], factors[rows], mask[rows].astype(float), False)
    np.testing.assert_allclose(est.loadings, expected, rtol=1e-8, atol=1e-10)


def _estimators(k: int, intercept: bool = False) -> dict[str, Callable[[int], BetaEstimator]]:
    return {
        "ewma": lambda n: EwmaBeta(n, k, half_life_bars=80.0, intercept=intercept),
        "rolling": lambda n: RollingOlsBeta(n, k, window_bars=150, intercept=intercept),
        "kalman": lambda n: KalmanBeta(n, k, q=1e-5),
    }


@pytest.mark.parametrize("intercept", [False, True])
@pytest.mark.parametrize("name", ["ewma", "rolling", "kalman"])
def test_warm_start_equals_bar_by_bar_updates(name: str, intercept: bool) -> None:
    assets, factors = _simulate(400, TRUE_LOADINGS, seed=5)
    assets[::17, 1] = np.nan  # missing bars
    factors[33] = np.nan  # a bar without a factor price
    mask = np.random.default_rng(6).random(assets.shape) > 0.05
    make = _estimators(2, intercept)[name]
    stepped, warmed = make(3), make(3)
    for est in (stepped, warmed):
        for t in range(50):  # state held before the warm start must age correctly
            est.update(assets[t], factors[t], mask[t])
    for t in range(50, 400):
        stepped.update(assets[t], factors[t], mask[t])
    warmed.warm_start(assets[50:], factors[50:], mask[50:])
    for est in (stepped, warmed):
        est.update(assets[0], factors[0])  # and keep going from there
    np.testing.assert_allclose(warmed.loadings, stepped.loadings, rtol=1e-10)
    np.testing.assert_allclose(warmed.stderr, stepped.stderr, rtol=1e-10)
    np.testing.assert_array_equal(warmed.n_obs, stepped.n_obs)


def test_one_factor_is_the_textbook_beta() -> None:
    assets, factors = _simulate(400, TRUE_LOADINGS[:, :1], seed=7)
    f = factors[:, 0]
    weights = half_life_to_lambda(60.0) ** np.arange(399, -1, -1.0)
    for i in range(3):
        a = assets[:, i]
        centred = RollingOlsBeta(3, 1, window_bars=400, intercept=True)
        centred.warm_start(assets, factors)
        cov = np.cov(a, f)
        assert centred.loadings[i, 0] == pytest.approx(cov[0, 1] / cov[1, 1], rel=1e-12)
        ewma = EwmaBeta(3, 1, half_life_bars=60.0, intercept=True)
        ewma.warm_start(assets, factors)
        cov = np.cov(a, f, aweights=weights)
        assert ewma.loadings[i, 0] == pytest.approx(cov[0, 1] / cov[1, 1], rel=1e-12)
        zero_mean = EwmaBeta(3, 1, half_life_bars=60.0)  # RiskMetrics: means taken as 0
        zero_mean.warm_start(assets, factors)
        expected = (weights * a * f).sum() / (weights * f * f).sum()
        assert zero_mean.loadings[i, 0] == pytest.approx(expected, rel=1e-12)


# --- statistics: recovery, standard errors, tracking -----------------------------------------


def _ols_stderr(factors: F64, weights: F64) -> F64:
    """Theoretical standard errors (n, K) with the true idiosyncratic vols, for weights
    (T,) with the same effective-sample approximation the estimators document."""
    xtwx = np.linalg.inv((factors * weights[:, None]).T @ factors)
    scale = (weights**2).sum() / weights.sum()
    return np.sqrt(np.outer(IDIO_VOL**2, np.diagonal(xtwx)) * scale)


@pytest.mark.parametrize("name", ["ewma", "rolling", "kalman"])
def test_recovers_known_two_factor_loadings(name: str) -> None:
    bars = 5_000
    assets, factors = _simulate(bars, TRUE_LOADINGS, seed=8)
    est: BetaEstimator
    if name == "ewma":
        est = EwmaBeta(3, 2, half_life_bars=1_000.0)
        weights = half_life_to_lambda(1_000.0) ** np.arange(bars - 1, -1, -1.0)
    elif name == "rolling":
        est = RollingOlsBeta(3, 2, window_bars=bars)
        weights = np.ones(bars)
    else:
        est = KalmanBeta(3, 2, q=0.0, prior_stderr=10.0)  # constant loadings: RLS
        weights = np.ones(bars)
    est.warm_start(assets, factors)
    assert est.is_warm.all() and not est.collinear.any()
    np.testing.assert_array_less(np.abs(est.loadings - TRUE_LOADINGS), 4 * est.stderr)
    np.testing.assert_allclose(est.stderr, _ols_stderr(factors, weights), rtol=0.1)


@pytest.mark.parametrize("name", ["ewma", "rolling", "kalman"])
def test_stderr_matches_the_spread_of_estimates(name: str) -> None:
    estimates, stderrs = [], []
    for seed in range(100):
        assets, factors = _simulate(300, TRUE_LOADINGS, seed=1_000 + seed)
        est: BetaEstimator
        if name == "ewma":
            est = EwmaBeta(3, 2, half_life_bars=60.0)
        elif name == "rolling":
            est = RollingOlsBeta(3, 2, window_bars=300)
        else:
            est = KalmanBeta(3, 2, q=0.0, prior_stderr=10.0)
        est.warm_start(assets, factors)
        estimates.append(est.loadings)
        stderrs.append(est.stderr)
    # 100 draws pin a standard deviation down to about 7%; 25% leaves room for the
    # effective-sample approximation (EWMA) and the learned noise (Kalman).
    np.testing.assert_allclose(np.mean(stderrs, axis=0), np.std(estimates, axis=0), rtol=0.25)


def test_kalman_without_state_noise_is_the_bayesian_regression() -> None:
    assets, factors = _simulate(500, TRUE_LOADINGS, seed=9)
    r = IDIO_VOL**2
    prior, prior_se = np.array([1.0, 0.5]), np.array([0.3, 0.7])
    est = KalmanBeta(3, 2, q=0.0, r=r, prior=prior, prior_stderr=prior_se)
    est.warm_start(assets, factors)
    for i in range(3):
        precision = np.diag(prior_se**-2) + factors.T @ factors / r[i]
        cov = np.linalg.inv(precision)
        mean = cov @ (prior / prior_se**2 + factors.T @ assets[:, i] / r[i])
        np.testing.assert_allclose(est.loadings[i], mean, rtol=1e-9)
        np.testing.assert_allclose(est.covariance[i], cov, rtol=1e-8)
        np.testing.assert_allclose(est.stderr[i], np.sqrt(np.diag(cov)), rtol=1e-9)


def test_kalman_learns_the_observation_noise() -> None:
    assets, factors = _simulate(3_000, TRUE_LOADINGS, seed=10)
    est = KalmanBeta(3, 2, q=1e-6, noise_half_life_bars=500.0)
    est.warm_start(assets, factors)
    np.testing.assert_allclose(est.observation_noise, IDIO_VOL**2, rtol=0.15)


def _bars_to_settle(path: F64, target: float, tolerance: float, hold: int) -> int:
    """Bars until ``path`` comes within ``tolerance`` of ``target`` and stays ``hold`` bars."""
    inside = np.abs(path - target) < tolerance
    for t in range(len(path) - hold):
        if inside[t : t + hold].all():
            return t
    return len(path)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_kalman_tracks_a_step_change_faster_than_a_week_of_hourly_bars(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bars, step, week = 700, 350, 168
    beta = np.where(np.arange(bars) < step, 1.0, 2.0)
    factor = rng.normal(0.0, 0.007, bars)  # BTC-like hourly vol
    asset = beta * factor + rng.normal(0.0, 0.005, bars)
    kalman = KalmanBeta(1, 1, q=3e-4)  # loadings drift ~0.017 per hour
    rolling = RollingOlsBeta(1, 1, window_bars=week)
    paths = np.zeros((2, bars))
    for t in range(bars):
        for row, est in enumerate((kalman, rolling)):
            est.update(asset[t : t + 1], factor[t : t + 1])
            paths[row, t] = est.loadings[0, 0]
    lag_kalman, lag_rolling = (_bars_to_settle(p[step:], 2.0, 0.2, hold=24) for p in paths)
    assert lag_rolling < week  # both do settle ...
    assert lag_kalman < lag_rolling  # ... Kalman first


# --- collinearity, degenerate data, masks -----------------------------------------------------


def _collinear_data(noise: float, seed: int = 14) -> tuple[F64, F64, float]:
    rng = np.random.default_rng(seed)
    btc = rng.normal(0.0, 0.01, 500)
    eth = btc + rng.normal(0.0, noise, 500)  # ETH moving (almost) exactly with BTC
    total = 1.2
    asset = total * btc + rng.normal(0.0, 0.002, 500)
    return asset[:, None], np.column_stack([btc, eth]), total


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("noise", [0.0, 1e-9, 1e-6])
@pytest.mark.parametrize("name", ["ewma", "rolling", "kalman"])
def test_collinear_factors_give_a_finite_regularised_answer_and_a_flag(
    name: str, noise: float
) -> None:
    asset, factors, total = _collinear_data(noise)
    est = _estimators(2)[name](1)
    est.warm_start(asset, factors)
    assert est.collinear[0]
    assert np.isfinite(est.loadings).all() and np.isfinite(est.stderr).all()
    b = est.loadings[0]
    assert b.sum() == pytest.approx(total, abs=0.05)  # the identified combination is kept
    assert np.abs(b).max() < total  # split, not offset by huge opposite loadings


def test_uncorrelated_factors_are_not_flagged() -> None:
    asset, factors, _ = _collinear_data(0.01)  # ETH = BTC + as much noise again
    for est in _estimators(2).values():
        e = est(1)
        e.warm_start(asset, factors)
        assert not e.collinear[0]


def test_regularisation_is_continuous_at_the_threshold() -> None:
    """The eigenvalue floor only binds past the threshold: a hair either side of it, the
    loadings agree (a ridge switched on by the flag would jump)."""
    asset, factors, _ = _collinear_data(2e-4)
    condition = np.linalg.cond(factors.T @ factors)
    below = RollingOlsBeta(1, 2, window_bars=500, max_condition=condition * (1 + 1e-9))
    above = RollingOlsBeta(1, 2, window_bars=500, max_condition=condition * (1 - 1e-9))
    for est in (below, above):
        est.warm_start(asset, factors)
    assert not below.collinear[0] and above.collinear[0]
    np.testing.assert_allclose(above.loadings, below.loadings, rtol=1e-6)
    np.testing.assert_allclose(below.loadings, _wls(asset, factors, np.ones((500, 1)), False))


@pytest.mark.filterwarnings("error")
def test_a_flat_factor_and_an_empty_asset_give_zeros_not_nan() -> None:
    assets, factors = _simulate(300, TRUE_LOADINGS, seed=15)
    factors[:, 1] = 0.0  # ETH feed stuck: previous-tick returns of 0
    assets[:, 2] = np.nan  # never priced
    for make in _estimators(2).values():
        est = make(3)
        est.warm_start(assets, factors)
        assert list(est.collinear) == [True, True, False]
        np.testing.assert_array_equal(est.loadings[:2, 1], 0.0)
        assert np.isfinite(est.loadings).all()
        assert not est.is_warm[2] and est.n_obs[2] == 0
    ewma = EwmaBeta(3, 2, half_life_bars=80.0)
    ewma.warm_start(assets, factors)
    np.testing.assert_array_equal(ewma.loadings[2], 0.0)
    assert np.isinf(ewma.stderr[2]).all()


@pytest.mark.parametrize("name", ["ewma", "rolling", "kalman"])
def test_masked_assets_are_not_updated(name: str) -> None:
    assets, factors = _simulate(120, TRUE_LOADINGS, seed=16)
    est = _estimators(2)[name](3)
    est.warm_start(assets[:100], factors[:100])
    before, before_se, before_n = est.loadings.copy(), est.stderr.copy(), est.n_obs
    assets[100:, 1] = np.nan  # no price for asset 1
    mask = np.ones((20, 3), dtype=bool)
    mask[:, 0] = False  # asset 0 held out by the caller
    for t in range(100, 120):
        est.update(assets[t], factors[t], mask[t - 100])
    np.testing.assert_array_equal(est.n_obs, before_n + np.array([0, 0, 20]))
    assert np.all(est.loadings[2] != before[2])  # the others move on
    if name == "ewma":  # both moments age alike: nothing observable changes
        np.testing.assert_allclose(est.loadings[:2], before[:2], rtol=1e-12)
        np.testing.assert_allclose(est.stderr[:2], before_se[:2], rtol=1e-12)
    elif name == "rolling":  # masked bars hold their slot: OLS on what was observed
        weights = np.ones((120, 3))  # all 120 bars fit the 150-bar window
        weights[100:, :2] = 0.0
        expected = _wls(np.nan_to_num(assets), factors, weights, False)
        np.testing.assert_allclose(est.loadings, expected, rtol=1e-10)
    else:  # the random walk goes on: q per bar of extra variance, same mean
        np.testing.assert_array_equal(est.loadings[:2], before[:2])
        np.testing.assert_allclose(est.stderr[:2] ** 2, before_se[:2] ** 2 + 20 * 1e-5)


def test_a_bar_without_factor_returns_updates_nobody() -> None:
    est = EwmaBeta(2, 2, half_life_bars=10.0)
    est.update([0.01, 0.02], [0.01, 0.005])
    est.update([0.03, 0.01], [np.nan, 0.01])
    assert list(est.n_obs) == [1, 1]


def test_inputs_of_the_wrong_shape_are_refused() -> None:
    est = RollingOlsBeta(3, 2, window_bars=10)
    with pytest.raises(ValueError, match="3 asset returns and 2 factor returns"):
        est.update([0.1, 0.2], [0.1, 0.2])
    with pytest.raises(ValueError, match="history"):
        est.warm_start(np.zeros((5, 3)), np.zeros((4, 2)))


def test_half_life_and_bars() -> None:
    assert half_life_to_lambda(24.0) ** 24 == pytest.approx(0.5, rel=1e-14)
    assert to_bars(86_400.0, 3_600.0) == 24.0
    with pytest.raises(ValueError):
        half_life_to_lambda(0.0)


@pytest.mark.parametrize("min_obs", [2, 30, 60, 500])
def test_the_half_life_floor_holds_min_obs_effective_bars(min_obs: int) -> None:
    floor = min_half_life_bars(min_obs)
    assert ewma_effective_bars(floor) == pytest.approx(min_obs, rel=1e-9)
    # The same as a long EWMA's weights say: (sum w)^2 / sum w^2.
    weights = half_life_to_lambda(floor) ** np.arange(200_000.0)
    assert weights.sum() ** 2 / (weights**2).sum() == pytest.approx(min_obs, rel=1e-6)
    assert min_half_life_bars(30) == pytest.approx(10.39, abs=0.01)


# --- shrinkage, factor rows, the book ---------------------------------------------------------


def test_vasicek_shrinkage_is_the_precision_weighted_mean() -> None:
    rng = np.random.default_rng(17)
    b, se = rng.normal(1.0, 0.5, (4, 2)), rng.uniform(0.05, 1.0, (4, 2))
    prior, prior_se = np.array([1.0, 0.3]), 0.4  # broadcast over assets
    shrunk, shrunk_se = vasicek_shrink(b, se, prior, prior_se)
    precision = 1 / prior_se**2 + 1 / se**2
    np.testing.assert_allclose(shrunk, (prior / prior_se**2 + b / se**2) / precision)
    np.testing.assert_allclose(shrunk_se, precision**-0.5)
    edge, edge_se = vasicek_shrink(
        [2.0, 2.0, 2.0, 2.0], [np.inf, np.nan, 0.1, 0.0], [1.0] * 4, [0.5, 0.5, np.inf, 0.5]
    )
    np.testing.assert_allclose(edge, [1.0, 1.0, 2.0, 2.0])  # no estimate; flat prior; exact
    np.testing.assert_allclose(edge_se, [0.5, 0.5, 0.1, 0.0])


def test_factor_assets_have_unit_rows() -> None:
    loadings = np.arange(8.0).reshape(4, 2)
    out = with_factor_rows(loadings, [2, 0])  # factor 0 is asset 2, factor 1 is asset 0
    np.testing.assert_array_equal(out[[2, 0]], np.eye(2))
    np.testing.assert_array_equal(out[[1, 3]], loadings[[1, 3]])
    np.testing.assert_array_equal(loadings, np.arange(8.0).reshape(4, 2))  # a copy


def _book_prices(bars: int, seed: int) -> F64:
    """Closes (bars + 1, 5): BTC, ETH, then the three simulated alts, then cash."""
    assets, factors = _simulate(bars, TRUE_LOADINGS, seed=seed)
    returns = np.column_stack([factors, assets])
    closes = 100.0 * np.exp(np.vstack([np.zeros(5), np.cumsum(returns, axis=0)]))
    return np.column_stack([closes, np.ones(bars + 1)])


def _book(min_obs: int, prior_stderr: float | None = None) -> tuple[BetaBook, EwmaBeta, F64]:
    prior = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.8, 0.2], [0.0, 0.0]])
    est = EwmaBeta(6, 2, half_life_bars=50.0, min_obs=min_obs)
    sampler = BarSampler(6, bar_ms=60_000, start_ms=0)
    book = BetaBook(est, sampler, [0, 1], prior, prior_stderr=prior_stderr)
    return book, est, prior


def test_beta_book_turns_asynchronous_quotes_into_loadings() -> None:
    bars, bar_ms = 300, 60_000
    closes = _book_prices(bars, seed=18)
    book, _, prior = _book(min_obs=bars)
    rng = np.random.default_rng(19)
    direct = EwmaBeta(6, 2, half_life_bars=50.0)
    not_factor = np.array([False, False, True, True, True, True])
    returns = log_returns(closes)
    for t in range(bars + 1):
        # Each series quotes in its own order: a stale mid early in the bar, then its close
        # late in the bar; the book must see exactly the closes' returns.
        for i in rng.permutation(6):
            book.observe(
                int(i), closes[t, i] * 1.01, t * bar_ms - int(rng.integers(30_000, 59_000))
            )
        for i in rng.permutation(6):
            book.observe(int(i), float(closes[t, i]), t * bar_ms - int(rng.integers(0, 30_000)))
        betas = book.sample(t * bar_ms)
        if t >= 1:
            direct.update(returns[t - 1], returns[t - 1, :2], not_factor)
        if t == bars - 1:  # one bar short of warm: the prior, factor rows unit
            np.testing.assert_array_equal(betas.loadings, with_factor_rows(prior, [0, 1]))
            assert list(betas.is_warm) == [True, True, False, False, False, False]
    assert betas.end_ms == bars * bar_ms and betas.is_warm.all()
    np.testing.assert_allclose(betas.loadings[2:5], direct.loadings[2:5], rtol=1e-9)
    np.testing.assert_array_equal(betas.loadings[:2], np.eye(2))
    np.testing.assert_array_equal(betas.stderr[:2], 0.0)
    np.testing.assert_array_equal(betas.loadings[5], 0.0)  # cash: flat price, no loading


def test_beta_book_folds_returns_made_elsewhere_as_its_sampler_would() -> None:
    """Candles: the caller's returns go through the same winsorizer, estimator, shrinkage
    and factor rows as the sampler's bars; a missing candle (NaN) is masked, not a zero."""
    bars, bar_ms = 200, 60_000
    closes = _book_prices(bars, seed=21)
    sampled, _, _ = _book(min_obs=30, prior_stderr=0.3)
    folded, _, _ = _book(min_obs=30, prior_stderr=0.3)
    sampled.winsorizer = Winsorizer(6, k_sigma=4.0, half_life_bars=50.0)
    folded.winsorizer = Winsorizer(6, k_sigma=4.0, half_life_bars=50.0)
    returns = log_returns(closes)
    for t in range(bars + 1):
        sampled.observe(np.arange(6), closes[t], t * bar_ms)
        expected = sampled.sample(t * bar_ms)
        if t >= 1:
            betas = folded.fold_returns(returns[t - 1], t * bar_ms)
            # log(c1 / c0) and log c1 - log c0 differ in the last bits only.
            np.testing.assert_allclose(betas.loadings, expected.loadings, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(betas.stderr, expected.stderr, rtol=1e-9)
    assert betas.end_ms == expected.end_ms == bars * bar_ms
    gappy, est, _ = _book(min_obs=30)
    returns[50:53, 3] = np.nan
    for t, row in enumerate(returns):
        gappy.fold_returns(row, (t + 1) * bar_ms)
    assert est.n_obs[2:5].tolist() == [bars, bars - 3, bars]


def test_beta_book_warm_start_and_shrinkage() -> None:
    closes = _book_prices(400, seed=20)
    book, est, prior = _book(min_obs=30, prior_stderr=0.3)
    book.warm_start(closes)
    betas = book.snapshot()
    assert betas.end_ms is None  # no live bar yet
    direct = EwmaBeta(6, 2, half_life_bars=50.0)
    for row in log_returns(closes):
        direct.update(row, row[:2], [False, False, True, True, True, True])
    np.testing.assert_allclose(est.loadings, direct.loadings, rtol=1e-10)
    shrunk, _ = vasicek_shrink(direct.loadings, direct.stderr, prior, 0.3)
    np.testing.assert_allclose(betas.loadings[2:5], shrunk[2:5], rtol=1e-10)
    # Shrinkage pulls toward the prior, never past it.
    gap = np.abs(betas.loadings[2:5] - prior[2:5])
    assert np.all(gap <= np.abs(direct.loadings[2:5] - prior[2:5]))


def test_beta_book_winsorizes_a_liquidation_wick() -> None:
    closes = _book_prices(400, seed=22)
    wick = closes.copy()
    wick[300, 2] *= 0.2  # one print 80% down (a liquidation wick), gone by the next bar
    prior = np.zeros((6, 2))

    def alt_loadings(closes: F64, winsorize: bool) -> F64:
        winsorizer = Winsorizer(6, k_sigma=5.0, half_life_bars=50.0) if winsorize else None
        est = EwmaBeta(6, 2, half_life_bars=50.0)
        book = BetaBook(est, BarSampler(6, 60_000, 0), [0, 1], prior, winsorizer=winsorizer)
        book.warm_start(closes)
        return book.snapshot().loadings[2]

    clean = alt_loadings(closes, winsorize=False)
    damage = np.abs(alt_loadings(wick, winsorize=False) - clean).max()
    left = np.abs(alt_loadings(wick, winsorize=True) - clean).max()
    assert left < 0.2 * damage


def test_numpy_warnings_are_not_emitted_for_normal_use() -> None:
    assets, factors = _simulate(50, TRUE_LOADINGS, seed=21)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for make in _estimators(2, intercept=True).values():
            est = make(3)
            _ = est.loadings, est.stderr, est.collinear  # before any data
            est.warm_start(assets, factors)
            _ = est.loadings, est.stderr, est.collinear


def test_beta_book_reuses_its_snapshot_between_bars_only() -> None:
    closes = _book_prices(200, seed=21)
    book, _, _ = _book(min_obs=30)
    book.warm_start(closes[:100])
    first = book.sample(0)
    for i in range(6):
        book.observe(i, float(closes[100, i]), 10_000)
    assert book.sample(30_000) is first  # no bar closed: nothing can have moved
    for i in range(6):
        book.observe(i, float(closes[101, i] * 1.05), 70_000)
    second = book.sample(120_000)  # two bars closed
    assert second is not first and second.end_ms == 120_000
    assert not np.array_equal(second.loadings, first.loadings)
    book.warm_start(closes[100:])
    assert book.sample(130_000) is not second  # history changed the estimate
