"""Online estimators of each asset's loadings on K market factors.

Each asset's bar log-return is regressed on the factors' (no intercept: over minutes to
hours an asset's own drift is noise next to its volatility, and an intercept would let a
trending window bend the loading):

    r_asset = b . r_factors + e,     b in R^K

With K = 1 this is the textbook beta, Cov(a, f) / Var(f). Every estimator updates all
assets in one numpy pass per bar: assets x K arrays, K x K matrices per asset (so an asset
missing a bar simply skips it), O(K^2) per asset per bar.

- ``EwmaBeta``: exponentially weighted least squares, one lambda for every moment.
- ``RollingOlsBeta``: least squares over the last W bars, by running sums with a periodic
  exact recompute from the window to kill floating-point drift.
- ``KalmanBeta``: random-walk loadings, Joseph-form covariance update, observation noise
  learned online; exposes each loading's standard error.

Collinear factors (ETH moving almost exactly with BTC over the window) make the K x K
moment matrix near-singular: when its smallest eigenvalue falls below ``collinear_ratio``
times its largest, the estimator flags the asset and solves with a ridge of that size, so
the answer stays finite and shrinks toward zero along the direction the data cannot tell
apart. Factor assets are not regressed: their loading is a unit row by construction.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

COLLINEAR_RATIO = 1e-6


def half_life_to_lambda(half_life_bars: float) -> float:
    if half_life_bars <= 0:
        raise ValueError(f"half-life must be > 0 bars, got {half_life_bars}")
    return float(2.0 ** (-1.0 / half_life_bars))


def half_life_bars(half_life_seconds: float, bar_seconds: float) -> float:
    return half_life_seconds / bar_seconds


def _solve(
    s_ff: FloatArray, s_fa: FloatArray, collinear_ratio: float
) -> tuple[FloatArray, BoolArray, FloatArray]:
    """Batched solve of s_ff b = s_fa (n,K,K) x (n,K), ridge where near-singular.

    Returns loadings, the collinear flag, and the inverse of the matrix actually solved."""
    k = s_ff.shape[-1]
    eig = np.linalg.eigvalsh(s_ff)
    top = np.maximum(eig[:, -1], 1e-300)
    collinear = eig[:, 0] < collinear_ratio * top
    ridge = np.where(collinear, collinear_ratio * top, 0.0)
    matrix = s_ff + ridge[:, None, None] * np.eye(k)
    empty = top <= 1e-300
    matrix[empty] = np.eye(k)
    inverse = cast(FloatArray, np.linalg.inv(matrix))
    loadings: FloatArray = np.einsum("nij,nj->ni", inverse, s_fa)
    loadings[empty] = 0.0
    flag: BoolArray = collinear & ~empty
    return loadings, flag, inverse


class _MomentEstimator:
    """Shared state of the least-squares estimators: per-asset weighted moments."""

    def __init__(self, n_assets: int, k: int, min_obs: int, collinear_ratio: float) -> None:
        self.n_assets, self.k = n_assets, k
        self.min_obs = min_obs
        self.collinear_ratio = collinear_ratio
        self.s_ff = np.zeros((n_assets, k, k))
        self.s_fa = np.zeros((n_assets, k))
        self.s_aa = np.zeros(n_assets)
        self.weight = np.zeros(n_assets)
        self.weight_sq = np.zeros(n_assets)
        self.n_obs = np.zeros(n_assets, dtype=np.int64)
        self._solved: tuple[FloatArray, BoolArray, FloatArray] | None = None

    def _solution(self) -> tuple[FloatArray, BoolArray, FloatArray]:
        if self._solved is None:
            self._solved = _solve(self.s_ff, self.s_fa, self.collinear_ratio)
        return self._solved

    @property
    def loadings(self) -> FloatArray:
        return self._solution()[0]

    @property
    def collinear(self) -> BoolArray:
        return self._solution()[1]

    @property
    def is_warm(self) -> BoolArray:
        return self.n_obs >= self.min_obs

    @property
    def stderr(self) -> FloatArray:
        """Standard error of each loading: residual variance over the effective sample
        size (W^2 / sum w^2), times the diagonal of the inverse moment matrix."""
        loadings, _, inverse = self._solution()
        with np.errstate(invalid="ignore", divide="ignore"):
            residual = np.maximum(self.s_aa - np.einsum("ni,ni->n", loadings, self.s_fa), 0.0)
            n_eff = self.weight**2 / self.weight_sq
            dof = np.maximum(n_eff - self.k, 1.0)
            sigma2 = residual / self.weight * n_eff / dof
            variance = (
                sigma2[:, None]
                * np.diagonal(inverse, axis1=1, axis2=2)
                * self.weight[:, None]
                / n_eff[:, None]
            )
        return np.sqrt(np.where(self.n_obs[:, None] > self.k, variance, np.nan))


def _inputs(
    asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None
) -> tuple[FloatArray, FloatArray, BoolArray]:
    a = np.asarray(asset_returns, np.float64)
    f = np.asarray(factor_returns, np.float64)
    m = np.isfinite(a) & bool(np.isfinite(f).all())
    if mask is not None:
        m &= np.asarray(mask, np.bool_)
    return np.where(m, a, 0.0), np.where(np.isfinite(f), f, 0.0), m


class EwmaBeta(_MomentEstimator):
    def __init__(
        self,
        n_assets: int,
        k: int,
        half_life_bars: float,
        min_obs: int = 30,
        collinear_ratio: float = COLLINEAR_RATIO,
    ) -> None:
        super().__init__(n_assets, k, min_obs, collinear_ratio)
        self.decay = half_life_to_lambda(half_life_bars)

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        a, f, m = _inputs(asset_returns, factor_returns, mask)
        lam = np.where(m, self.decay, 1.0)
        w = m.astype(np.float64)
        self.s_ff *= lam[:, None, None]
        self.s_ff += w[:, None, None] * np.outer(f, f)
        self.s_fa *= lam[:, None]
        self.s_fa += (w * a)[:, None] * f
        self.s_aa *= lam
        self.s_aa += w * a * a
        self.weight *= lam
        self.weight += w
        self.weight_sq *= lam * lam
        self.weight_sq += w
        self.n_obs += m
        self._solved = None


class RollingOlsBeta(_MomentEstimator):
    def __init__(
        self,
        n_assets: int,
        k: int,
        window_bars: int,
        min_obs: int = 30,
        recompute_every: int = 1_000,
        collinear_ratio: float = COLLINEAR_RATIO,
    ) -> None:
        super().__init__(n_assets, k, min_obs, collinear_ratio)
        self.window = window_bars
        self.recompute_every = recompute_every
        self._a = np.zeros((window_bars, n_assets))
        self._f = np.zeros((window_bars, k))
        self._m = np.zeros((window_bars, n_assets), dtype=np.bool_)
        self._next = 0
        self._bars = 0

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        a, f, m = _inputs(asset_returns, factor_returns, mask)
        slot = self._next
        old_w = self._m[slot].astype(np.float64)
        old_a, old_f = self._a[slot], self._f[slot]
        w = m.astype(np.float64)
        self.s_ff += w[:, None, None] * np.outer(f, f) - old_w[:, None, None] * np.outer(
            old_f, old_f
        )
        self.s_fa += (w * a)[:, None] * f - (old_w * old_a)[:, None] * old_f
        self.s_aa += w * a * a - old_w * old_a * old_a
        self.n_obs += m.astype(np.int64) - self._m[slot]
        self._a[slot], self._f[slot], self._m[slot] = a, f, m
        self._next = (slot + 1) % self.window
        self._bars += 1
        if self._bars % self.recompute_every == 0:
            self.recompute()
        self.weight = self.n_obs.astype(np.float64)
        self.weight_sq = self.weight.copy()
        self._solved = None

    def recompute(self) -> None:
        """Exact sums from the window, discarding the running sums' rounding drift."""
        w = self._m.astype(np.float64)
        self.s_ff = np.einsum("tn,ti,tj->nij", w, self._f, self._f)
        self.s_fa = np.einsum("tn,tn,ti->ni", w, self._a, self._f)
        self.s_aa = np.einsum("tn,tn,tn->n", w, self._a, self._a)
        self.n_obs = self._m.sum(axis=0).astype(np.int64)
        self._solved = None


class KalmanBeta:
    """Loadings as a random walk observed through each bar's regression.

    State b_t = b_{t-1} + w (Cov w = q I); observation r_a = f . b + e (Var e = r). The
    covariance update is Joseph's form, (I - k f')P(I - k f')' + r k k', which stays
    symmetric positive semi-definite under rounding. r is learned as an EWMA of the
    squared innovation less its predicted part, floored so it can never vanish.
    """

    def __init__(
        self,
        n_assets: int,
        k: int,
        state_noise: float = 1e-5,
        prior: ArrayLike | None = None,
        prior_variance: float = 1.0,
        obs_noise: float | None = None,
        noise_half_life_bars: float = 100.0,
        min_obs: int = 30,
    ) -> None:
        self.n_assets, self.k = n_assets, k
        self.state_noise = state_noise
        self.min_obs = min_obs
        self.b = (
            np.zeros((n_assets, k))
            if prior is None
            else np.broadcast_to(np.asarray(prior, np.float64), (n_assets, k)).copy()
        )
        self.P = np.broadcast_to(np.eye(k) * prior_variance, (n_assets, k, k)).copy()
        self.fixed_noise = obs_noise
        self.obs_noise = np.full(n_assets, obs_noise if obs_noise is not None else 1e-4)
        self._noise_decay = half_life_to_lambda(noise_half_life_bars)
        self.n_obs = np.zeros(n_assets, dtype=np.int64)

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        a, f, m = _inputs(asset_returns, factor_returns, mask)
        eye = np.eye(self.k)
        predicted_p = self.P + self.state_noise * eye
        pf = predicted_p @ f  # (n, K)
        fpf = pf @ f  # (n,)
        innovation = a - self.b @ f
        s = fpf + self.obs_noise
        gain = pf / s[:, None]
        i_kf = eye - gain[:, :, None] * f[None, None, :]
        joseph = i_kf @ predicted_p @ np.swapaxes(i_kf, 1, 2)
        joseph += self.obs_noise[:, None, None] * gain[:, :, None] * gain[:, None, :]
        self.b = np.where(m[:, None], self.b + gain * innovation[:, None], self.b)
        self.P = np.where(m[:, None, None], joseph, predicted_p)
        if self.fixed_noise is None:
            lam = self._noise_decay
            estimate = np.maximum(innovation**2 - fpf, 1e-12)
            self.obs_noise = np.where(
                m, lam * self.obs_noise + (1 - lam) * estimate, self.obs_noise
            )
        self.n_obs += m

    @property
    def loadings(self) -> FloatArray:
        return self.b.copy()

    @property
    def stderr(self) -> FloatArray:
        return np.sqrt(np.diagonal(self.P, axis1=1, axis2=2))

    @property
    def is_warm(self) -> BoolArray:
        return self.n_obs >= self.min_obs

    @property
    def collinear(self) -> BoolArray:
        eig = np.linalg.eigvalsh(self.P)
        flag: BoolArray = eig[:, -1] > 1e6 * np.maximum(eig[:, 0], 1e-300)
        return flag


# --- shrinkage and robust returns -------------------------------------------------------------


def vasicek_shrink(
    loadings: ArrayLike, stderr: ArrayLike, prior: ArrayLike, prior_stderr: ArrayLike
) -> FloatArray:
    """Precision-weighted blend of the estimate and a prior (Vasicek 1973): the noisier the
    estimate, the more the prior counts. NaN standard errors fall back to the prior."""
    b = np.asarray(loadings, np.float64)
    se2 = np.asarray(stderr, np.float64) ** 2
    prior_b = np.asarray(prior, np.float64)
    prior_se2 = np.asarray(prior_stderr, np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = prior_se2 / (prior_se2 + se2)
    weight = np.where(np.isfinite(weight), weight, 0.0)
    out: FloatArray = weight * b + (1.0 - weight) * prior_b
    return out


class Winsorizer:
    """Clips each series' return at k EWMA standard deviations (liquidation spikes): a
    single print 20 sigmas out must not rewrite a loading estimated over a week."""

    def __init__(
        self, n_series: int, k_sigma: float, half_life_bars: float, warmup: int = 20
    ) -> None:
        self.k_sigma = k_sigma
        self.decay = half_life_to_lambda(half_life_bars)
        self.warmup = warmup
        self.variance = np.zeros(n_series)
        self.n_obs = np.zeros(n_series, dtype=np.int64)

    def clip(self, returns: ArrayLike) -> FloatArray:
        r = np.asarray(returns, np.float64)
        seen = np.isfinite(r)
        bound = self.k_sigma * np.sqrt(self.variance)
        active = seen & (self.n_obs >= self.warmup)
        clipped = np.where(active, np.clip(r, -bound, bound), r)
        update = np.where(seen, clipped, 0.0)
        lam = np.where(seen, np.where(self.n_obs == 0, 0.0, self.decay), 1.0)
        self.variance = lam * self.variance + np.where(seen, 1.0 - lam, 0.0) * update * update
        self.n_obs += seen
        return clipped


def warm_start(
    estimator: EwmaBeta | RollingOlsBeta | KalmanBeta,
    asset_returns: ArrayLike,
    factor_returns: ArrayLike,
) -> None:
    """Feed history (bars x assets, bars x K), e.g. from OHLCV closes via ``log_returns``."""
    a = np.asarray(asset_returns, np.float64)
    f = np.asarray(factor_returns, np.float64)
    if a.shape[0] != f.shape[0]:
        raise ValueError(
            f"history lengths differ: {a.shape[0]} asset bars, {f.shape[0]} factor bars"
        )
    for row in range(a.shape[0]):
        estimator.update(a[row], f[row])
