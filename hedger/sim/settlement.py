"""Cash flows that time alone causes: expiry settlement and perpetual funding."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from hedger.sim.accounts import Account, inverse_pnl, linear_pnl, settlement_currency
from hedger.sim.funding import EIGHT_HOURS_S
from hedger.sim.orders import Order, OrderState

if TYPE_CHECKING:
    from hedger.sim.market import Market


def settle_expired(
    m: Market,
    accounts: Iterable[Account],
    open_orders: dict[str, Order],
    now_ms: int,
    touched: set[str],
) -> list[Order]:
    """Cancel open orders on expired instruments and cash-settle their positions: futures at
    the delivery price, options at intrinsic value (the market's expired mark). Returns the
    cancelled orders; adds the accounts whose balances moved to ``touched``."""
    cancelled = []
    for order in list(open_orders.values()):
        if not m.active[order.instrument]:
            order.close(OrderState.CANCELLED, now_ms, "instrument_expired")
            del open_orders[order.order_id]
            cancelled.append(order)
    for acct in accounts:
        for i in [i for i in acct.positions if not m.active[i]]:
            pos = acct.positions.pop(i)
            if pos.size == 0.0:
                continue
            inst = m.universe.instruments[i]
            if inst.is_option:
                payoff = pos.size * float(m.mark_price[i])
            else:
                pnl = inverse_pnl if inst.inverse else linear_pnl
                payoff = pnl(pos.size, pos.average_price, float(m.delivery_price[i]))
            acct.credit(settlement_currency(inst), payoff)
            touched.add(acct.name)
    return cancelled


def accrue_funding(
    m: Market,
    accounts: Iterable[Account],
    since_ms: int,
    now_ms: int,
    touched: set[str],
) -> None:
    """Perps pay funding continuously: longs pay shorts ``rate`` per 8 hours on the
    position's value, here at the current rate and index over the time since ``since_ms``."""
    frac = (now_ms - since_ms) / 1000.0 / EIGHT_HOURS_S
    if frac <= 0:
        return
    for acct in accounts:
        for i, pos in acct.positions.items():
            row = int(m.perp_row[i])
            if row < 0 or pos.size == 0.0:
                continue
            inst = m.universe.instruments[i]
            index = float(m.index_price[i])
            value = pos.size / index if inst.inverse else pos.size * index
            payment = -value * float(m.funding.current[row]) * frac
            pos.funding += payment
            acct.credit(settlement_currency(inst), payment)
            touched.add(acct.name)
