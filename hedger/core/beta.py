"""Online estimators of every asset's loadings on K market factors.

Each asset's bar log-return is regressed on the factors' (``hedger.core.bars`` makes them):

    r_asset = b . r_factors + e,        b in R^K, loadings B shaped (n_assets, K)

With K = 1 this is the textbook beta. Every estimator shares one interface (``BetaEstimator``)
and updates all assets in one numpy pass per bar: each bar's factor outer product f f' is
formed once and broadcast over the assets; each asset still keeps its own K x K moments,
because an asset masked out of a bar (no price yet, bad data) must leave that bar out of its
factor moments as well as its cross-moments, or its loading is biased toward zero. Cost is
O(K^2) per asset per bar (O(K^3) for Kalman's covariance; K <= 3).

- ``EwmaBeta``: exponentially weighted least squares, one lambda for every moment.
- ``RollingOlsBeta``: least squares over the last W bars by running sums, with a periodic
  exact recompute from the window to discard floating-point drift.
- ``KalmanBeta``: random-walk loadings, Joseph-form covariance, observation noise fixed or
  learned online; each loading's standard error is sqrt(diag P).

Choices that hold throughout:

- No intercept by default: over minutes to hours an asset's drift is noise next to its
  volatility, and fitting one lets a trending window bend the loading (the zero-mean
  convention of RiskMetrics). ``intercept=True`` (EWMA, rolling) centres the moments
  instead, which makes K = 1 exactly Cov(a, f) / Var(f).
- Memory runs in clock bars: a masked asset's moments still age (EWMA) or slide out of the
  window (rolling), so data from before an outage weighs less once it ends. Its loadings and
  standard errors do not change while it is masked (both moments age alike); Kalman's
  uncertainty grows by q per bar meanwhile, as the random walk says it should.
- Collinear factors (ETH moving almost exactly with BTC over the window): when the factor
  moment matrix's condition number exceeds ``max_condition``, the asset is flagged and its
  eigenvalues are floored at largest / ``max_condition`` (a pseudo-inverse with a floor).
  The floor only binds past the threshold, so the answer is continuous in the data; the
  loading along the direction the data cannot tell apart shrinks toward zero, while the
  identified combination (e.g. b_BTC + b_ETH) is kept. Never a NaN or an infinity.
- Standard errors are the regression formula with the effective sample size
  n_eff = (sum w)^2 / sum w^2:  se_j^2 = RSS_w / (n_eff - p) * [(X'WX)^-1]_jj, p the number
  of regressors. This is OLS's RSS / (n - p) (X'X)^-1 for unit weights, and the sandwich
  variance of weighted least squares for homoskedastic errors when X'W^2X is approximated
  by (sum w^2 / sum w) X'WX. Infinite until the sample has more than p effective bars.

Factor assets are not regressed: ``with_factor_rows`` sets their unit rows, and ``BetaBook``
masks them out of the estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hedger.core.bars import BarSampler, Winsorizer, log_returns

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]

MAX_CONDITION = 1e4
"""Condition number of the factor moments past which factors count as collinear: the
loading along the weakest direction is then sqrt(1e4) = 100 times noisier than along the
strongest, so the split between the factors carries no information (BTC/ETH at a
correlation of 0.9 have a condition number of about 19)."""

_TINY = float(np.finfo(np.float64).tiny)
_R_FLOOR = 0.01
"""Kalman's learned noise is never below 1% of the asset's own mean squared return: a fit
is never claimed better than R^2 = 99%, so a pegged asset that stopped moving cannot lock
the filter into trusting every bar once it moves again."""


def half_life_to_lambda(half_life_bars: float) -> float:
    """Per-bar decay whose weights halve every ``half_life_bars``: 2 ** (-1 / half-life)."""
    if half_life_bars <= 0:
        raise ValueError(f"half-life must be > 0 bars, got {half_life_bars}")
    return float(2.0 ** (-1.0 / half_life_bars))


def ewma_effective_bars(half_life_bars: float) -> float:
    """Effective sample size (sum w)^2 / sum w^2 of an EWMA with a long history:
    (1 + lambda) / (1 - lambda), about 2.9 half-lives."""
    lam = half_life_to_lambda(half_life_bars)
    return (1.0 + lam) / (1.0 - lam)


def min_half_life_bars(min_obs: int) -> float:
    """The shortest half-life whose EWMA ever holds ``min_obs`` effective bars: below it an
    estimate called warm after ``min_obs`` bars still rests on fewer (30 -> 10.4 bars).
    Inverts ``ewma_effective_bars``: lambda = (m - 1) / (m + 1)."""
    if min_obs < 2:
        raise ValueError(f"min_obs must be >= 2, got {min_obs}")
    return float(np.log(2.0) / np.log((min_obs + 1.0) / (min_obs - 1.0)))


def to_bars(seconds: float, bar_seconds: float) -> float:
    """A duration (half-life, window) in bars of ``bar_seconds``."""
    if bar_seconds <= 0:
        raise ValueError(f"bar length must be > 0 seconds, got {bar_seconds}")
    return seconds / bar_seconds


class BetaEstimator(Protocol):
    """What every estimator offers; shapes are (n_assets, K) unless said otherwise."""

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        """One bar: asset returns (n,), factor returns (K,), mask (n,) of assets to use.
        NaN asset returns are masked out; a NaN factor return skips the bar for all."""

    def warm_start(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        """Many bars, oldest first: (T, n), (T, K), mask (T, n); same result as T updates."""

    @property
    def loadings(self) -> FloatArray: ...
    @property
    def stderr(self) -> FloatArray: ...
    @property
    def n_obs(self) -> IntArray:
        """(n,) bars observed: ever (EWMA, Kalman) or in the window (rolling)."""

    @property
    def is_warm(self) -> BoolArray:
        """(n,) at least ``min_obs`` observations."""

    @property
    def collinear(self) -> BoolArray:
        """(n,) factor moments ill-conditioned: the answer is regularised."""


# --- inputs ----------------------------------------------------------------------------------


def _bar(
    asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None, n: int, k: int
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """One bar's returns with masked entries zeroed (so they add nothing), and the mask."""
    a = np.asarray(asset_returns, dtype=np.float64)
    f = np.asarray(factor_returns, dtype=np.float64)
    if a.shape != (n,) or f.shape != (k,):
        raise ValueError(
            f"expected {n} asset returns and {k} factor returns, got shapes {a.shape}, {f.shape}"
        )
    m = np.isfinite(a)
    if not np.isfinite(f).all():
        m[:] = False
        f = np.zeros(k)
    if mask is not None:
        m &= np.asarray(mask, dtype=np.bool_)
    return np.where(m, a, 0.0), f, m


def _history(
    asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None, n: int, k: int
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """``_bar`` for T bars at once: (T, n), (T, K), (T, n)."""
    a = np.asarray(asset_returns, dtype=np.float64)
    f = np.asarray(factor_returns, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != n or f.shape != (a.shape[0], k):
        raise ValueError(
            f"expected history shaped (T, {n}) and (T, {k}), got {a.shape} and {f.shape}"
        )
    factors_ok = np.asarray(np.isfinite(f).all(axis=1))
    m = np.isfinite(a) & factors_ok[:, None]
    if mask is not None:
        m &= np.asarray(mask, dtype=np.bool_)
    return np.where(m, a, 0.0), np.where(factors_ok[:, None], f, 0.0), m


def _outer_rows(f: FloatArray) -> FloatArray:
    """(T, K) -> (T, K*K): each bar's f f', flattened for one matrix product over bars."""
    t, k = f.shape
    return (f[:, :, None] * f[:, None, :]).reshape(t, k * k)


# --- least squares from weighted moments ------------------------------------------------------


@dataclass(slots=True, frozen=True)
class _Fit:
    loadings: FloatArray
    stderr: FloatArray
    collinear: BoolArray


def _solve(
    s_ff: FloatArray,
    s_fa: FloatArray,
    s_aa: FloatArray,
    n_eff: FloatArray,
    n_obs: IntArray,
    n_params: int,
    max_condition: float,
) -> _Fit:
    """Batched least squares from moments: s_ff (n,K,K) b = s_fa (n,K), eigenvalue floor
    past ``max_condition`` (see the module docstring)."""
    eigval, eigvec = np.linalg.eigh(s_ff)
    top = eigval[:, -1]
    floor = top / max_condition
    collinear = (n_obs > 0) & (eigval[:, 0] <= floor)
    # No factor variation at all (or no data): nothing to regress on, loadings 0.
    moved = top > _TINY
    inv_eig = np.where(
        moved[:, None], 1.0 / np.maximum(eigval, np.maximum(floor, _TINY)[:, None]), 0.0
    )
    inverse = (eigvec * inv_eig[:, None, :]) @ np.swapaxes(eigvec, 1, 2)
    loadings: FloatArray = np.einsum("nij,nj->ni", inverse, s_fa)
    # RSS of these loadings (not s_aa - b.s_fa, which holds only for the unfloored solution).
    fitted = np.einsum("ni,nij,nj->n", loadings, s_ff, loadings)
    rss = np.maximum(s_aa - 2.0 * np.einsum("ni,ni->n", loadings, s_fa) + fitted, 0.0)
    dof = n_eff - n_params
    known = (dof > 0) & moved
    sigma2 = np.where(known, rss / np.where(known, dof, 1.0), 0.0)
    stderr: FloatArray = np.sqrt(sigma2[:, None] * np.diagonal(inverse, axis1=1, axis2=2))
    stderr[~known] = np.inf
    for array in (loadings, stderr, collinear):
        array.flags.writeable = False  # cached and shared between callers
    return _Fit(loadings, stderr, collinear)


class _LeastSquares:
    """Per-asset weighted moments and their solution; subclasses decide the weights."""

    def __init__(
        self, n_assets: int, k: int, intercept: bool, min_obs: int, max_condition: float
    ) -> None:
        if k < 1:
            raise ValueError(f"need at least one factor, got k={k}")
        if max_condition <= 1:
            raise ValueError(f"max_condition must be > 1, got {max_condition}")
        self.n_assets, self.k = n_assets, k
        self.intercept = intercept
        self.min_obs = min_obs
        self.max_condition = max_condition
        self._s_ff = np.zeros((n_assets, k, k))  # sum w f f'
        self._s_fa = np.zeros((n_assets, k))  # sum w a f
        self._s_aa = np.zeros(n_assets)  # sum w a^2
        self._s_f = np.zeros((n_assets, k))  # sum w f   (intercept only)
        self._s_a = np.zeros(n_assets)  # sum w a     (intercept only)
        self._n_obs: IntArray = np.zeros(n_assets, dtype=np.int64)
        self._fit: _Fit | None = None

    def _weights(self) -> tuple[FloatArray, FloatArray]:
        """(sum w, sum w^2) per asset."""
        raise NotImplementedError

    def _solution(self) -> _Fit:
        if self._fit is None:
            s_ff, s_fa, s_aa = self._s_ff, self._s_fa, self._s_aa
            w, w2 = self._weights()
            with np.errstate(divide="ignore", invalid="ignore"):
                inv_w = np.where(w > 0, 1.0 / w, 0.0)
                n_eff = np.where(w2 > 0, w * w / w2, 0.0)
            if self.intercept:
                # Centring on the weighted means is least squares with an intercept.
                s_ff = s_ff - self._s_f[:, :, None] * (self._s_f * inv_w[:, None])[:, None, :]
                s_fa = s_fa - self._s_f * (self._s_a * inv_w)[:, None]
                s_aa = s_aa - self._s_a * self._s_a * inv_w
            params = self.k + int(self.intercept)
            self._fit = _solve(s_ff, s_fa, s_aa, n_eff, self._n_obs, params, self.max_condition)
        return self._fit

    @property
    def loadings(self) -> FloatArray:
        """(n, K), read-only; 0 for an asset with no data yet."""
        return self._solution().loadings

    @property
    def stderr(self) -> FloatArray:
        """(n, K), read-only; inf until an asset has more than p effective observations."""
        return self._solution().stderr

    @property
    def collinear(self) -> BoolArray:
        return self._solution().collinear

    @property
    def n_obs(self) -> IntArray:
        return self._n_obs.copy()

    @property
    def is_warm(self) -> BoolArray:
        return self._n_obs >= self.min_obs

    @property
    def n_eff(self) -> FloatArray:
        """(n,) effective sample size (sum w)^2 / sum w^2."""
        w, w2 = self._weights()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(w2 > 0, w * w / w2, 0.0)


class EwmaBeta(_LeastSquares):
    """Exponentially weighted least squares: every moment decays by the same lambda per bar,
    so the loadings are exactly WLS with weights lambda^age (age in bars)."""

    def __init__(
        self,
        n_assets: int,
        k: int,
        half_life_bars: float,
        *,
        intercept: bool = False,
        min_obs: int = 30,
        max_condition: float = MAX_CONDITION,
    ) -> None:
        super().__init__(n_assets, k, intercept, min_obs, max_condition)
        self.decay = half_life_to_lambda(half_life_bars)
        self._w = np.zeros(n_assets)
        self._w2 = np.zeros(n_assets)

    def _weights(self) -> tuple[FloatArray, FloatArray]:
        return self._w, self._w2

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        a, f, m = _bar(asset_returns, factor_returns, mask, self.n_assets, self.k)
        lam = self.decay
        w = m.astype(np.float64)
        self._s_ff *= lam
        self._s_ff += np.multiply.outer(w, np.outer(f, f))
        self._s_fa *= lam
        self._s_fa += np.multiply.outer(a, f)  # a is 0 where masked
        self._s_aa *= lam
        self._s_aa += a * a
        if self.intercept:
            self._s_f *= lam
            self._s_f += np.multiply.outer(w, f)
            self._s_a *= lam
            self._s_a += a
        self._w *= lam
        self._w += w
        self._w2 *= lam * lam
        self._w2 += w
        self._n_obs += m
        self._fit = None

    def warm_start(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        """Closed form: the T bars' weighted sums in a few matrix products, then the state
        already held ages by lambda^T. Equal to T calls of ``update`` up to rounding."""
        a, f, m = _history(asset_returns, factor_returns, mask, self.n_assets, self.k)
        t = a.shape[0]
        age = np.arange(t - 1, -1, -1, dtype=np.float64)
        weight = self.decay**age  # (T,)
        w = m * weight[:, None]  # (T, n)
        wa = a * weight[:, None]
        old, old2 = self.decay**t, self.decay ** (2 * t)
        self._s_ff = old * self._s_ff + (w.T @ _outer_rows(f)).reshape(self._s_ff.shape)
        self._s_fa = old * self._s_fa + wa.T @ f
        self._s_aa = old * self._s_aa + np.einsum("tn,tn->n", wa, a)
        if self.intercept:
            self._s_f = old * self._s_f + w.T @ f
            self._s_a = old * self._s_a + wa.sum(axis=0)
        self._w = old * self._w + w.sum(axis=0)
        self._w2 = old2 * self._w2 + (m * (weight * weight)[:, None]).sum(axis=0)
        self._n_obs += m.sum(axis=0)
        self._fit = None


class RollingOlsBeta(_LeastSquares):
    """Ordinary least squares over the last ``window_bars`` bars (clock bars: a masked bar
    holds its slot). Running sums add the new bar and subtract the one leaving the window;
    every ``recompute_every`` bars they are rebuilt from the window, because add-and-subtract
    accumulates rounding error (badly so after a spike leaves the window)."""

    def __init__(
        self,
        n_assets: int,
        k: int,
        window_bars: int,
        *,
        recompute_every: int | None = None,
        intercept: bool = False,
        min_obs: int = 30,
        max_condition: float = MAX_CONDITION,
    ) -> None:
        super().__init__(n_assets, k, intercept, min_obs, max_condition)
        if window_bars < 1:
            raise ValueError(f"window must hold at least one bar, got {window_bars}")
        self.window_bars = window_bars
        self.recompute_every = recompute_every or window_bars
        self._ring_a = np.zeros((window_bars, n_assets))
        self._ring_f = np.zeros((window_bars, k))
        self._ring_m = np.zeros((window_bars, n_assets), dtype=np.bool_)
        self._next = 0  # slot of the oldest bar, overwritten next
        self._since_recompute = 0

    def _weights(self) -> tuple[FloatArray, FloatArray]:
        w = self._n_obs.astype(np.float64)
        return w, w

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        a, f, m = _bar(asset_returns, factor_returns, mask, self.n_assets, self.k)
        slot = self._next
        old_a, old_f, old_m = self._ring_a[slot], self._ring_f[slot], self._ring_m[slot]
        w, old_w = m.astype(np.float64), old_m.astype(np.float64)
        self._s_ff += np.multiply.outer(w, np.outer(f, f))
        self._s_ff -= np.multiply.outer(old_w, np.outer(old_f, old_f))
        self._s_fa += np.multiply.outer(a, f)
        self._s_fa -= np.multiply.outer(old_a, old_f)
        self._s_aa += a * a - old_a * old_a
        if self.intercept:
            self._s_f += np.multiply.outer(w, f)
            self._s_f -= np.multiply.outer(old_w, old_f)
            self._s_a += a - old_a
        self._n_obs += m
        self._n_obs -= old_m
        self._ring_a[slot], self._ring_f[slot], self._ring_m[slot] = a, f, m
        self._next = (slot + 1) % self.window_bars
        self._since_recompute += 1
        if self._since_recompute >= self.recompute_every:
            self.recompute()
        else:
            empty = self._n_obs == 0
            if empty.any():  # an empty window is exactly zero, not rounding residue
                for s in (self._s_ff, self._s_fa, self._s_aa, self._s_f, self._s_a):
                    s[empty] = 0.0
        self._fit = None

    def warm_start(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        """The last ``window_bars`` rows go straight into the window, then one recompute."""
        a, f, m = _history(asset_returns, factor_returns, mask, self.n_assets, self.k)
        t = min(a.shape[0], self.window_bars)
        slots = (self._next + np.arange(t)) % self.window_bars
        self._ring_a[slots], self._ring_f[slots], self._ring_m[slots] = a[-t:], f[-t:], m[-t:]
        self._next = (self._next + t) % self.window_bars
        self.recompute()

    def recompute(self) -> None:
        """Exact sums from the window, discarding the running sums' rounding drift."""
        w = self._ring_m.astype(np.float64)
        a, f = self._ring_a, self._ring_f
        self._s_ff = (w.T @ _outer_rows(f)).reshape(self._s_ff.shape)
        self._s_fa = a.T @ f
        self._s_aa = np.einsum("tn,tn->n", a, a)
        self._s_f = w.T @ f
        self._s_a = a.sum(axis=0)
        self._n_obs = self._ring_m.sum(axis=0, dtype=np.int64)
        self._since_recompute = 0
        self._fit = None


class KalmanBeta:
    """Loadings as a random walk observed through each bar's regression.

    State b_t = b_{t-1} + w, Cov w = q I (q per bar, scalar or per asset); observation
    r_a = f . b + e, Var e = r. The covariance update is Joseph's form,
    P = (I - g f') P (I - g f')' + r g g', which stays symmetric positive semi-definite under
    rounding where the short form P - g f' P does not.

    ``r=None`` learns r per asset as in West and Harrison's DLM with unknown observational
    variance (*Bayesian Forecasting and Dynamic Models*, 1997), discounted by lambda from
    ``noise_half_life_bars``: P is r times a scaled covariance C and is rescaled whenever r
    is revised; r is the debiased discounted mean of the scaled surprise
    innovation^2 / (f'C f + 1), so its seed (the first bar's surprise) is forgotten after
    one bar, and the prior covariance is read at that first scale. The current bar enters
    before its gain: an outlier raises its own noise and moves the loadings less.
    Rejected: covariance matching, r = EWMA(innovation^2 - f'P f), goes negative under a
    diffuse prior, a floor then trusts one bar and P collapses around a wrong loading;
    updating r alone, without rescaling P, needs many half-lives to forget a high seed.

    Collinearity is judged as for the other estimators, on an EWMA of the factor moments
    with the same half-life; the filter itself cannot blow up (its gain divides by
    f'P f + r > 0), it stays uncertain along the direction the data cannot resolve.
    No intercept: the state would be a drift with a noise scale unlike the loadings'.
    """

    def __init__(
        self,
        n_assets: int,
        k: int,
        q: float | ArrayLike,
        *,
        r: float | ArrayLike | None = None,
        prior: ArrayLike = 0.0,
        prior_stderr: ArrayLike = 1.0,
        noise_half_life_bars: float = 100.0,
        min_obs: int = 30,
        max_condition: float = MAX_CONDITION,
    ) -> None:
        self.n_assets, self.k = n_assets, k
        self.q = np.broadcast_to(np.asarray(q, dtype=np.float64), (n_assets,)).copy()
        if (self.q < 0).any():
            raise ValueError("state noise q must be >= 0")
        self.learn_r = r is None
        self._r = np.full(n_assets, np.nan)  # learned: unknown until an asset's first bar
        if r is not None:
            self._r = np.broadcast_to(np.asarray(r, dtype=np.float64), (n_assets,)).copy()
            if not (self._r > 0).all():
                raise ValueError("observation noise r must be > 0")
        self.min_obs = min_obs
        self.max_condition = max_condition
        self._b = np.broadcast_to(np.asarray(prior, dtype=np.float64), (n_assets, k)).copy()
        se = np.broadcast_to(np.asarray(prior_stderr, dtype=np.float64), (n_assets, k))
        self._P = np.zeros((n_assets, k, k))
        self._P[:, np.arange(k), np.arange(k)] = se * se
        self._eye = np.eye(k)
        self._decay = half_life_to_lambda(noise_half_life_bars)
        self._noise_sum = np.zeros(n_assets)  # discounted sums: scaled surprises, a^2, bars
        self._a2_sum = np.zeros(n_assets)
        self._noise_count = np.zeros(n_assets)
        self._factor_moments = np.zeros((k, k))
        self._n_obs: IntArray = np.zeros(n_assets, dtype=np.int64)

    def update(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        a, f, m = _bar(asset_returns, factor_returns, mask, self.n_assets, self.k)
        p = self._P + self.q[:, None, None] * self._eye  # every asset's loadings drift
        pf = p @ f  # (n, K)
        fpf = pf @ f  # (n,)
        innovation = a - self._b @ f
        lam = self._decay
        if self.learn_r:
            nu2 = innovation * innovation
            prev = np.where(self._r > 0, self._r, np.maximum(nu2, _TINY))  # seed: 1st surprise
            self._noise_sum = lam * self._noise_sum + np.where(m, nu2 / (fpf / prev + 1.0), 0.0)
            self._a2_sum = lam * self._a2_sum + a * a  # a is 0 where masked
            self._noise_count = lam * self._noise_count + m
            with np.errstate(divide="ignore", invalid="ignore"):
                count = self._noise_count
                new = np.maximum(self._noise_sum / count, _R_FLOOR * self._a2_sum / count)
                new = np.where(m, np.maximum(new, _TINY), prev)
            scale = new / prev  # P is r times a scaled covariance: revise them together
            p *= scale[:, None, None]
            pf *= scale[:, None]
            fpf = fpf * scale
            self._r = np.where(m, new, self._r)
        r = np.where(self._r > 0, self._r, _TINY)  # unseeded: f and the surprise were 0
        gain = pf / (fpf + r)[:, None]
        i_gf = self._eye - gain[:, :, None] * f
        joseph = i_gf @ p @ np.swapaxes(i_gf, 1, 2)
        joseph += r[:, None, None] * gain[:, :, None] * gain[:, None, :]
        joseph += np.swapaxes(joseph, 1, 2)  # symmetrise: matmul rounding is not symmetric
        joseph *= 0.5
        self._b = np.where(m[:, None], self._b + gain * innovation[:, None], self._b)
        self._P = np.where(m[:, None, None], joseph, p)
        self._factor_moments = lam * self._factor_moments + (1.0 - lam) * np.outer(f, f)
        self._n_obs += m

    def warm_start(
        self, asset_returns: ArrayLike, factor_returns: ArrayLike, mask: ArrayLike | None = None
    ) -> None:
        """Filtering is sequential: one update per bar (T in the thousands is fine)."""
        a, f, m = _history(asset_returns, factor_returns, mask, self.n_assets, self.k)
        for t in range(a.shape[0]):
            self.update(a[t], f[t], m[t])

    @property
    def loadings(self) -> FloatArray:
        return self._b.copy()

    @property
    def stderr(self) -> FloatArray:
        return np.sqrt(np.diagonal(self._P, axis1=1, axis2=2))

    @property
    def covariance(self) -> FloatArray:
        """(n, K, K) posterior covariance P of each asset's loadings."""
        return self._P.copy()

    @property
    def observation_noise(self) -> FloatArray:
        """(n,) r in use, per bar (learned or fixed)."""
        return self._r.copy()

    @property
    def n_obs(self) -> IntArray:
        return self._n_obs.copy()

    @property
    def is_warm(self) -> BoolArray:
        return self._n_obs >= self.min_obs

    @property
    def collinear(self) -> BoolArray:
        eig = np.linalg.eigvalsh(self._factor_moments)
        ill = bool(eig[0] <= eig[-1] / self.max_condition)
        return (self._n_obs > 0) & ill


# --- shrinkage, factor rows -------------------------------------------------------------------


def vasicek_shrink(
    loadings: ArrayLike, stderr: ArrayLike, prior: ArrayLike, prior_stderr: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Precision-weighted blend of each loading with a prior (Vasicek 1973), elementwise:

        posterior = (prior / s_p^2 + b / se^2) / (1 / s_p^2 + 1 / se^2)

    so the noisier the estimate, the more the prior counts. Returns the posterior loadings
    and their standard errors (1 / s_p^2 + 1 / se^2)^-1/2. An infinite or NaN ``stderr``
    (no estimate yet) gives the prior; an infinite ``prior_stderr`` gives the estimate."""
    b = np.asarray(loadings, dtype=np.float64)
    se2 = np.asarray(stderr, dtype=np.float64) ** 2
    b0 = np.asarray(prior, dtype=np.float64)
    s02 = np.asarray(prior_stderr, dtype=np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        # The weight form avoids inf/inf at the extremes: w = s_p^2 / (s_p^2 + se^2).
        w = 1.0 / (1.0 + se2 / s02)
        w = np.where(np.isfinite(w), w, 0.0)
        posterior: FloatArray = w * b + (1.0 - w) * b0
        # w se^2 = (1 - w) s_p^2; use whichever factor is finite.
        variance = np.where(w > 0.5, w * se2, (1.0 - w) * s02)
    return posterior, np.sqrt(variance)


def with_factor_rows(
    matrix: ArrayLike, factor_assets: ArrayLike, diagonal: float = 1.0
) -> FloatArray:
    """A copy of an (n, K) matrix with each factor's own asset row set to the unit vector
    e_k (a factor's loading on itself is 1 and 0 on the others, by construction); pass
    ``diagonal=0`` for their standard errors (rows of zeros). ``factor_assets[k]`` is factor
    k's row, as in ``hedger.core.exposure``."""
    out = np.array(matrix, dtype=np.float64)
    rows = np.asarray(factor_assets, dtype=np.intp)
    out[rows] = diagonal * np.eye(out.shape[1])[: len(rows)]
    return out


# --- the book: quotes in, loadings out ---------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Betas:
    """One snapshot of the loadings, as exposure and the guards read them; (n, K) / (n,)."""

    end_ms: int | None  # end of the last bar folded in; None before the first
    loadings: FloatArray  # estimate (shrunk if configured); the prior until warm; unit rows
    stderr: FloatArray  # of ``loadings``: the prior's until warm (inf if none); 0 for factors
    is_warm: BoolArray
    collinear: BoolArray


class BetaBook:
    """Bar sampler -> winsorizer -> estimator -> shrinkage -> prior fallback -> factor rows.

    One sampler over every asset, factors included: a factor's bar return is its column of
    the same bar, so asset and factor returns always share their intervals. Factor assets
    are masked out of the estimator (their rows are unit by construction).
    """

    def __init__(
        self,
        estimator: BetaEstimator,
        sampler: BarSampler,
        factor_assets: ArrayLike,
        prior: ArrayLike,
        *,
        prior_stderr: float | None = None,
        winsorizer: Winsorizer | None = None,
    ) -> None:
        self.estimator = estimator
        self.sampler = sampler
        self.factor_assets = np.asarray(factor_assets, dtype=np.intp)
        n, k = sampler.n_series, len(self.factor_assets)
        self.prior = np.broadcast_to(np.asarray(prior, dtype=np.float64), (n, k)).copy()
        self.prior_stderr = prior_stderr
        self.winsorizer = winsorizer
        self._regressed = np.ones(n, dtype=np.bool_)
        self._regressed[self.factor_assets] = False
        self._end_ms: int | None = None
        self._snapshot: Betas | None = None

    def observe(self, index: int | ArrayLike, mid: float | ArrayLike, ts_ms: int) -> None:
        self.sampler.observe(index, mid, ts_ms)

    def sample(self, now_ms: int) -> Betas:
        """Fold in every bar completed by ``now_ms`` and return the loadings.

        The loadings only move when a bar closes, so between bars (most engine cycles)
        the last snapshot is returned as is.
        """
        rolled = False
        for bar in self.sampler.roll(now_ms):
            self._update(bar.log_return)
            self._end_ms = bar.end_ms
            rolled = True
        if rolled or self._snapshot is None:
            self._snapshot = self.snapshot()
        return self._snapshot

    def fold_returns(self, log_return: ArrayLike, end_ms: int) -> Betas:
        """Fold in one bar of log-returns the caller made (n,) (NaN: not observed, masked;
        never a zero return), as ``sample`` does with the sampler's bars; the loadings after
        it. A backtest on candles drives the book this way, gaps and all."""
        self._update(np.asarray(log_return, dtype=np.float64))
        self._end_ms = end_ms
        self._snapshot = self.snapshot()
        return self._snapshot

    def warm_start(self, closes: ArrayLike) -> None:
        """History of closes (T, n), e.g. OHLCV fetched by the shell, oldest first."""
        returns = log_returns(closes)
        if self.winsorizer is not None:
            returns = np.array([self.winsorizer.clip(row) for row in returns]).reshape(
                returns.shape
            )
        mask = np.broadcast_to(self._regressed, returns.shape)
        self.estimator.warm_start(returns, returns[:, self.factor_assets], mask)
        self._snapshot = None

    def _update(self, returns: FloatArray) -> None:
        if self.winsorizer is not None:
            returns = self.winsorizer.clip(returns)
        self.estimator.update(returns, returns[self.factor_assets], self._regressed)

    def snapshot(self) -> Betas:
        est = self.estimator
        warm = est.is_warm
        loadings, stderr = est.loadings, est.stderr
        prior_se = np.inf if self.prior_stderr is None else self.prior_stderr
        if self.prior_stderr is not None:
            loadings, stderr = vasicek_shrink(loadings, stderr, self.prior, prior_se)
        loadings = np.where(warm[:, None], loadings, self.prior)
        stderr = np.where(warm[:, None], stderr, prior_se)
        rows = self.factor_assets
        warm = warm.copy()
        warm[rows] = True
        collinear = est.collinear.copy()
        collinear[rows] = False
        return Betas(
            end_ms=self._end_ms,
            loadings=with_factor_rows(loadings, rows),
            stderr=with_factor_rows(stderr, rows, diagonal=0.0),
            is_warm=warm,
            collinear=collinear,
        )
