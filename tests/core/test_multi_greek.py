"""The multi-Greek solve: bands met at least cost, infeasibility named, lots re-checked,
bounded solve time, and legs an executor can send."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hedger.core.exposure import Position
from hedger.core.multi_greek import (
    GREEKS,
    GreekProblem,
    check_greeks,
    decide_multi_greek,
    greek_problem,
    solve_greeks,
    trading_cost_usd,
)
from hedger.core.option_candidates import (
    Candidates,
    FloatArray,
    OptionChain,
    book_vega_by_asset,
    option_candidates,
)
from hedger.core.option_hedge import factor_greeks
from hedger.core.option_legs import FactorContext
from hedger.core.params import CandidateFilter, GreekBand, MultiGreek, OptionOrder
from hedger.core.policy import Action

from .chains import (
    BTC_PRICE,
    NOW,
    book_exposure,
    chain,
    frame_of,
    option_instrument,
    option_symbol,
    spot,
)

PERP_COST = 0.0005  # taker fee + half spread of the perp, a fraction
BANDS = MultiGreek(
    gamma=GreekBand(0.0, 2_000.0, inner_half_width=1_000.0), vega=GreekBand(0.0, 1_500.0)
)


def _short_calls(c: OptionChain, qty: float = -10.0) -> tuple[FactorContext, Candidates]:
    """A dealer short ATM 30-day calls, delta-hedged with spot: short gamma and vega."""
    row = c.row_of(option_symbol("BTC", 30, 50_000, True))
    positions = [Position(option_instrument(c, row), qty), Position(spot("BTC"), -qty * 0.55)]
    book, quotes, result = book_exposure(positions, {"BTC": BTC_PRICE})
    before = factor_greeks(result, book_vega_by_asset(book, quotes, NOW), 0)
    ctx = FactorContext(
        factor="BTC",
        index=0,
        price=BTC_PRICE,
        before=before,
        delta_lower=-0.5,
        delta_upper=0.5,
        perp_beta_delta=0.0,
        hedge_options_beta_delta=0.0,
        perp_cost_usd_per_unit=PERP_COST * BTC_PRICE,
    )
    return ctx, option_candidates(c, CandidateFilter(), frame_of(result), "BTC", NOW)


def _recomputed(problem: GreekProblem, amounts: FloatArray, perp: float) -> FloatArray:
    out: FloatArray = problem.start + problem.option_greeks @ amounts
    out[0] += perp
    return out


# --- bands at least cost ------------------------------------------------------------------------


def test_solver_meets_every_band_at_lower_cost_than_an_exact_square_solve() -> None:
    c = chain()
    ctx, candidates = _short_calls(c)
    params = MultiGreek(gamma=GreekBand(0.0, 2_000.0), vega=GreekBand(0.0, 200.0))
    problem = greek_problem(ctx, params, candidates, c)
    # Both gamma and vega are far outside their bands: the options must fix both.
    assert ctx.before.gamma_usd_per_pct < -5_000 and ctx.before.vega_usd < -500
    solution = solve_greeks(problem, params)
    assert solution.status == "optimal"
    assert solution.misses == ()
    greeks = _recomputed(problem, solution.amounts, solution.perp_units)
    assert np.all(greeks >= problem.lower - 1e-6) and np.all(greeks <= problem.upper + 1e-6)
    assert np.count_nonzero(solution.amounts) <= params.max_options

    # The exact square solve: the perp and two options (two expiries, so that gamma and
    # vega are not collinear) hitting the three targets exactly.
    pick = [
        candidates.greeks.symbols.index(option_symbol("BTC", 7, 50_000, True)),
        candidates.greeks.symbols.index(option_symbol("BTC", 60, 50_000, True)),
    ]
    a = np.column_stack([[1.0, 0.0, 0.0], problem.option_greeks[:, pick]])
    target = np.array([0.0, params.gamma.target, params.vega.target])
    perp, q1, q2 = np.linalg.solve(a, target - problem.start)
    square = np.zeros(problem.n)
    square[pick] = [q1, q2]
    assert _recomputed(problem, square, perp) == pytest.approx(target, abs=1e-6)
    square_cost = trading_cost_usd(problem, square, perp)
    assert solution.cost_usd < square_cost
    assert solution.cost_usd == pytest.approx(
        trading_cost_usd(problem, solution.amounts, solution.perp_units)
    )


def test_a_book_inside_its_bands_trades_nothing() -> None:
    c = chain()
    ctx, candidates = _short_calls(c, qty=-0.5)
    decision = decide_multi_greek(ctx, BANDS, candidates, c, OptionOrder())
    assert decision.action is Action.HOLD
    assert decision.legs == ()
    assert decision.reason == "gamma and vega inside their bands"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.tuples(st.floats(-0.4, 0.4), st.floats(-900.0, 900.0), st.floats(-900.0, 900.0)))
def test_a_start_inside_every_band_solves_to_no_trade(start: tuple[float, float, float]) -> None:
    c = chain()
    ctx, candidates = _short_calls(c)
    problem = replace(greek_problem(ctx, BANDS, candidates, c), start=np.array(start))
    solution = solve_greeks(problem, BANDS)
    assert solution.status == "optimal"
    assert not solution.amounts.any()
    assert solution.perp_units == 0.0 and solution.cost_usd == 0.0


# --- infeasible: the binding constraint, not a huge position ------------------------------------


def test_an_infeasible_band_names_the_binding_constraint() -> None:
    c = chain()
    ctx, candidates = _short_calls(c)
    params = MultiGreek(
        gamma=GreekBand(0.0, 500.0),
        vega=GreekBand(0.0, 1e9),
        max_options=1,
        max_contracts_per_option=1.0,
    )
    decision = decide_multi_greek(ctx, params, candidates, c, OptionOrder())
    assert decision.action is Action.SKIP
    assert decision.legs == ()
    assert decision.solver == "infeasible"
    assert "infeasible, binding constraint gamma >= -500 USD/1%" in decision.reason
    assert "max_options 1 reached" in decision.reason
    assert "nothing to sell" not in decision.reason  # buying is what gamma needs here
    (miss,) = decision.misses
    assert miss.greek == "gamma" and miss.value < miss.lower == -500.0
    # The miss is the best any allowed trade gets: one contract of the most gamma per lot.
    best = ctx.before.gamma_usd_per_pct + candidates.greeks.gamma_usd_per_pct.max()
    assert miss.value == pytest.approx(best, rel=1e-6)
    assert f"misses by {miss.by:.6g}" in decision.reason


def test_a_band_only_selling_could_reach_is_named_with_allow_short_off() -> None:
    c = chain()
    ctx, candidates = _short_calls(c, qty=+10.0)  # long gamma and vega now
    params = MultiGreek(gamma=GreekBand(0.0, 1e9), vega=GreekBand(0.0, 300.0))
    decision = decide_multi_greek(ctx, params, candidates, c, OptionOrder())
    assert decision.solver == "infeasible"
    assert "binding constraint vega <= 300 USD/vol pt" in decision.reason
    assert "only selling moves it that way: nothing to sell (allow_short off)" in decision.reason
    writes = decide_multi_greek(
        ctx, replace(params, allow_short=True), candidates, c, OptionOrder()
    )
    assert writes.action is Action.HEDGE
    assert all(leg.side == "sell" for leg in writes.legs)


def test_held_options_may_be_sold_but_no_more_than_held() -> None:
    held_symbol = option_symbol("BTC", 60, 50_000, True)
    c = chain(held={held_symbol: 3.0})
    ctx, candidates = _short_calls(c, qty=+10.0)
    params = MultiGreek(gamma=GreekBand(0.0, 1e9), vega=GreekBand(0.0, 1_500.0))
    decision = decide_multi_greek(ctx, params, candidates, c, OptionOrder())
    sold = {leg.symbol: leg.amount for leg in decision.legs if leg.side == "sell"}
    assert set(sold) <= {held_symbol}
    assert sum(sold.values()) <= 3.0 + 1e-12


# --- lots, rounding, re-check -------------------------------------------------------------------


def test_integer_lots_land_inside_every_band() -> None:
    c = chain(lot=0.5)
    ctx, candidates = _short_calls(c)
    problem = greek_problem(ctx, BANDS, candidates, c)
    solution = solve_greeks(problem, BANDS)
    assert solution.status == "optimal" and solution.misses == ()
    lots = solution.amounts / 0.5
    assert lots == pytest.approx(np.round(lots), abs=1e-12)
    assert check_greeks(problem, _recomputed(problem, solution.amounts, solution.perp_units)) == ()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lot=st.sampled_from([0.1, 0.5, 1.0, 2.0, 5.0]), width=st.floats(50.0, 3_000.0))
def test_relaxed_lots_are_rounded_and_every_miss_is_reported(lot: float, width: float) -> None:
    """The LP's amounts rounded to the lot: each Greek is inside its band, or reported with
    exactly the value the rounded amounts give and its distance to the band."""
    c = chain(lot=lot)
    ctx, candidates = _short_calls(c)
    params = MultiGreek(
        gamma=GreekBand(0.0, width), vega=GreekBand(0.0, 5 * width), integer_lots=False
    )
    problem = greek_problem(ctx, params, candidates, c)
    solution = solve_greeks(problem, params)
    assert solution.status == "optimal"
    lots = solution.amounts / lot
    assert lots == pytest.approx(np.round(lots), abs=1e-9)
    greeks = _recomputed(problem, solution.amounts, solution.perp_units)
    missed = {m.greek: m for m in solution.misses}
    for j, name in enumerate(GREEKS):
        lo, hi = problem.lower[j], problem.upper[j]
        if name in missed:
            miss = missed[name]
            assert miss.value == pytest.approx(greeks[j])
            assert miss.by == pytest.approx(max(lo - greeks[j], greeks[j] - hi))
            assert miss.by > 0
        else:
            slack = 1e-6 * (hi - lo)
            assert lo - slack <= greeks[j] <= hi + slack


def test_a_coarse_lot_reports_its_miss_in_the_decision() -> None:
    c = chain(lot=5.0)
    ctx, candidates = _short_calls(c)
    params = MultiGreek(gamma=GreekBand(0.0, 100.0), vega=GreekBand(0.0, 1e9), integer_lots=False)
    decision = decide_multi_greek(ctx, params, candidates, c, OptionOrder())
    assert decision.misses, decision.reason
    assert decision.misses[0].greek == "gamma"
    assert decision.misses[0].by > 0


# --- time limit ---------------------------------------------------------------------------------


def test_a_solve_past_its_time_limit_leaves_delta_to_the_perp_and_says_so() -> None:
    c = chain()
    ctx, candidates = _short_calls(c)
    params = MultiGreek(
        gamma=GreekBand(0.0, 30.0),
        vega=GreekBand(0.0, 10.0),
        max_contracts_per_option=1e4,
        time_limit_s=1e-6,
    )
    decision = decide_multi_greek(ctx, params, candidates, c, OptionOrder())
    assert decision.action is Action.SKIP
    assert decision.solver == "time_limit"
    assert decision.legs == ()
    assert "time limit" in decision.reason and "the perp hedges delta alone" in decision.reason


# --- legs ---------------------------------------------------------------------------------------


def test_legs_carry_venue_amounts_and_a_limit_price_hint() -> None:
    c = chain()
    ctx, candidates = _short_calls(c)
    order = OptionOrder(spread_fraction=0.5)
    decision = decide_multi_greek(ctx, BANDS, candidates, c, order, max_order_amount=1.0)
    assert decision.action is Action.HEDGE and decision.legs
    assert [leg.leg for leg in decision.legs] == list(range(len(decision.legs)))
    for leg in decision.legs:
        row = c.row_of(leg.symbol)
        assert leg.amount <= 1.0
        assert leg.amount / 0.1 == pytest.approx(round(leg.amount / 0.1))
        spread = c.ask[row] - c.bid[row]
        sign = 1.0 if leg.side == "buy" else -1.0
        assert leg.limit_price == pytest.approx(c.mark[row] + sign * 0.5 * spread)
        assert leg.premium_usd == pytest.approx(leg.amount * c.mark[row] * BTC_PRICE)
    after = decision.after
    assert after is not None
    assert BANDS.gamma.inner_lower <= after.gamma_usd_per_pct <= BANDS.gamma.inner_upper
    assert BANDS.vega.lower <= after.vega_usd <= BANDS.vega.upper
