"""A tape: the market as the core sees it, one row per conflated bar.

The live engine wakes once per batch of ticks and reads the latest quote of every input; a
tape stores exactly those reads (asset prices, each book row's mark, options' forward and IV,
the hedge instruments' top of book), so one market path, simulated or replayed, can drive
many strategy runs (estimated vs oracle betas, every sweep combination) without being
simulated or parsed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hedger.core.exposure import Position, Quotes
from hedger.core.policy import HedgeMarket

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(slots=True, frozen=True)
class HedgeVenue:
    """One factor's hedge instrument as the simulated execution fills it."""

    factor: str
    market: HedgeMarket
    taker_fee: float
    """Fraction of traded notional (Deribit futures: 0.05%)."""


@dataclass(slots=True, frozen=True)
class BookLayout:
    """The positions a tape is laid out for: holdings first, then one hedge row per factor
    (quantity 0; the run sets it), so row numbers never change while the hedge trades."""

    positions: tuple[Position, ...]
    assets: tuple[str, ...]
    factors: tuple[str, ...]
    hedge_rows: tuple[int, ...]
    hedges: tuple[HedgeVenue, ...]


@dataclass(slots=True, frozen=True)
class Tape:
    """Bars of quotes aligned with ``layout``: time (T,), per asset (T, A), per row (T, R),
    per factor (T, K). ``true_loadings`` (T, A, K) is known only for simulated markets."""

    layout: BookLayout
    time_ms: IntArray
    asset_price: FloatArray
    mark: FloatArray
    underlying_price: FloatArray
    implied_vol: FloatArray
    hedge_bid: FloatArray
    hedge_ask: FloatArray
    hedge_mark: FloatArray
    true_loadings: FloatArray | None
    input_names: tuple[str, ...]
    """the market rows the exposure depends on (empty for a simulated market)."""
    input_age_s: FloatArray
    """(T, I) seconds since each input was last received, on the receive clock as live
    (inf: never); the core step decides staleness from it."""
    source: str
    updates: int = 0
    """market updates behind the tape (replay: ticker messages stored)."""

    def __len__(self) -> int:
        return len(self.time_ms)

    def quotes(self, bar: int) -> Quotes:
        return Quotes(
            mark=self.mark[bar],
            underlying_price=self.underlying_price[bar],
            implied_vol=self.implied_vol[bar],
            asset_price=self.asset_price[bar],
        )

    def bar_seconds(self) -> float:
        """The median bar length (bars may be irregular in a replay)."""
        if len(self.time_ms) < 2:
            return float("nan")
        return float(np.median(np.diff(self.time_ms))) / 1000.0
