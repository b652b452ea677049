"""Synchronous bars from asynchronous quotes: the input every beta estimator needs.

Quotes arrive whenever each venue sends them; a regression of one asset's returns on the
factors' needs returns over the *same* intervals. Sampling each series' last mid at or
before a fixed clock boundary (previous-tick sampling) gives that: returns that straddle the
same boundaries, so a stale or slow series does not bias the covariance toward zero (the
Epps effect) the way tick-by-tick pairing would. A series with no new tick in a bar returns
0 against its last price (its price did not change as far as anyone saw); before its first
price it has no return (NaN), and estimators mask it out.

The bar length is a trade-off: short bars react fast but carry more microstructure noise and
asynchrony across venues; one minute to one hour suits crypto majors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


@dataclass(slots=True, frozen=True)
class Bar:
    end_ms: int
    log_return: FloatArray
    """per series; NaN where the series had no price at the start or the end of the bar."""


class BarSampler:
    """Previous-tick sampler on a fixed clock. Pure: time comes in with every call."""

    def __init__(self, n_series: int, bar_ms: int, start_ms: int) -> None:
        if bar_ms <= 0:
            raise ValueError(f"bar_ms must be > 0, got {bar_ms}")
        self.bar_ms = bar_ms
        self.bar_end_ms = start_ms + bar_ms
        self._last_mid = np.full(n_series, np.nan)
        self._last_close = np.full(n_series, np.nan)
        self._completed: list[Bar] = []

    def observe(self, index: ArrayLike, mid: ArrayLike, ts_ms: int) -> None:
        """Quotes at ``ts_ms``; a tick on a boundary belongs to the bar it closes."""
        if ts_ms > self.bar_end_ms:
            self._close_through(ts_ms - 1)
        mids = np.asarray(mid, np.float64)
        valid = np.isfinite(mids) & (mids > 0)
        idx = np.asarray(index)
        if valid.all():
            self._last_mid[idx] = mids
        else:
            self._last_mid[np.broadcast_to(idx, mids.shape)[valid]] = mids[valid]

    def roll(self, now_ms: int) -> list[Bar]:
        """Every bar completed by ``now_ms``, oldest first (each returned once)."""
        self._close_through(now_ms)
        completed, self._completed = self._completed, []
        return completed

    def _close_through(self, now_ms: int) -> None:
        while self.bar_end_ms <= now_ms:
            close = self._last_mid.copy()
            with np.errstate(invalid="ignore", divide="ignore"):
                log_return = np.log(close / self._last_close)
            self._completed.append(Bar(self.bar_end_ms, log_return))
            self._last_close = close
            self.bar_end_ms += self.bar_ms


def log_returns(closes: ArrayLike) -> FloatArray:
    """Bar log-returns from closes shaped (bars, series): one row fewer, NaN where missing."""
    prices = np.asarray(closes, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.diff(np.log(np.where(prices > 0, prices, np.nan)), axis=0)
    return out
