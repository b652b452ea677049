"""Closing a factor's hedge position on purpose (an operator's ``flatten``).

The orders that take the hedge instrument's position to zero, sliced like any hedge, so
they pass the same guards and executor. Rounding is toward zero: a remainder below one lot
stays open rather than flipping the position.
"""

from __future__ import annotations

import math

from hedger.core.policy import HedgeIntent, HedgeMarket, Side, round_to_lot, slice_amount

FLATTEN_REASON = "flatten by operator"


def flatten_intents(
    factor: str,
    market: HedgeMarket,
    held_amount: float,
    price: float,
    max_order_amount: float | None,
    reason: str = FLATTEN_REASON,
) -> list[HedgeIntent]:
    """``held_amount`` is the signed position in the venue's amount unit; ``price`` the hedge
    instrument's mark (USD per factor unit), for the notional the guards check."""
    if not (math.isfinite(held_amount) and math.isfinite(price) and price > 0):
        raise ValueError(f"{factor}: cannot flatten {held_amount!r} at price {price!r}")
    amount = abs(round_to_lot(held_amount, market.amount_step))
    if amount <= 0 or amount < market.min_amount:
        return []
    side: Side = "sell" if held_amount > 0 else "buy"
    return [
        HedgeIntent(
            factor=factor,
            symbol=market.symbol,
            side=side,
            amount=size,
            notional_usd=market.notional_usd(size, price),
            reason=reason,
            deviation=math.nan,
            band_half_width=math.nan,
            target=0.0,
            leg=leg,
        )
        for leg, size in enumerate(slice_amount(amount, market, max_order_amount))
    ]
