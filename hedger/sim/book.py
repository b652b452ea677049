"""Synthetic order books: a few price levels each side of mark, struct-of-arrays.

Prices live as integer tick counts (exact comparisons in matching, no float drift) and are
turned into floats once; sizes are integer lots of ``min_trade_amount``. The best level sits
``half_spread`` from mark, rounded away from mark to the tick; level ``l`` is ``l`` level
steps (whole ticks, at least one) beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(slots=True, eq=False)
class Quotes:
    """(n_instruments, n_levels) arrays; a level with 0 lots is absent."""

    bid_ticks: I64
    ask_ticks: I64
    bid_lots: I64
    ask_lots: I64
    bid_price: F64
    ask_price: F64

    @classmethod
    def empty(cls, n: int, levels: int) -> Quotes:
        def z() -> I64:
            return np.zeros((n, levels), dtype=np.int64)

        return cls(z(), z(), z(), z(), np.zeros((n, levels)), np.zeros((n, levels)))

    @property
    def levels(self) -> int:
        return int(self.bid_ticks.shape[1])


class TickGrid:
    """Per-instrument tick sizes, and how to turn tick counts into exact-looking floats:
    divide by 1/tick when that is an integer (0.0001 -> 10000), so 2350 ticks print as 0.235
    rather than 0.23500000000000001; multiply otherwise (2.5, 0.25)."""

    def __init__(self, tick: F64) -> None:
        inv = 1.0 / tick
        inv_int = np.round(inv)
        self.tick = tick
        self.exact = np.abs(inv - inv_int) < 1e-9 * inv
        self.divisor = np.where(self.exact, inv_int, 1.0)

    def prices(self, ticks: I64) -> F64:
        """Prices of (n, levels) tick counts."""
        out: F64 = np.where(
            self.exact[:, None], ticks / self.divisor[:, None], ticks * self.tick[:, None]
        )
        return out


def ticks_to_price(ticks: I64, tick: F64) -> F64:
    """Prices of tick counts, elementwise (see ``TickGrid``)."""
    grid = TickGrid(np.atleast_1d(tick).ravel())
    flat = np.atleast_1d(ticks).reshape(len(grid.tick), -1)
    out: F64 = grid.prices(flat).reshape(np.shape(ticks))
    return out


def tick_price(ticks: int, tick: float) -> float:
    """The price of one tick count."""
    return float(ticks_to_price(np.array([ticks], dtype=np.int64), np.array([tick]))[0])


def price_to_ticks(price: float, tick: float) -> int | None:
    """The tick count of ``price``, or None if it is not a multiple of ``tick``."""
    n = round(price / tick)
    return n if abs(price / tick - n) < 1e-6 else None


def fill_ladder(
    q: Quotes,
    grid: TickGrid,
    mark: F64,
    half_spread: F64,
    level_step: F64,
    lots: I64,
    live: NDArray[np.bool_],
) -> None:
    """Rebuild every level in place. Inputs are per instrument, in its price units; ``lots``
    is (n, levels); ``live`` False empties an instrument's book. The best level is rounded
    away from mark to the tick; deeper levels follow every ``level_step`` (at least a tick)."""
    tick = grid.tick
    # Rounded to a millionth of a tick first, so 8998200 - 3e-9 ticks floors to 8998200.
    best_bid = np.floor(np.round((mark - half_spread) / tick, 6)).astype(np.int64)
    best_ask = np.ceil(np.round((mark + half_spread) / tick, 6)).astype(np.int64)
    best_ask = np.maximum(best_ask, np.maximum(best_bid, 0) + 1)
    step = np.maximum(np.round(level_step / tick), 1).astype(np.int64)
    offsets = step[:, None] * np.arange(q.levels)
    bid = best_bid[:, None] - offsets
    ask = best_ask[:, None] + offsets
    q.bid_ticks[...] = bid
    q.ask_ticks[...] = ask
    q.bid_lots[...] = np.where(live[:, None] & (bid > 0), lots, 0)
    q.ask_lots[...] = np.where(live[:, None], lots, 0)
    q.bid_price[...] = grid.prices(bid)
    q.ask_price[...] = grid.prices(ask)
