"""From the streamed columns to the core's ``Quotes``: which market row prices which position.

Built once per change of the book (positions or subscriptions), read on every cycle. Every
mapping is an index array, so a cycle's quotes are a handful of ``take`` calls, and the
market rows the exposure depends on are known up front (``inputs``), which is what the
staleness gate checks.

Sources, per book row:
- an asset's price is the ``index`` column of the instrument chosen to price it (a venue's
  index is what its marks, margin and settlement follow); cash assets are 1.0;
- a position listed on a streamed venue takes its own ``mark`` (perps and futures carry a
  basis to the index); spot, balances and declared holdings take their asset's price;
- an option takes its ticker's ``underlying_price`` (Deribit's Greeks use it) and
  ``mark_iv``; an option nobody streams (an OTC holding) takes the asset's price as its
  forward and the configured reference vol, and is flagged as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hedger.core.exposure import Quotes

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]

NO_ROW = -1


@dataclass(slots=True, frozen=True)
class QuoteMap:
    asset_row: IntArray
    """per asset: market row whose index prices it, NO_ROW for cash (1.0)."""
    mark_row: IntArray
    """per book row: market row of its own ticker, NO_ROW to use its asset's price."""
    option_row: IntArray
    """per option (``Book.option_rows`` order): its ticker's row, NO_ROW if not streamed."""
    option_fallback_iv: FloatArray
    """per option: reference vol used when it is not streamed (NaN: none)."""
    inputs: IntArray
    """every market row the exposure reads: the rows staleness is judged on."""

    def quotes(
        self,
        mark: FloatArray,
        index: FloatArray,
        underlying_price: FloatArray,
        mark_iv: FloatArray,
        asset_of: IntArray,
        option_rows: IntArray,
    ) -> Quotes:
        """Quotes aligned with the book; ``mark`` .. ``mark_iv`` are market columns."""
        asset_price = _take_or(index, self.asset_row, 1.0)
        row_price = asset_price[asset_of]
        own = self.mark_row >= 0
        row_mark = np.where(own, mark[np.where(own, self.mark_row, 0)], row_price)
        n_rows = len(asset_of)
        row_underlying = np.full(n_rows, np.nan)
        row_iv = np.full(n_rows, np.nan)
        if len(option_rows):
            streamed = self.option_row >= 0
            safe = np.where(streamed, self.option_row, 0)
            row_underlying[option_rows] = np.where(
                streamed, underlying_price[safe], row_price[option_rows]
            )
            row_iv[option_rows] = np.where(streamed, mark_iv[safe], self.option_fallback_iv)
        return Quotes(
            mark=row_mark,
            underlying_price=row_underlying,
            implied_vol=row_iv,
            asset_price=asset_price,
        )


def _take_or(column: FloatArray, rows: IntArray, missing: float) -> FloatArray:
    present = rows >= 0
    return np.where(present, column[np.where(present, rows, 0)], missing)
