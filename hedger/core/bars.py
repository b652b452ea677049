"""Clean synchronous bar returns from asynchronous quotes: the input every beta estimator needs.

A regression of one asset's returns on the factors' needs returns over the *same* intervals,
but quotes arrive whenever each venue sends them. ``BarSampler`` samples each series on a
fixed clock with the previous-tick rule: a bar's close is the last mid observed at or before
its end boundary (a tick exactly on the boundary closes that bar).

- Why previous-tick on a fixed clock: pairing tick-by-tick returns, or sampling each series
  on its own ticks, makes returns of different series straddle different intervals; the
  cross-products then miss part of the co-movement and betas shrink toward zero as the bar
  shortens (the Epps effect; non-synchronous trading, Scholes and Williams 1977). Every
  series sampled at the same boundaries shares the same intervals, so the bias is limited to
  the staleness of the last tick within a bar.
- A series with no new tick in a bar has a return of 0 against its last price: as far as
  anyone saw, its price did not change. Before its first price it has no return (NaN), and
  the estimators mask it out; its first return is the bar *after* the one it first priced in.
- The bar length is a trade-off: short bars react fast but carry more microstructure noise
  and cross-venue asynchrony; one minute to one hour suits crypto majors.

``Winsorizer`` clips returns at k EWMA sigmas, so one liquidation print does not rewrite a
loading estimated over a week. ``log_returns`` turns OHLCV closes into the same returns for
a warm start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(slots=True, frozen=True)
class Bar:
    end_ms: int
    log_return: FloatArray
    """per series, shape (n_series,); NaN where the series had no price at the bar's start."""


class BarSampler:
    """Previous-tick sampler on a fixed clock. Pure: time comes in with every call."""

    def __init__(self, n_series: int, bar_ms: int, start_ms: int) -> None:
        if bar_ms <= 0:
            raise ValueError(f"bar_ms must be > 0, got {bar_ms}")
        self.n_series = n_series
        self.bar_ms = bar_ms
        self.start_ms = start_ms
        # The bar ending at start_ms is closed like any other, to open the first bar on the
        # last mid at or before start_ms, but it is never handed out.
        self.bar_end_ms = start_ms
        """end of the bar now open: ticks at or before it belong to it."""
        self._mid = np.full(n_series, np.nan)
        self._tick_ms = np.full(n_series, np.iinfo(np.int64).min, dtype=np.int64)
        self._open = np.full(n_series, np.nan)
        self._completed: list[Bar] = []

    def observe(self, index: int | ArrayLike, mid: float | ArrayLike, ts_ms: int) -> None:
        """Mids of the series ``index`` seen at ``ts_ms`` (vectorised over ``index``).

        ``ts_ms`` is the clock: a tick after the open bar's end first closes that bar (and
        any later empty ones). Non-positive or non-finite mids are ignored, and so is a tick
        older than the series' last one (feeds can reorder). Ticks at or before ``start_ms``
        open the first bar; a late tick (stamped in a bar already closed) counts in the open
        bar, since a bar handed out is never revised and returns must still add up.
        """
        if ts_ms > self.bar_end_ms:
            self._close_through(ts_ms - 1)
        if isinstance(index, int | np.integer) and isinstance(mid, float | int):
            # One quote per call is the feed's hot path: no arrays built for it.
            if math.isfinite(mid) and mid > 0 and self._tick_ms[index] <= ts_ms:
                self._mid[index] = mid
                self._tick_ms[index] = ts_ms
            return
        idx = np.asarray(index, dtype=np.intp)
        mids = np.broadcast_to(np.asarray(mid, dtype=np.float64), idx.shape)
        keep = np.isfinite(mids) & (mids > 0) & (self._tick_ms[idx] <= ts_ms)
        if not keep.all():
            idx, mids = idx[keep], mids[keep]
        self._mid[idx] = mids
        self._tick_ms[idx] = ts_ms

    def roll(self, now_ms: int) -> list[Bar]:
        """Every bar completed by ``now_ms``, oldest first, each handed out once."""
        self._close_through(now_ms)
        completed, self._completed = self._completed, []
        return completed

    def _close_through(self, now_ms: int) -> None:
        while self.bar_end_ms <= now_ms:
            close = self._mid.copy()
            if self.bar_end_ms > self.start_ms:
                with np.errstate(invalid="ignore", divide="ignore"):
                    log_return = np.log(close / self._open)
                self._completed.append(Bar(self.bar_end_ms, log_return))
            self._open = close
            self.bar_end_ms += self.bar_ms


def log_returns(closes: ArrayLike) -> FloatArray:
    """Bar log-returns from closes shaped (bars, series): one row fewer, NaN where a close is
    missing or not positive (at either end of the bar)."""
    prices = np.asarray(closes, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.diff(np.log(np.where(prices > 0, prices, np.nan)), axis=0)
    return out


class Winsorizer:
    """Clips each series' return at ``k_sigma`` EWMA standard deviations.

    The scale is an EWMA of squared *clipped* returns (zero mean: at bar horizons the drift
    is noise), so a spike cannot inflate the very scale that judges it. Two choices keep a
    quiet series from being frozen: a zero return (no tick in the bar) does not update the
    scale, since it says nothing about volatility; and nothing is clipped until the series
    has ``warmup_bars`` non-zero returns and a positive scale. NaN stays NaN.
    """

    def __init__(
        self, n_series: int, k_sigma: float, half_life_bars: float, warmup_bars: int = 20
    ) -> None:
        if k_sigma <= 0:
            raise ValueError(f"k_sigma must be > 0, got {k_sigma}")
        if half_life_bars <= 0:
            raise ValueError(f"half_life_bars must be > 0, got {half_life_bars}")
        self.k_sigma = k_sigma
        self.decay = 2.0 ** (-1.0 / half_life_bars)
        self.warmup_bars = warmup_bars
        self.variance = np.zeros(n_series)
        self.n_obs: IntArray = np.zeros(n_series, dtype=np.int64)

    def clip(self, returns: ArrayLike) -> FloatArray:
        r = np.asarray(returns, dtype=np.float64)
        bound = self.k_sigma * np.sqrt(self.variance)
        active = (self.n_obs >= self.warmup_bars) & (bound > 0)
        clipped: FloatArray = np.where(active, np.clip(r, -bound, bound), r)
        moved = np.isfinite(clipped) & (clipped != 0)
        # The first move sets the scale outright (decay 0), later ones blend in.
        lam = np.where(moved, np.where(self.n_obs == 0, 0.0, self.decay), 1.0)
        self.variance = lam * self.variance + (1.0 - lam) * np.where(moved, clipped, 0.0) ** 2
        self.n_obs += moved
        return clipped
