"""The protective-put hedge: puts whose delta offsets a share of the long beta-delta.

The long beta-delta to protect is the book's beta-delta without the hedge's own positions
(the perp and the options the hedge holds): ``L = beta_delta - perp - hedge options``. The
puts' aim is ``-coverage * L`` factor units when ``L > 0``, none otherwise. Puts are bought
at the listed expiry nearest ``tenor_days`` and, in it, the strike nearest ``moneyness``
times the forward, and held until a rule says roll:

- a held put has fewer than ``roll_days`` to its expiry;
- the held puts' delta has drifted from the aim by more than ``delta_drift`` of it and
  more than the factor's band (the holdings changed, or the market moved the strike away):
  a mismatch the perp's band absorbs is not worth an option trade.

A held put stays the chosen strike unless another is nearer the moneyness by
``restrike_moneyness`` (hysteresis on the strike), so a drift roll usually trades the held
put by the difference rather than selling one strike to buy its neighbour.

A roll closes the held puts that are not the chosen one and trades the chosen one to the
aim (only the difference when it is already held). Between rolls nothing trades, so the
floor is not re-struck on every tick; the perp trims the residual beta-delta inside its
band, on the beta-delta after these legs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from hedger.core.option_candidates import Candidates, ContractGreeks, OptionChain
from hedger.core.option_legs import (
    FactorContext,
    OptionDecision,
    OptionLeg,
    greeks_after,
    legs_for,
    round_option_amount,
)
from hedger.core.params import HedgeMode, OptionOrder, ProtectivePut
from hedger.core.policy import Action

FloatArray = NDArray[np.float64]


def long_beta_delta(ctx: FactorContext) -> float:
    """The holdings' own beta-delta: the book's without the hedge's perp and options."""
    return ctx.before.beta_delta - ctx.perp_beta_delta - ctx.hedge_options_beta_delta


def put_aim(ctx: FactorContext, params: ProtectivePut) -> float:
    """The beta-delta the puts should carry, factor units (<= 0)."""
    long = long_beta_delta(ctx)
    return -params.coverage * long if long > 0 else 0.0


def choose_put(
    candidates: Candidates,
    chain: OptionChain,
    params: ProtectivePut,
    held_rows: NDArray[np.intp] | None = None,
) -> int | None:
    """Index in ``candidates.greeks`` of the put at the expiry nearest the tenor and, in it,
    the strike nearest the moneyness; None without a candidate.

    A put the hedge holds (``held_rows``) at that expiry, not due to roll, stays the choice
    unless another one is nearer the moneyness by ``restrike_moneyness``: with the forward
    halfway between two strikes, a tick either way must not sell one strike to buy the
    next."""
    g = candidates.greeks
    if not len(g):
        return None
    days_off = np.abs(g.days_to_expiry - params.tenor_days)
    nearest_expiry = days_off <= days_off.min() + 1e-9
    moneyness = chain.strike[g.rows] / chain.underlying_price[g.rows]
    moneyness_off = np.abs(moneyness - params.moneyness)
    best = int(np.argmin(np.where(nearest_expiry, moneyness_off, np.inf)))
    if held_rows is None or not len(held_rows):
        return best
    # Only a held put at the chosen expiry, and not due to roll, may stay.
    keepable = np.isin(g.rows, held_rows) & nearest_expiry
    held = np.flatnonzero(keepable & (g.days_to_expiry >= params.roll_days))
    if not len(held):
        return best
    kept = int(held[np.argmin(moneyness_off[held])])
    if moneyness_off[kept] <= moneyness_off[best] + params.restrike_moneyness:
        return kept
    return best


def _roll_reason(
    held: ContractGreeks,
    amounts: FloatArray,
    aim: float,
    params: ProtectivePut,
    min_drift: float,
) -> str | None:
    puts = amounts > 0
    expiring = puts & (held.days_to_expiry < params.roll_days)
    if expiring.any():
        i = int(np.flatnonzero(expiring)[0])
        return (
            f"roll: {held.symbols[i]} expires in {held.days_to_expiry[i]:.3g} d "
            f"< roll_days {params.roll_days:g}"
        )
    if not puts.any():
        return f"open: no puts held, aim {aim:+.6g}" if aim else None
    delta = float(amounts[puts] @ held.beta_delta[puts])
    scale = max(abs(aim), abs(delta))
    if abs(delta - aim) > max(params.delta_drift * scale, min_drift):
        return (
            f"delta drift: puts {delta:+.6g} vs aim {aim:+.6g} "
            f"(more than {params.delta_drift:.0%} and the band {min_drift:.6g} apart)"
        )
    return None


def decide_protective_put(
    ctx: FactorContext,
    params: ProtectivePut,
    candidates: Candidates,
    held: ContractGreeks,
    chain: OptionChain,
    order: OptionOrder,
    max_order_amount: float | None = None,
) -> OptionDecision:
    """Hold the puts while no rule says roll; otherwise close what is not the chosen put
    and trade the chosen one to the aim. ``candidates``: puts that pass the filters;
    ``held``: the hedge's options on this factor (rows with a non-zero hedge amount)."""
    before = ctx.before
    mode = HedgeMode.PROTECTIVE_PUT
    aim = put_aim(ctx, params)
    held_amounts = chain.held()[held.rows]
    is_put = ~chain.is_call[held.rows]
    long_puts = np.where(is_put, np.maximum(held_amounts, 0.0), 0.0)
    # A mismatch the perp's band absorbs is no reason to trade options.
    band = 0.5 * (ctx.delta_upper - ctx.delta_lower)
    why = _roll_reason(held, long_puts, aim, params, band)
    if why is None:
        covered = float(long_puts @ held.beta_delta) if len(held) else 0.0
        return OptionDecision(
            ctx.factor,
            mode,
            Action.HOLD,
            f"puts {covered:+.6g} hold the aim {aim:+.6g} (long beta-delta "
            f"{long_beta_delta(ctx):+.6g})",
            before=before,
            after=before,
        )
    held_puts = held.rows[long_puts > 0]
    chosen = None if aim == 0.0 else choose_put(candidates, chain, params, held_puts)
    if aim != 0.0 and chosen is None:
        excluded = ", ".join(f"{reason} {count}" for reason, count in candidates.excluded)
        return OptionDecision(
            ctx.factor,
            mode,
            Action.SKIP,
            f"{why}; no put candidate (excluded: {excluded or 'none listed'})",
            before=before,
        )
    want = 0.0
    chosen_row = -1
    if chosen is not None:
        g = candidates.greeks
        chosen_row = int(g.rows[chosen])
        per_contract = float(g.beta_delta[chosen])
        if per_contract < 0:
            row = chosen_row
            want = round_option_amount(
                aim / per_contract, float(chain.amount_step[row]), float(chain.min_amount[row])
            )
    # Close every long put that is not the chosen one; trade the chosen one to ``want``.
    closes = np.where(held.rows == chosen_row, 0.0, -long_puts)
    already = float(long_puts[held.rows == chosen_row].sum())
    legs: tuple[OptionLeg, ...] = legs_for(
        chain, held, closes, order, [f"{why}: close"] * len(held), max_order_amount
    )
    if chosen is not None and want != already:
        buys = np.zeros(len(candidates.greeks))
        buys[chosen] = want - already
        verb = "buy" if want > already else "trim"
        legs += legs_for(
            chain,
            candidates.greeks,
            buys,
            order,
            [f"{why}: {verb} to aim {aim:+.6g}"] * len(buys),
            max_order_amount,
        )
    legs = tuple(replace(leg, leg=i) for i, leg in enumerate(legs))
    if not legs:
        return OptionDecision(
            ctx.factor,
            mode,
            Action.SKIP,
            f"{why}; below min size of the chosen put",
            before=before,
        )
    return OptionDecision(
        ctx.factor,
        mode,
        Action.HEDGE,
        why,
        legs,
        before=before,
        after=greeks_after(before, legs, ctx.index, ctx.price),
    )
