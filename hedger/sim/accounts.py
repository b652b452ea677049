"""Balances, positions, P&L, fees and margin of simulated accounts (Deribit's units).

Units. Inverse perps/futures: size in USD face, P&L in coin, ``size * (1/entry - 1/exit)``;
their average entry is the USD-weighted harmonic mean, which keeps that P&L exact across adds.
USDC-linear perps: size in coin, P&L in USDC, ``size * (exit - entry)``. Options: size in coin;
premium is paid or received in full at the trade (coin for inverse, USDC for linear) and the
position is worth ``size * mark`` in equity; at expiry it pays intrinsic value. Spot trades move
balances only. Everything settles into ``balances[settlement currency]`` at once: realized
futures P&L, premiums, fees, funding.

Margin (simplified, per settlement currency). Equity = balance + futures floating P&L + options
value. Initial margin = ``future_initial`` x notional for futures, and Deribit's standard rule
for short options, ``max(base - OTM/underlying, floor)`` of the underlying plus the mark, per
contract. Open orders reserve what their risk-increasing part would add (futures margin, long
premium, short-option margin; spot buys their quote, spot sells their coin), against the
position at check time and ignoring fees. Available funds = equity - initial margin - reserves;
an order whose reserve exceeds them is refused (10009); orders that only reduce never are.
Nothing is liquidated: maintenance margin is reported, not enforced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hedger.sim.instruments import USDC, SimInstrument
from hedger.sim.scenario import MarginSpec


def inverse_pnl(size_usd: float, entry: float, exit_: float) -> float:
    return size_usd * (1.0 / entry - 1.0 / exit_)


def linear_pnl(size: float, entry: float, exit_: float) -> float:
    return size * (exit_ - entry)


@dataclass(slots=True)
class Position:
    size: float = 0.0  # signed; USD for inverse futures, coin otherwise
    average_price: float = 0.0
    realized_pnl: float = 0.0  # settlement currency; for options informational (cash moved)
    funding: float = 0.0  # cumulative funding received (+) or paid (-)

    def add(self, signed_amount: float, price: float, harmonic: bool) -> float:
        """Apply a fill; return the P&L realized by the part that closed (settlement units:
        coin when ``harmonic`` i.e. inverse futures, else quote per unit x units)."""
        size = self.size
        realized = 0.0
        if size == 0.0 or (size > 0) == (signed_amount > 0):
            new = size + signed_amount
            if harmonic:
                self.average_price = (
                    new / (size / self.average_price + signed_amount / price) if size else price
                )
            else:
                self.average_price = (size * self.average_price + signed_amount * price) / new
            self.size = round(new, 10)
            return realized
        closed = -signed_amount if abs(signed_amount) <= abs(size) else size
        pnl = inverse_pnl if harmonic else linear_pnl
        realized = pnl(closed, self.average_price, price)
        self.realized_pnl += realized
        self.size = round(size + signed_amount, 10)
        if self.size == 0.0:
            self.average_price = 0.0
        elif (self.size > 0) != (size > 0):
            self.average_price = price
        return realized


@dataclass(slots=True)
class Account:
    name: str
    balances: dict[str, float] = field(default_factory=dict)
    positions: dict[int, Position] = field(default_factory=dict)

    def credit(self, currency: str, amount: float) -> None:
        self.balances[currency] = self.balances.get(currency, 0.0) + amount

    def apply_trade(
        self,
        i: int,
        inst: SimInstrument,
        signed_amount: float,
        price: float,
        fee: float,
        fee_currency: str,
    ) -> None:
        self.credit(fee_currency, -fee)
        if inst.is_spot:
            self.credit(inst.base_currency, signed_amount)
            self.credit(USDC, -signed_amount * price)
            return
        settle = settlement_currency(inst)
        pos = self.positions.setdefault(i, Position())
        if inst.is_option:
            self.credit(settle, -signed_amount * price)
            pos.add(signed_amount, price, harmonic=False)
        else:
            self.credit(settle, pos.add(signed_amount, price, harmonic=inst.inverse))


def settlement_currency(inst: SimInstrument) -> str:
    return inst.settlement_currency or USDC


def trade_fee(
    inst: SimInstrument, amount: float, price: float, index: float, maker: bool, option_cap: float
) -> tuple[float, str]:
    """Deribit's fee and its currency: futures/spot a fraction of notional (in coin for
    inverse); options a fraction of the underlying per contract, capped at ``option_cap`` of
    the premium."""
    rate = inst.maker_commission if maker else inst.taker_commission
    if inst.is_option:
        per_contract = rate if inst.inverse else rate * index
        return min(per_contract, option_cap * price) * amount, settlement_currency(inst)
    if inst.inverse:
        return rate * amount / price, settlement_currency(inst)
    return rate * amount * price, USDC


def short_option_margin(
    margin: MarginSpec,
    strike: float,
    is_call: bool,
    underlying: float,
    mark: float,
    inverse: bool,
    maintenance: bool,
) -> float:
    """Margin per short contract, in settlement currency (coin when inverse, else USDC)."""
    otm = max(strike - underlying, 0.0) if is_call else max(underlying - strike, 0.0)
    frac = (
        margin.option_short_maintenance
        if maintenance
        else max(margin.option_short_base - otm / underlying, margin.option_short_floor)
    )
    return frac + mark if inverse else frac * underlying + mark


def future_margin(rate: float, size: float, mark: float, inverse: bool) -> float:
    notional = abs(size) / mark if inverse else abs(size) * mark
    return rate * notional
