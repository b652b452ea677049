"""Option legs and option decisions: what a factor's option hedge wants this cycle.

An :class:`OptionDecision` is one factor's answer (hold, hedge or skip, with why), with the
Greeks before and after its legs; each :class:`OptionLeg` is one limit order the executor can
send as is: the venue's instrument name, side, amount in the venue's amount unit (contracts
of ``contract_size`` coins), and a limit price hint in the venue's price unit, mark plus
(buy) or minus (sell) a configured fraction of the quoted spread, rounded to the tick toward
the mark so the hint never pays more than configured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hedger.core.option_candidates import ContractGreeks, OptionChain
from hedger.core.params import HedgeMode, OptionOrder
from hedger.core.policy import Action, HedgeMarket, Side, round_to_lot, slice_amount


@dataclass(slots=True, frozen=True)
class FactorGreeks:
    """A factor's Greeks: beta-delta in factor units, gamma in USD of beta-delta per 1%
    factor move, vega in USD per vol point (options on the factor's asset)."""

    beta_delta: float
    gamma_usd_per_pct: float
    vega_usd: float

    def plus(self, beta_delta: float, gamma_usd_per_pct: float, vega_usd: float) -> FactorGreeks:
        return FactorGreeks(
            self.beta_delta + beta_delta,
            self.gamma_usd_per_pct + gamma_usd_per_pct,
            self.vega_usd + vega_usd,
        )


@dataclass(slots=True, frozen=True)
class FactorContext:
    """One factor as an option hedge sees it this cycle."""

    factor: str
    index: int
    """the factor's position in the exposure's factors."""
    price: float
    """the factor asset's price, USD."""
    before: FactorGreeks
    """the whole book's Greeks, hedge positions included."""
    delta_lower: float
    delta_upper: float
    """the factor's band around its target, as beta-delta levels (factor units)."""
    perp_beta_delta: float
    """the perp hedge's own beta-delta, factor units."""
    hedge_options_beta_delta: float
    """the beta-delta of the options the hedge holds, factor units."""
    perp_cost_usd_per_unit: float
    """half spread plus fee of trading one factor unit on the perp, USD."""


@dataclass(slots=True, frozen=True)
class GreekMiss:
    """A Greek the legs leave outside its band, and by how much (in its unit)."""

    greek: str
    value: float
    lower: float
    upper: float

    @property
    def by(self) -> float:
        """Distance to the nearest edge (positive)."""
        return self.lower - self.value if self.value < self.lower else self.value - self.upper

    def __str__(self) -> str:
        return (
            f"{self.greek} {self.value:.6g} outside [{self.lower:.6g}, {self.upper:.6g}] "
            f"by {self.by:.6g}"
        )


@dataclass(slots=True, frozen=True)
class OptionLeg:
    """One option order of a decision."""

    factor: str
    symbol: str
    side: Side
    amount: float
    """in the venue's amount unit (contracts of ``contract_size`` coins), a multiple of its
    step, at least its minimum."""
    limit_price: float
    """hint, in the venue's price unit (coin for inverse options, USD(C) for linear ones)."""
    mark: float
    """the venue's mark when decided, in its price unit."""
    premium_usd: float
    """``amount`` at mark, USD (paid to buy, received to sell)."""
    cost_usd: float
    """half spread plus fee, USD."""
    expiry_ms: int
    days_to_expiry: float
    beta_delta_usd: tuple[float, ...]
    """per factor: the signed change of its beta-delta if the leg fills, USD."""
    gamma_usd_per_pct: float
    """signed change of the deciding factor's gamma."""
    vega_usd: float
    """signed change of the deciding factor's vega."""
    total_vega_usd: float
    """signed change of the book's vega (every underlying), USD per vol point."""
    reason: str
    leg: int = 0

    @property
    def signed_amount(self) -> float:
        return self.amount if self.side == "buy" else -self.amount


@dataclass(slots=True, frozen=True)
class OptionDecision:
    """One factor's option hedge this cycle (journaled with its legs as one decision)."""

    factor: str
    mode: HedgeMode
    action: Action
    reason: str
    legs: tuple[OptionLeg, ...] = ()
    before: FactorGreeks | None = None
    after: FactorGreeks | None = None
    """if every leg fills."""
    misses: tuple[GreekMiss, ...] = ()
    """Greeks the legs leave outside their bands (lot rounding, an infeasible band)."""
    solver: str = ""
    """the multi-Greek solve's outcome (``optimal``, ``infeasible``, ``time_limit``...)."""


def limit_price(
    side: Side, mark: float, bid: float, ask: float, spread_fraction: float, tick: float
) -> float:
    """``mark`` plus (buy) or minus (sell) ``spread_fraction`` of the quoted spread, rounded
    to ``tick`` (NaN: no rounding) toward the mark; a one-sided book quotes at mark."""
    spread = ask - bid if bid > 0 and ask > 0 and ask >= bid else 0.0
    offset = spread_fraction * spread
    price = mark + offset if side == "buy" else mark - offset
    if math.isfinite(tick) and tick > 0:
        lots = price / tick
        nearest = round(lots)
        if abs(lots - nearest) > 1e-9:
            nearest = math.floor(lots) if side == "buy" else math.ceil(lots)
        price = float(nearest * tick)
        if price <= 0:
            price = tick
    return price


def round_option_amount(amount: float, step: float, minimum: float) -> float:
    """``|amount|`` toward zero to the lot; 0 below the venue's minimum (sign kept)."""
    rounded = round_to_lot(amount, step)
    return rounded if abs(rounded) >= minimum and rounded != 0 else 0.0


def make_leg(
    chain: OptionChain,
    greeks: ContractGreeks,
    i: int,
    signed_amount: float,
    order: OptionOrder,
    reason: str,
    leg: int,
) -> OptionLeg:
    """The leg trading ``signed_amount`` (already on the lot) of ``greeks`` row ``i``."""
    row = int(greeks.rows[i])
    side: Side = "buy" if signed_amount > 0 else "sell"
    amount = abs(signed_amount)
    tick = math.nan if chain.price_tick is None else float(chain.price_tick[row])
    mark = float(chain.mark[row])
    return OptionLeg(
        factor=greeks.factor,
        symbol=chain.symbols[row],
        side=side,
        amount=amount,
        limit_price=limit_price(
            side, mark, float(chain.bid[row]), float(chain.ask[row]), order.spread_fraction, tick
        ),
        mark=mark,
        premium_usd=amount * float(greeks.premium_usd[i]),
        cost_usd=amount * float(np.nan_to_num(greeks.cost_usd[i], nan=0.0)),
        expiry_ms=int(chain.expiry_ms[row]),
        days_to_expiry=float(greeks.days_to_expiry[i]),
        beta_delta_usd=tuple(float(v) for v in signed_amount * greeks.beta_delta_usd[i]),
        gamma_usd_per_pct=signed_amount * float(greeks.gamma_usd_per_pct[i]),
        vega_usd=signed_amount * float(greeks.vega_usd[i]),
        total_vega_usd=signed_amount * float(greeks.total_vega_usd[i]),
        reason=reason,
        leg=leg,
    )


def greeks_after(
    before: FactorGreeks, legs: tuple[OptionLeg, ...], factor_index: int, factor_price: float
) -> FactorGreeks:
    """``before`` moved by every leg (as if each filled)."""
    return before.plus(
        sum(leg.beta_delta_usd[factor_index] for leg in legs) / factor_price,
        sum(leg.gamma_usd_per_pct for leg in legs),
        sum(leg.vega_usd for leg in legs),
    )


def legs_for(
    chain: OptionChain,
    greeks: ContractGreeks,
    signed_amounts: np.ndarray[tuple[int], np.dtype[np.float64]],
    order: OptionOrder,
    reasons: list[str],
    max_order_amount: float | None,
) -> tuple[OptionLeg, ...]:
    """One leg per non-zero amount (already on the lot), sliced at ``max_order_amount``;
    ``reasons[i]`` says why row ``i`` trades."""
    legs: list[OptionLeg] = []
    for i in np.flatnonzero(signed_amounts).tolist():
        row = int(greeks.rows[i])
        lot = HedgeMarket(
            chain.symbols[row],
            inverse=bool(chain.inverse[row]),
            amount_step=float(chain.amount_step[row]),
            min_amount=float(chain.min_amount[row]),
        )
        # 4.2 - 1.4 is 2.8000000000000003: send what the venue's lot says.
        amount = round_option_amount(float(signed_amounts[i]), lot.amount_step, lot.min_amount)
        if amount == 0.0:
            continue
        for part in slice_amount(abs(amount), lot, max_order_amount):
            signed = math.copysign(part, amount)
            legs.append(make_leg(chain, greeks, i, signed, order, reasons[i], len(legs)))
    return tuple(legs)
