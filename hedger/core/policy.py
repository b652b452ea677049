"""Hedge policy: per factor, compare the beta-delta with its target and band, and size a hedge.

Everything here is in a factor's own units (e.g. BTC) unless a name says ``_usd``:

- target: ``Target(kind="beta", value)`` is ``value * nav_usd`` USD of beta-delta, i.e.
  ``value * nav_usd / factor_price`` factor units; ``kind="beta_delta"`` is ``value`` factor
  units directly;
- deviation = beta-delta - target;
- band half-width H (see :func:`band_half_width`); a deviation with ``|deviation| <= H`` is
  held, a larger one is traded back to the band edge or to the target
  (``HedgePolicy.rebalance_to``).
- band controls (:func:`band_edges`): an asymmetric band has its own half-width below the
  target; hysteresis trades a deviation that left the (outer) band back to the edge of an
  inner band, so a one-tick move past the outer edge cannot trade back and forth; the hedge
  ratio sends that share (0 to 1.5) of the trade back to the rebalance point.

The hedge instrument's own position is already inside the exposure (it is a position of the
book like any other), so the hedge quantity is simply minus the deviation to remove: adding
the current hedge position again would count it twice. Hedging factor k with an instrument on
factor k's own asset moves only factor k's beta-delta (its loading is the unit vector e_k), so
the K factors are decided independently.

Sizes are in the hedge market's *amount* units, the ones ccxt sends: USD for inverse contracts
(Deribit BTC-PERPETUAL, a multiple of its 10 USD ``min_trade_amount``), coin for linear ones.
Lot step and minimum come from the venue's market metadata via the caller, never from
constants here; amounts are rounded toward zero so a hedge never overshoots its aim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from hedger.core.exposure import Exposure
from hedger.core.params import Band, BandKind, Factor, HedgePolicy, Target

# Float products such as deviation * price land on 2.9999999999999996 lots: a lot count this
# close to a whole number (a billionth of a lot, or 1e-12 relative for huge counts) is taken
# as that number, bounding any overshoot far below anything a venue can fill.
_LOT_SLACK = 1e-9
_LOT_SLACK_RELATIVE = 1e-12


class Action(StrEnum):
    HOLD = "hold"
    HEDGE = "hedge"
    SKIP = "skip"


Side = Literal["buy", "sell"]


@dataclass(slots=True, frozen=True)
class HedgeMarket:
    """The hedge instrument of one factor, as the venue trades it.

    ``amount_step`` and ``min_amount`` are ccxt's ``precision.amount`` and
    ``limits.amount.min`` in amount units. ``amount_size`` is what one amount unit is worth:
    USD face for inverse contracts, coin for linear ones (1.0 when ccxt's amount is already USD
    or coin, as on Deribit; ccxt's ``contractSize`` where the venue counts contracts).
    """

    symbol: str
    inverse: bool
    amount_step: float
    min_amount: float
    amount_size: float = 1.0

    def __post_init__(self) -> None:
        for name in ("amount_step", "amount_size"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{self.symbol}: {name} must be finite and > 0, got {value}")
        if not (math.isfinite(self.min_amount) and self.min_amount >= 0):
            raise ValueError(f"{self.symbol}: min_amount must be finite and >= 0")

    def amount_for(self, factor_units: float, factor_price: float) -> float:
        """Signed amount (unrounded) that changes the beta-delta by ``factor_units``."""
        if self.inverse:
            # Inverse face F has coin delta F / price, so F = units * price USD.
            return factor_units * factor_price / self.amount_size
        return factor_units / self.amount_size

    def notional_usd(self, amount: float, factor_price: float) -> float:
        if self.inverse:
            return amount * self.amount_size
        return amount * self.amount_size * factor_price


@dataclass(slots=True, frozen=True)
class HedgeIntent:
    """One order the policy wants; ``leg`` numbers the slices of one decision."""

    factor: str
    symbol: str
    side: Side
    amount: float
    """In the hedge market's amount units (USD for inverse, coin for linear)."""
    notional_usd: float
    reason: str
    deviation: float
    band_half_width: float
    target: float
    leg: int = 0

    @property
    def signed_notional_usd(self) -> float:
        return self.notional_usd if self.side == "buy" else -self.notional_usd


@dataclass(slots=True, frozen=True)
class Decision:
    """Why a factor was or was not hedged this cycle (journaled every cycle)."""

    factor: str
    action: Action
    reason: str
    beta_delta: float = math.nan
    target: float = math.nan
    deviation: float = math.nan
    band_half_width: float = math.nan


@dataclass(slots=True, frozen=True)
class PolicyResult:
    intents: tuple[HedgeIntent, ...]
    decisions: tuple[Decision, ...]


def whalley_wilmott_half_width(
    factor_price: float,
    gamma_per_usd: float,
    round_trip_cost: float,
    risk_aversion: float,
    min_half_width: float = 0.0,
) -> float:
    """Whalley & Wilmott (1997) asymptotic no-trade band for proportional costs.

    ``H = (3/2 * cost * S * Gamma**2 / risk_aversion) ** (1/3)``, in factor units, from
    A. E. Whalley and P. Wilmott, "An asymptotic analysis of an optimal hedging model for
    option pricing with transaction costs", Mathematical Finance 7(3), 1997 (exponential
    utility, small proportional cost). ``S``: factor price in USD; ``Gamma``: |d beta-delta /
    dS| of the whole book in factor units per USD; ``cost``: proportional cost of trading the
    hedge (taker fee + half spread, a fraction); ``risk_aversion``: the utility's absolute risk
    aversion, per USD. The band grows as Gamma**(2/3) and cost**(1/3) and is zero for a book
    without gamma, hence the floor ``min_half_width`` (factor units).
    """
    squared = gamma_per_usd * gamma_per_usd
    raw = math.cbrt(1.5 * round_trip_cost * factor_price * squared / risk_aversion)
    return max(raw, min_half_width)


def band_half_width(
    band: Band,
    factor_price: float,
    nav_usd: float,
    gamma_per_usd: float,
    round_trip_cost: float | None,
) -> float:
    """Half-width in factor units; NaN when the inputs the band needs are missing or bad."""
    match band.kind:
        case BandKind.ABSOLUTE:
            assert band.half_width is not None  # the config validator guarantees it
            return band.half_width if band.unit == "factor" else band.half_width / factor_price
        case BandKind.RELATIVE:
            assert band.half_width is not None
            if not nav_usd > 0:
                return math.nan  # a fraction of a non-positive NAV is no band at all
            return band.half_width * nav_usd / factor_price
        case BandKind.WHALLEY_WILMOTT:
            assert band.risk_aversion is not None
            if round_trip_cost is None or not (
                math.isfinite(round_trip_cost) and round_trip_cost >= 0
            ):
                return math.nan
            return whalley_wilmott_half_width(
                factor_price,
                abs(gamma_per_usd),
                round_trip_cost,
                band.risk_aversion,
                band.min_half_width,
            )


@dataclass(slots=True, frozen=True)
class BandEdges:
    """A factor's band in factor units, as distances from the target (all >= 0): held while
    ``-lower <= deviation <= upper``; once outside, traded back to ``inner_upper`` above or
    ``inner_lower`` below the target (None: no inner band, ``HedgePolicy.rebalance_to``
    decides)."""

    lower: float
    upper: float
    inner_lower: float | None = None
    inner_upper: float | None = None

    def half_width(self, deviation: float) -> float:
        """The half-width on the deviation's side (the upper one at zero)."""
        return self.lower if deviation < 0 else self.upper

    def aim(self, deviation: float, rebalance_to: Literal["edge", "target"]) -> float:
        """Where a deviation outside the band is traded back to, relative to the target."""
        inner = self.inner_lower if deviation < 0 else self.inner_upper
        if inner is not None:
            return math.copysign(inner, deviation)
        if rebalance_to == "target":
            return 0.0
        return math.copysign(self.half_width(deviation), deviation)


def _in_factor_units(value: float, band: Band, factor_price: float, nav_usd: float) -> float:
    if band.kind is BandKind.RELATIVE:
        return value * nav_usd / factor_price
    return value if band.unit == "factor" else value / factor_price


def band_edges(
    band: Band,
    factor_price: float,
    nav_usd: float,
    gamma_per_usd: float,
    round_trip_cost: float | None,
) -> BandEdges:
    """The band's edges in factor units (NaN upper when :func:`band_half_width` is NaN).

    Asymmetric and inner widths apply to absolute and relative bands; a Whalley-Wilmott band
    is symmetric by construction and its optimal policy already trades to its edge, so they
    are ignored there (the config refuses them). An inner width larger than the outer one on
    its side is taken as the outer one.
    """
    upper = band_half_width(band, factor_price, nav_usd, gamma_per_usd, round_trip_cost)
    if band.kind is BandKind.WHALLEY_WILMOTT or not math.isfinite(upper):
        return BandEdges(upper, upper)
    lower = upper
    if band.lower_half_width is not None:
        lower = _in_factor_units(band.lower_half_width, band, factor_price, nav_usd)
    inner_upper = inner_lower = None
    if band.inner_half_width is not None:
        inner_upper = min(
            _in_factor_units(band.inner_half_width, band, factor_price, nav_usd), upper
        )
        inner_lower = min(inner_upper, lower)
    if band.inner_lower_half_width is not None:
        inner_lower = min(
            _in_factor_units(band.inner_lower_half_width, band, factor_price, nav_usd), lower
        )
    return BandEdges(lower, upper, inner_lower, inner_upper)


def target_beta_delta(target: Target, factor_price: float, nav_usd: float) -> float:
    """Target in factor units."""
    if target.kind == "beta_delta":
        return target.value
    if target.value == 0.0:
        return 0.0  # a zero beta target needs no NAV, so a bad NAV must not block it
    return target.value * nav_usd / factor_price


def round_to_lot(amount: float, step: float) -> float:
    """``|amount|`` rounded toward zero to a multiple of ``step`` (sign kept)."""
    exact = abs(amount) / step
    lots = round(exact)
    if abs(exact - lots) > max(_LOT_SLACK, _LOT_SLACK_RELATIVE * exact):
        lots = math.floor(exact)
    # Decimal keeps 3 * 0.1 at 0.3 rather than 0.30000000000000004.
    rounded = float(Decimal(lots) * Decimal(repr(step)))
    return math.copysign(rounded, amount)


def slice_amount(amount: float, market: HedgeMarket, max_order: float | None) -> list[float]:
    """Split a rounded, positive ``amount`` into orders of at most ``max_order``.

    The slice size is ``max_order`` rounded down to the lot; a remainder below the venue
    minimum is dropped (it would be refused), leaving the hedge short by less than a minimum.
    """
    if max_order is None or amount <= max_order:
        return [amount]
    size = round_to_lot(max_order, market.amount_step)
    if size <= 0 or size < market.min_amount:
        return []
    full, rest = divmod(round(amount / market.amount_step), round(size / market.amount_step))
    slices = [size] * int(full)
    remainder = round_to_lot(rest * market.amount_step, market.amount_step)
    if remainder > 0 and remainder >= market.min_amount:
        slices.append(remainder)
    return slices


def _bad(name: str, value: float) -> str:
    return f"bad input: {name}={value!r}"


def decide_factor(
    factor: Factor,
    market: HedgeMarket,
    policy: HedgePolicy,
    *,
    beta_delta_usd: float,
    factor_price: float,
    factor_gamma_usd: float,
    nav_usd: float,
    round_trip_cost: float | None,
    last_hedge_ms: int | None,
    now_ms: int,
) -> tuple[Decision, list[HedgeIntent]]:
    """One factor's decision and intents; see :func:`decide`."""
    name = factor.asset
    if not (math.isfinite(factor_price) and factor_price > 0):
        return Decision(name, Action.SKIP, _bad("factor_price", factor_price)), []
    if not math.isfinite(beta_delta_usd):
        return Decision(name, Action.SKIP, _bad("beta_delta_usd", beta_delta_usd)), []
    if not math.isfinite(factor_gamma_usd):
        return Decision(name, Action.SKIP, _bad("factor_gamma_usd", factor_gamma_usd)), []
    beta_delta = beta_delta_usd / factor_price
    target = target_beta_delta(factor.target, factor_price, nav_usd)
    if not math.isfinite(target):
        return Decision(name, Action.SKIP, _bad("nav_usd", nav_usd), beta_delta), []
    if factor.target.kind == "beta" and factor.target.value != 0.0 and not nav_usd > 0:
        # A beta target on a non-positive NAV flips or vanishes: refuse to chase it.
        return Decision(name, Action.SKIP, _bad("nav_usd", nav_usd), beta_delta, target), []
    deviation = beta_delta - target
    gamma_per_usd = factor_gamma_usd / (factor_price * factor_price)
    edges = band_edges(factor.band, factor_price, nav_usd, gamma_per_usd, round_trip_cost)
    half_width = edges.half_width(deviation)
    if not (math.isfinite(half_width) and math.isfinite(edges.lower)):
        reason = f"bad input for {factor.band.kind.value} band: nav_usd={nav_usd!r}"
        if factor.band.kind is BandKind.WHALLEY_WILMOTT:
            reason = _bad(
                "round_trip_cost", math.nan if round_trip_cost is None else round_trip_cost
            )
        return Decision(name, Action.SKIP, reason, beta_delta, target, deviation), []

    def record(action: Action, reason: str) -> Decision:
        return Decision(name, action, reason, beta_delta, target, deviation, half_width)

    if abs(deviation) <= half_width:
        return record(Action.HOLD, "inside band"), []
    cooldown_ms = policy.cooldown * 1000.0
    if last_hedge_ms is not None and now_ms - last_hedge_ms < cooldown_ms:
        waited = (now_ms - last_hedge_ms) / 1000.0
        return record(Action.SKIP, f"cooldown ({waited:g}s of {policy.cooldown:g}s)"), []

    aim = target + edges.aim(deviation, policy.rebalance_to)
    ratio = factor.hedge_ratio
    # ratio 1 multiplies exactly: the classic hedge is bit-for-bit what it was.
    trade_units = ratio * (aim - beta_delta)
    raw_amount = market.amount_for(trade_units, factor_price)
    amount = abs(round_to_lot(raw_amount, market.amount_step))
    if amount <= 0 or amount < market.min_amount:
        return record(
            Action.SKIP,
            f"below min size ({abs(raw_amount):g} < min {market.min_amount:g} "
            f"step {market.amount_step:g} {market.symbol})",
        ), []
    slices = slice_amount(amount, market, policy.max_order_amount)
    if not slices:
        return record(
            Action.SKIP,
            f"max_order_amount {policy.max_order_amount:g} is below min size "
            f"{market.min_amount:g} of {market.symbol}",
        ), []
    side: Side = "buy" if trade_units > 0 else "sell"
    why = _hedge_reason(deviation, edges, policy.rebalance_to, ratio)
    intents = [
        HedgeIntent(
            factor=name,
            symbol=market.symbol,
            side=side,
            amount=qty,
            notional_usd=market.notional_usd(qty, factor_price),
            reason=why,
            deviation=deviation,
            band_half_width=half_width,
            target=target,
            leg=leg,
        )
        for leg, qty in enumerate(slices)
    ]
    return record(Action.HEDGE, why), intents


def _hedge_reason(deviation: float, edges: BandEdges, rebalance_to: str, hedge_ratio: float) -> str:
    if edges.lower == edges.upper:
        band = f"±{edges.upper:.6g}"
    else:
        band = f"-{edges.lower:.6g}/+{edges.upper:.6g}"
    inner = edges.inner_lower if deviation < 0 else edges.inner_upper
    to = rebalance_to if inner is None else f"inner band {math.copysign(inner, deviation):+.6g}"
    why = f"deviation {deviation:+.6g} outside band {band}, rebalance to {to}"
    if hedge_ratio != 1.0:
        why += f", hedge ratio {hedge_ratio:.0%}"
    return why


def decide(
    exposure: Exposure,
    factors: Sequence[Factor],
    markets: Mapping[str, HedgeMarket],
    policy: HedgePolicy,
    now_ms: int,
    last_hedge_ms: Mapping[str, int] | None = None,
    round_trip_cost: Mapping[str, float] | None = None,
) -> PolicyResult:
    """Per configured factor: hold, skip (with why) or hedge back toward the target.

    ``markets``, ``last_hedge_ms`` (epoch ms of the factor's last hedge) and
    ``round_trip_cost`` (fraction; Whalley-Wilmott bands only) are keyed by factor asset.
    Factors are matched to ``exposure.factors`` by name, so order does not matter.
    """
    last = last_hedge_ms or {}
    costs = round_trip_cost or {}
    intents: list[HedgeIntent] = []
    decisions: list[Decision] = []
    for factor in factors:
        name = factor.asset
        if name not in exposure.factors:
            decisions.append(Decision(name, Action.SKIP, "factor not in exposure"))
            continue
        market = markets.get(name)
        if market is None:
            decisions.append(Decision(name, Action.SKIP, "no hedge market metadata"))
            continue
        k = exposure.factors.index(name)
        decision, factor_intents = decide_factor(
            factor,
            market,
            policy,
            beta_delta_usd=float(exposure.beta_delta_usd[k]),
            factor_price=float(exposure.factor_price[k]),
            factor_gamma_usd=float(exposure.factor_gamma_usd[k, k]),
            nav_usd=float(exposure.nav_usd),
            round_trip_cost=costs.get(name),
            last_hedge_ms=last.get(name),
            now_ms=now_ms,
        )
        decisions.append(decision)
        intents.extend(factor_intents)
    return PolicyResult(tuple(intents), tuple(decisions))
