"""Account valuation against the market: equity, margin, order reserves, position rows.

The rules are described in ``hedger.sim.accounts``; this module applies them to the market's
current marks. All amounts are in the settlement currency asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from hedger.sim.accounts import (
    Account,
    Position,
    future_margin,
    inverse_pnl,
    linear_pnl,
    settlement_currency,
    short_option_margin,
)
from hedger.sim.orders import Order
from hedger.sim.scenario import MarginSpec

if TYPE_CHECKING:
    from hedger.sim.market import Market


@dataclass(slots=True, frozen=True)
class AccountSummary:
    currency: str
    balance: float
    equity: float
    initial_margin: float
    maintenance_margin: float
    open_orders_margin: float
    available_funds: float
    futures_pl: float
    options_value: float
    options_pl: float

    def to_deribit(self) -> dict[str, object]:
        """``private/get_account_summary`` (ccxt: free = available_funds, used =
        maintenance_margin, total = equity)."""
        out: dict[str, object] = asdict(self)
        out |= {
            "margin_balance": self.equity,
            "available_withdrawal_funds": max(self.available_funds, 0.0),
            "total_pl": self.futures_pl + self.options_pl,
            "session_upl": self.futures_pl + self.options_pl,
        }
        return out


def reducible(pos: Position | None, is_buy: bool) -> float:
    """How much of an order in this direction would reduce the position."""
    if pos is None or pos.size == 0.0 or (pos.size > 0) == is_buy:
        return 0.0
    return abs(pos.size)


def reserve(
    m: Market,
    margin: MarginSpec,
    account: Account,
    i: int,
    is_buy: bool,
    amount: float,
    price: float,
) -> tuple[str, float]:
    """Currency and amount an order of ``amount`` at ``price`` holds back from available
    funds: what its risk-increasing part adds (see ``hedger.sim.accounts``)."""
    inst = m.universe.instruments[i]
    if inst.is_spot:
        return ("USDC", amount * price) if is_buy else (inst.base_currency, amount)
    settle = settlement_currency(inst)
    increase = max(0.0, amount - reducible(account.positions.get(i), is_buy))
    if increase == 0.0:
        return settle, 0.0
    if not inst.is_option:
        return settle, future_margin(margin.future_initial, increase, price, inst.inverse)
    if is_buy:
        return settle, increase * price
    # A short's premium is received, so only the margin fraction is held, not the mark.
    per = short_option_margin(
        margin,
        float(m.universe.strike[i]),
        inst.is_call,
        float(m.underlying_price[i]),
        0.0,
        inst.inverse,
        False,
    )
    return settle, increase * per


def _position_risk(
    m: Market, margin: MarginSpec, i: int, pos: Position
) -> tuple[float, float, float]:
    """Floating P&L (or option value), initial and maintenance margin of one position."""
    inst = m.universe.instruments[i]
    mark = float(m.mark_price[i])
    if inst.is_option:
        if pos.size >= 0:
            return pos.size * mark, 0.0, 0.0
        args = (
            float(m.universe.strike[i]),
            inst.is_call,
            float(m.underlying_price[i]),
            mark,
            inst.inverse,
        )
        im = short_option_margin(margin, *args, maintenance=False)
        mm = short_option_margin(margin, *args, maintenance=True)
        return pos.size * mark, -pos.size * im, -pos.size * mm
    pnl = inverse_pnl if inst.inverse else linear_pnl
    upl = pnl(pos.size, pos.average_price, mark) if pos.size else 0.0
    im = future_margin(margin.future_initial, pos.size, mark, inst.inverse)
    mm = future_margin(margin.future_maintenance, pos.size, mark, inst.inverse)
    return upl, im, mm


def summary(
    m: Market, margin: MarginSpec, account: Account, open_orders: Iterable[Order], currency: str
) -> AccountSummary:
    futures_pl = options_value = options_pl = im = mm = 0.0
    for i, pos in account.positions.items():
        inst = m.universe.instruments[i]
        if settlement_currency(inst) != currency or pos.size == 0.0:
            continue
        value, p_im, p_mm = _position_risk(m, margin, i, pos)
        im += p_im
        mm += p_mm
        if inst.is_option:
            options_value += value
            options_pl += pos.size * (float(m.mark_price[i]) - pos.average_price)
        else:
            futures_pl += value
    held = 0.0
    for o in open_orders:
        ccy, amount = reserve(
            m, margin, account, o.instrument, o.is_buy, o.remaining_lots * o.lot, o.price or 0.0
        )
        held += amount if ccy == currency else 0.0
    balance = account.balances.get(currency, 0.0)
    equity = balance + futures_pl + options_value
    return AccountSummary(
        currency=currency,
        balance=balance,
        equity=equity,
        initial_margin=im,
        maintenance_margin=mm,
        open_orders_margin=held,
        available_funds=equity - im - held,
        futures_pl=futures_pl,
        options_value=options_value,
        options_pl=options_pl,
    )


def position_row(m: Market, margin: MarginSpec, i: int, pos: Position) -> dict[str, object]:
    """One row of ``private/get_positions``."""
    inst = m.universe.instruments[i]
    mark = float(m.mark_price[i])
    value, im, mm = _position_risk(m, margin, i, pos)
    if inst.is_option:
        floating = pos.size * (mark - pos.average_price)
        delta = pos.size * float(m.delta[m.option_row[i]])
    else:
        floating = value
        delta = pos.size / mark if inst.inverse else pos.size
    size_currency = pos.size / mark if inst.inverse and not inst.is_option else pos.size
    row: dict[str, object] = {
        "instrument_name": inst.instrument_name,
        "kind": inst.kind,
        "direction": "zero" if pos.size == 0 else ("buy" if pos.size > 0 else "sell"),
        "size": pos.size,
        "size_currency": size_currency,
        "average_price": pos.average_price,
        "mark_price": mark,
        "index_price": float(m.index_price[i]),
        "settlement_price": float(m.settlement_price[i]),
        "floating_profit_loss": floating,
        "realized_profit_loss": pos.realized_pnl,
        "total_profit_loss": floating + pos.realized_pnl,
        "initial_margin": im,
        "maintenance_margin": mm,
        "delta": delta,
        "leverage": round(1 / margin.future_initial) if not inst.is_option else 0,
        "estimated_liquidation_price": None,
    }
    if inst.is_perpetual:
        row["realized_funding"] = pos.funding
    return row
