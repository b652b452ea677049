"""Each factor's option hedge this cycle, by its mode: the step's one call into options.

For every factor whose ``OptionHedge.mode`` is not ``perp``, :func:`decide_option_hedges`
builds the factor's context (its Greeks from the exposure, its band as beta-delta levels,
its perp position and the hedge's own options), its candidates from the chain, and asks the
mode (:mod:`hedger.core.protective_put`, :mod:`hedger.core.multi_greek`) for a decision.
The step then passes the legs through ``guards.check_options`` and lets the perp policy
trim the beta-delta the approved legs leave (:func:`beta_delta_shift_usd`).

A factor whose option legs were approved is not decided again until
``max(OptionOrder.timeout, HedgePolicy.cooldown)`` has passed: its legs are still being
worked, and a second decision on a book that does not show them yet would buy twice. The
time of the last approved option decision is kept in the step's ``last_hedge_ms`` under
:func:`option_key`, so every driver that keeps that mapping keeps this cooldown too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from hedger.core.exposure import Book, Exposure, Quotes
from hedger.core.multi_greek import decide_multi_greek, greeks_outside
from hedger.core.option_candidates import (
    Candidates,
    FactorFrame,
    OptionChain,
    book_vega_by_asset,
    contract_greeks,
    option_candidates,
)
from hedger.core.option_legs import FactorContext, FactorGreeks, OptionDecision, OptionLeg
from hedger.core.params import (
    Factor,
    HedgeMode,
    HedgePolicy,
    OptionHedge,
    OptionLimits,
    OptionOrder,
)
from hedger.core.policy import Action, HedgeMarket, band_edges, target_beta_delta
from hedger.core.protective_put import decide_protective_put

FloatArray = NDArray[np.float64]


def option_key(factor: str) -> str:
    """The ``last_hedge_ms`` key of a factor's last approved option decision."""
    return f"{factor}:options"


def solve_key(factor: str) -> str:
    """The ``last_hedge_ms`` key of a factor's last multi-Greek solve that sent nothing."""
    return f"{factor}:options-unsolved"


UNSOLVED = frozenset({"infeasible", "time_limit", "no_candidates", "error"})
"""Solver outcomes after which the next solve waits ``MultiGreek.retry_after_s``."""


@dataclass(slots=True, frozen=True)
class OptionHedgeParams:
    """What the option hedges are told (``CycleParams`` carries them)."""

    hedges: Mapping[str, OptionHedge]
    """per factor asset; a factor not in it hedges with the perp only."""
    order: OptionOrder = field(default_factory=OptionOrder)
    limits: OptionLimits = field(default_factory=OptionLimits)

    def mode(self, factor: str) -> HedgeMode:
        hedge = self.hedges.get(factor)
        return HedgeMode.PERP if hedge is None else hedge.mode

    @property
    def active(self) -> bool:
        """Any factor hedged with options."""
        return any(h.mode is not HedgeMode.PERP for h in self.hedges.values())


@dataclass(slots=True, frozen=True)
class OptionHedgeInputs:
    exposure: Exposure
    book: Book
    quotes: Quotes
    chain: OptionChain | None
    hedge_amount: FloatArray
    """per factor: the perp hedge position, in its amount units (NaN: unknown)."""
    round_trip_cost: Mapping[str, float]
    now_ms: int
    stale_after_s: float = math.inf


def factor_greeks(exposure: Exposure, vega_by_asset: FloatArray, k: int) -> FactorGreeks:
    """Factor ``k``'s Greeks: beta-delta (factor units), gamma (USD per 1%), and the vega of
    the options on its own asset."""
    name = exposure.factors[k]
    vega = float(vega_by_asset[exposure.assets.index(name)])
    return FactorGreeks(float(exposure.beta_delta[k]), float(exposure.gamma_usd_per_pct[k]), vega)


def decide_option_hedges(
    inputs: OptionHedgeInputs,
    factors: Sequence[Factor],
    markets: Mapping[str, HedgeMarket],
    policy: HedgePolicy,
    params: OptionHedgeParams,
    last_hedge_ms: Mapping[str, int],
) -> tuple[OptionDecision, ...]:
    """One decision per factor not in ``perp`` mode, in ``factors`` order."""
    exposure = inputs.exposure
    frame = FactorFrame(exposure.assets, exposure.loadings, exposure.factors, exposure.factor_price)
    vega_by_asset = book_vega_by_asset(inputs.book, inputs.quotes, inputs.now_ms)
    wait_ms = 1000.0 * max(params.order.timeout, policy.cooldown)
    out: list[OptionDecision] = []
    for j, factor in enumerate(factors):
        hedge = params.hedges.get(factor.asset)
        if hedge is None or hedge.mode is HedgeMode.PERP:
            continue

        def skip(reason: str, mode: HedgeMode = hedge.mode, name: str = factor.asset) -> None:
            out.append(OptionDecision(name, mode, Action.SKIP, reason))

        if inputs.chain is None:
            skip("no option chain")
            continue
        if factor.asset not in exposure.factors:
            skip("factor not in exposure")
            continue
        last = last_hedge_ms.get(option_key(factor.asset))
        if last is not None and inputs.now_ms - last < wait_ms:
            waited = (inputs.now_ms - last) / 1000.0
            skip(f"option legs still worked ({waited:g}s of {wait_ms / 1000.0:g}s)")
            continue
        unsolved = last_hedge_ms.get(solve_key(factor.asset))
        retry_ms = 1000.0 * hedge.multi_greek.retry_after_s
        if (
            hedge.mode is HedgeMode.MULTI_GREEK
            and unsolved is not None
            and inputs.now_ms - unsolved < retry_ms
        ):
            waited = (inputs.now_ms - unsolved) / 1000.0
            skip(f"last solve sent nothing ({waited:g}s ago, retry after {retry_ms / 1000.0:g}s)")
            continue
        ctx = _context(inputs, frame, vega_by_asset, factor, j, markets, policy)
        if isinstance(ctx, str):
            skip(ctx)
            continue
        out.append(_decide(inputs, frame, ctx, hedge, params, inputs.chain))
    return tuple(out)


def _context(
    inputs: OptionHedgeInputs,
    frame: FactorFrame,
    vega_by_asset: FloatArray,
    factor: Factor,
    j: int,
    markets: Mapping[str, HedgeMarket],
    policy: HedgePolicy,
) -> FactorContext | str:
    """The factor's context, or why there is none."""
    exposure = inputs.exposure
    k = exposure.factors.index(factor.asset)
    price = float(exposure.factor_price[k])
    market = markets.get(factor.asset)
    if market is None:
        return "no hedge market metadata"
    if not (math.isfinite(price) and price > 0):
        return f"bad input: factor_price={price!r}"
    amount = float(inputs.hedge_amount[j])
    if not math.isfinite(amount):
        return f"hedge position of {market.symbol} unknown"
    before = factor_greeks(exposure, vega_by_asset, k)
    if not all(map(math.isfinite, (before.beta_delta, before.gamma_usd_per_pct, before.vega_usd))):
        return "bad input: non-finite Greeks"
    nav = float(exposure.nav_usd)
    target = target_beta_delta(factor.target, price, nav)
    gamma_per_usd = float(exposure.factor_gamma_usd[k, k]) / (price * price)
    cost = inputs.round_trip_cost.get(factor.asset)
    edges = band_edges(factor.band, price, nav, gamma_per_usd, cost)
    if not (math.isfinite(target) and math.isfinite(edges.lower) and math.isfinite(edges.upper)):
        return f"bad input for the band or target: nav_usd={nav!r}"
    chain = inputs.chain
    assert chain is not None
    held = live_held_rows(chain, inputs.now_ms)
    held_delta = 0.0
    if len(held):
        greeks = contract_greeks(chain, held, frame, factor.asset, inputs.now_ms)
        held_delta = float(np.nansum(chain.held()[held] * greeks.beta_delta))
    return FactorContext(
        factor=factor.asset,
        index=k,
        price=price,
        before=before,
        delta_lower=target - edges.lower,
        delta_upper=target + edges.upper,
        perp_beta_delta=market.notional_usd(amount, price) / price,
        hedge_options_beta_delta=held_delta,
        perp_cost_usd_per_unit=(cost if cost is not None and math.isfinite(cost) else 0.0) * price,
    )


def _decide(
    inputs: OptionHedgeInputs,
    frame: FactorFrame,
    ctx: FactorContext,
    hedge: OptionHedge,
    params: OptionHedgeParams,
    chain: OptionChain,
) -> OptionDecision:
    max_order = params.limits.max_contracts_per_order
    if hedge.mode is HedgeMode.PROTECTIVE_PUT:
        # Every listed put in the window may be the one nearest the tenor and moneyness.
        flt = replace(hedge.candidates, max_candidates=max(len(chain), 1))
        candidates = option_candidates(
            chain, flt, frame, ctx.factor, inputs.now_ms, inputs.stale_after_s, "put"
        )
        held_rows = live_held_rows(chain, inputs.now_ms)
        held = contract_greeks(chain, held_rows, frame, ctx.factor, inputs.now_ms)
        own = np.array([chain.underlying[int(r)] == ctx.factor for r in held_rows], np.bool_)
        return decide_protective_put(
            ctx,
            hedge.protective_put,
            candidates,
            held.take(np.flatnonzero(own)),
            chain,
            params.order,
            max_order,
        )
    if not greeks_outside(hedge.multi_greek, ctx.before):
        # Inside the bands the decision is a hold: spare the chain's Greeks.
        candidates = Candidates(
            contract_greeks(chain, np.zeros(0, np.intp), frame, ctx.factor, 0), ()
        )
    else:
        candidates = option_candidates(
            chain, hedge.candidates, frame, ctx.factor, inputs.now_ms, inputs.stale_after_s
        )
    return decide_multi_greek(ctx, hedge.multi_greek, candidates, chain, params.order, max_order)


def live_held_rows(chain: OptionChain, now_ms: int) -> NDArray[np.intp]:
    """Rows the hedge holds that have not expired (an expired option is settled by the
    venue: nothing is left to trade or roll)."""
    rows: NDArray[np.intp] = np.flatnonzero((chain.held() != 0) & (chain.expiry_ms > now_ms))
    return rows


def beta_delta_shift_usd(legs: Sequence[OptionLeg], n_factors: int) -> FloatArray:
    """Per factor: how much ``legs`` move the beta-delta if they fill, USD."""
    shift = np.zeros(n_factors)
    for leg in legs:
        shift += np.asarray(leg.beta_delta_usd, dtype=np.float64)
    return shift
