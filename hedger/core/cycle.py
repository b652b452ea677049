"""The whole decision of one cycle, as one function both drivers call.

``step(state, inputs, params) -> (state, outputs)``: the live engine builds ``inputs`` from
its market states and positions at each wake-up; the backtest builds them from a tape bar.
Everything that decides whether and how much to hedge is computed here, once: staleness
(ages on the receive clock, whichever driver measured them), plausibility of the inputs,
the betas, the exposure, each hedge's round-trip cost, the cooldown, the policy and the
pre-trade guards with their breach policy. What a driver does with the approved intents
(send them through the executor, or fill them against the tape) is its own business; what
it learns back (an order sent, an error) reaches the guards through ``guards.record_*``.

Option hedges (``CycleParams.options``, a mode per factor) are decided before the perp: their
legs pass ``guards.check_options``, and the perp policy then decides on the beta-delta the
approved legs leave (as if they filled), so the perp only trims the residual. With every
factor in ``perp`` mode (the default) none of this runs and the step is what it was.

``CycleState`` holds the estimator (``BetaBook``, a mutable ring of bars kept for speed:
the step is its only writer), the guard state, each factor's last hedge time and the
plausibility states; every other field is replaced, never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from hedger.core import guards
from hedger.core.beta import BetaBook, Betas
from hedger.core.exposure import Book, Exposure, Quotes, exposure
from hedger.core.option_candidates import OptionChain
from hedger.core.option_hedge import (
    UNSOLVED,
    OptionHedgeInputs,
    OptionHedgeParams,
    beta_delta_shift_usd,
    decide_option_hedges,
    option_key,
    solve_key,
)
from hedger.core.option_legs import OptionDecision
from hedger.core.params import Factor, HedgePolicy, Limits
from hedger.core.plausibility import PlausibilityParams, PlausibilityState, Verdict, assess
from hedger.core.policy import Decision, HedgeMarket, decide

FloatArray = NDArray[np.float64]


@dataclass(slots=True, frozen=True)
class CycleParams:
    factors: tuple[Factor, ...]
    hedge_markets: Mapping[str, HedgeMarket]
    """per factor asset: its hedge instrument as the venue trades it."""
    policy: HedgePolicy
    limits: Limits
    stale_after_s: float
    plausibility: PlausibilityParams = field(default_factory=PlausibilityParams)
    breach: guards.BreachPolicy = guards.BreachPolicy.HALT
    options: OptionHedgeParams = field(default_factory=lambda: OptionHedgeParams({}))
    """per factor: its hedge mode and option settings; option order and limit settings."""


@dataclass(slots=True, frozen=True)
class MarketInputs:
    """Per market row (every instrument streamed, in one order): the latest quote and how
    old it is; ``inputs`` are the rows the exposure depends on."""

    symbols: tuple[str, ...]
    inputs: NDArray[np.intp]
    age_s: FloatArray
    """seconds since each row was last written, on the receive clock (inf: never)."""
    mark: FloatArray | None = None
    index: FloatArray | None = None
    bid: FloatArray | None = None
    ask: FloatArray | None = None
    updates: NDArray[np.int64] | None = None
    delta_one: NDArray[np.bool_] | None = None
    """Plausibility is assessed when every column above is given."""


@dataclass(slots=True, frozen=True)
class CycleInputs:
    now_ms: int
    book: Book
    quotes: Quotes
    factor_index: NDArray[np.intp]
    """per factor: its asset's index in ``book.assets``."""
    market: MarketInputs
    hedge_amount: FloatArray
    """per factor: the hedge instrument position, in its amount units (NaN: unknown)."""
    hedge_bid: FloatArray
    hedge_ask: FloatArray
    taker_fee: FloatArray
    """per factor: the hedge instrument's top of book and taker fee (a fraction)."""
    positions_reconciled: bool = True
    loadings: FloatArray | None = None
    """Override the estimated loadings (a backtest's oracle run); the estimator still
    observes, so a switch back is warm."""
    option_chain: OptionChain | None = None
    """the listed options (metadata, quotes, open interest, what the hedge holds); only
    read when a factor is hedged with options."""


@dataclass(slots=True)
class CycleState:
    beta_book: BetaBook
    guard: guards.GuardState
    last_hedge_ms: dict[str, int] = field(default_factory=dict)
    plausibility: PlausibilityState = field(default_factory=lambda: PlausibilityState.empty(0))
    index_plausibility: PlausibilityState = field(
        default_factory=lambda: PlausibilityState.empty(0)
    )


@dataclass(slots=True, frozen=True)
class CycleOutputs:
    exposure: Exposure
    betas: Betas
    decisions: tuple[Decision, ...]
    checked: guards.GuardResult | None
    """None when the policy wanted nothing."""
    stale_inputs: tuple[str, ...]
    implausible_inputs: tuple[str, ...]
    round_trip_costs: dict[str, float]
    option_decisions: tuple[OptionDecision, ...] = ()
    """per factor not in ``perp`` mode: its option decision, legs included."""
    option_checked: guards.OptionGuardResult | None = None
    """None when no option leg was wanted."""


def stale_inputs(market: MarketInputs, stale_after_s: float) -> tuple[str, ...]:
    """Input rows not written for more than ``stale_after_s`` (or never)."""
    ages = market.age_s[market.inputs]
    return tuple(market.symbols[int(r)] for r in market.inputs[~(ages <= stale_after_s)])


def implausible_inputs(
    state: CycleState, market: MarketInputs, params: PlausibilityParams
) -> tuple[CycleState, tuple[str, ...]]:
    """Inputs whose latest tick failed a sanity check (a jump not yet confirmed, a mark far
    from its index or outside its book), each as ``"<input>: <verdict>"``."""
    columns = (market.mark, market.index, market.bid, market.ask, market.updates)
    mark, index, bid, ask, updates = columns
    if mark is None or index is None or bid is None or ask is None or updates is None:
        return state, ()
    delta_one = market.delta_one
    if delta_one is None:
        delta_one = np.ones(len(mark), dtype=np.bool_)
    n = len(mark)
    plaus, index_plaus = state.plausibility, state.index_plausibility
    if len(plaus) != n:
        plaus = index_plaus = PlausibilityState.empty(n)
    plaus, verdict = assess(plaus, params, mark, index, bid, ask, updates, delta_one)
    # The index on its own: a mark jump is confirmed at once when the index moved with it,
    # so an index that jumps in the same (corrupt) message must confirm itself. Without an
    # index or a book beside it only the jump check applies.
    nan = np.full(n, np.nan)
    index_plaus, index_verdict = assess(
        index_plaus, params, index, nan, nan, nan, updates, delta_one
    )
    verdict = np.where(verdict != Verdict.OK, verdict, index_verdict)
    flagged = market.inputs[verdict[market.inputs] != Verdict.OK]
    names = tuple(
        f"{market.symbols[int(r)]}: {Verdict(int(verdict[r])).name.lower()}" for r in flagged
    )
    return replace(state, plausibility=plaus, index_plausibility=index_plaus), names


def round_trip_costs(
    params: CycleParams, bid: FloatArray, ask: FloatArray, taker_fee: FloatArray
) -> dict[str, float]:
    """Per factor: taker fee plus half the quoted spread of its hedge (Whalley-Wilmott)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        half = np.where((bid > 0) & (ask > 0), (ask - bid) / (ask + bid), 0.0)
    return {f.asset: float(taker_fee[j] + half[j]) for j, f in enumerate(params.factors)}


def hedge_positions_usd(
    params: CycleParams, amount: FloatArray, factor_price: FloatArray
) -> dict[str, float]:
    """Per hedge symbol: the position's signed USD notional (NaN amount: unknown)."""
    out = {}
    for j, f in enumerate(params.factors):
        market = params.hedge_markets[f.asset]
        out[market.symbol] = market.notional_usd(float(amount[j]), float(factor_price[j]))
    return out


def step(
    state: CycleState, inputs: CycleInputs, params: CycleParams
) -> tuple[CycleState, CycleOutputs]:
    now_ms = inputs.now_ms
    stale = stale_inputs(inputs.market, params.stale_after_s)
    state, implausible = implausible_inputs(state, inputs.market, params.plausibility)
    prices = inputs.quotes.asset_price
    seen = np.isfinite(prices)
    if not implausible:  # an unconfirmed spike must not reach the betas either
        rows = np.flatnonzero(seen)
        state.beta_book.observe(rows, prices[seen], now_ms)
    betas = state.beta_book.sample(now_ms)
    loadings = betas.loadings if inputs.loadings is None else inputs.loadings
    result = exposure(inputs.book, inputs.quotes, loadings, inputs.factor_index, now_ms)
    costs = round_trip_costs(params, inputs.hedge_bid, inputs.hedge_ask, inputs.taker_fee)
    health = guards.Health(stale, inputs.positions_reconciled, implausible)
    option_decisions: tuple[OptionDecision, ...] = ()
    option_checked = None
    perp_view = result
    if params.options.active:
        state, option_decisions, option_checked, perp_view = _option_hedges(
            state, inputs, params, result, costs, health
        )
    policy = decide(
        perp_view,
        params.factors,
        params.hedge_markets,
        params.policy,
        now_ms,
        state.last_hedge_ms,
        costs,
    )
    checked = None
    if policy.intents:
        positions = hedge_positions_usd(params, inputs.hedge_amount, result.factor_price)
        checked = guards.check(
            policy.intents, state.guard, params.limits, health, now_ms, positions
        )
        guard = guards.escalate(state.guard, checked, params.breach, now_ms)
        last = dict(state.last_hedge_ms)
        for intent in checked.approved:
            # The cooldown runs from the decision, dry run included, in both drivers.
            last[intent.factor] = now_ms
        state = replace(state, guard=guard, last_hedge_ms=last)
    outputs = CycleOutputs(
        exposure=result,
        betas=betas,
        decisions=policy.decisions,
        checked=checked,
        stale_inputs=stale,
        implausible_inputs=implausible,
        round_trip_costs=costs,
        option_decisions=option_decisions,
        option_checked=option_checked,
    )
    return state, outputs


def _option_hedges(
    state: CycleState,
    inputs: CycleInputs,
    params: CycleParams,
    result: Exposure,
    costs: dict[str, float],
    health: guards.Health,
) -> tuple[CycleState, tuple[OptionDecision, ...], guards.OptionGuardResult | None, Exposure]:
    """The option decisions and their guard check; the exposure the perp decides on (the
    approved legs' beta-delta added, as if they filled)."""
    option_inputs = OptionHedgeInputs(
        exposure=result,
        book=inputs.book,
        quotes=inputs.quotes,
        chain=inputs.option_chain,
        hedge_amount=inputs.hedge_amount,
        round_trip_cost=costs,
        now_ms=inputs.now_ms,
        stale_after_s=params.stale_after_s,
    )
    decisions = decide_option_hedges(
        option_inputs,
        params.factors,
        params.hedge_markets,
        params.policy,
        params.options,
        state.last_hedge_ms,
    )
    unsolved = [d.factor for d in decisions if d.solver in UNSOLVED]
    if unsolved:
        last = dict(state.last_hedge_ms)
        last.update({solve_key(factor): inputs.now_ms for factor in unsolved})
        state = replace(state, last_hedge_ms=last)
    legs = [leg for d in decisions for leg in d.legs]
    if not legs:
        return state, decisions, None, result
    checked = guards.check_options(
        legs,
        state.guard,
        params.options.limits,
        health,
        inputs.now_ms,
        result.vega_usd,
        params.limits.dry_run,
    )
    if not checked.approved:
        return state, decisions, checked, result
    last = dict(state.last_hedge_ms)
    for leg in checked.approved:
        last[option_key(leg.factor)] = inputs.now_ms
    shift = beta_delta_shift_usd(checked.approved, len(result.factors))
    view = replace(result, beta_delta_usd=result.beta_delta_usd + shift)
    return replace(state, last_hedge_ms=last), decisions, checked, view
